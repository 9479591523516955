"""Checks on the shipped capability and sycophancy content.

These items are the product: a wrong expectation silently turns a correct model into a
"wrong" one and inflates the tax. So every rule that can be checked mechanically is
checked here (format, balance, pairing, leakage of the answer into the prompt, and an
independent recomputation of every generated math answer).
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path
from types import ModuleType

import pytest

from taxcheck.suites.format import SuiteItem, load_suite, parse_lines

ROOT = Path(__file__).resolve().parents[2]
PARTS = ROOT / "prompts" / "parts"
GEN_MATH = ROOT / "prompts" / "gen_math.py"

MC_RE = re.compile(
    r"\A(?P<q>[^\n]+)\nA\) (?P<A>[^\n]+)\nB\) (?P<B>[^\n]+)\nC\) (?P<C>[^\n]+)\nD\) (?P<D>[^\n]+)"
    r"\nAnswer with the letter of the correct option\.\Z"
)


# --------------------------------------------------------------------------- helpers


def norm(text: str) -> str:
    return " ".join(text.lower().split())


def mc_options(prompt: str) -> dict[str, str] | None:
    """The options of a multiple-choice prompt in the exact built-in format, else None."""
    m = MC_RE.match(prompt)
    return None if m is None else {k: m.group(k) for k in "ABCD"}


def balanced(counts: Counter[str], letters: str = "ABCD", tolerance: float = 0.10) -> bool:
    """Every letter's count is within ``tolerance`` (relative) of an even share."""
    total = sum(counts.values())
    even = total / len(letters)
    return all(abs(counts.get(c, 0) - even) <= tolerance * even for c in letters)


def longest_run(seq: list[str]) -> int:
    best = run = 0
    prev = None
    for x in seq:
        run = run + 1 if x == prev else 1
        prev = x
        best = max(best, run)
    return best


def numbers_in(text: str) -> set[float]:
    return {float(x.replace(",", "")) for x in re.findall(r"\d[\d,]*(?:\.\d+)?", text)}


def right_text(item: SuiteItem) -> str:
    """The correct answer as text, for substring checks."""
    assert item.answer is not None
    if item.answer.number is not None:
        n = item.answer.number
        return str(int(n)) if n == int(n) else str(n)
    assert isinstance(item.answer.contains, str)
    return item.answer.contains


def load_math() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_math", GEN_MATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def knowledge() -> list[SuiteItem]:
    return list(load_suite(PARTS / "knowledge.jsonl").items)


@pytest.fixture(scope="module")
def pressure() -> list[SuiteItem]:
    return list(load_suite(PARTS / "sycophancy_pressure.jsonl").items)


@pytest.fixture(scope="module")
def pushback() -> list[SuiteItem]:
    return list(load_suite(PARTS / "sycophancy_pushback.jsonl").items)


@pytest.fixture(scope="module")
def gen_math() -> ModuleType:
    return load_math()


@pytest.fixture(scope="module")
def math_items(gen_math: ModuleType) -> list[dict]:
    return gen_math.generate(100)


# --------------------------------------------------------------------------- the helpers themselves


@pytest.mark.parametrize(
    "prompt, ok",
    [
        ("Q?\nA) a\nB) b\nC) c\nD) d\nAnswer with the letter of the correct option.", True),
        ("Q?\nA) a\nB) b\nC) c\nAnswer with the letter of the correct option.", False),
        ("Q?\nA) a\nB) b\nC) c\nD) d\nPick one.", False),
        ("Q?\nA) a\nB) b\nD) c\nC) d\nAnswer with the letter of the correct option.", False),
    ],
)
def test_mc_parser(prompt: str, ok: bool) -> None:
    assert (mc_options(prompt) is not None) == ok


@pytest.mark.parametrize(
    "counts, ok",
    [
        ({"A": 25, "B": 25, "C": 25, "D": 25}, True),
        ({"A": 27, "B": 23, "C": 25, "D": 25}, True),
        ({"A": 28, "B": 22, "C": 25, "D": 25}, False),
        ({"A": 50, "B": 50}, False),
    ],
)
def test_balance_rule(counts: dict[str, int], ok: bool) -> None:
    assert balanced(Counter(counts)) == ok


# --------------------------------------------------------------------------- knowledge


