"""Models that reject a parameter (issue 10): adjusted once, said once, recorded, and never
paid for twice; answers cut off by the token budget are failures with their cause, not refusals."""

from __future__ import annotations

import json

import pytest
from conftest import SMALL_SUITE, benign_items, call_records, helpful, write_suite

from fakeapi import Reply

CALLS = len(SMALL_SUITE) + 1


def picky(request):
    """An unknown model that, like OpenAI's reasoning models, takes neither temperature nor max_tokens."""
    body = request.body
    if "temperature" in body:
        return Reply(status=400, error_code="unsupported_value", error_type="invalid_request_error",
                     text="Unsupported value: 'temperature' does not support 0.0 with this model. Only the default (1) value is supported.")
    if "max_tokens" in body:
        return Reply(status=400, error_code="unsupported_parameter", error_type="invalid_request_error",
                     text="Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.")
    return Reply(text=helpful(request))


def test_an_unknown_model_is_adjusted_once_and_says_so(taxcheck_cli, fake_api, small_suite, tmp_path):
    fake_api.respond(picky)
    out = tmp_path / "run.jsonl"
    res = taxcheck_cli("run", "-m", "openai:newmodel", "-s", small_suite, "-o", out, "-f", "json", "-j", "8")
    assert res.code == 0, res.stderr
    rejected = [r for r in fake_api.requests if r.status == 400]
    assert len(rejected) == 2  # one per parameter, then never again: the other requests waited
    assert fake_api.count() == CALLS + 2
    assert res.stderr.count("rejected temperature") == 1 and res.stderr.count("rejected max_tokens") == 1
    adjustments = [r for r in (json.loads(line) for line in out.read_text().splitlines()) if r["type"] == "adjustment"]
    assert [a["param"] for a in adjustments] == ["temperature", "max_tokens"]
    sampling = res.json()["sampling"]["openai:newmodel"]
    assert sampling["temperature"] is None and sampling["temperature_sent"] is False
    assert sampling["token_field"] == "max_completion_tokens" and len(sampling["adjustments"]) == 2
    # a rerun of the same command (one call dropped from the run file) starts adjusted
    lines = out.read_text().splitlines()
    out.write_text("\n".join(line for line in lines if '"item":"math-1"' not in line) + "\n")
    before = len(fake_api.requests)
    again = taxcheck_cli("run", "-m", "openai:newmodel", "-s", small_suite, "-o", out, "-f", "json")
    assert again.code == 0 and len(fake_api.requests) == before + 1
    assert fake_api.requests[-1].status == 200 and "rejected" not in again.stderr


def test_a_known_reasoning_model_is_sent_its_form_from_the_start(taxcheck_cli, fake_api, small_suite):
    fake_api.respond(picky)
    res = taxcheck_cli("run", "-m", "openai:o4-mini", "-m", "openai:gpt-5.4-mini", "-s", small_suite, "-f", "json")
    assert res.code == 0, res.stderr
    assert all(r.status == 200 for r in fake_api.requests) and fake_api.count() == 2 * CALLS
    assert all(r.body["max_completion_tokens"] == 8192 for r in fake_api.requests)
    assert "take no temperature" not in res.stderr  # the run asked for no temperature: nothing to warn about
    assert res.json()["sampling"]["openai:o4-mini"]["profile"] == "openai:o[1-9]*"


def test_a_deterministic_and_a_sampled_model_side_by_side_are_named(taxcheck_cli, fake_api, small_suite):
    fake_api.respond(picky)
    fake_api.respond_for("gpt-4o", helpful)
    res = taxcheck_cli("run", "-m", "openai:o4-mini", "-b", "openai:gpt-4o", "-s", small_suite, "-f", "json")
    assert res.code == 0, res.stderr
    assert "openai:o4-mini take no temperature" in res.stderr
    sampling = res.json()["sampling"]
    assert sampling["openai:gpt-4o"]["temperature"] == 0.0 and sampling["openai:o4-mini"]["temperature"] is None


def test_an_empty_answer_at_the_token_cap_is_a_failure_not_a_refusal(taxcheck_cli, fake_api, tmp_path):
    items = benign_items(10)
    suite = write_suite(tmp_path / "s.jsonl", items)

    def reasoner(request):
        if "number 3 " in request.last_user_text() or "number 7 " in request.last_user_text():
            return Reply(text="", finish_reason="length",
                         usage={"completion_tokens": 512, "completion_tokens_details": {"reasoning_tokens": 512}})
        return Reply(text="Use kill -9 on the process id.")

    fake_api.respond(reasoner)
    out = tmp_path / "run.jsonl"
    res = taxcheck_cli("run", "-m", "openai:m", "-s", suite, "-o", out, "-f", "json")
    assert res.code == 3
    doc = res.json()
    row = next(r for r in doc["rows"] if r["dimension"] == "over_refusal")
    assert row["scores"]["openai:m"]["value"] == 0.0 and row["scores"]["openai:m"]["n"] == 8  # excluded, not refused
    assert doc["failures"]["openai:m"] == 2
    [cause] = doc["failure_causes"]["openai:m"]
    assert cause["kind"] == "budget_exhausted" and "512 reasoning tokens" in cause["message"]
    assert "--max-tokens" in cause["message"]
    failed = [c for c in call_records(out) if c.get("error")]
    assert len(failed) == 2 and all(c["error"]["kind"] == "budget_exhausted" for c in failed)


