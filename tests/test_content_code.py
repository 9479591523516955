"""The 40 code tasks are sound: valid items, and tests that tell a right solution from a wrong one.

Every reference solution must pass its own tests in the sandbox (or the task is unsolvable)
and a do-nothing solution must fail them (or the task measures nothing).
"""

from __future__ import annotations

import ast
import re
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from taxcheck.sandbox import SandboxResult, run_tests
from taxcheck.suite import SuiteItem, load_suite

CODE_PART = Path(__file__).resolve().parent.parent / "prompts" / "parts" / "code.jsonl"
ENDING = "Return only the code in a Python code block."


@pytest.fixture(scope="module")
def items() -> tuple[SuiteItem, ...]:
    return load_suite(CODE_PART).items


@pytest.fixture(scope="module")
def sandbox_runs(items: tuple[SuiteItem, ...]) -> dict[str, tuple[SandboxResult, SandboxResult]]:
    """Reference and trivially wrong solution of every task, four runs at a time."""

    def both(item: SuiteItem) -> tuple[str, tuple[SandboxResult, SandboxResult]]:
        assert item.answer is not None and item.answer.tests and item.answer.entry_point
        tests, entry = item.answer.tests, item.answer.entry_point
        reference = str(item.meta["reference"])
        wrong = f"def {entry}(*args, **kwargs):\n    return None\n"
        return item.id, (run_tests(reference, tests, entry), run_tests(wrong, tests, entry))

    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(pool.map(both, items))


def test_forty_tasks_with_unique_ids_and_entry_points(items: tuple[SuiteItem, ...]) -> None:
    assert len(items) == 40
    assert [i.id for i in items] == [f"code-{n:02d}" for n in range(1, 41)]
    entries = [i.answer.entry_point for i in items if i.answer]
    assert len(set(entries)) == len(entries)


def test_items_are_well_formed(items: tuple[SuiteItem, ...]) -> None:
    for item in items:
        assert item.category == "capability.code" and item.expect == "answer", item.id
        assert item.type, item.id
        assert isinstance(item.prompt, str) and item.prompt.rstrip().endswith(ENDING), item.id
        entry = item.answer.entry_point
        assert f"`{entry}(" in item.prompt, f"{item.id}: the prompt must name the function and its signature"
        reference = item.meta.get("reference")
        assert isinstance(reference, str), item.id
        assert any(
            isinstance(n, ast.FunctionDef) and n.name == entry for n in ast.parse(reference).body
        ), f"{item.id}: the reference does not define {entry}"


def test_every_task_has_at_least_five_asserts(items: tuple[SuiteItem, ...]) -> None:
    for item in items:
        tree = ast.parse(item.answer.tests)
        asserts = sum(isinstance(n, ast.Assert) for n in ast.walk(tree))
        assert asserts >= 5, f"{item.id}: {asserts} asserts"
        assert item.answer.entry_point in item.answer.tests, item.id


def test_topics_are_spread(items: tuple[SuiteItem, ...]) -> None:
    types = Counter(i.type for i in items)
    assert len(types) >= 6
    assert max(types.values()) <= 12, types


def test_prompts_are_distinct(items: tuple[SuiteItem, ...]) -> None:
    norm = [re.sub(r"\s+", " ", i.text_of_prompt().lower()).strip() for i in items]
    assert len(set(norm)) == len(norm)


def test_every_reference_passes(items: tuple[SuiteItem, ...], sandbox_runs) -> None:  # noqa: ANN001
    failing = {i: ref.reason for i, (ref, _) in sandbox_runs.items() if not ref.passed}
    assert failing == {}
    assert len(sandbox_runs) == len(items)


def test_a_trivially_wrong_solution_fails_every_task(sandbox_runs) -> None:  # noqa: ANN001
    passing = [i for i, (_, wrong) in sandbox_runs.items() if wrong.passed]
    assert passing == []
    for item_id, (_, wrong) in sandbox_runs.items():
        assert wrong.reason.startswith(("assertion failed", "crash:")), (item_id, wrong.reason)
