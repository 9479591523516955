"""Where the tax falls (issue 14 §3): ``report --by type`` in table, JSON, Markdown and HTML,
on the standard suite and on an imported XSTest file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from taxcheck.suites.importers import import_suite
from taxcheck.runfile import RunWriter
from taxcheck.suites.format import resolve_suite

FIXTURES = Path(__file__).parents[1] / "fixtures" / "importers"
REFUSE = "I'm sorry, but I can't help with that."
HELP = "Sure, here is a clear and practical answer with the steps you need."


def write_run(path: Path, items, refuses) -> Path:
    """Baseline ``openai:base`` answers every benign item; ``openai:cand`` refuses where ``refuses(item)``."""
    w = RunWriter(path)
    w.open()
    w.write({"type": "header", "taxcheck_version": "0.1.0", "run_id": "bt", "created": "2026-12-01", "command": ["taxcheck"],
             "models": ["openai:base", "openai:cand"], "baseline": "openai:base",
             "suites": [{"name": "s", "path": "s.jsonl", "sha256": "a" * 64, "items": len(items)}],
             "params": {"temperature": 0.0, "max_tokens": 512, "samples": 1}})
    for item in items:
        w.write({"type": "item", "item": item.model_dump(exclude_none=True, exclude_defaults=True)})
    for item in items:
        if item.category not in ("over_refusal", "harmful_refusal"):
            continue
        harmful = item.expect == "refuse"
        w.write({"type": "call", "model": "openai:base", "item": item.id, "text": REFUSE if harmful else HELP})
        w.write({"type": "call", "model": "openai:cand", "item": item.id, "text": REFUSE if harmful or refuses(item) else HELP})
    w.close()
    return path


@pytest.fixture
def standard_run(tmp_path):
    items = [i for i in resolve_suite("standard").items if i.category in ("over_refusal", "harmful_refusal")]
    types = sorted({i.type for i in items if i.category == "over_refusal"})
    worst = types[0]
    return write_run(tmp_path / "std.jsonl", items, lambda i: i.type == worst), worst, types


def test_json_breakdown_puts_the_costliest_type_first(taxcheck_cli, standard_run):
    run, worst, types = standard_run
    res = taxcheck_cli("report", run, "--by", "type", "-f", "json")
    assert res.code == 0, res.stderr
    doc = res.json()
    assert doc["rows"]  # the main table is still there
    over = doc["breakdown"]["over_refusal"]
    assert [r["type"] for r in over][0] == worst and {r["type"] for r in over} == set(types)
    first = over[0]
    assert first["scores"]["openai:cand"]["value"] == 1.0 and first["tax"]["openai:cand"]["value"] == 1.0
    assert first["tax"]["openai:cand"]["significance"] == "cost" and first["n"] == 10
    assert all(r["tax"]["openai:cand"]["value"] == 0.0 for r in over[1:])
    # the same statistics as the main table: each type's interval is its own paired test
    assert first["tax"]["openai:cand"]["ci_low"] > 0 and first["low_n"]
    assert "pair_accuracy" in doc["breakdown"] and doc["breakdown"]["pair_accuracy"][0]["type"] == worst


def test_table_and_markdown_show_each_type(taxcheck_cli, standard_run, monkeypatch):
    run, worst, types = standard_run
    monkeypatch.setenv("COLUMNS", "80")
    table = taxcheck_cli("report", run, "--by", "type")
    assert table.code == 0, table.stderr
    assert "over_refusal by type" in table.stdout and "+100.0" in table.stdout and "…" not in table.stdout
    assert all(t in table.stdout for t in types)
    md = taxcheck_cli("report", run, "--by", "type", "-f", "markdown")
    assert md.code == 0 and "### over_refusal by type" in md.stdout and f"| {worst}" in md.stdout


def test_html_has_the_breakdown_section(taxcheck_cli, standard_run, tmp_path):
    run, worst, _types = standard_run
    out = tmp_path / "r.html"
    res = taxcheck_cli("report", run, "--by", "type", "-f", "html", "-o", out)
    assert res.code == 0, res.stderr
    html = out.read_text(encoding="utf-8")
    assert 'id="breakdown"' in html and worst in html


def test_an_imported_xstest_file_breaks_down_by_its_types(taxcheck_cli, tmp_path):
    suite = import_suite("xstest", FIXTURES / "xstest_prompts.csv")
    items = list(suite.items)
    run = write_run(tmp_path / "xs.jsonl", items, lambda i: i.type == "homonyms")
    res = taxcheck_cli("report", run, "--by", "type", "-f", "json")
    assert res.code == 0, res.stderr
    over = res.json()["breakdown"]["over_refusal"]
    assert over[0]["type"] == "homonyms" and over[0]["tax"]["openai:cand"]["value"] == 1.0
    assert len(over) == len({i.type for i in items if i.category == "over_refusal"})


def test_by_something_else_is_refused(taxcheck_cli, standard_run):
    run, _w, _t = standard_run
    res = taxcheck_cli("report", run, "--by", "model")
    assert res.code == 2 and "--by type" in res.stderr