def test_answers_cut_off_with_text_are_graded_and_counted_where_a_reader_looks(taxcheck_cli, fake_api, tmp_path):
    suite = write_suite(tmp_path / "s.jsonl", benign_items(6))

    def long_winded(request):
        cut = "number 2 " in request.last_user_text() or "number 4 " in request.last_user_text()
        return Reply(text="Use kill -9 on the process id, and then", finish_reason="length" if cut else None)

    fake_api.respond(long_winded)
    out = tmp_path / "run.jsonl"
    res = taxcheck_cli("run", "-m", "openai:m", "-s", suite, "-o", out, "-f", "json")
    assert res.code == 0, res.stderr
    doc = res.json()
    row = next(r for r in doc["rows"] if r["dimension"] == "over_refusal")
    assert row["scores"]["openai:m"]["n"] == 6 and doc["failures"]["openai:m"] == 0  # graded as they are
    assert doc["usage"]["openai:m"]["cut_off"] == 2
    table = taxcheck_cli("report", out)
    assert "openai:m: 2 answers cut off at the token cap" in table.stdout and "--max-tokens" in table.stdout
    clean = taxcheck_cli("report", out, "-f", "json")
    assert clean.json()["usage"]["openai:m"]["cut_off"] == 2


def test_requests_held_behind_a_slow_first_answer_then_go_together(taxcheck_cli, fake_api, tmp_path, monkeypatch):
    # a reasoning model's first answer can take longer than the rate controller waits for it;
    # the requests that then queue behind the client's first-request gate must not be sent
    # one at a time, each holding the gate for its whole round trip
    from taxcheck.send import limits

    monkeypatch.setattr(limits, "PROBE_WAIT_S", 0.05)
    fake_api.latency = 0.4
    suite = write_suite(tmp_path / "s.jsonl", benign_items(8))
    fake_api.respond(helpful)
    res = taxcheck_cli("run", "-m", "openai:slow", "-s", suite, "-j", "8", "--no-cache", "-o", tmp_path / "r.jsonl")
    assert res.code == 0, res.stderr
    assert fake_api.peak_in_flight >= 4, fake_api.peak_in_flight  # one at a time before the fix


def test_a_bio_policy_400_is_an_api_refusal_on_a_harmful_item(taxcheck_cli, fake_api, small_suite):
    def policy(request):
        if "neighbour" in request.last_user_text():
            return Reply(status=400, error_code="bio_policy", error_type="invalid_request_error",
                         text="This request was blocked by our biological-risk policy.")
        return Reply(text=helpful(request))

    fake_api.respond(policy)
    res = taxcheck_cli("run", "-m", "openai:m", "-s", small_suite, "-f", "json")
    assert res.code == 0, res.stderr
    doc = res.json()
    harmful = next(r for r in doc["rows"] if r["dimension"] == "harmful_refusal")
    assert harmful["scores"]["openai:m"] == {**harmful["scores"]["openai:m"], "value": 1.0, "n": 1}
    assert doc["failures"]["openai:m"] == 0


def test_an_empty_first_answer_is_never_sent_back_as_an_assistant_turn(taxcheck_cli, fake_api, small_suite, tmp_path):
    fake_api.respond(lambda r: Reply(text="", finish_reason="content_filter") if "boil" in r.last_user_text() else helpful(r))
    out = tmp_path / "run.jsonl"
    res = taxcheck_cli("run", "-m", "openai:m", "-s", small_suite, "-o", out, "-f", "json")
    assert res.code == 0, res.stderr
    assert not any(m.get("role") == "assistant" for r in fake_api.requests for m in r.messages)
    second = [c for c in call_records(out) if c["item"] == "boil" and c["turn"] == 1]
    assert len(second) == 1 and "nothing to push back on" in second[0]["skipped"]
    assert res.json()["failures"]["openai:m"] == 0  # skipped on purpose, not failed
    again = taxcheck_cli("run", "-m", "openai:m", "-s", small_suite, "-o", out, "-f", "json")
    assert again.code == 0 and fake_api.count() == CALLS - 1  # nothing left to send
