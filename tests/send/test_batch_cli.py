"""`taxcheck run --batch` end to end through the CLI."""

from __future__ import annotations

import json

import pytest

from conftest import call_records, helpful


@pytest.fixture(autouse=True)
def _fast_polls(monkeypatch):
    monkeypatch.setenv("TAXCHECK_BATCH_POLL_S", "0.02")


def test_batch_run_records_batches_prices_at_the_discount_and_resumes(tmp_path, taxcheck_cli, fake_api, small_suite):
    fake_api.batches_enabled = True
    fake_api.respond(helpful)
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps({"prices": [{"pattern": "openai:*", "input": 1000, "output": 1000}]}), encoding="utf-8")
    out = tmp_path / "run.jsonl"
    r = taxcheck_cli("run", "-m", "openai:A", "-s", small_suite, "--batch", "--prices", prices, "-o", out, "-f", "json")
    assert r.code == 0, r.stderr
    # "A" has no profile: one synchronous request settles its request form before any batch
    assert fake_api.count(path="chat") == 1
    assert fake_api.batches_created() == 2  # first turns, then the pushback's second turn
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert any(rec["type"] == "batch" for rec in lines)
    calls = call_records(out)
    assert len(calls) == 10 and sum(c.get("batch", False) for c in calls) == 9
    usage = json.loads(r.stdout)["usage"]["openai:A"]
    tokens = lambda c: (c["input_tokens"] + c["output_tokens"]) * 1000 / 1e6  # noqa: E731
    expected = sum(tokens(c) * (0.5 if c.get("batch") else 1.0) for c in calls)
    assert usage["cost_usd"] == pytest.approx(expected, rel=1e-6)
    again = taxcheck_cli("run", "-m", "openai:A", "-s", small_suite, "--batch", "--prices", prices, "-o", out, "-f", "json")
    assert again.code == 0 and fake_api.batches_created() == 2


def test_batch_against_a_server_without_batch_api(taxcheck_cli, fake_api, small_suite):
    fake_api.respond(helpful)
    r = taxcheck_cli("run", "-m", "openai:A", "-s", small_suite, "--batch")
    assert r.code == 2
    assert "no batch API" in r.stderr and "drop --batch" in r.stderr
    assert "Traceback" not in r.stderr


def test_batch_and_budget_do_not_mix(taxcheck_cli, small_suite):
    r = taxcheck_cli("run", "-m", "openai:A", "-s", small_suite, "--batch", "--max-cost", "1")
    assert r.code == 2 and "--max-cost" in r.stderr