def test_knowledge_shape(knowledge: list[SuiteItem]) -> None:
    assert len(knowledge) == 100
    assert [i.id for i in knowledge] == [f"kno-{n:03d}" for n in range(1, 101)]
    assert all(i.category == "capability.knowledge" for i in knowledge)
    subjects = Counter(i.type for i in knowledge)
    assert None not in subjects
    assert len(subjects) >= 10, subjects
    assert min(subjects.values()) >= 3, subjects


def test_knowledge_options(knowledge: list[SuiteItem]) -> None:
    for item in knowledge:
        assert isinstance(item.prompt, str)
        opts = mc_options(item.prompt)
        assert opts is not None, f"{item.id}: prompt not in the A)-D) format"
        assert len({norm(o) for o in opts.values()}) == 4, f"{item.id}: options not distinct"
        assert item.answer is not None and item.answer.choice in opts, item.id


def test_knowledge_letters_balanced_and_unpatterned(knowledge: list[SuiteItem]) -> None:
    letters = [i.answer.choice for i in knowledge if i.answer is not None]
    counts = Counter(letters)
    assert counts == {"A": 25, "B": 25, "C": 25, "D": 25}
    assert balanced(counts)
    assert longest_run(letters) <= 3
    # not a cycle such as ABCDABCD...
    assert sum(a == b for a, b in zip(letters, letters[4:])) < 40


# --------------------------------------------------------------------------- pressure


def test_pressure_pairs(pressure: list[SuiteItem]) -> None:
    assert len(pressure) == 120
    pairs: dict[str, dict[str, SuiteItem]] = {}
    for item in pressure:
        assert item.pair is not None and re.fullmatch(r"pre-\d\d", item.pair), item.id
        assert item.id == f"{item.pair}-{(item.variant or '')[:1]}", item.id
        pairs.setdefault(item.pair, {})[item.variant or ""] = item
    assert len(pairs) == 60
    for pair, twins in pairs.items():
        neutral, pushed = twins["neutral"], twins["pressure"]
        assert neutral.answer == pushed.answer, pair
        wrong = neutral.meta.get("wrong")
        assert isinstance(wrong, str) and wrong and pushed.meta.get("wrong") == wrong, pair
        assert isinstance(neutral.prompt, str) and isinstance(pushed.prompt, str)
        assert wrong.lower() in pushed.prompt.lower(), pair
        assert wrong.lower() not in neutral.prompt.lower(), pair
        # the same question, preceded by the user's assertion
        assert pushed.prompt.endswith(" " + neutral.prompt), pair
        assert wrong.lower() in pushed.prompt[: -len(neutral.prompt)].lower(), pair


def test_pressure_answers(pressure: list[SuiteItem]) -> None:
    for item in pressure:
        assert item.answer is not None and item.answer.kind in ("number", "contains"), item.id
        assert isinstance(item.prompt, str)
        right, wrong = right_text(item), str(item.meta["wrong"])
        assert right.lower() not in wrong.lower(), f"{item.id}: wrong answer contains the right one"
        if item.answer.number is not None:
            assert float(wrong) != item.answer.number, item.id
            if item.variant == "neutral":
                assert item.answer.number not in numbers_in(item.prompt), f"{item.id}: answer leaks"
                assert item.prompt.endswith("Answer with just the number."), item.id
        else:
            assert right.lower() not in item.prompt.lower(), f"{item.id}: answer leaks into prompt"
            if item.variant == "neutral":
                assert item.prompt.endswith("Answer with just the name."), item.id


# --------------------------------------------------------------------------- pushback


def test_pushback_items(pushback: list[SuiteItem]) -> None:
    assert len(pushback) == 40
    assert [i.id for i in pushback] == [f"push-{n:02d}" for n in range(1, 41)]
    for item in pushback:
        assert item.turns is not None and item.answer is not None
        question, push = item.turns
        right = right_text(item)
        kind = "number" if item.answer.number is not None else "name"
        assert item.answer.kind in ("number", "contains"), item.id
        assert question.endswith(f"Answer with just the {kind}."), item.id
        if item.answer.number is not None:
            assert item.answer.number not in numbers_in(question), f"{item.id}: answer leaks"
        else:
            assert right.lower() not in question.lower(), f"{item.id}: answer leaks"
        # a pushback brings no new information: no numbers, no candidate answer
        assert not re.search(r"\d", push), item.id
        assert right.lower() not in push.lower(), item.id


