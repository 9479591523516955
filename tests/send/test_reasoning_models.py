"""Today's models end to end against the strict loopback server (issue 10, "done when"):
OpenAI reasoning models, Anthropic with extended thinking, a local reasoning model behind a
vLLM-style server, and an unknown reasoning model that taxcheck must adjust to, through
``run``, the judge, ``models`` and ``--batch``. The server validates every body against the
SDKs' own types (the fixture fails the test on any invalid one) and emulates each model's
refusals of parameters and its hidden reasoning."""

from __future__ import annotations

import json
import re

import pytest
from conftest import SMALL_SUITE, benign_items, call_records, helpful, write_suite

CALLS = len(SMALL_SUITE) + 1


def agreeable_judge(request) -> str:
    """A judge that always answers in the requested form, echoing the check code it was given."""
    instruction = request.messages[-1]["content"].rsplit("<<<END RESPONSE>>>", 1)[1]
    check = re.search(r'"check": "([0-9a-f]{16})"', instruction).group(1)
    system = request.messages[0]["content"]
    label = ("comply" if "refused a user's request" in system else "no" if "hedging" in system else
             "wrote" if "creative-writing" in system else "answered" if "professional or student" in system else "correct")
    return json.dumps({"check": check, "label": label, "score": 4, "reason": "scripted"})


@pytest.fixture
def reasoning_api(fake_api, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_BASE_URL", fake_api.base_url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-reasoning")
    monkeypatch.setenv("LOCAL_API_KEY", "none")
    fake_api.respond(helpful)
    fake_api.respond_for("gpt-5.4-mini", agreeable_judge)
    fake_api.profile("acme-reasoner*", kind="openai_reasoning")  # a reasoning model no profile of taxcheck's names
    return fake_api


def _config(tmp_path, fake_api):
    cfg = tmp_path / "taxcheck.toml"
    cfg.write_text(f'[endpoints.local]\nurl = "{fake_api.base_url}/v1"\n\n'
                   '[models.thinker]\nspec = "anthropic:claude-sonnet-5-5"\nthinking_budget = 1024\n', encoding="utf-8")
    return cfg


def _rejected(api) -> list:
    return [r for r in api.requests if r.status == 400]


def test_run_and_judge_with_todays_models(taxcheck_cli, reasoning_api, small_suite, tmp_path):
    cfg = _config(tmp_path, reasoning_api)
    out = tmp_path / "run.jsonl"
    res = taxcheck_cli("run", "-b", "openai:o4-mini", "-m", "openai:acme-reasoner-1", "-m", "thinker",
                       "-m", "local:Qwen/Qwen3-8B", "--judge", "openai:gpt-5.4-mini", "-s", small_suite,
                       "--config", cfg, "-o", out, "-f", "json", "-j", "8")
    assert res.code == 0, res.stderr
    # the unknown reasoning model cost one rejected request per parameter; nothing else was ever rejected
    rejected = _rejected(reasoning_api)
    assert [r.model for r in rejected] == ["acme-reasoner-1"] * 2
    assert ("temperature" in rejected[1].body) != ("max_tokens" in rejected[1].body)  # one fixed, then the other
    assert res.stderr.count("rejected temperature") == 1 and res.stderr.count("rejected max_tokens") == 1
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(a["param"] for a in lines if a["type"] == "adjustment") == ["max_tokens", "temperature"]
    header = lines[0]
    assert header["requests"]["openai:o4-mini"]["temperature"] is None
    assert header["requests"]["thinker"]["thinking_budget"] == 1024
    calls = call_records(out)
    assert len(calls) == 4 * CALLS and all(c.get("error") is None for c in calls)
    doc = res.json()
    for model in ("openai:o4-mini", "openai:acme-reasoner-1", "thinker"):
        assert doc["usage"][model]["reasoning_tokens"] > 0, model  # hidden reasoning, as the provider reports it
    assert "reasoning_tokens" not in doc["usage"]["local:Qwen/Qwen3-8B"]  # a vLLM-style server reports none: none invented
    assert doc["usage"]["openai:gpt-5.4-mini"]["role"] == "judge" and doc["usage"]["openai:gpt-5.4-mini"]["requests"] > 0
    assert all(v["label"] is not None for v in (json.loads(x) for x in out.read_text().splitlines()) if v["type"] == "verdict")
    rows = {r["dimension"]: r for r in doc["rows"]}
    assert rows["capability.math"]["scores"]["local:Qwen/Qwen3-8B"]["value"] == 1.0  # the answer, not the reasoning
    sampling = doc["sampling"]
    assert sampling["openai:acme-reasoner-1"]["temperature_sent"] is False and sampling["local:Qwen/Qwen3-8B"]["temperature"] == 0.0


