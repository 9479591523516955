"""The run file: append-only JSONL that survives interruption (torn lines) and odd text."""

from __future__ import annotations

import json

import pytest

from taxcheck.errors import UserError
from taxcheck.runfile import RunWriter, dumps, read_run

HEADER = {"type": "header", "format": 1, "taxcheck_version": "0", "run_id": "r1", "created": "now", "command": ["taxcheck"],
          "models": ["openai:a"], "suites": [{"name": "s", "path": "s", "sha256": "x", "items": 1}], "params": {}}
ITEM = {"type": "item", "item": {"id": "i1", "category": "dual_use", "prompt": "p", "expect": "comply"}}


def call(text="ok", error=None, item="i1", sample=0):
    return {"type": "call", "model": "openai:a", "item": item, "sample": sample, "turn": 0, "text": text, "error": error}


def write(path, *records):
    w = RunWriter(path)
    w.open()
    for r in records:
        w.write(r)
    w.close()


def test_roundtrip_and_later_success_supersedes_failure(tmp_path):
    p = tmp_path / "r.jsonl"
    write(p, HEADER, ITEM, call(None, {"kind": "http_500", "message": "x"}), call("fine"), call(None, {"kind": "x", "message": "late"}))
    data = read_run(p)
    assert data.header.run_id == "r1" and list(data.items) == ["i1"]
    rec = data.calls[("openai:a", "i1", 0, 0)]
    assert rec.ok and rec.text == "fine"  # a failure after a success never hides it


@pytest.mark.parametrize("tail", [b'{"type":"call","mo', b'{"type": "call", "model": "openai:a", "item": "i1", "sample": 1, "turn": 0, "text": "x"'])
def test_torn_last_line_dropped_with_warning_and_cut_by_writer(tmp_path, tail):
    p = tmp_path / "r.jsonl"
    write(p, HEADER, ITEM, call())
    with open(p, "ab") as fh:
        fh.write(tail)
    warnings: list[str] = []
    data = read_run(p, warn=warnings.append)
    assert data.dropped_torn_line and len(data.calls) == 1
    assert len(warnings) == 1 and f"{p}:4" in warnings[0] and "torn" in warnings[0]
    write(p, call(sample=2))  # the writer cuts the torn tail before appending
    lines = p.read_bytes().split(b"\n")
    assert lines[-1] == b"" and all(json.loads(line) for line in lines[:-1])
    assert len(read_run(p).calls) == 2


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "empty run file"),
        (b'{"type":"call","model":"m","item":"i"}\n', "first line must be the run header"),
        (b"not json at all\n" + json.dumps(HEADER).encode() + b"\n", ":1: not a taxcheck run record"),
        (json.dumps(HEADER).encode() + b"\n" + json.dumps(HEADER).encode() + b"\n", "a second header"),
        (json.dumps(HEADER).encode() + b"\n{broken\n" + json.dumps(ITEM).encode() + b"\n", ":2: not a taxcheck run record"),
        (json.dumps({**HEADER, "format": 99}).encode() + b"\n", "newer taxcheck"),
        (json.dumps(HEADER).encode() + b'\n{"type":"mystery"}\n{"type":"item"}\n', ":2:"),
    ],
)
def test_bad_run_files_name_file_and_line(tmp_path, content, message):
    p = tmp_path / "r.jsonl"
    p.write_bytes(content)
    with pytest.raises(UserError) as info:
        read_run(p)
    assert message in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(UserError, match="no such run file"):
        read_run(tmp_path / "nope.jsonl")


@pytest.mark.parametrize("text", ["a\x00b", "שלום \u202e", "😀", "\ud800 lone", "\udfff\ud800", "line\nbreak\u2028", '"quote" \\ back'])
def test_odd_text_survives_exactly(tmp_path, text):
    p = tmp_path / "r.jsonl"
    write(p, HEADER, ITEM, call(text))
    raw = p.read_bytes()
    raw.decode("utf-8")  # always valid UTF-8 on disk
    assert raw.count(b"\n") == 3  # one record per line, whatever the text holds
    assert read_run(p).calls[("openai:a", "i1", 0, 0)].text == text


def test_dumps_is_one_line():
    assert "\n" not in dumps({"t": "a\nb\u2028c"})


HOLDER = """
import sys, time
sys.path.insert(0, sys.argv[2])
from pathlib import Path
from taxcheck.runfile import RunWriter
w = RunWriter(Path(sys.argv[1])); w.open()
print("locked", flush=True)
time.sleep(60)
"""


def _hold(path, tmp_path):
    """Another process with the run file open for writing, as a second taxcheck would have it."""
    import subprocess
    import sys
    from pathlib import Path

    import taxcheck

    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(path), str(Path(taxcheck.__file__).parent.parent)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_one_writer_at_a_time_and_the_second_is_told_why(tmp_path):
    path = tmp_path / "run.jsonl"
    first = RunWriter(path)
    first.open()
    with pytest.raises(UserError, match=r"run.jsonl: another taxcheck process is writing this run file.*-o"):
        RunWriter(path).open()
    first.write(HEADER)
    first.close()
    write(path, ITEM)  # free again once the first is closed
    assert [r["type"] for r in map(json.loads, path.read_text().splitlines())] == ["header", "item"]


def test_a_writer_killed_outright_leaves_no_lock_behind(tmp_path):
    import signal

    path = tmp_path / "run.jsonl"
    proc = _hold(path, tmp_path)
    with pytest.raises(UserError):
        RunWriter(path).open()
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    proc.stdout.close()
    write(path, HEADER)  # the kernel dropped the lock with the process


def test_a_second_run_on_a_busy_run_file_sends_nothing(tmp_path, taxcheck_cli, fake_api, small_suite):
    out = tmp_path / "shared.jsonl"
    proc = _hold(out, tmp_path)
    try:
        res = taxcheck_cli("run", "-m", "openai:A", "-s", small_suite, "-o", out)
    finally:
        proc.kill()
        proc.wait(timeout=10)
        proc.stdout.close()
    assert res.code == 2 and "another taxcheck process is writing this run file" in res.stderr
    assert fake_api.count() == 0
    assert taxcheck_cli("run", "-m", "openai:A", "-s", small_suite, "-o", out).code == 0  # and it goes once free
