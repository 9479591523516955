"""The fake provider must look like the real ones to the real SDKs, and survive abuse.

Every client here is the real `openai` / `anthropic` SDK (sync and async) talking HTTP over
loopback; nothing is monkeypatched. Raw-socket tests cover what the SDKs never send.
"""

from __future__ import annotations

import asyncio
import gzip
import http.client
import json
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
from anthropic.types import Message
from openai.types import Completion
from openai.types.chat import ChatCompletion

from fakeapi import FakeAPI, Reply, Request, content_text, error_body, success_body, _Ids

PROVIDERS = ["openai", "anthropic"]
MODES = ["sync", "async"]
COMBOS = [(p, m) for p in PROVIDERS for m in MODES]


# --------------------------------------------------------------------------- drivers


_SSL = ssl.create_default_context()
"""One shared context: building one per client (certifi load) costs ~60 ms per client."""


def make_client(api: FakeAPI, provider: str, mode: str, timeout: float = 5.0) -> Any:
    """A real SDK client aimed at ``api``; only the (unused over http) SSL context is shared."""
    if provider == "openai":
        cls, http = (openai.OpenAI, openai.DefaultHttpxClient) if mode == "sync" else (
            openai.AsyncOpenAI, openai.DefaultAsyncHttpxClient)
        base_url = api.base_url + "/v1"
    else:
        cls, http = (anthropic.Anthropic, anthropic.DefaultHttpxClient) if mode == "sync" else (
            anthropic.AsyncAnthropic, anthropic.DefaultAsyncHttpxClient)
        base_url = api.base_url
    return cls(base_url=base_url, api_key="test", max_retries=0, timeout=timeout, http_client=http(verify=_SSL))


def ask(api: FakeAPI, provider: str, mode: str, *, model: str = "fake-model", prompt: str = "hello there",
        timeout: float = 5.0) -> Any:
    """One chat-style call through the real SDK client, sync or async."""
    messages = [{"role": "user", "content": prompt}]

    def call(client: Any) -> Any:
        if provider == "openai":
            return client.chat.completions.create(model=model, messages=messages)
        return client.messages.create(model=model, max_tokens=64, messages=messages)

    if mode == "sync":
        with make_client(api, provider, mode, timeout) as client:
            return call(client)

    async def run() -> Any:
        async with make_client(api, provider, mode, timeout) as client:
            return await call(client)

    return asyncio.run(run())


def text_of(response: Any) -> str | None:
    if isinstance(response, ChatCompletion):
        return response.choices[0].message.content
    return "".join(block.text for block in response.content if block.type == "text")


def stop_of(response: Any) -> str | None:
    if isinstance(response, ChatCompletion):
        return response.choices[0].finish_reason
    return response.stop_reason


def sdk(provider: str) -> Any:
    return openai if provider == "openai" else anthropic