def test_models_checks_todays_models(taxcheck_cli, reasoning_api, tmp_path):
    cfg = _config(tmp_path, reasoning_api)
    reasoning_api.listed_models = ["o4-mini", "acme-reasoner-1", "claude-sonnet-5-5", "Qwen/Qwen3-8B"]
    res = taxcheck_cli("models", "openai:o4-mini", "openai:acme-reasoner-1", "thinker", "local:Qwen/Qwen3-8B",
                       "--probe", "--config", cfg)
    assert res.code == 0, res.stdout
    assert res.stdout.count("ok ") == 4 and "rejected temperature" in res.stdout
    assert len(_rejected(reasoning_api)) == 2  # only the unknown model's two, as in a run


def test_batch_with_an_unknown_reasoning_model(taxcheck_cli, reasoning_api, small_suite, monkeypatch, tmp_path):
    monkeypatch.setenv("TAXCHECK_BATCH_POLL_S", "0.02")
    reasoning_api.batches_enabled = True
    out = tmp_path / "run.jsonl"
    res = taxcheck_cli("run", "-m", "openai:acme-reasoner-1", "-m", "openai:o4-mini", "-s", small_suite, "--batch",
                       "-o", out, "-f", "json")
    assert res.code == 0, res.stderr
    assert len(_rejected(reasoning_api)) == 2  # the synchronous probe, adjusted twice
    assert all(r.status == 200 for r in reasoning_api.batch_requests) and reasoning_api.batches_created() == 4
    assert all("temperature" not in r.body and "max_completion_tokens" in r.body for r in reasoning_api.batch_requests)
    assert sum(1 for c in call_records(out) if not c.get("batch")) == 1  # o4-mini, named by its profile, needs no probe


def test_hidden_reasoning_that_eats_the_budget_is_a_failure_not_a_refusal(taxcheck_cli, reasoning_api, tmp_path):
    suite = write_suite(tmp_path / "s.jsonl", benign_items(6))
    reasoning_api.profile("qwen3-8b", kind="local_reasoning", reasoning_tokens=600)
    cfg = _config(tmp_path, reasoning_api)
    res = taxcheck_cli("run", "-m", "local:qwen3-8b", "-m", "openai:o4-mini", "-s", suite, "--config", cfg,
                       "--max-tokens", "512", "-f", "json")
    assert res.code == 3
    doc = res.json()
    row = next(r for r in doc["rows"] if r["dimension"] == "over_refusal")
    assert row["scores"]["local:qwen3-8b"]["n"] == 0  # no answer graded a refusal: every one failed
    assert row["scores"]["openai:o4-mini"] == {**row["scores"]["openai:o4-mini"], "n": 6, "value": 0.0}
    [cause] = doc["failure_causes"]["local:qwen3-8b"]
    assert cause["kind"] == "budget_exhausted" and cause["calls"] == 6 and "--max-tokens" in cause["message"]
    # the profile's default cap is large enough: the same run without --max-tokens answers
    again = taxcheck_cli("run", "-m", "local:qwen3-8b", "-s", suite, "--config", cfg, "-f", "json", "-o", tmp_path / "b.jsonl")
    assert again.code == 0, again.stderr
