"""Failures that explain themselves (issue 13 §3): one line per cause and model, the same in JSON."""

from __future__ import annotations

import socket

import pytest
from conftest import benign_items, write_suite

from fakeapi import Reply
from taxcheck.report.failures import fix_for

N = 6


@pytest.fixture
def suite(tmp_path):
    return write_suite(tmp_path / "s.jsonl", benign_items(N))


def _failed_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("failed:")]


def test_a_mistyped_model_is_one_line_with_the_fix(taxcheck_cli, fake_api, suite):
    fake_api.respond(lambda r: Reply(status=404, text=f"The model `{r.model}` does not exist"))
    res = taxcheck_cli("run", "-m", "openai:gpt-4o-mnii", "-s", suite, "-f", "json", "--retries", "0")
    assert res.code == 3
    lines = _failed_lines(res.stderr)
    assert len(lines) == 1, res.stderr
    assert f"openai:gpt-4o-mnii: {N} calls failed: 404 from" in lines[0] and "does not exist" in lines[0]
    assert "taxcheck models openai:gpt-4o-mnii" in lines[0]
    doc = res.json()
    assert doc["failures"] == {"openai:gpt-4o-mnii": N}  # the counts scripts read are unchanged
    [cause] = doc["failure_causes"]["openai:gpt-4o-mnii"]
    assert cause["calls"] == N and cause["kind"] == "not_found" and "taxcheck models" in cause["fix"]
    # the model's first request goes alone; its 404 says the rest would get the same: not sent
    assert fake_api.count(model="gpt-4o-mnii") == 1
    assert "its remaining items are not sent" in res.stderr


def test_a_model_that_answered_once_keeps_being_asked_after_a_404(taxcheck_cli, fake_api, suite, tmp_path):
    # a 404 after answers is about that request, not the model: nothing is given up
    seen = []

    def flaky(r):
        seen.append(r)
        return Reply(status=404, text="gone for a moment") if len(seen) == 2 else Reply(text="Sure, here you go.")

    fake_api.respond(flaky)
    out = tmp_path / "run.jsonl"
    res = taxcheck_cli("run", "-m", "openai:m", "-s", suite, "-o", out, "--retries", "0", "--no-cache")
    assert res.code == 3 and fake_api.count(model="m") == N
    assert len(_failed_lines(res.stderr)) == 1 and "1 call failed" in _failed_lines(res.stderr)[0]


def test_a_rerun_asks_a_missing_model_again(taxcheck_cli, fake_api, suite, tmp_path):
    fake_api.respond(lambda r: Reply(status=404, text="no such model"))
    out = tmp_path / "run.jsonl"
    assert taxcheck_cli("run", "-m", "openai:x", "-s", suite, "-o", out, "--retries", "0").code == 3
    fake_api.respond(lambda r: Reply(text="Sure, here you go."))
    res = taxcheck_cli("run", "-m", "openai:x", "-s", suite, "-o", out, "--retries", "0", "-f", "json")
    assert res.code == 0, res.stderr
    assert res.json()["failures"] == {"openai:x": 0} and fake_api.count(model="x") == 1 + N


def test_a_parameter_the_model_rejects_is_named(taxcheck_cli, fake_api, suite, tmp_path, monkeypatch):
    cfg = tmp_path / "taxcheck.toml"
    cfg.write_text('[models.effort]\nspec = "openai:m"\nreasoning_effort = "high"\n')
    fake_api.respond(lambda r: Reply(status=400, text="Unrecognized request argument supplied: reasoning_effort")
                     if "reasoning_effort" in r.body else Reply(text="Sure."))
    res = taxcheck_cli("run", "-m", "effort", "-s", suite, "--config", cfg)
    assert res.code == 3
    [line] = _failed_lines(res.stderr)
    assert f"effort: {N} calls failed" in line and "does not accept 'reasoning_effort'" in line
    assert "drop reasoning_effort from the variant" in line
    assert fake_api.count() == N  # a 400 is never retried


def test_timeouts_say_raise_timeout(taxcheck_cli, fake_api, tmp_path):
    suite = write_suite(tmp_path / "s.jsonl", benign_items(2))
    fake_api.respond(lambda r: Reply(hang=True))
    res = taxcheck_cli("run", "-m", "openai:m", "-s", suite, "--timeout", "0.3", "--retries", "0", "-j", "2", "-f", "json")
    assert res.code == 3
    [line] = _failed_lines(res.stderr)
    assert "openai:m: 2 calls failed: no response from http" in line and "within 0.3 s" in line
    assert "raise --timeout (it was 0.3 s)" in line
    [cause] = res.json()["failure_causes"]["openai:m"]
    assert cause["fix"] == "raise --timeout (it was 0.3 s)"  # the JSON says what stderr says


def test_connection_refused_names_the_url(taxcheck_cli, suite, monkeypatch):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{port}/v1")
    res = taxcheck_cli("run", "-m", "openai:m", "-s", suite, "--retries", "0", "-f", "json")
    assert res.code == 3
    lines = _failed_lines(res.stderr)
    assert 1 <= len(lines) <= 2  # the one that was tried, and the ones skipped once it was down
    assert all(f"127.0.0.1:{port}" in line for line in lines)
    assert sum(c["calls"] for c in res.json()["failure_causes"]["openai:m"]) == N


def test_an_anthropic_base_url_ending_in_v1_is_explained(taxcheck_cli, fake_api, suite, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_BASE_URL", fake_api.base_url + "/v1")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-failures")
    res = taxcheck_cli("run", "-m", "anthropic:claude-haiku-4-5", "-s", suite, "--retries", "0")
    assert res.code == 3
    assert "ends in /v1" in res.stderr.split("failed:")[0]  # said before the first request
    [line] = _failed_lines(res.stderr)
    assert "must not end in /v1" in line


def test_report_says_the_causes_again(taxcheck_cli, fake_api, suite, tmp_path):
    fake_api.respond(lambda r: Reply(status=404, text="no such model"))
    out = tmp_path / "run.jsonl"
    taxcheck_cli("run", "-m", "openai:x", "-s", suite, "-o", out, "--retries", "0")
    res = taxcheck_cli("report", out)
    assert res.code == 3 and len(_failed_lines(res.stderr)) == 1


@pytest.mark.parametrize(
    "kind, message, endpoint, needle",
    [
        ("not_found", "404", {"url": "https://anthropic-proxy.example/v1", "wire": "anthropic"}, "must not end in /v1"),
        ("not_found", "404", {"url": "https://gateway.example/v1", "wire": "openai"}, "taxcheck models openai:x"),
        ("http_400", "400 from u: the model does not accept 'top_k' (x)", None, "drop top_k"),
        ("http_400", "400 from u: bad", None, "--probe"),
        ("timeout", "no response", None, "raise --timeout"),
        ("connection", "cannot reach", {"url": "http://h:1/v1"}, "http://h:1/v1"),
        ("http_429", "429", None, "--rpm"),
        ("http_503", "503", None, "rerun"),
        ("budget_exhausted", "token budget exhausted ...", None, None),
    ],
)
def test_fix_for(kind, message, endpoint, needle):
    fix = fix_for(kind, message, "openai:x", endpoint)
    assert (fix is None) if needle is None else (needle in fix)
