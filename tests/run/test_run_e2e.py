"""``taxcheck run`` end to end against the loopback fake provider (issue 2 §11).

Two models that behave differently: ``A`` refuses everything with a stock refusal, ``B``
answers helpfully and correctly. Every test drives the real CLI (in-process through
typer's runner) and the real SDKs over HTTP.
"""

from __future__ import annotations

import csv
import io
import json

import pytest
from conftest import REFUSAL_TEXT, SMALL_SUITE, benign_items, call_records, helpful, refuser, write_suite

from fakeapi import Reply

# Dimensions SMALL_SUITE feeds (capability.code is the only one it leaves out).
FED = {
    "over_refusal", "harmful_refusal", "pair_accuracy", "creative", "dual_use", "hedging",
    "capability.knowledge", "capability.math", "sycophancy.pressure", "sycophancy.pushback",
}
# Rates conditional on a complied or correct first answer, which the refusing model never gives.
CONDITIONAL = {"hedging", "sycophancy.pressure", "sycophancy.pushback"}
CALLS_PER_MODEL = len(SMALL_SUITE) + 1  # the pushback item has two turns


@pytest.fixture
def two_models(fake_api):
    fake_api.respond_for("A", refuser)
    fake_api.respond_for("B", helpful)
    return fake_api


def _run(cli, suite, *extra):
    return cli("run", "-m", "openai:A", "-b", "openai:B", "-s", suite, *extra)


def test_json_document_is_all_of_stdout(taxcheck_cli, two_models, small_suite, tmp_path):
    out = tmp_path / "run.jsonl"
    res = _run(taxcheck_cli, small_suite, "-f", "json", "-o", out)
    assert res.code == 0, res.stderr
    doc = json.loads(res.stdout)  # nothing but the document on stdout
    assert {"taxcheck_version", "run_id", "results_file", "baseline", "models", "rows", "failures", "usage"} <= doc.keys()
    assert doc["baseline"] == "openai:B"
    assert doc["models"] == ["openai:B", "openai:A"]
    assert doc["results_file"] == str(out)
    assert doc["failures"] == {"openai:A": 0, "openai:B": 0}
    rows = {r["dimension"]: r for r in doc["rows"]}
    assert FED <= rows.keys()
    for name in FED:
        row = rows[name]
        assert row["direction"] in ("lower", "higher")
        cell = row["scores"]["openai:B"]
        assert cell["n"] >= 1, name
        assert 0 <= cell["ci_low"] <= cell["value"] <= cell["ci_high"] <= 1
        tax = row["tax"]["openai:A"]
        assert {"value", "n", "ci_low", "ci_high", "p_value"} <= tax.keys()
        if name not in CONDITIONAL:  # A refuses everything, so it has no units there
            assert row["scores"]["openai:A"]["n"] >= 1, name
            assert tax["ci_low"] <= tax["value"] <= tax["ci_high"]
    assert rows["over_refusal"]["scores"]["openai:A"]["value"] == 1.0
    assert rows["over_refusal"]["scores"]["openai:B"]["value"] == 0.0
    assert rows["over_refusal"]["tax"]["openai:A"]["value"] > 0
    assert rows["harmful_refusal"]["tax"]["openai:A"]["value"] < 0  # refusing harm is a bonus
    assert rows["capability.math"]["scores"]["openai:B"]["value"] == 1.0
    for model in ("openai:A", "openai:B"):
        usage = doc["usage"][model]
        assert usage["requests"] == CALLS_PER_MODEL and usage["cached"] == 0
        assert usage["output_tokens"] > 0
    assert two_models.count() == 2 * CALLS_PER_MODEL
    assert "run file:" in res.stderr


def test_two_turn_item_sends_first_answer_in_history(taxcheck_cli, two_models, small_suite):
    assert _run(taxcheck_cli, small_suite, "-f", "json").code == 0
    second = [r for r in two_models.requests if r.model == "B" and "Are you sure" in r.last_user_text()]
    assert len(second) == 1
    roles = [m["role"] for m in second[0].messages]
    assert roles == ["user", "assistant", "user"]
    assert second[0].messages[1]["content"] == "Water boils at 100 °C at sea level."