def raw_http(api: FakeAPI, method: str, path: str, body: bytes | None = None,
             headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection(api.host, api.port, timeout=5)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


# --------------------------------------------------------------------------- happy paths


@pytest.mark.parametrize("provider,mode", COMBOS)
def test_default_echo_with_usage_and_model(fake_api: FakeAPI, provider: str, mode: str) -> None:
    response = ask(fake_api, provider, mode, model="m-1", prompt="hello there")
    assert text_of(response) == "Echo: hello there"
    assert stop_of(response) == ("stop" if provider == "openai" else "end_turn")
    assert response.model == "m-1"
    if provider == "openai":
        assert (response.usage.prompt_tokens, response.usage.completion_tokens, response.usage.total_tokens) == (2, 3, 5)
    else:
        assert (response.usage.input_tokens, response.usage.output_tokens) == (2, 3)
    [request] = fake_api.requests
    assert request.kind == ("chat" if provider == "openai" else "anthropic")
    assert request.model == "m-1" and request.last_user_text() == "hello there"
    assert request.status == 200 and fake_api.successes == 1


def test_default_constructed_clients_work(fake_api: FakeAPI) -> None:
    """The exact construction taxcheck uses (no custom http_client)."""
    with openai.OpenAI(base_url=fake_api.base_url + "/v1", api_key="test", max_retries=0) as oc:
        assert oc.chat.completions.create(model="o", messages=[{"role": "user", "content": "a"}]).choices
    with anthropic.Anthropic(base_url=fake_api.base_url, api_key="test", max_retries=0) as ac:
        assert ac.messages.create(model="a", max_tokens=8, messages=[{"role": "user", "content": "b"}]).content
    assert fake_api.successes == 2


@pytest.mark.parametrize("provider,mode", COMBOS)
def test_per_model_responders_and_default(fake_api: FakeAPI, provider: str, mode: str) -> None:
    fake_api.respond(lambda r: "default says " + r.last_user_text())
    fake_api.respond_for("picky", lambda r: Reply(text="I can't help with that."))
    assert text_of(ask(fake_api, provider, mode, model="picky")) == "I can't help with that."
    assert text_of(ask(fake_api, provider, mode, model="other", prompt="x")) == "default says x"
    assert fake_api.count(model="picky") == 1 and fake_api.count(model="other") == 1


def test_enqueue_is_fifo_model_queue_first_then_falls_back(fake_api: FakeAPI) -> None:
    fake_api.enqueue("first", Reply(text="second"))
    fake_api.enqueue("for-b", model="b")
    got = [text_of(ask(fake_api, "openai", "sync", model=m)) for m in ["b", "a", "b", "a"]]
    assert got == ["for-b", "first", "second", "Echo: hello there"]


def test_async_responder_is_awaited(fake_api: FakeAPI) -> None:
    async def slow(request: Request) -> str:
        await asyncio.sleep(0.01)
        return "awaited"

    fake_api.respond(slow)
    assert text_of(ask(fake_api, "anthropic", "sync")) == "awaited"


def test_served_model_overrides_response_model(fake_api: FakeAPI) -> None:
    fake_api.served_model["alias"] = "alias-2025-01-01"
    assert ask(fake_api, "openai", "sync", model="alias").model == "alias-2025-01-01"
    assert ask(fake_api, "anthropic", "sync", model="alias").model == "alias-2025-01-01"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_usage_override(fake_api: FakeAPI, provider: str) -> None:
    fake_api.enqueue(Reply(text="a b c", usage={"input_tokens": 100, "output_tokens": 7}))
    usage = ask(fake_api, provider, "sync").usage
    if provider == "openai":
        assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (100, 7, 107)
    else:
        assert (usage.input_tokens, usage.output_tokens) == (100, 7)


def test_exact_body_is_sent(fake_api: FakeAPI) -> None:
    body = success_body(Request("POST", "/v1/messages", {}, {}, kind="anthropic"), Reply(text="verbatim"), "zz", _Ids())
    fake_api.enqueue(Reply(body=body))
    response = ask(fake_api, "anthropic", "sync", model="ignored")
    assert text_of(response) == "verbatim" and response.model == "zz"


def test_delay_is_added_to_latency(fake_api: FakeAPI) -> None:
    fake_api.latency = 0.1
    fake_api.enqueue(Reply(text="late", delay=0.1))
    start = time.perf_counter()
    assert text_of(ask(fake_api, "openai", "sync")) == "late"
    assert time.perf_counter() - start >= 0.2


@pytest.mark.parametrize("mode", MODES)
def test_completions_endpoint(fake_api: FakeAPI, mode: str) -> None:
    fake_api.respond_for("base", lambda r: Reply(text=" Paris.", finish_reason="length"))
    if mode == "sync":
        with make_client(fake_api, "openai", mode) as client:
            response = client.completions.create(model="base", prompt="Q: capital of France?\nA:", n=2)
    else:
        async def run() -> Completion:
            async with make_client(fake_api, "openai", mode) as client:
                return await client.completions.create(model="base", prompt="Q: capital of France?\nA:", n=2)
        response = asyncio.run(run())
    assert isinstance(response, Completion)
    assert [c.text for c in response.choices] == [" Paris.", " Paris."]
    assert response.choices[0].finish_reason == "length"
    assert response.usage.prompt_tokens == 5 and response.usage.completion_tokens == 2
    assert fake_api.requests[0].kind == "completions"
    assert fake_api.requests[0].prompt == "Q: capital of France?\nA:"


@pytest.mark.parametrize("mode", MODES)
def test_models_listing_in_both_shapes(fake_api: FakeAPI, mode: str) -> None:
    fake_api.listed_models = ["gpt-a", "gpt-b"]
    if mode == "sync":
        with make_client(fake_api, "openai", mode) as oc:
            openai_ids = [m.id for m in oc.models.list()]
        with make_client(fake_api, "anthropic", mode) as ac:
            anthropic_ids = [m.id for m in ac.models.list()]
    else:
        async def run() -> tuple[list[str], list[str]]:
            async with make_client(fake_api, "openai", mode) as oc:
                o = [m.id async for m in oc.models.list()]
            async with make_client(fake_api, "anthropic", mode) as ac:
                a = [m.id async for m in ac.models.list()]
            return o, a
        openai_ids, anthropic_ids = asyncio.run(run())
    assert openai_ids == anthropic_ids == ["gpt-a", "gpt-b"]
    assert fake_api.count("models") == 2 and fake_api.count("/v1/models") == 2


def test_models_listing_defaults_to_scripted_names_and_takes_queued_errors(fake_api: FakeAPI) -> None:
    fake_api.respond_for("scripted", lambda r: "x")
    fake_api.enqueue(Reply(status=401))
    with make_client(fake_api, "openai", "sync") as client:
        with pytest.raises(openai.AuthenticationError):
            client.models.list()
        assert [m.id for m in client.models.list()] == ["fake-model", "scripted"]


# --------------------------------------------------------------------------- stop reasons


@pytest.mark.parametrize(
    "finish_reason,openai_expected,anthropic_expected",
    [
        ("content_filter", "content_filter", "refusal"),
        ("refusal", "content_filter", "refusal"),
        ("length", "length", "max_tokens"),
        ("max_tokens", "length", "max_tokens"),
        (None, "stop", "end_turn"),
    ],
)
@pytest.mark.parametrize("provider,mode", COMBOS)
def test_stop_reasons_translate_between_providers(
    fake_api: FakeAPI, provider: str, mode: str, finish_reason: str | None, openai_expected: str, anthropic_expected: str
) -> None:
    fake_api.enqueue(Reply(text="partial", finish_reason=finish_reason))
    response = ask(fake_api, provider, mode)
    assert stop_of(response) == (openai_expected if provider == "openai" else anthropic_expected)
    if provider == "anthropic":
        assert (response.stop_details is not None) == (anthropic_expected == "refusal")


def test_openai_message_refusal_field(fake_api: FakeAPI) -> None:
    fake_api.enqueue(Reply(refusal="I'm sorry, I can't assist with that."))
    message = ask(fake_api, "openai", "sync").choices[0].message
    assert message.content is None and message.refusal == "I'm sorry, I can't assist with that."


def test_anthropic_empty_text_gives_empty_content(fake_api: FakeAPI) -> None:
    fake_api.enqueue(Reply(text="", finish_reason="refusal"))
    response = ask(fake_api, "anthropic", "async")
    assert response.content == [] and response.stop_reason == "refusal"


# --------------------------------------------------------------------------- HTTP errors


@pytest.mark.parametrize(
    "provider,reply,exc_name,error_type,error_code",
    [
        ("openai", Reply(status=429, headers={"Retry-After": "7"}), "RateLimitError", "requests", "rate_limit_exceeded"),
        ("openai", Reply(status=500), "InternalServerError", "server_error", None),
        ("openai", Reply(status=401), "AuthenticationError", "invalid_request_error", "invalid_api_key"),
        ("openai", Reply(status=400, error_code="content_policy_violation"), "BadRequestError", "invalid_request_error",
         "content_policy_violation"),
        ("openai", Reply(status=400, error_code="content_filter"), "BadRequestError", "invalid_request_error",
         "content_filter"),
        ("anthropic", Reply(status=429, headers={"retry-after": "7"}), "RateLimitError", "rate_limit_error", None),
        ("anthropic", Reply(status=500), "InternalServerError", "api_error", None),
        ("anthropic", Reply(status=529), "InternalServerError", "overloaded_error", None),
        ("anthropic", Reply(status=401), "AuthenticationError", "authentication_error", None),
        ("anthropic", Reply(status=400, text="bad thing"), "BadRequestError", "invalid_request_error", None),
    ],
)
@pytest.mark.parametrize("mode", MODES)
def test_status_errors_have_the_provider_shape(
    fake_api: FakeAPI, mode: str, provider: str, reply: Reply, exc_name: str, error_type: str, error_code: str | None
) -> None:
    fake_api.enqueue(reply)
    with pytest.raises(getattr(sdk(provider), exc_name)) as info:
        ask(fake_api, provider, mode)
    error = info.value
    assert error.status_code == reply.status
    if provider == "openai":
        assert error.body["type"] == error_type and error.body["code"] == error_code
        assert error.request_id and error.request_id.startswith("req_fake")
    else:
        assert error.body["type"] == "error" and error.body["error"]["type"] == error_type
        assert error.request_id and error.request_id.startswith("req_fake")
    if reply.text:
        assert reply.text in str(error)
    if reply.status == 429:
        assert error.response.headers["retry-after"] == "7"
    assert fake_api.successes == 0 and fake_api.requests[0].status == reply.status


def test_rate_limit_headers_pass_through(fake_api: FakeAPI) -> None:
    headers = {"retry-after-ms": "250", "x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "1s"}
    fake_api.enqueue(Reply(status=429, headers=headers))
    with pytest.raises(openai.RateLimitError) as info:
        ask(fake_api, "openai", "sync")
    for name, value in headers.items():
        assert info.value.response.headers[name] == value


# --------------------------------------------------------------------------- faults


FAULTS = [
    ("hang", Reply(hang=True), "APITimeoutError"),
    ("malformed", Reply(malformed=True), None),  # the SDKs let json.JSONDecodeError through
    ("empty", Reply(empty=True), None),
    ("reset", Reply(reset=True), "APIConnectionError"),
]


@pytest.mark.parametrize("fault,reply,exc_name", FAULTS, ids=[f[0] for f in FAULTS])
@pytest.mark.parametrize("provider,mode", COMBOS)
def test_faults_raise_in_the_sdk_and_server_survives(
    fake_api: FakeAPI, provider: str, mode: str, fault: str, reply: Reply, exc_name: str | None
) -> None:
    fake_api.enqueue(reply)
    expected = getattr(sdk(provider), exc_name) if exc_name else ValueError
    start = time.perf_counter()
    with pytest.raises(expected):
        ask(fake_api, provider, mode, timeout=0.2)
    assert time.perf_counter() - start < 2
    assert fake_api.successes == 0
    assert text_of(ask(fake_api, provider, mode)) == "Echo: hello there"
    assert fake_api.successes == 1 and fake_api.errors == []


def test_hanging_connection_is_released_when_client_gives_up(fake_api: FakeAPI) -> None:
    fake_api.enqueue(Reply(hang=True))
    with pytest.raises(openai.APITimeoutError):
        ask(fake_api, "openai", "sync", timeout=0.1)
    deadline = time.monotonic() + 2
    while fake_api.open_connections() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert fake_api.open_connections() == 0


def test_close_cuts_hanging_and_idle_connections_quickly() -> None:
    api = FakeAPI()
    api.enqueue(Reply(hang=True))
    idle = socket.create_connection((api.host, api.port))
    hanging = socket.create_connection((api.host, api.port))
    with idle, hanging:
        hanging.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}")
        deadline = time.monotonic() + 2
        while api.count() == 0 and time.monotonic() < deadline:
            time.sleep(0.005)
        start = time.perf_counter()
        api.close()
        assert time.perf_counter() - start < 0.5
        hanging.settimeout(2)
        assert hanging.recv(100) == b""  # closed, never answered
    api.close()  # idempotent
    assert not api._thread.is_alive()


@pytest.mark.parametrize(
    "wire",
    [
        b"POST /v1/chat/completions HTTP/1.1\r\nContent-Length: 100\r\n\r\n{\"model\"",  # half a body
        b"POST /v1/chat/completions HTTP/1.1\r\nContent-Le",  # half the headers
        b"NONSENSE\r\n\r\n",  # not HTTP
        b"POST /v1/chat/completions HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",  # bad chunk size
        b"POST /v1/chat/completions HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
    ],
)
def test_garbage_and_half_requests_do_not_hurt_the_server(fake_api: FakeAPI, wire: bytes) -> None:
    with socket.create_connection((fake_api.host, fake_api.port)) as sock:
        sock.sendall(wire)
        sock.shutdown(socket.SHUT_WR)
        sock.settimeout(2)
        assert sock.recv(100) == b""
    assert text_of(ask(fake_api, "openai", "sync")) == "Echo: hello there"
    assert fake_api.errors == []


def test_responder_exception_becomes_500_and_is_recorded(fake_api: FakeAPI) -> None:
    fake_api.respond(lambda r: 1 / 0)
    with pytest.raises(openai.InternalServerError):
        ask(fake_api, "openai", "sync")
    assert len(fake_api.errors) == 1 and "ZeroDivisionError" in fake_api.errors[0]


# --------------------------------------------------------------------------- raw HTTP


def test_chunked_request_body_and_query_string(fake_api: FakeAPI) -> None:
    payload = json.dumps({"model": "c", "messages": [{"role": "user", "content": "in chunks"}]}).encode()
    parts = [payload[:10], payload[10:]]
    wire = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"
    head = b"POST /v1/chat/completions?api-version=2024-10-21 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
    with socket.create_connection((fake_api.host, fake_api.port)) as sock:
        sock.sendall(head + b"Connection: close\r\n\r\n" + wire)
        sock.settimeout(2)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head_bytes, _, body = data.partition(b"\r\n\r\n")
    assert head_bytes.startswith(b"HTTP/1.1 200 OK")
    assert ChatCompletion.model_validate_json(body).choices[0].message.content == "Echo: in chunks"
    assert fake_api.requests[0].path == "/v1/chat/completions"


def test_expect_continue_and_gzip_request_bodies(fake_api: FakeAPI) -> None:
    payload = gzip.compress(json.dumps({"model": "g", "messages": [{"role": "user", "content": "zipped"}]}).encode())
    head = (b"POST /v1/chat/completions HTTP/1.1\r\nContent-Encoding: gzip\r\nExpect: 100-continue\r\n"
            b"Connection: close\r\nContent-Length: %d\r\n\r\n" % len(payload))
    with socket.create_connection((fake_api.host, fake_api.port)) as sock:
        sock.settimeout(2)
        sock.sendall(head)
        assert sock.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(payload)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    body = data.partition(b"\r\n\r\n")[2]
    assert ChatCompletion.model_validate_json(body).choices[0].message.content == "Echo: zipped"


def test_unknown_path_does_not_consume_the_queue(fake_api: FakeAPI) -> None:
    fake_api.enqueue("queued")
    assert raw_http(fake_api, "POST", "/v1/responses", b"{}")[0] == 404
    assert text_of(ask(fake_api, "openai", "sync")) == "queued"


def test_keep_alive_serves_several_requests_on_one_connection(fake_api: FakeAPI) -> None:
    conn = http.client.HTTPConnection(fake_api.host, fake_api.port, timeout=5)
    try:
        for word in ["one", "two", "three"]:
            body = json.dumps({"model": "k", "messages": [{"role": "user", "content": word}]})
            conn.request("POST", "/v1/chat/completions", body=body, headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            assert response.status == 200 and response.getheader("connection") == "keep-alive"
            assert json.loads(response.read())["choices"][0]["message"]["content"] == f"Echo: {word}"
    finally:
        conn.close()
    assert fake_api.count("chat") == 3 and fake_api.connections == 1 and fake_api.peak_in_flight == 1


@pytest.mark.parametrize(
    "method,path,body,headers,status,shape",
    [
        ("GET", "/v2/nothing", None, {}, 404, "openai"),
        ("POST", "/v1/messages/batches", b"{}", {"anthropic-version": "2023-06-01"}, 404, "anthropic"),
        ("POST", "/v1/chat/completions", b"{not json", {}, 400, "openai"),
        ("POST", "/v1/messages", b"[1, 2]", {}, 400, "anthropic"),
        ("POST", "/v1/chat/completions", b'{"model": "m", "stream": true}', {}, 400, "openai"),
    ],
)
def test_unknown_paths_and_bad_json_get_provider_errors(
    fake_api: FakeAPI, method: str, path: str, body: bytes | None, headers: dict[str, str], status: int, shape: str
) -> None:
    fake_api.allow_invalid = True  # unparseable and incomplete bodies, on purpose
    got, _, raw = raw_http(fake_api, method, path, body, headers)
    assert got == status
    data = json.loads(raw)
    assert ("message" in data["error"]) and ((data.get("type") == "error") == (shape == "anthropic"))


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_valid_streaming_request_gets_a_400_that_is_not_an_invalid_body(fake_api: FakeAPI, provider: str) -> None:
    if provider == "openai":
        path, body, headers = "/v1/chat/completions", {"model": "m", "messages": [{"role": "user", "content": "a"}]}, {}
    else:
        path, body = "/v1/messages", {"model": "m", "max_tokens": 8, "messages": [{"role": "user", "content": "a"}]}
        headers = {"anthropic-version": "2026-10-21"}
    got, _, raw = raw_http(fake_api, "POST", path, json.dumps({**body, "stream": True}).encode(), headers)
    assert got == 400 and "does not implement streaming" in raw.decode()
    assert fake_api.invalid_requests == []


# --------------------------------------------------------------------------- concurrency


@pytest.mark.parametrize("provider", PROVIDERS)
def test_128_concurrent_async_requests_overlap(fake_api: FakeAPI, provider: str) -> None:
    fake_api.latency = 0.2

    async def run() -> list[str | None]:
        if provider == "openai":
            async with make_client(fake_api, "openai", "async") as client:
                calls = [client.chat.completions.create(model="c", messages=[{"role": "user", "content": f"n{i}"}])
                         for i in range(128)]
                return [text_of(r) for r in await asyncio.gather(*calls)]
        async with make_client(fake_api, "anthropic", "async") as client:
            calls = [client.messages.create(model="c", max_tokens=8, messages=[{"role": "user", "content": f"n{i}"}])
                     for i in range(128)]
            return [text_of(r) for r in await asyncio.gather(*calls)]

    start = time.perf_counter()
    texts = asyncio.run(run())
    elapsed = time.perf_counter() - start
    assert texts == [f"Echo: n{i}" for i in range(128)]
    assert fake_api.successes == 128
    # All 128 were held at once: the latency is awaited, never slept in series.
    assert fake_api.peak_in_flight == 128 and fake_api.in_flight == 0
    # Server-side residence stays near the latency even with 128 in flight.
    residence = max(r.answered_at - r.received_at for r in fake_api.requests if r.answered_at)
    assert 0.2 <= residence < 0.6, f"slowest request spent {residence:.2f}s in the server"
    # Wall clock: ~1.1 s on an idle 2-core box, almost all of it the SDK's own CPU (~7 ms a
    # request). The bound is loose so a loaded CI box does not flake; serial would be 25 s.
    assert elapsed < 6, f"128 concurrent requests took {elapsed:.2f}s"


# --------------------------------------------------------------------------- pure helpers


def _req(kind: str, body: dict[str, Any]) -> Request:
    paths = {"chat": "/v1/chat/completions", "completions": "/v1/completions", "anthropic": "/v1/messages"}
    request = Request("POST", paths[kind], {}, body, kind=kind, model=body.get("model"))
    request.messages = body.get("messages", [])
    request.system = body.get("system")
    request.prompt = body.get("prompt")
    return request


@pytest.mark.parametrize(
    "request_,expected",
    [
        (_req("chat", {"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}), "a"),
        (_req("chat", {"messages": [{"role": "user", "content": [{"type": "text", "text": "p1"},
                                                                   {"type": "text", "text": "p2"}]}]}), "p1\np2"),
        (_req("chat", {"messages": [{"role": "system", "content": "s"}]}), ""),
        (_req("anthropic", {"system": "sys", "messages": [{"role": "user", "content": [{"type": "text", "text": "q"}]}]}),
         "q"),
        (_req("completions", {"prompt": "plain"}), "plain"),
        (_req("completions", {"prompt": ["x", "y"]}), "y"),
    ],
)
def test_last_user_text(request_: Request, expected: str) -> None:
    assert request_.last_user_text() == expected


def test_anthropic_system_is_kept_apart_and_counted(fake_api: FakeAPI) -> None:
    with make_client(fake_api, "anthropic", "sync") as client:
        response = client.messages.create(model="s", max_tokens=8, system="be brief please",
                                          messages=[{"role": "user", "content": "hi"}])
    request = fake_api.requests[0]
    assert request.system == "be brief please" and request.messages == [{"role": "user", "content": "hi"}]
    assert "anthropic-version" in request.headers and request.provider == "anthropic"
    assert "test" in (request.headers.get("x-api-key", "") + request.headers.get("authorization", ""))
    assert response.usage.input_tokens == 4


@pytest.mark.parametrize(
    "kind,body,reply,validator",
    [
        ("chat", {"model": "m", "messages": [{"role": "user", "content": "hi"}]}, Reply(text="ok"), ChatCompletion),
        ("chat", {"model": "m", "n": 3, "messages": []}, Reply(text="ok", finish_reason="content_filter"), ChatCompletion),
        ("chat", {"model": "m", "messages": []}, Reply(refusal="no"), ChatCompletion),
        ("completions", {"model": "m", "prompt": "p"}, Reply(text=" go", finish_reason="length"), Completion),
        ("anthropic", {"model": "m", "messages": []}, Reply(text="ok", finish_reason="refusal"), Message),
        ("anthropic", {"model": "m", "messages": []}, Reply(text=""), Message),
    ],
)
def test_success_bodies_validate_against_sdk_types(kind: str, body: dict[str, Any], reply: Reply, validator: Any) -> None:
    parsed = validator.model_validate(success_body(_req(kind, body), reply, "served", _Ids()))
    assert parsed.model == "served"
    if validator is not Message:
        assert len(parsed.choices) == body.get("n", 1)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 429, 500, 503, 418])
def test_error_bodies_parse_as_sdk_error_objects(status: int) -> None:
    from anthropic.types import ErrorResponse
    from openai.types import ErrorObject

    oai = error_body("openai", Reply(status=status))
    assert ErrorObject.model_validate(oai["error"]).message
    ant = ErrorResponse.model_validate(error_body("anthropic", Reply(status=status)))
    assert ant.error.message


@pytest.mark.parametrize(
    "content,expected",
    [("s", "s"), ([{"type": "text", "text": "a"}, {"type": "image_url"}, "b"], "a\nb"), (None, ""), (5, "")],
)
def test_content_text(content: Any, expected: str) -> None:
    assert content_text(content) == expected


def test_reset_clears_all_state(fake_api: FakeAPI) -> None:
    fake_api.respond(lambda r: "d")
    fake_api.respond_for("m", lambda r: "m")
    fake_api.enqueue("q")
    fake_api.enqueue("qm", model="m")
    fake_api.served_model["m"] = "other"
    ask(fake_api, "openai", "sync", model="x")
    fake_api.reset()
    assert fake_api.requests == [] and fake_api.successes == 0 and fake_api.count() == 0
    response = ask(fake_api, "openai", "sync", model="m")
    assert text_of(response) == "Echo: hello there" and response.model == "m"


# --------------------------------------------------------------------------- CLI


def test_cli_prints_base_url_and_serves_until_terminated() -> None:
    script = Path(__file__).with_name("fakeapi.py")
    proc = subprocess.Popen([sys.executable, str(script), "--port", "0", "--latency", "0.01"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        base_url = proc.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:")
        with openai.OpenAI(base_url=base_url + "/v1", api_key="t", max_retries=0, timeout=5) as client:
            response = client.chat.completions.create(model="b", messages=[{"role": "user", "content": "ping"}])
        assert response.choices[0].message.content == "Echo: ping"
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=5)
    assert proc.returncode == 0
    assert "requests=1 successes=1" in err


def test_the_loopback_guard_stops_a_hosted_host_and_fails_the_test(_loopback_only: list[str]) -> None:
    """conftest's ``_loopback_only``: a connection beyond loopback fails as on a machine without
    a network and is recorded (the fixture then fails the test at teardown); loopback works."""
    import socket

    with pytest.raises(OSError):
        socket.create_connection(("api.provider.example", 443), timeout=1)
    with socket.socket() as s, pytest.raises(OSError):
        s.connect(("203.0.113.7", 443))  # TEST-NET-3, by address: connect itself is stopped
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        socket.create_connection(server.getsockname(), timeout=1).close()
    assert _loopback_only == ["('api.provider.example',)", "('203.0.113.7', 443)"]
    _loopback_only.clear()  # stopped on purpose here: do not fail this test for it
