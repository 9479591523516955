"""The 40 code tasks are sound: valid items, and tests that tell a right solution from a wrong one.

Every reference solution must pass its own tests in the sandbox (or the task is unsolvable)
and a do-nothing solution must fail them (or the task measures nothing), in the tier this
process gets (``root-ns`` as root, as in CI) and, dropped to uid 65534, in ``userns``.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from taxcheck.grade.sandbox import SandboxResult, choose, run_tests
from taxcheck.suites.format import SuiteItem, load_suite

WORKTREE = Path(__file__).resolve().parents[2]
CODE_PART = WORKTREE / "prompts" / "parts" / "code.jsonl"
ENDING = "Return only the code in a Python code block."
# Run by uid 65534 with the system interpreter: every reference and a wrong answer per task.
AS_USER = """
import json, sys
from concurrent.futures import ThreadPoolExecutor
from taxcheck.grade.sandbox import run_tests
tasks = json.load(sys.stdin)
def both(t):
    wrong = "def %s(*args, **kwargs):\\n    return None\\n" % t["entry"]
    ref, bad = run_tests(t["reference"], t["tests"], t["entry"]), run_tests(wrong, t["tests"], t["entry"])
    return t["id"], [ref.passed, ref.reason, ref.isolation, bad.passed, bad.reason]
with ThreadPoolExecutor(4) as pool:
    print(json.dumps(dict(pool.map(both, tasks))))
"""


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
    tier = choose().tier
    assert tier in ("userns", "root-ns"), "CI's machines have namespaces: the strong tier must run"
    assert {ref.isolation for ref, _ in sandbox_runs.values()} == {tier}


def test_a_trivially_wrong_solution_fails_every_task(sandbox_runs) -> None:  # noqa: ANN001
    passing = [i for i, (_, wrong) in sandbox_runs.items() if wrong.passed]
    assert passing == []
    for item_id, (_, wrong) in sandbox_runs.items():
        assert wrong.reason.startswith(("assertion failed", "crash:")), (item_id, wrong.reason)


def test_references_pass_and_wrong_answers_fail_for_an_ordinary_user(items: tuple[SuiteItem, ...]) -> None:
    if os.geteuid() != 0:
        pytest.skip("already an ordinary user: the tests above are this case")
    if not sys.platform.startswith("linux") or shutil.which("setpriv") is None or not os.access("/usr/bin/python3", os.X_OK):
        pytest.skip("needs Linux, setpriv and /usr/bin/python3")
    tasks = [{"id": i.id, "reference": str(i.meta["reference"]), "tests": i.answer.tests, "entry": i.answer.entry_point} for i in items]
    proc = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/python3", "-c", AS_USER],
        input=json.dumps(tasks), env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(WORKTREE), "HOME": "/tmp"},
        cwd="/tmp", capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout)
    assert len(out) == len(items)
    assert {k: v[1] for k, v in out.items() if not v[0]} == {}
    assert {v[2] for v in out.values()} == {"userns"}
    assert [k for k, v in out.items() if v[3]] == []
    assert all(v[4].startswith(("assertion failed", "crash:")) for v in out.values()), out