def test_table_markdown_csv_and_report_agree(taxcheck_cli, two_models, small_suite, tmp_path):
    out = tmp_path / "run.jsonl"
    table = _run(taxcheck_cli, small_suite, "-o", out)
    assert table.code == 0, table.stderr
    for dim in FED:
        assert dim in table.stdout
    assert "openai:B (baseline)" in table.stdout and "tax openai:A" in table.stdout

    md = _run(taxcheck_cli, small_suite, "-o", out, "-f", "markdown")
    assert md.code == 0
    assert md.stdout.startswith("| dimension |") and "| over_refusal" in md.stdout

    csv_res = _run(taxcheck_cli, small_suite, "-o", out, "-f", "csv")
    rows = list(csv.DictReader(io.StringIO(csv_res.stdout)))
    assert {r["dimension"] for r in rows} >= FED
    over_a = next(r for r in rows if r["dimension"] == "over_refusal" and r["model"] == "openai:A")
    assert float(over_a["value"]) == 1.0 and float(over_a["tax"]) > 0

    run_doc = _run(taxcheck_cli, small_suite, "-o", out, "-f", "json").json()
    rep = taxcheck_cli("report", out, "-f", "json")
    assert rep.code == 0
    rep_doc = json.loads(rep.stdout)
    assert rep_doc["rows"] == run_doc["rows"]
    assert rep_doc["failures"] == run_doc["failures"] and rep_doc["usage"] == run_doc["usage"]
    assert two_models.count() == 2 * CALLS_PER_MODEL  # re-rendering asked nothing again
    for fmt in ("markdown", "csv", "table"):
        target = tmp_path / f"report.{fmt}"
        assert taxcheck_cli("report", out, "-f", fmt, "-o", target).code == 0
        assert "over_refusal" in target.read_text(encoding="utf-8")


def test_fail_over_trips_only_when_interval_says_so(taxcheck_cli, fake_api, tmp_path):
    suite = write_suite(tmp_path / "gate.jsonl", benign_items(12))
    fake_api.respond_for("A", refuser)
    fake_api.respond_for("B", helpful)
    fake_api.respond_for("C", helpful)
    tripped = taxcheck_cli("run", "-m", "openai:A", "-b", "openai:B", "-s", suite, "-f", "json", "--fail-over", "over_refusal=5")
    assert tripped.code == 1, tripped.stderr
    gate = tripped.json()["gates"][0]
    assert gate["tripped"] and gate["tripped_by"] == ["openai:A"]
    same = taxcheck_cli("run", "-m", "openai:C", "-b", "openai:B", "-s", suite, "-f", "json", "--fail-over", "over_refusal=5")
    assert same.code == 0, same.stderr
    assert same.json()["gates"][0]["tripped"] is False
    # A tax of +100 pp with a wide interval at tiny n must not trip a 5 pp gate.
    tiny = write_suite(tmp_path / "tiny.jsonl", benign_items(1))
    noisy = taxcheck_cli("run", "-m", "openai:A", "-b", "openai:B", "-s", tiny, "-f", "json", "--fail-over", "over_refusal=5")
    assert noisy.code == 0, noisy.json()["rows"][0]["tax"]
    table = taxcheck_cli("run", "-m", "openai:A", "-b", "openai:B", "-s", suite, "--fail-over", "over_refusal=5")
    assert table.code == 1 and "GATE TRIPPED over_refusal" in table.stdout


def test_malformed_suite_exits_2_naming_file_and_line(taxcheck_cli, fake_api, tmp_path):
    bad = tmp_path / "bad.jsonl"
    lines = [json.dumps(SMALL_SUITE[2]), json.dumps(SMALL_SUITE[3]), '{"id": "x", "category": "nope", "prompt": "hi", "expect": "comply"}']
    bad.write_text("\n".join(lines) + "\n")
    res = taxcheck_cli("run", "-m", "openai:A", "-s", bad)
    assert res.code == 2
    assert f"{bad}:3:" in res.stderr and "Traceback" not in res.stderr
    assert fake_api.count() == 0


def test_unknown_provider_lists_known_ones(taxcheck_cli, fake_api, small_suite):
    res = taxcheck_cli("run", "-m", "nope:x", "-s", small_suite)
    assert res.code == 2
    assert "unknown provider 'nope'" in res.stderr and "openai" in res.stderr and "anthropic" in res.stderr
    assert fake_api.count() == 0


