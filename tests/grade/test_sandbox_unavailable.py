"""A machine without any boundary: nothing runs, the user is told why and how to get one.

The child process below installs the same kind of seccomp filter a default Docker container
has (no ``unshare``, no ``clone`` with namespace flags), so user namespaces are really
unavailable to it, as root and as uid 65534. With no container runtime on PATH the choice is
``none``: ``run_tests`` runs nothing, ``score_code`` leaves the item unscored, and only an
explicit ``sandbox="unsafe"`` executes. With a working runtime on PATH ``auto`` picks it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from test_sandbox_oci import fake_runtime

WORKTREE = Path(__file__).resolve().parents[2]
SYSTEM_PYTHON = "/usr/bin/python3"

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="seccomp is Linux-only")

LOCKED_DOWN = """
import json, sys
from taxcheck.grade import sandbox_kernel as kernel
kernel.prctl(kernel.PR_SET_NO_NEW_PRIVS, 1)
kernel.seccomp(deny_processes=False)  # what a default Docker profile does to unshare and clone
from taxcheck.grade.sandbox import choose, run_tests
from taxcheck.grade.code import score_code
choice = choose()
good = "```python\\ndef f():\\n    open(%r, 'w')\\n    return 1\\n```" % sys.argv[1]
verdict = score_code(good, "assert f() == 1", "f")
nothing = score_code("no code here", "assert f() == 1", "f")
direct = run_tests("def f():\\n    return 1\\n", "assert f() == 1", "f")
unsafe = run_tests("def f():\\n    return 1\\n", "assert f() == 1", "f", sandbox="unsafe")
print(json.dumps({
    "choice": [choice.tier, choice.available, choice.why],
    "namespaces": choose("namespaces").why,
    "verdict": [verdict.ok, verdict.reason, verdict.isolation],
    "nothing": nothing.ok,
    "direct": [direct.executed, direct.passed, direct.reason, direct.isolation],
    "unsafe": [unsafe.executed, unsafe.passed, unsafe.isolation],
}))
"""


def run_locked_down(user: str, path: str, marker: Path) -> dict:
    """LOCKED_DOWN's findings; ``marker`` is the file its solution writes if it ever runs."""
    argv = [os.path.realpath(sys.executable), "-c", LOCKED_DOWN, str(marker)]
    if user == "user":
        if os.geteuid() != 0:
            pytest.skip("already an ordinary user: the root case is this case")
        if shutil.which("setpriv") is None or not os.access(SYSTEM_PYTHON, os.X_OK):
            pytest.skip("needs setpriv and /usr/bin/python3")
        argv = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", SYSTEM_PYTHON, "-c", LOCKED_DOWN, str(marker)]
    env = {"PATH": path, "PYTHONPATH": str(WORKTREE), "HOME": "/tmp", "LANG": "C.UTF-8"}
    proc = subprocess.run(argv, env=env, cwd="/tmp", capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


@pytest.mark.parametrize("user", ["root", "user"])
def test_without_a_boundary_nothing_runs(user: str, tmp_path: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    marker_dir = Path(tempfile.mkdtemp(prefix="taxcheck-ran-"))
    os.chmod(marker_dir, 0o777)  # writable by the ordinary user too: only not running keeps it empty
    try:
        out = run_locked_down(user, f"{empty}:/usr/bin:/bin", marker_dir / "ran")
        assert list(marker_dir.iterdir()) == []
    finally:
        shutil.rmtree(marker_dir)
    tier, available, why = out["choice"]
    assert (tier, available) == ("none", False)
    assert why.startswith("no sandbox available (Linux namespaces are not usable here (sandbox setup failed: unshare")
    assert "--unsafe-run-code" in why and "--sandbox docker" in why
    assert out["namespaces"].startswith("Linux namespaces are not usable here")
    ok, reason, isolation = out["verdict"]
    assert (ok, isolation) == (None, "none") and reason.startswith("not executed: no sandbox available")
    assert out["nothing"] is None
    executed, passed, reason, isolation = out["direct"]
    assert (executed, passed, isolation) == (False, False, "none") and reason.startswith("not executed: ")
    assert out["unsafe"] == [True, True, "unsafe"]


def test_auto_falls_back_to_a_working_runtime(tmp_path: Path) -> None:
    fake_runtime(tmp_path / "bin", "docker", "emulate")
    out = run_locked_down("root", f"{tmp_path / 'bin'}:/usr/bin:/bin", tmp_path / "ran")
    assert out["choice"][:2] == ["docker", True]
    assert out["verdict"][0] is True and out["verdict"][2] == "docker"
    assert (tmp_path / "ran").exists(), "the emulated container runs on this host"


def test_auto_reports_every_boundary_it_tried(tmp_path: Path) -> None:
    fake_runtime(tmp_path / "bin", "docker", "broken")
    out = run_locked_down("root", f"{tmp_path / 'bin'}:/usr/bin:/bin", tmp_path / "ran")
    tier, available, why = out["choice"]
    assert (tier, available) == ("none", False)
    assert "Linux namespaces are not usable here" in why and "docker is installed but cannot run the sandbox" in why


CODE_ITEMS = [
    {"id": f"add-{i}", "category": "capability.code", "prompt": "Write add(a, b).", "expect": "answer",
     "answer": {"tests": "assert add(1, 2) == 3\nassert add(-1, 1) == 0", "entry_point": "add"}}
    for i in range(3)
] + [{"id": "six-by-seven", "category": "capability.math", "prompt": "What is 6 times 7?", "expect": "answer", "answer": {"number": 42}}]


def _answer(request) -> str:  # noqa: ANN001 - a fake_api request
    return "```python\ndef add(a, b):\n    return a + b\n```" if "add" in request.last_user_text() else "42"


@pytest.mark.parametrize("available", [True, False])
def test_a_run_without_a_sandbox_leaves_code_items_unscored(available: bool, taxcheck_cli, fake_api, tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    """End to end: with no boundary the code items leave n (never counted wrong); math is untouched."""
    from taxcheck.grade import sandbox
    from taxcheck.grade.sandbox import SandboxChoice

    if not available:
        monkeypatch.setattr(sandbox, "choose", lambda requested="auto": SandboxChoice("none", False, "no sandbox here (test)"))
    fake_api.respond(_answer)
    suite = tmp_path / "code.jsonl"
    suite.write_text("".join(json.dumps(i) + "\n" for i in CODE_ITEMS))
    res = taxcheck_cli("run", "-m", "openai:A", "-s", suite, "-f", "json", "--no-cache")
    assert res.code == 0, res.stderr
    rows = {r["dimension"]: r for r in res.json()["rows"]}
    assert rows["capability.math"]["scores"]["openai:A"]["n"] == 1
    code = rows["capability.code"]["scores"]["openai:A"]
    assert (code["n"], code["value"]) == ((3, 1.0) if available else (0, None))
    summary = res.json()["sandbox"]
    if available:
        assert summary["tier"] in ("root-ns", "userns") and sum(summary["verdicts"].values()) == 3
    else:
        assert summary == {"requested": "auto", "tier": "none", "why": "no sandbox here (test)", "verdicts": {}, "not_graded": 3}
        assert res.stderr.count("capability.code will not be graded: no sandbox here (test)") == 1


def test_no_sandbox_stores_nothing_so_a_later_sandbox_grades_and_no_verdict_is_hidden(taxcheck_cli, fake_api, tmp_path: Path,
                                                                                       monkeypatch) -> None:  # noqa: ANN001
    from taxcheck.grade import sandbox
    from taxcheck.grade.sandbox import SandboxChoice

    fake_api.respond(_answer)
    suite = tmp_path / "code.jsonl"
    suite.write_text("".join(json.dumps(i) + "\n" for i in CODE_ITEMS))
    out = tmp_path / "run.jsonl"
    args = ("run", "-m", "openai:A", "-s", suite, "-f", "json", "--no-cache", "-o", out)

    def code_n(res) -> int:  # noqa: ANN001
        return next(r for r in res.json()["rows"] if r["dimension"] == "capability.code")["scores"]["openai:A"]["n"]

    with monkeypatch.context() as m:
        m.setattr(sandbox, "choose", lambda requested="auto": SandboxChoice("none", False, "no sandbox here (test)"))
        first = taxcheck_cli(*args)
    assert first.code == 0 and code_n(first) == 0
    assert '"type":"code"' not in out.read_text()  # nothing ran, so nothing is stored
    sent = fake_api.count()
    again = taxcheck_cli(*args)  # a sandbox now: the resumed run grades the code, sending nothing
    assert again.code == 0 and code_n(again) == 3 and fake_api.count() == sent
    none = taxcheck_cli("regrade", out, "--rerun-code", "--sandbox", "none", "-f", "json")
    assert none.code == 0 and code_n(none) == 3  # the executed verdicts stay in force
