"""EndpointClient against the fake provider: what reaches the wire, what comes back.

Real SDK clients over loopback; the fake records each request so the tests can check the
exact body taxcheck sent (plain-text template, system split, max_tokens, temperature).
"""

from __future__ import annotations

import asyncio

import pytest

from fakeapi import Reply
from taxcheck.send.clients import COMPLETIONS_STOP, EndpointClient, Params, completions_prompt
from taxcheck.errors import CallError
from taxcheck.send.specs import Endpoint

MSGS = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Capital of France?"}]


def _client(api, wire="openai", url=None, timeout=5.0):
    base = url or (api.base_url + "/v1" if wire == "openai" else api.base_url)
    return EndpointClient(Endpoint(name=wire, wire=wire, base_url=base, key_env=f"{wire.upper()}_API_KEY", api_key="test-key"), timeout)


def _complete(api, *, wire="openai", api_kind="chat", messages=MSGS, params=None, model="m", timeout=5.0):
    # Anthropic's API version 2026-10-21 takes no temperature: the profiles never send one there
    params = params or (Params(None, 64) if wire == "anthropic" else Params(0.0, 64))

    async def go():
        client = _client(api, wire, timeout=timeout)
        try:
            return await client.complete(model, api_kind, messages, params)
        finally:
            await client.aclose()

    return asyncio.run(go())


def test_openai_chat(fake_api):
    fake_api.enqueue(Reply(text="Paris.", usage={"prompt_tokens": 11, "completion_tokens": 2}))
    c = _complete(fake_api)
    assert (c.text, c.finish_reason, c.api_refusal, c.input_tokens, c.output_tokens) == ("Paris.", "stop", False, 11, 2)
    body = fake_api.requests[0].body
    assert body["messages"] == MSGS and body["temperature"] == 0.0 and body["max_tokens"] == 64
    assert fake_api.requests[0].headers["authorization"] == "Bearer test-key"


def test_completions_uses_the_plain_text_template(fake_api):
    fake_api.enqueue(Reply(text="  Paris.\n"))
    history = MSGS + [{"role": "assistant", "content": "Paris."}, {"role": "user", "content": "Are you sure?"}]
    c = _complete(fake_api, api_kind="completions", messages=history)
    assert c.text == "Paris."
    req = fake_api.requests[0]
    assert req.path == "/v1/completions"
    assert req.body["prompt"] == "Be brief.\n\nUser: Capital of France?\n\nAssistant: Paris.\n\nUser: Are you sure?\n\nAssistant:"
    assert req.body["stop"] == COMPLETIONS_STOP and req.body["max_tokens"] == 64


@pytest.mark.parametrize(
    "messages, prompt",
    [
        ([{"role": "user", "content": "hi"}], "User: hi\n\nAssistant:"),
        ([{"role": "system", "content": "S"}, {"role": "user", "content": "hi"}], "S\n\nUser: hi\n\nAssistant:"),
        ([{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}, {"role": "user", "content": "c"}],
         "User: a\n\nAssistant: b\n\nUser: c\n\nAssistant:"),
    ],
)
def test_completions_prompt_table(messages, prompt):
    assert completions_prompt(messages) == prompt


def test_anthropic_splits_system_and_sets_max_tokens(fake_api):
    fake_api.enqueue(Reply(text="Paris."))
    c = _complete(fake_api, wire="anthropic", params=Params(None, 77))
    assert (c.text, c.finish_reason, c.api_refusal) == ("Paris.", "end_turn", False)
    req = fake_api.requests[0]
    assert req.path == "/v1/messages"
    assert req.body["system"] == "Be brief."
    assert req.body["messages"] == [{"role": "user", "content": "Capital of France?"}]
    assert req.body["max_tokens"] == 77 and "temperature" not in req.body
    assert "test-key" in (req.headers.get("x-api-key") or req.headers.get("authorization") or "")


def test_a_temperature_the_anthropic_api_rejects_is_dropped_once(fake_api):
    """A profile that (wrongly) sends Anthropic a temperature: the 2026-10-21 API's own 400
    ("temperature: Extra inputs are not permitted") adjusts the model, and says so."""
    fake_api.allow_invalid = True  # the first body is invalid on purpose
    seen = []

    async def go():
        client = EndpointClient(Endpoint(name="anthropic", wire="anthropic", base_url=fake_api.base_url, key_env=None,
                                         api_key="test-key"), 5.0, on_adjust=lambda *a: seen.append(a))
        try:
            first = await client.complete("m", "chat", MSGS, Params(0.0, 64))
            second = await client.complete("m", "chat", MSGS, Params(0.0, 64))
            return first, second
        finally:
            await client.aclose()

    fake_api.respond(lambda r: Reply(text="ok"))
    first, second = asyncio.run(go())
    assert first.text == second.text == "ok"
    assert ["temperature" in r.body for r in fake_api.requests] == [True, False, False]
    assert [(model, param, fix) for model, param, fix, _msg in seen] == [("m", "temperature", {"temperature": None})]


def test_anthropic_stop_reason_refusal_is_an_api_refusal(fake_api):
    fake_api.enqueue(Reply(text="", finish_reason="refusal"))
    c = _complete(fake_api, wire="anthropic")
    assert c.api_refusal and c.finish_reason == "refusal"


@pytest.mark.parametrize(
    "reply",
    [
        Reply(text="partial", finish_reason="content_filter"),
        Reply(status=400, error_code="content_policy_violation"),
        Reply(status=400, text="Your request was rejected as a result of our safety system."),
        Reply(refusal="I can't help with that."),
    ],
    ids=["finish_content_filter", "policy_code_400", "policy_message_400", "refusal_field"],
)
def test_openai_api_refusals(fake_api, reply):
    fake_api.enqueue(reply)
    c = _complete(fake_api)
    assert c.api_refusal


@pytest.mark.parametrize(
    "reply, kind, retryable",
    [
        (Reply(status=400), "http_400", False),
        (Reply(status=401), "auth", False),
        (Reply(status=403), "auth", False),
        (Reply(status=404), "not_found", False),
        (Reply(status=429, headers={"retry-after": "3"}), "http_429", True),
        (Reply(status=500), "http_500", True),
        (Reply(status=503), "http_503", True),
        (Reply(malformed=True), "malformed", True),
        (Reply(empty=True), "malformed", True),
        (Reply(reset=True), "connection", True),
        (Reply(hang=True), "timeout", True),
    ],
)
@pytest.mark.parametrize("wire", ["openai", "anthropic"])
def test_errors_translate(fake_api, reply, kind, retryable, wire):
    fake_api.enqueue(reply)
    with pytest.raises(CallError) as info:
        _complete(fake_api, wire=wire, timeout=0.5)
    exc = info.value
    assert (exc.kind, exc.retryable) == (kind, retryable), exc.message
    assert fake_api.base_url.split("//")[1] in exc.message or kind in ("malformed",)
    if reply.status == 429:
        assert exc.retry_after == 3.0
    if kind == "auth":
        assert f"check {wire.upper()}_API_KEY" in exc.message


def test_first_request_is_not_charged_for_the_sdk_import(fake_api):
    """Building the SDK client happens before the request timer starts."""
    fake_api.enqueue(Reply(text="ok", delay=0.2))
    assert _complete(fake_api, timeout=0.5).text == "ok"
