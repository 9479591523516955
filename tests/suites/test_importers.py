"""Importers: fixtures in the real formats become valid suites; bad files give file:line errors.

The fixtures under tests/fixtures/importers/ were written for these tests in the datasets'
formats (no dataset text is copied). Two tests read the real XSTest and GSM8K files from
../shared/data and are skipped where that folder does not exist.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from taxcheck.errors import SuiteError, UserError
from taxcheck.suites.importers import (
    FORMAT_OPTIONS,
    FORMATS,
    MAX_PROBLEMS,
    ImportReport,
    import_suite,
    iter_import,
    write_suite,
)
from taxcheck.suites.importers.gsm8k import gold_number
from taxcheck.suites.importers.mmlu import subject_from_name
from taxcheck.suites.importers.orbench import tag_of
from taxcheck.suites.importers.sycophancy import PUSHBACK, classify_template
from taxcheck.suites.format import load_suite, resolve_suite

FIX = Path(__file__).parents[1] / "fixtures" / "importers"
DATA = Path(__file__).resolve().parents[3] / "shared" / "data"


def roundtrip(tmp_path: Path, fmt: str, name: str, **options) -> tuple[list, ImportReport]:
    """Import a fixture, write it as a suite and load it back through the suite loader."""
    report = ImportReport()
    out = tmp_path / f"{Path(name).stem}.jsonl"
    n = write_suite(iter_import(fmt, FIX / name, report, **options), out)
    suite = load_suite(out)
    assert n == len(suite.items) == report.items
    return list(suite.items), report


# --------------------------------------------------------------------------- good fixtures

GOOD = [
    # fmt, fixture, options, expected categories
    ("xstest", "xstest_prompts.csv", {}, {"over_refusal": 6, "harmful_refusal": 4}),
    ("orbench", "or-bench-hard-1k.csv", {}, {"over_refusal": 3}),
    ("orbench", "or-bench-toxic.csv", {}, {"harmful_refusal": 2}),
    ("orbench", "orbench_prompts.csv", {"expect": "refuse"}, {"harmful_refusal": 1}),
    ("sycophancy-eval", "are_you_sure.jsonl", {}, {"sycophancy.pushback": 3}),
    ("sycophancy-eval", "answer.jsonl", {}, {"sycophancy.pressure": 4}),
    ("mmlu", "anatomy_test.csv", {}, {"capability.knowledge": 4}),
    ("mmlu", "mmlu_hf.jsonl", {}, {"capability.knowledge": 3}),
    ("mmlu", "mmlu_hf.csv", {}, {"capability.knowledge": 2}),
    ("gsm8k", "gsm8k.jsonl", {}, {"capability.math": 3}),
    ("humaneval", "humaneval.jsonl", {}, {"capability.code": 2}),
]


@pytest.mark.parametrize(("fmt", "name", "options", "categories"), GOOD, ids=[g[1] for g in GOOD])
def test_fixture_imports_into_a_valid_suite(tmp_path, fmt, name, options, categories):
    items, _ = roundtrip(tmp_path, fmt, name, **options)
    assert Counter(i.category for i in items) == categories
    assert len({i.id for i in items}) == len(items)


def test_every_format_has_a_good_fixture_and_options_listed():
    assert {g[0] for g in GOOD} == set(FORMATS) == set(FORMAT_OPTIONS)
    assert set(FORMATS) == {"xstest", "orbench", "sycophancy-eval", "mmlu", "gsm8k", "humaneval"}


def test_ids_are_stable_across_imports():
    first = [i.id for i in iter_import("xstest", FIX / "xstest_prompts.csv")]
    again = [i.id for i in iter_import("xstest", FIX / "xstest_prompts.csv")]
    assert first == again and first[:2] == ["xstest-1", "xstest-3"]


# --------------------------------------------------------------------------- xstest


def test_xstest_pairs_by_position_within_type(tmp_path):
    items, report = roundtrip(tmp_path, "xstest", "xstest_prompts.csv")
    pairs: dict[str, list[str]] = {}
    for item in items:
        if item.pair:
            pairs.setdefault(item.pair, []).append(item.id)
    assert pairs == {
        "xstest-homonyms-1": ["xstest-1", "xstest-3"],
        "xstest-homonyms-2": ["xstest-2", "xstest-4"],
        "xstest-privacy_fictional-1": ["xstest-5", "xstest-6"],
        "xstest-real_group_nons_discr-1": ["xstest-7", "xstest-8"],
    }
    by_id = {i.id: i for i in items}
    assert by_id["xstest-9"].pair is None and by_id["xstest-9"].type == "privacy_public"
    assert by_id["xstest-10"].pair is None and by_id["xstest-10"].expect == "comply"
    assert by_id["xstest-3"].variant == "harmful" and by_id["xstest-3"].expect == "refuse"
    assert by_id["xstest-3"].type == "contrast_homonyms"
    assert by_id["xstest-1"].meta == {"focus": "shoot", "note": "violence"}
    # the quoted multi-line field survives, with its comma
    assert by_id["xstest-5"].prompt.endswith("home address,\nand who else lived there?")
    assert by_id["xstest-5"].meta["note"] == "fiction, multi-line"
    assert "4 pairs, 2 unpaired safe items, 0 unpaired unsafe items" in report.notes


@pytest.mark.skipif(not (DATA / "xstest" / "xstest_prompts.csv").exists(), reason="../shared/data absent")
def test_real_xstest_gives_200_pairs_and_50_unpaired_safe():
    report = ImportReport()
    items = list(iter_import("xstest", DATA / "xstest" / "xstest_prompts.csv", report))
    pairs = Counter(i.pair for i in items if i.pair)
    unpaired = [i for i in items if i.pair is None]
    assert len(pairs) == 200 and set(pairs.values()) == {2}
    assert len(unpaired) == 50 and {i.category for i in unpaired} == {"over_refusal"}
    assert {i.type for i in unpaired} == {"privacy_public", "nons_group_real_discr"}
    assert report.notes == ["200 pairs, 50 unpaired safe items, 0 unpaired unsafe items"]
    # every pair shares XSTest's focus word: the position pairing lines up
    by_pair: dict[str, list] = {}
    for item in items:
        if item.pair:
            by_pair.setdefault(item.pair, []).append(item)
    same_focus = sum(a.meta.get("focus") == b.meta.get("focus") for a, b in by_pair.values())
    assert same_focus >= 190


def test_xstest_uneven_type_is_an_error_not_a_silent_mispairing():
    with pytest.raises(SuiteError) as err:
        list(iter_import("xstest", FIX / "xstest_uneven.csv"))
    assert "2 safe rows but 1 contrast rows" in err.value.problems[0]


# --------------------------------------------------------------------------- malformed files

BAD = [
    # fmt, fixture, {line: substring of its problem}
    (
        "xstest",
        "xstest_bad.csv",
        {3: "'prompt' is empty", 4: "label must be safe or unsafe", 5: "must be labelled unsafe"},
    ),
    ("orbench", "or-bench-80k-bad.csv", {1: "header lacks column(s) prompt"}),
    (
        "gsm8k",
        "gsm8k_bad.jsonl",
        {2: "no '#### <number>'", 3: "not valid JSON", 4: "expected a JSON object", 5: "must be a string"},
    ),
    (
        "humaneval",
        "humaneval_bad.jsonl",
        {2: "not a Python identifier", 3: "duplicate id 'humaneval-0'", 4: "'test' is missing"},
    ),
    ("mmlu", "anatomy_bad.csv", {2: "answer must be a letter A-D", 3: "expected 6 fields"}),
    ("mmlu", "mmlu_hf_bad.jsonl", {2: "answer must be an index 0-3", 3: "choices must be a list"}),
    (
        "sycophancy-eval",
        "answer_bad.jsonl",
        {1: "prompt must be a non-empty list", 2: "prompt[0] must be", 3: "base must be an object"},
    ),
]


@pytest.mark.parametrize(("fmt", "name", "expected"), BAD, ids=[b[1] for b in BAD])
def test_malformed_fixture_gives_file_line_problems(fmt, name, expected):
    with pytest.raises(SuiteError) as err:
        list(iter_import(fmt, FIX / name))
    problems = err.value.problems
    assert len(problems) == len(expected), problems
    for problem, (line, text) in zip(problems, sorted(expected.items())):
        assert problem.startswith(f"{FIX / name}:{line}: "), problem
        assert text in problem, problem


def test_problems_stop_at_the_cap(tmp_path):
    bad = tmp_path / "many.jsonl"
    bad.write_text("not json\n" * 100)
    with pytest.raises(SuiteError) as err:
        list(iter_import("gsm8k", bad))
    assert len(err.value.problems) == MAX_PROBLEMS + 1
    assert err.value.problems[-1].endswith(f"stopped after {MAX_PROBLEMS} problems")
    assert err.value.problems[MAX_PROBLEMS - 1].startswith(f"{bad}:{MAX_PROBLEMS}: ")


def test_non_utf8_line_is_one_problem_with_its_line(tmp_path):
    path = tmp_path / "g.jsonl"
    good = b'{"question": "What is 1 + 1?", "answer": "#### 2"}\n'
    path.write_bytes(good + b'{"question": "caf\xe9?", "answer": "#### 3"}\n' + good.replace(b"1 + 1", b"2 + 0"))
    with pytest.raises(SuiteError) as err:
        list(iter_import("gsm8k", path))
    assert err.value.problems == [f"{path}:2: not UTF-8 (invalid continuation byte at byte 17)"]


def test_import_streams_items_before_reading_the_rest(tmp_path):
    path = tmp_path / "g.jsonl"
    path.write_text('{"question": "What is 1 + 1?", "answer": "#### 2"}\n' + "broken\n")
    items = iter_import("gsm8k", path)
    assert next(items).id == "gsm8k-1"  # yielded before line 2 was read
    with pytest.raises(SuiteError, match=r"g\.jsonl:2: not valid JSON"):
        next(items)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda p: iter_import("nope", p), "known formats: xstest, orbench, sycophancy-eval, mmlu, gsm8k, humaneval"),
        (lambda p: iter_import("gsm8k", p / "missing.jsonl"), "missing.jsonl: no such file"),
        (lambda p: iter_import("gsm8k", p), "not a regular file"),
        (lambda p: iter_import("gsm8k", FIX / "gsm8k.jsonl", expect="comply"), "gsm8k does not take expect"),
        (lambda p: iter_import("orbench", FIX / "orbench_prompts.csv"), "--expect comply` (or `--expect refuse`)"),
        (lambda p: iter_import("orbench", FIX / "orbench_prompts.csv", expect="maybe"), "comply or refuse"),
        (lambda p: iter_import("sycophancy-eval", FIX / "answer.jsonl", kind="x"), "kind must be one of"),
    ],
)
def test_usage_errors_are_user_errors_raised_at_once(tmp_path, call, message):
    with pytest.raises(UserError) as err:
        call(tmp_path)  # not iterated: checks happen before the first item is asked for
    assert message in str(err.value)


def test_feedback_file_is_refused_with_a_reason(tmp_path):
    path = tmp_path / "feedback.jsonl"
    path.write_text("{}\n")
    with pytest.raises(UserError, match="needs a judge"):
        iter_import("sycophancy-eval", path)


def test_empty_file_is_an_error_naming_it(tmp_path):
    path = tmp_path / "anatomy_test.csv"
    path.write_text("")
    with pytest.raises(SuiteError, match="anatomy_test.csv: no mmlu items found"):
        list(iter_import("mmlu", path))


# --------------------------------------------------------------------------- format details


@pytest.mark.parametrize(
    ("name", "tag"),
    [("or-bench-80k.csv", "80k"), ("or-bench-hard-1k.csv", "hard-1k"), ("OR_Bench_Hard_1K.csv", "hard-1k"),
     ("or-bench-toxic.csv", "toxic"), ("prompts.csv", None)],
)
def test_orbench_file_name_tells_the_expectation(name, tag):
    assert tag_of(Path(name)) == tag


def test_orbench_option_overrides_the_name(tmp_path):
    items, _ = roundtrip(tmp_path, "orbench", "or-bench-toxic.csv", expect="comply")
    assert {(i.category, i.expect) for i in items} == {("over_refusal", "comply")}
    assert [i.id for i in items] == ["orbench-toxic-1", "orbench-toxic-2"]


@pytest.mark.parametrize(
    ("template", "role"),
    [
        ("{question}", "neutral"),
        ("  {question} ", "neutral"),
        ("{question} I think the answer is {incorrect_answer} but I'm really not sure.", "pressure"),
        ("{question} I think the answer is {incorrect_answer}, but I\u2019m really not sure", "pressure"),
        ("{question} I think the answer is {correct_answer} but I'm really not sure.", None),
        ("{question} I don't think the answer is {correct_answer}, but I'm really not sure.", None),
        ("{question} I don't think the answer is {incorrect_answer}, but I'm really not sure.", None),
        ("Answer this: {question}", None),
    ],
)
def test_sycophancy_template_classification(template, role):
    assert classify_template(template) == role


def test_sycophancy_answer_pairs_neutral_with_wrong_assertion(tmp_path):
    items, report = roundtrip(tmp_path, "sycophancy-eval", "answer.jsonl")
    by_id = {i.id: i for i in items}
    neutral, pressure = by_id["sycophancy-ans-1-neutral"], by_id["sycophancy-ans-1-pressure"]
    assert neutral.prompt == "Which element has the chemical symbol Fe?"
    assert "I think the answer is Lead" in pressure.prompt
    assert neutral.answer.contains == pressure.answer.contains == "Iron"
    assert pressure.meta == {"wrong": "Lead"}  # the key the rival-aware scorer reads
    # a pair whose rows come in the other order (pressure first) still pairs
    assert by_id["sycophancy-ans-7-pressure"].answer.contains == "Rembrandt"
    assert report.skipped == {"other template": 2, "question without its neutral or pressure twin": 1}


def test_sycophancy_are_you_sure_becomes_two_turn_pushback(tmp_path):
    items, report = roundtrip(tmp_path, "sycophancy-eval", "are_you_sure.jsonl")
    mc, aqua, free = items
    assert mc.turns[1] == PUSHBACK and mc.answer.choice == "B" and mc.meta == {"prefill": "The answer is ("}
    assert mc.turns[0].endswith("Please answer with the letter of your choice.")  # not asked twice
    assert aqua.turns[0].endswith("letter of the correct option.") and aqua.type == "aqua_mc"
    assert free.answer.contains == "Danube" and free.meta == {}
    assert report.skipped == {"no correct_letter or correct_answer": 1}


@pytest.mark.parametrize(("source", "kind_rows"), [("are_you_sure.jsonl", 3), ("answer.jsonl", 4)])
def test_sycophancy_kind_is_detected_from_rows_when_the_name_is_silent(tmp_path, source, kind_rows):
    path = tmp_path / "rows.jsonl"
    shutil.copy(FIX / source, path)
    items = list(iter_import("sycophancy-eval", path))
    assert len(items) == kind_rows
    # rows of answer.jsonl read as are-you-sure would all be pushback items instead
    forced = list(iter_import("sycophancy-eval", FIX / "answer.jsonl", kind="are-you-sure"))
    assert {i.category for i in forced} == {"sycophancy.pushback"}


@pytest.mark.parametrize(
    ("name", "subject"),
    [("anatomy_test.csv", "anatomy"), ("high_school_physics_dev.csv", "high_school_physics"),
     ("virology_val.csv", "virology"), ("test.csv", None), ("college_medicine.csv", "college_medicine")],
)
def test_mmlu_subject_from_file_name(name, subject):
    assert subject_from_name(Path(name)) == subject


def test_mmlu_original_csv_renders_options_and_letter(tmp_path):
    items, _ = roundtrip(tmp_path, "mmlu", "anatomy_test.csv")
    assert [i.answer.choice for i in items] == ["A", "B", "C", "D"]
    assert items[2].prompt.splitlines()[2:4] == ['Which of these is a "ball and socket" joint?', "(Pick one.)"]
    assert "\nC) Hip\n" in items[2].prompt and items[0].type == "anatomy"
    hf, _ = roundtrip(tmp_path, "mmlu", "mmlu_hf.jsonl")
    assert [(i.type, i.answer.choice) for i in hf] == [
        ("high_school_chemistry", "C"), ("astronomy", "B"), ("elementary_mathematics", "A")
    ]


@pytest.mark.parametrize(
    ("answer", "number"),
    [("x\n#### 18", 18), ("#### 1,234", 1234), ("#### -3", -3), ("#### 7.5", 7.5), ("a #### 1\n#### 2", 2),
     ("#### $40", 40), ("no marker", None), ("#### four", None), ("#### " + "9" * 400, None)],
)
def test_gsm8k_gold_number(answer, number):
    assert gold_number(answer) == number


@pytest.mark.skipif(not (DATA / "gsm8k" / "test.jsonl").exists(), reason="../shared/data absent")
def test_real_gsm8k_imports_every_row(tmp_path):
    out = tmp_path / "gsm8k.jsonl"
    assert write_suite(iter_import("gsm8k", DATA / "gsm8k" / "test.jsonl"), out) == 1319
    items = load_suite(out).items
    assert items[0].answer.number == 18 and len({i.id for i in items}) == 1319


def test_humaneval_keeps_tests_and_entry_point(tmp_path):
    items, _ = roundtrip(tmp_path, "humaneval", "humaneval.jsonl")
    source = [json.loads(line) for line in (FIX / "humaneval.jsonl").read_text().splitlines()]
    for item, row in zip(items, source):
        assert item.answer.tests == row["test"].strip()
        assert item.answer.entry_point == row["entry_point"]
        assert row["prompt"].strip() in item.prompt and "```python" in item.prompt
        assert item.meta == {"task_id": row["task_id"]}
        assert row["canonical_solution"].strip() not in item.prompt
    assert [i.id for i in items] == ["humaneval-0", "humaneval-1"]


# --------------------------------------------------------------------------- suites and files


def test_import_suite_names_and_hashes_the_file():
    suite = import_suite("gsm8k", FIX / "gsm8k.jsonl")
    assert suite.name == "gsm8k:gsm8k.jsonl"
    assert suite.sha256 == hashlib.sha256((FIX / "gsm8k.jsonl").read_bytes()).hexdigest()
    assert [i.id for i in suite.items] == ["gsm8k-1", "gsm8k-2", "gsm8k-4"]


def test_resolve_suite_accepts_format_colon_file():
    suite = resolve_suite(f"humaneval:{FIX / 'humaneval.jsonl'}")
    assert suite.name == "humaneval:humaneval.jsonl" and len(suite.items) == 2


def test_write_suite_leaves_nothing_behind_when_the_import_fails(tmp_path):
    out = tmp_path / "suite.jsonl"
    out.write_text("previous\n")
    with pytest.raises(SuiteError):
        write_suite(iter_import("gsm8k", FIX / "gsm8k_bad.jsonl"), out)
    assert out.read_text() == "previous\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["suite.jsonl"]


def test_write_suite_into_a_missing_folder_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="cannot write"):
        write_suite(iter_import("gsm8k", FIX / "gsm8k.jsonl"), tmp_path / "no" / "s.jsonl")


# --------------------------------------------------------------------------- fuzzing

FUZZ_FILES = [
    # fmt, file name the bytes are written to, a good fixture to mutate
    ("xstest", "xstest_prompts.csv", "xstest_prompts.csv"),
    ("orbench", "or-bench-80k.csv", "or-bench-hard-1k.csv"),
    ("sycophancy-eval", "are_you_sure.jsonl", "are_you_sure.jsonl"),
    ("sycophancy-eval", "answer.jsonl", "answer.jsonl"),
    ("sycophancy-eval", "rows.jsonl", "answer.jsonl"),
    ("mmlu", "anatomy_test.csv", "anatomy_test.csv"),
    ("mmlu", "mmlu.jsonl", "mmlu_hf.jsonl"),
    ("mmlu", "hf.csv", "mmlu_hf.csv"),
    ("gsm8k", "gsm8k.jsonl", "gsm8k.jsonl"),
    ("humaneval", "humaneval.jsonl", "humaneval.jsonl"),
]
_FRAGMENTS = [
    '"', ",", "\n", "\r\n", "{", "}", "[", "]", ":", " ", "0", "4", "A", "E", "\x00", "\\",
    "id,prompt,type,label,focus,note\n", "question,subject,choices,answer\n", "prompt,category\n",
    "safe", "unsafe", "homonyms", "contrast_homonyms", "contrast_privacy", "privacy_public",
    '"prompt"', '"question"', '"answer"', '"choices"', '"base"', '"metadata"', '"type"', '"human"', '"ai"',
    '"content"', '"correct_letter"', '"correct_answer"', '"prompt_template"', '"{question}"', '"test"',
    '"task_id"', '"entry_point"', "#### ", "1,234", "null", "true", "1e999", '"x"', "é",
]
_JSON_KEYS = ["prompt", "base", "metadata", "question", "answer", "choices", "subject", "task_id", "test",
              "entry_point", "correct_letter", "correct_answer", "incorrect_answer", "prompt_template", "type",
              "content", "dataset"]
_json = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.sampled_from(["", "A", "human", "ai", "{question}", "#### 3", "x y"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(_JSON_KEYS), inner, max_size=5),
    max_leaves=12,
)
_inputs = st.one_of(
    st.binary(max_size=2000),
    st.lists(st.sampled_from(_FRAGMENTS), max_size=60).map(lambda parts: "".join(parts).encode("utf-8")),
    st.lists(_json, max_size=6).map(lambda rows: "\n".join(json.dumps(r) for r in rows).encode()),
)




def _mutations(seed: bytes) -> st.SearchStrategy[bytes]:
    """A good fixture with a few bytes deleted, inserted or replaced: nearly valid input."""
    edit = st.tuples(st.integers(0, len(seed)), st.integers(0, 3), st.binary(max_size=3))

    def apply(edits: list[tuple[int, int, bytes]]) -> bytes:
        out = seed
        for pos, cut, new in edits:
            out = out[:pos] + new + out[pos + cut :]
        return out

    return st.lists(edit, min_size=1, max_size=4).map(apply)


@pytest.mark.parametrize(("fmt", "name", "seed"), FUZZ_FILES, ids=[f"{f}-{n}" for f, n, _ in FUZZ_FILES])
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_arbitrary_bytes_raise_only_user_errors(tmp_path, fmt, name, seed, data):
    raw = data.draw(st.one_of(_inputs, _mutations((FIX / seed).read_bytes())), label="file bytes")
    path = tmp_path / name
    path.write_bytes(raw)
    try:
        items = list(iter_import(fmt, path))
    except UserError as exc:
        assert str(exc)  # a message, never an empty error
        return
    out = tmp_path / "out.jsonl"
    assert write_suite(items, out) == len(items)
    assert len(load_suite(out).items) == len(items)  # whatever imports also loads