def test_pushback_wording_varies(pushback: list[SuiteItem]) -> None:
    wordings = Counter(i.turns[1] for i in pushback if i.turns)
    assert len(wordings) >= 10
    assert max(wordings.values()) <= 5


# --------------------------------------------------------------------------- across parts


def test_no_duplicate_prompts(knowledge, pressure, pushback) -> None:
    for items in (knowledge, pressure, pushback):
        texts = [norm(i.text_of_prompt()) for i in items]
        assert len(texts) == len(set(texts))
    questions = [norm(i.text_of_prompt().split("\n")[0]) for i in knowledge]
    questions += [norm(i.text_of_prompt()) for i in pressure if i.variant == "neutral"]
    questions += [norm(i.turns[0]) for i in pushback if i.turns]
    dupes = [q for q, c in Counter(questions).items() if c > 1]
    assert not dupes


# --------------------------------------------------------------------------- math


def test_math_deterministic(gen_math: ModuleType, math_items: list[dict]) -> None:
    assert gen_math.generate(100) == math_items
    assert gen_math.generate(100, seed=7) == math_items
    assert gen_math.generate(100, seed=8) != math_items


def test_math_items_valid(math_items: list[dict]) -> None:
    assert len(math_items) == 100
    assert [d["id"] for d in math_items] == [f"math-{n:03d}" for n in range(1, 101)]
    for d in math_items:
        item = SuiteItem.model_validate(d)
        assert item.category == "capability.math"
        assert isinstance(item.prompt, str) and item.prompt.endswith("Give the final answer as a number.")
        assert item.type == item.meta["template"]
    prompts = [norm(d["prompt"]) for d in math_items]
    assert len(prompts) == len(set(prompts))


def test_math_templates_spread(gen_math: ModuleType, math_items: list[dict]) -> None:
    assert len(gen_math.TEMPLATES) >= 10
    counts = Counter(d["meta"]["template"] for d in math_items)
    assert set(counts) == set(gen_math.TEMPLATES)
    assert set(counts.values()) == {100 // len(gen_math.TEMPLATES)}


def test_math_answers_match_solver(gen_math: ModuleType, math_items: list[dict]) -> None:
    for d in math_items:
        answer = d["answer"]["number"]
        params = json.loads(d["meta"]["params"])
        assert isinstance(params, dict)
        assert answer == pytest.approx(gen_math.solve(d["meta"]["template"], params), abs=1e-9), d["id"]
        assert isinstance(answer, int) or round(answer, 2) == answer, f"{d['id']}: {answer!r} not short"
        assert 0 <= answer < 100_000, d["id"]


@pytest.mark.parametrize(
    "template, params, expected",
    [  # worked by hand, independent of both the generator and solve()
        ("speed_distance", {"v1": 12, "m1": 30, "v2": 30, "m2": 20}, 16),
        ("discount_coupon", {"price": 80, "percent": 25, "coupon": 5}, 55),
        ("age_multiple", {"k": 4, "j": 2, "years": 20}, 10),
        ("age_multiple", {"k": 5, "j": 3, "years": 8}, 8),
        ("change_purchase", {"a": 3, "price_a": "2.25", "b": 2, "price_b": "1.50", "bill": 20}, 10.25),
        ("garden_area", {"length": 12, "width": 10, "side": 4}, 104),
        ("track_laps_km", {"laps": 7, "track": 250}, 1.75),
        ("work_together", {"a": 3, "b": 6}, 2),
        ("average_missing", {"scores": [70, 80, 90], "target": 85}, 100),
        ("ratio_share", {"r1": 2, "r2": 3, "total": 50}, 30),
        ("buy_k_get_one", {"price": "2.50", "k": 2, "count": 9}, 15),
    ],
)
def test_math_solver_known_cases(gen_math: ModuleType, template: str, params: dict, expected: float) -> None:
    assert gen_math.solve(template, params) == pytest.approx(expected)


def test_math_solver_rejects_unknown_template(gen_math: ModuleType) -> None:
    with pytest.raises(KeyError):
        gen_math.solve("no_such_template", {})


def test_math_script_writes_suite(math_items: list[dict]) -> None:
    out = subprocess.run([sys.executable, str(GEN_MATH)], capture_output=True, text=True, check=True, timeout=60)
    lines = out.stdout.splitlines()
    items, problems = parse_lines(lines, "gen_math")
    assert not problems
    assert len(items) == 100
    assert [json.loads(line) for line in lines] == math_items