def test_missing_key_names_the_variable(taxcheck_cli, fake_api, small_suite, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY")
    monkeypatch.delenv("OPENAI_BASE_URL")  # a custom base URL waives the key requirement
    res = taxcheck_cli("run", "-m", "openai:A", "-s", small_suite)
    assert res.code == 2 and "OPENAI_API_KEY" in res.stderr and "Traceback" not in res.stderr
    res = taxcheck_cli("run", "-m", "anthropic:claude-x", "-s", small_suite)
    assert res.code == 2 and "ANTHROPIC_API_KEY" in res.stderr
    assert fake_api.count() == 0


def test_401_is_one_line_and_skips_the_model(taxcheck_cli, fake_api, tmp_path):
    suite = write_suite(tmp_path / "s.jsonl", benign_items(30))
    fake_api.respond_for("A", lambda r: Reply(status=401))
    fake_api.respond_for("B", helpful)
    res = taxcheck_cli("run", "-m", "openai:A", "-b", "openai:B", "-s", suite, "-j", "2", "-f", "json")
    assert res.code == 2
    assert fake_api.count(model="A") <= 2  # at most what was in flight when the 401 landed
    assert fake_api.count(model="B") == 30  # the other model's work goes on
    mentions = [line for line in res.stderr.splitlines() if "401" in line]
    assert 1 <= len(mentions) <= 2, res.stderr  # the warning, and the note in the footer at most
    assert "OPENAI_API_KEY" in res.stderr and "Traceback" not in res.stderr
    assert json.loads(res.stdout)["models"] == ["openai:B", "openai:A"]


def test_failures_after_retries_exit_3_and_leave_n(taxcheck_cli, fake_api, small_suite, tmp_path):
    def flaky(request):
        if "kill" in request.last_user_text() or "locks" in request.last_user_text() or "pin tumbler" in request.last_user_text():
            return Reply(status=500)
        return REFUSAL_TEXT

    fake_api.respond_for("A", flaky)
    fake_api.respond_for("B", helpful)
    out = tmp_path / "run.jsonl"
    res = _run(taxcheck_cli, small_suite, "-f", "json", "--retries", "0", "-o", out)
    assert res.code == 3, res.stderr
    doc = res.json()
    assert doc["failures"] == {"openai:A": 3, "openai:B": 0}
    rows = {r["dimension"]: r for r in doc["rows"]}
    assert rows["over_refusal"]["scores"]["openai:A"]["n"] == 0  # never scored as a refusal
    assert rows["over_refusal"]["scores"]["openai:B"]["n"] == 1
    assert rows["dual_use"]["scores"]["openai:A"]["n"] == 0
    assert rows["creative"]["scores"]["openai:A"]["n"] == 1
    failed = [r for r in call_records(out) if r.get("error")]
    assert len(failed) == 3 and all(r["attempts"] == 1 and "500" in r["error"]["message"] for r in failed)
    assert fake_api.count(model="A") == CALLS_PER_MODEL  # --retries 0: one attempt each
    table = _run(taxcheck_cli, small_suite, "--retries", "0", "-o", tmp_path / "t.jsonl", "--no-cache")
    assert table.code == 3 and "failed after retries" in table.stdout


def test_anthropic_and_openai_side_by_side(taxcheck_cli, fake_api, small_suite, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_BASE_URL", fake_api.base_url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-0001")
    fake_api.respond_for("claude-x", refuser)
    fake_api.respond_for("B", helpful)
    res = taxcheck_cli("run", "-m", "anthropic:claude-x", "-b", "openai:B", "-s", small_suite, "-f", "json")
    assert res.code == 0, res.stderr
    rows = {r["dimension"]: r for r in res.json()["rows"]}
    assert rows["over_refusal"]["tax"]["anthropic:claude-x"]["value"] > 0
    assert fake_api.count("/v1/messages") == CALLS_PER_MODEL


def test_builtin_quick_suite_with_limit(taxcheck_cli, two_models):
    res = taxcheck_cli("run", "-m", "openai:A", "-b", "openai:B", "--limit", "40", "-f", "json")
    assert res.code == 0, res.stderr
    doc = res.json()
    rows = {r["dimension"]: r for r in doc["rows"]}
    assert rows["over_refusal"]["tax"]["openai:A"]["value"] > 0
    assert doc["usage"]["openai:A"]["requests"] == doc["usage"]["openai:B"]["requests"] > 0
