"""A run file is untrusted input (issue 11 §2): a hostile or broken one is one ``file:line``
message and exit 2 from every command that reads it, never a traceback, a hang or a crash."""

from __future__ import annotations

import json

import pytest


def _with_header(src, tmp_path, **changes):
    lines = src.read_text(encoding="utf-8").splitlines()
    header = json.loads(lines[0])
    for key, value in changes.items():
        if key.startswith("params."):
            header["params"][key.split(".", 1)[1]] = value
        else:
            header[key] = value
    out = tmp_path / "hostile.jsonl"
    out.write_text("\n".join([json.dumps(header)] + lines[1:]) + "\n", encoding="utf-8")
    return out


@pytest.mark.parametrize(
    "changes, needle",
    [
        ({"params.samples": 1_000_000_000}, "params.samples"),
        ({"params.samples": "3"}, "params.samples"),
        ({"params.temperature": "hot"}, "params.temperature"),
        ({"params.max_tokens": 1.5}, "params.max_tokens"),
        ({"prices": [["openai:*", "cheap", 1]]}, "prices row 1"),
        ({"prices": [["openai:*", -1, 1]]}, "prices row 1"),
        ({"baseline": "openai:Z"}, "not among the models"),
        ({"models": ["openai:A", "openai:A"], "baseline": None}, "listed twice"),
    ],
)
@pytest.mark.parametrize("command", ["report", "diff"])
def test_a_hostile_header_is_one_line(taxcheck_cli, finished_run, tmp_path, changes, needle, command):
    bad = _with_header(finished_run, tmp_path, **changes)
    args = ("report", bad) if command == "report" else ("diff", finished_run, bad)
    res = taxcheck_cli(*args)
    assert res.code == 2, res.stderr
    assert f"{bad}:1:" in res.stderr and needle in res.stderr and "Traceback" not in res.stderr


def test_deeply_nested_json_is_one_line(taxcheck_cli, finished_run, tmp_path):
    bad = tmp_path / "nested.jsonl"
    bad.write_text(finished_run.read_text().splitlines()[0] + "\n" + "[" * 100_000 + "]" * 100_000 + "\n{}\n")
    res = taxcheck_cli("report", bad)
    assert res.code == 2 and f"{bad}:2:" in res.stderr and "nested too deeply" in res.stderr


def test_an_endless_line_is_refused_without_reading_it_whole(taxcheck_cli, finished_run, tmp_path, monkeypatch):
    import taxcheck.runfile as runfile

    monkeypatch.setattr(runfile, "MAX_LINE_BYTES", 10_000)
    bad = tmp_path / "long.jsonl"
    bad.write_text(finished_run.read_text().splitlines()[0] + "\n" + '{"type": "call", "text": "' + "x" * 50_000 + '"}\n')
    res = taxcheck_cli("report", bad)
    assert res.code == 2 and f"{bad}:2:" in res.stderr and "over 10,000 bytes" in res.stderr


def test_regrade_refuses_a_hostile_file_before_any_request(taxcheck_cli, fake_api, finished_run, tmp_path):
    bad = _with_header(finished_run, tmp_path, **{"params.samples": 10**9})
    before = fake_api.count()
    res = taxcheck_cli("regrade", bad, "--judge", "openai:J")
    assert res.code == 2 and "params.samples" in res.stderr and fake_api.count() == before
