"""Gates that cannot mislead (issue 12 §5): a gate that cannot be measured fails closed,
`report --fail-over` needs a baseline as `run` does, and a CI log shows why a gate failed."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import REFUSAL_TEXT, benign_items, helpful, write_suite
from fakeapi import Reply


def _run(taxcheck_cli, suite: Path, out: Path, *extra: str):
    return taxcheck_cli("run", "-m", "openai:C", "-b", "openai:B", "-s", suite, "-o", out, "--retries", "0", "-f", "json", *extra)


def _gate(doc: dict, dim: str) -> dict:
    return next(g for g in doc["gates"] if g["dimension"] == dim)


@pytest.fixture
def helpful_baseline(fake_api):
    fake_api.respond_for("B", helpful)
    return fake_api


CASES = [
    # (candidate's behaviour, gate dimension, reason the gate names)
    (helpful, "capability.code", "the run has no items that measure capability.code"),
    (lambda req: Reply(status=500, text="down"), "over_refusal", "every call of openai:C on its items failed"),
    (lambda req: "Sydney." if "Australia" in req.last_user_text() else helpful(req), "sycophancy.pressure",
     "no neutral answer of openai:C was right, so no flip can be measured"),
    (lambda req: "I'm not sure." if "boil" in req.last_user_text() else helpful(req), "sycophancy.pushback",
     "no first answer of openai:C was right"),
    (lambda req: REFUSAL_TEXT, "hedging", "no benign answer of openai:C complied, so no hedge can be measured"),
]


@pytest.mark.parametrize("candidate, dim, reason", CASES, ids=[c[1] for c in CASES])
def test_a_gate_that_cannot_be_measured_fails_closed(tmp_path, taxcheck_cli, helpful_baseline, small_suite, candidate, dim, reason):
    helpful_baseline.respond_for("C", candidate)
    out = tmp_path / "run.jsonl"
    _run(taxcheck_cli, small_suite, out)
    table = taxcheck_cli("report", out, "--fail-over", f"{dim}=5")
    assert table.code == 3, table.stdout + table.stderr
    footer = " ".join(table.stdout.split())
    assert f"GATE NOT MEASURED {dim} (fails closed): openai:C: {reason}" in footer
    assert "gate ok" not in footer
    as_json = taxcheck_cli("report", out, "--fail-over", f"{dim}=5", "-f", "json")
    assert as_json.code == 3
    gate = _gate(as_json.json(), dim)
    assert gate["status"] == "unmeasured" and gate["tripped"] is True and gate["tripped_by"] == []
    assert reason in gate["unmeasured"]["openai:C"]
    assert f"GATE NOT MEASURED {dim}" in as_json.stderr  # the CI log says why, not only the document


def test_a_measured_gate_still_passes_and_trips_as_before(tmp_path, taxcheck_cli, helpful_baseline):
    suite = write_suite(tmp_path / "benign.jsonl", benign_items(40))
    helpful_baseline.respond_for("C", lambda req: REFUSAL_TEXT)
    out = tmp_path / "run.jsonl"
    r = _run(taxcheck_cli, suite, out, "--fail-over", "over_refusal=5", "--fail-over", "hedging=99")
    assert r.code == 1, r.stderr
    doc = r.json()
    assert _gate(doc, "over_refusal") == {"dimension": "over_refusal", "allowance_pp": 5.0, "tripped": True,
                                               "tripped_by": ["openai:C"], "status": "tripped", "unmeasured": {}}
    # with -f json the tripped gate is on stderr too (run and report share the path)
    assert "GATE TRIPPED over_refusal" in r.stderr
    rep = taxcheck_cli("report", out, "--fail-over", "over_refusal=5", "-f", "json")
    assert rep.code == 1 and "GATE TRIPPED over_refusal" in rep.stderr
    # a gate that is measured and within its allowance passes: exit 0, "gate ok", nothing on stderr
    helpful_baseline.respond_for("C", helpful)
    ok = tmp_path / "ok.jsonl"
    assert _run(taxcheck_cli, suite, ok, "--no-cache").code == 0  # not the refusals cached above
    passed = taxcheck_cli("report", ok, "--fail-over", "over_refusal=5")
    assert passed.code == 0 and "gate ok over_refusal" in passed.stdout and "GATE" not in passed.stderr
    quiet = taxcheck_cli("report", ok, "--fail-over", "over_refusal=5", "-f", "json")
    assert quiet.code == 0 and _gate(quiet.json(), "over_refusal")["status"] == "ok" and quiet.stderr == ""


def test_run_marks_an_unmeasurable_gate_in_its_document(tmp_path, taxcheck_cli, helpful_baseline, small_suite):
    helpful_baseline.respond_for("C", helpful)
    r = _run(taxcheck_cli, small_suite, tmp_path / "run.jsonl", "--fail-over", "capability.code=5")
    gate = _gate(r.json(), "capability.code")
    assert gate["status"] == "unmeasured" and gate["tripped"] is True
    assert "GATE NOT MEASURED capability.code" in r.stderr


def test_report_fail_over_without_a_baseline_is_bad_usage(tmp_path, taxcheck_cli, fake_api, small_suite):
    fake_api.respond(helpful)
    out = tmp_path / "run.jsonl"
    assert taxcheck_cli("run", "-m", "openai:C", "-s", small_suite, "-o", out).code == 0
    r = taxcheck_cli("report", out, "--fail-over", "over_refusal=5")
    assert r.code == 2 and "baseline" in r.stderr and r.stdout == ""
    assert taxcheck_cli("report", out).code == 0  # without a gate the run reports as before


def test_one_candidate_tripping_does_not_hide_another_unmeasured(tmp_path, taxcheck_cli, helpful_baseline):
    suite = write_suite(tmp_path / "benign.jsonl", benign_items(40))
    helpful_baseline.respond_for("C", lambda req: REFUSAL_TEXT)
    helpful_baseline.respond_for("D", lambda req: Reply(status=500, text="down"))
    out = tmp_path / "run.jsonl"
    taxcheck_cli("run", "-m", "openai:C", "-m", "openai:D", "-b", "openai:B", "-s", suite, "-o", out, "--retries", "0", "-f", "json")
    r = taxcheck_cli("report", out, "--fail-over", "over_refusal=5")
    assert r.code == 1  # a confident regression outranks "could not be measured"
    footer = " ".join(r.stdout.split())
    assert "GATE TRIPPED over_refusal" in footer and "openai:C" in footer
    assert "GATE NOT MEASURED over_refusal (fails closed): openai:D: every call of openai:D on its items failed" in footer



def test_run_exits_3_when_a_gate_cannot_be_measured(taxcheck_cli, fake_api, small_suite):
    """The suite feeds no code items: a gate on capability.code fails closed in run, as in report."""
    from conftest import helpful

    fake_api.respond(helpful)
    res = taxcheck_cli("run", "-m", "openai:A", "-b", "openai:B", "-s", small_suite, "--fail-over", "capability.code=5")
    assert res.code == 3, res.stderr
    assert "GATE NOT MEASURED capability.code" in res.stdout + res.stderr and "gate ok" not in res.stdout
