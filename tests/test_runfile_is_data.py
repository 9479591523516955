"""Run files are data (issue 11 §2): reading one never runs the code it holds.

A run file whose code answers would write a marker and spawn a process is reported in every
format, diffed and regraded under an audit hook that records every process taxcheck starts:
none is, and the code dimension still shows, from the verdicts ``run`` stored. Only
``regrade --rerun-code`` runs the code again, and then inside the sandbox."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from taxcheck.runfile import RunWriter

HOSTILE_CODE = """```python
import os, subprocess
open({marker!r}, "w").write("the code in the run file ran")
subprocess.Popen(["sleep", "30"])
def add(a, b):
    return a + b
```"""

# Runs taxcheck's CLI with an audit hook that records every attempt to start a process.
WATCHER = r"""
import json, sys
events = []
def hook(event, args):
    if event == "subprocess.Popen":
        argv = args[1] if len(args) > 1 and isinstance(args[1], (list, tuple)) else [args[0]]
        if str(argv[0]).rsplit("/", 1)[-1] != "fc-list":  # matplotlib listing fonts for a fresh cache: not run-file code
            events.append(f"{event} {argv[0]}")
    elif event in ("os.fork", "os.forkpty", "os.posix_spawn", "os.exec", "os.system", "os.spawn"):
        events.append(event)
sys.addaudithook(hook)
from taxcheck.cli import main
try:
    sys.argv = ["taxcheck"] + sys.argv[2:]
    main()
except SystemExit as exc:
    code = exc.code
else:
    code = 0
with open(EVENTS, "w") as fh:
    json.dump(events, fh)
raise SystemExit(code)
"""


def _run_file(path: Path, marker: Path, model: str = "openai:A") -> Path:
    w = RunWriter(path)
    w.open()
    w.write({"type": "header", "taxcheck_version": "0.1.0", "run_id": "r1", "created": "2026-12-01", "command": ["taxcheck"],
             "models": [model], "suites": [{"name": "s", "path": "s.jsonl", "sha256": "a" * 64, "items": 2}],
             "params": {"temperature": 0.0, "max_tokens": 512, "samples": 1},
             "sandbox": {"requested": "auto", "tier": "root-ns", "why": ""}})
    for i in range(2):
        w.write({"type": "item", "item": {"id": f"add-{i}", "category": "capability.code", "prompt": "Write add(a, b).",
                                          "expect": "answer", "answer": {"tests": "assert add(1, 2) == 3", "entry_point": "add"}}})
        w.write({"type": "call", "model": model, "item": f"add-{i}", "text": HOSTILE_CODE.format(marker=str(marker))})
        w.write({"type": "code", "model": model, "item": f"add-{i}", "passed": i == 0, "reason": "stored", "isolation": "root-ns"})
    w.close()
    return path


def _watched(args: list[str], tmp_path: Path) -> tuple[subprocess.CompletedProcess, list[str]]:
    events = tmp_path / f"events-{len(list(tmp_path.glob('events-*')))}.json"
    script = WATCHER.replace("EVENTS", repr(str(events)))
    env = {**os.environ, "NO_COLOR": "1"}
    done = subprocess.run([sys.executable, "-c", script, "x", *map(str, args)], capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=120)
    return done, json.loads(events.read_text())


@pytest.fixture
def hostile(tmp_path):
    marker = tmp_path / "MARKER"
    return _run_file(tmp_path / "run.jsonl", marker), marker


@pytest.mark.parametrize("fmt", ["table", "json", "markdown", "csv", "html"])
def test_report_starts_no_process(hostile, tmp_path, fmt):
    run, marker = hostile
    done, events = _watched(["report", run, "-f", fmt, "-o", tmp_path / f"out.{fmt}"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert events == [] and not marker.exists()
    out = (tmp_path / f"out.{fmt}").read_text()
    assert "capability.code" in out
    if fmt == "json":
        row = next(r for r in json.loads(out)["rows"] if r["dimension"] == "capability.code")
        assert row["scores"]["openai:A"]["n"] == 2 and row["scores"]["openai:A"]["value"] == 0.5  # the stored verdicts


def test_diff_and_regrade_start_no_process(hostile, tmp_path):
    run, marker = hostile
    other = _run_file(tmp_path / "other.jsonl", marker)
    done, events = _watched(["diff", run, other, "-f", "json"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert events == []
    done, events = _watched(["regrade", run, "-f", "json"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert events == [] and not marker.exists()
    assert json.loads(done.stdout)["sandbox"]["verdicts"] == {"root-ns": 2}


def test_only_rerun_code_runs_it_and_inside_the_sandbox(hostile, tmp_path):
    run, marker = hostile
    done, events = _watched(["regrade", run, "--rerun-code", "-f", "json"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert events, "the watcher sees processes when code does run (so its silence above means something)"
    assert not marker.exists()  # the sandbox's filesystem is not the host's
    lines = [json.loads(line) for line in run.read_text().splitlines()]
    fresh = [r for r in lines if r["type"] == "code" and r["reason"] != "stored"]
    assert len(fresh) == 2 and {r["isolation"] for r in fresh} <= {"root-ns", "userns"}
