"""The one JSONL layer (``taxcheck.jsonl``, on the jsonlines library): byte-for-byte formats,
one write per record, line numbers as in the file."""

from __future__ import annotations

import json

import pytest

from taxcheck import jsonl
from taxcheck.runfile import RunWriter
from taxcheck.suites.format import SuiteItem, parse_lines
from taxcheck.suites.importers import write_suite

RECORDS = [
    {"type": "call", "model": "openai:a", "text": "Café ☕\nline two \u2028 sep", "n": 1.5, "ok": True, "none": None},
    {"type": "call", "text": "a lone surrogate \ud800 survives", "nested": {"k": [1, 2, {"z": "é"}]}},
    {"type": "verdict", "reason": 'quotes " and \\ backslashes'},
]


def _before(record) -> bytes:
    """The run file's line format as taxcheck wrote it before the layer existed."""
    return (json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8", errors="backslashreplace")


def test_run_file_lines_are_byte_for_byte_the_format(tmp_path):
    path = tmp_path / "run.jsonl"
    w = RunWriter(path)
    w.open()
    for r in RECORDS:
        w.write(r)
    w.close()
    assert path.read_bytes() == b"".join(_before(r) for r in RECORDS)
    # lines_of, not str.splitlines: a record may hold U+2028, which splitlines would cut at
    back = [line.value for line in jsonl.read_lines(jsonl.lines_of(path.read_text(encoding="utf-8")))]
    assert back == RECORDS  # the surrogate escape reads back as the same string


def test_one_os_write_per_record(tmp_path, monkeypatch):
    writes = []
    real = jsonl.os.write
    monkeypatch.setattr(jsonl.os, "write", lambda fd, data: writes.append(bytes(data)) or real(fd, data))
    w = RunWriter(tmp_path / "run.jsonl")
    w.open()
    for r in RECORDS:
        w.write(r)
    w.close()
    assert writes == [_before(r) for r in RECORDS]  # a kill can tear at most the record being written


def test_suite_files_keep_their_format(tmp_path):
    items = [SuiteItem.model_validate({"id": "a", "category": "over_refusal", "prompt": "Ça va ?", "expect": "comply"}),
             SuiteItem.model_validate({"id": "b", "category": "capability.math", "prompt": "2+2?", "expect": "answer",
                                       "answer": {"number": 4}})]
    out = tmp_path / "s.jsonl"
    assert write_suite(items, out) == 2
    assert out.read_text(encoding="utf-8") == "".join(i.model_dump_json(exclude_none=True, exclude_defaults=True) + "\n" for i in items)
    again, problems = parse_lines(out.read_bytes().splitlines(), str(out))
    assert again == items and not problems


def test_line_numbers_are_the_files():
    lines = ['{"a": 1}', "", "   ", "// a comment the caller blanked", '{"b": ', "null", '[' * 50_000 + ']' * 50_000, '{"c": 3}']
    lines[3] = ""
    got = [(line.lineno, line.value, line.error) for line in jsonl.read_lines(lines)]
    assert got == [(1, {"a": 1}, None), (5, None, "not valid JSON (Expecting value)"), (6, None, None),
                   (7, None, "nested too deeply"), (8, {"c": 3}, None)]


@pytest.mark.parametrize("text, lines", [("a\nb\n", ["a", "b"]), ("a\nb", ["a", "b"]), ("", [""]), ("\n", [""])])
def test_lines_of(text, lines):
    assert jsonl.lines_of(text) == lines
