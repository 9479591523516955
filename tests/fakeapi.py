"""A real HTTP/1.1 server on loopback that speaks the OpenAI and Anthropic wire formats.

Why: taxcheck's end-to-end tests and benchmarks drive the *real* `openai` and `anthropic`
SDK clients (never monkeypatched), so the thing on the other end of the socket has to
behave like the providers do: the same JSON bodies, the same error shapes, the same
headers, and the same ugly failures (hangs, resets, truncated bodies). The server is pure
standard library: an asyncio server running its own loop in a daemon thread.

It is also as strict as the providers (issue 10), so that tests cannot agree with a client's
misunderstanding: every request body is validated against the SDKs' own parameter types
(``fakeapi_validate``: unknown fields at any depth, wrong types, documented rules) and an
invalid one gets the provider's 400 and is recorded in ``invalid_requests`` (the
``fake_api`` fixture fails such a test unless it sets ``allow_invalid``); models behave per
their profile (``fakeapi_models``, ``FakeAPI.profile``): reasoning models refuse parameters
and spend hidden tokens out of the output budget, Anthropic thinking comes first.
``policy_error`` and ``azure_content_filter`` script the providers' safety refusals.

Endpoints: POST /v1/chat/completions, POST /v1/completions, GET /v1/models (OpenAI shape, or
Anthropic shape when the request carries an ``anthropic-version`` header) and
POST /v1/messages. Anything else gets a 404 in the provider's error shape.

Which reply a request gets, first match wins:
  1. the one-shot queue for the request's model (``enqueue(..., model=m)``), FIFO;
  2. the general one-shot queue (``enqueue(...)``), FIFO — it applies to every known
     endpoint, including GET /v1/models (unknown paths get a 404 and consume nothing);
  3. the responder for the request's model (``respond_for``);
  4. the default responder (``respond``);
  5. the built-in echo: ``"Echo: <last user text>"``.
A request the provider would refuse (an invalid body, a parameter the model does not take)
gets that 400 instead, unless the queue's next reply is a scripted failure (see
``fakeapi_strict``); a queued 200 answer is then kept for the next valid request.

Counters for assertions: ``requests`` (every request, arrival order), ``successes``
(well-formed 200s sent), ``in_flight`` / ``peak_in_flight`` (requests held at once: checks a
client's concurrency limit), ``connections`` (TCP accepts: checks keep-alive reuse) and
``errors`` (tracebacks of responders that raised; those requests got a 500). Counters are
settled before the response bytes leave, so a client holding its answer sees them updated.

A ``hang`` reply holds the request until the client closes the socket (its timeout), the
server closes, or ``hang_seconds`` pass; it never blocks ``close()``. Streaming requests
(``stream: true``) are answered with a 400: the fake does not speak SSE.

Batch APIs (off by default, as on most OpenAI-compatible servers: ``FakeAPI(batches=True)``
or ``api.batches_enabled = True``): OpenAI's POST /v1/files (multipart upload),
GET /v1/files/{id}[/content], POST /v1/batches, GET /v1/batches/{id}, and Anthropic's
POST /v1/messages/batches, GET /v1/messages/batches/{id}[/results]. Each request inside a
batch is answered by the same script as a synchronous one (queues, ``respond_for``,
``respond``, echo) when the batch ends, and recorded in ``batch_requests``. How each created
batch behaves (polls before it ends, completed / expired / failed / cancelled, how many
requests an expired batch answered) is scripted FIFO with ``script_batches(BatchScript(...))``;
``batch_http`` queues replies for the batch endpoints' own HTTP requests (a 503 on a poll).

Standalone (benchmarks):  ``python tests/fakeapi.py --port 0 --latency 0.2`` prints the base
URL as its first stdout line and serves the echo responder until SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import inspect
import itertools
import json
import re
import signal
import socket
import struct
import sys
import threading
import time
import traceback
import zlib
from collections import deque
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any, Awaitable, Callable, Mapping, Union

from fakeapi_models import azure_content_filter_body, policy_body
from fakeapi_strict import StrictMixin, is_scripted_failure

__all__ = [
    "BatchScript", "FakeAPI", "Reply", "Request", "Responder", "azure_content_filter", "parse_multipart", "policy_error",
]

HANG_SECONDS = 3600.0
"""How long a ``hang`` reply holds the connection: far past any client timeout."""

MAX_HEADER_BYTES = 64 * 1024
MAX_BODY_BYTES = 64 * 1024 * 1024


@dataclass
class Reply:
    """What the server should do with one request.

    ``finish_reason`` None means the normal stop ("stop" for OpenAI, "end_turn" for
    Anthropic). Values are translated between providers so one script serves both:
    "content_filter" <-> "refusal", "length" <-> "max_tokens", "stop" <-> "end_turn".
    ``status`` >= 400 sends the provider's error body (message = ``text`` or a stock one;
    ``error_type`` / ``error_code`` override the stock type and code).
    ``body`` sends this exact dict as JSON (with ``status``). ``usage`` is merged into the
    computed usage object; the generic keys input_tokens/output_tokens and OpenAI's
    prompt_tokens/completion_tokens are translated to the provider's names.
    ``refusal`` (OpenAI chat only) fills ``message.refusal`` and nulls ``content``.
    The fault flags are mutually exclusive; the first set in the order hang, reset,
    malformed, empty wins.
    """

    text: str = ""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    hang: bool = False
    malformed: bool = False
    reset: bool = False
    empty: bool = False
    finish_reason: str | None = None
    body: Any = None
    usage: dict[str, Any] | None = None
    error_type: str | None = None
    error_code: str | None = None
    refusal: str | None = None


@dataclass
class Request:
    """One request as the server received it (headers lower-cased, body parsed as JSON)."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    raw_body: bytes = b""
    model: str | None = None
    kind: str = "other"  # "chat" | "completions" | "anthropic" | "models" | "other"
    messages: list[dict[str, Any]] = field(default_factory=list)
    system: Any = None
    prompt: Any = None
    received_at: float = 0.0  # time.monotonic() when the body was read
    answered_at: float | None = None  # time.monotonic() when the response went out (or hang began)
    status: int | None = None  # status line actually sent; None if no response was started
    route_id: str | None = None  # the {id} of a batch/file route

    @property
    def provider(self) -> str:
        """"anthropic" for /v1/messages or any request carrying anthropic-version."""
        if self.kind == "anthropic" or "anthropic-version" in self.headers:
            return "anthropic"
        return "openai"

    def last_user_text(self) -> str:
        """Text of the last user turn (or the completions prompt); '' if there is none."""
        if self.kind == "completions":
            prompt = self.prompt
            if isinstance(prompt, list):
                prompt = prompt[-1] if prompt else ""
            return prompt if isinstance(prompt, str) else ""
        for message in reversed(self.messages):
            if isinstance(message, dict) and message.get("role") == "user":
                return content_text(message.get("content"))
        return ""

    def input_text(self) -> str:
        """All the prompt text the model would read, for token counting."""
        if self.kind == "completions":
            prompt = self.prompt
            return " ".join(prompt) if isinstance(prompt, list) else str(prompt or "")
        parts = [content_text(self.system)] if self.system else []
        parts += [content_text(m.get("content")) for m in self.messages if isinstance(m, dict)]
        return " ".join(parts)


Responder = Callable[[Request], Union[Reply, str, Awaitable[Union[Reply, str]]]]


def content_text(content: Any) -> str:
    """Flatten a message content (string or list of text parts/blocks) to plain text."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for part in content:
            if isinstance(part, str):
                texts.append(part)
            elif isinstance(part, dict) and isinstance(part.get("text"), str):
                texts.append(part["text"])
        return "\n".join(texts)
    return ""


def count_tokens(text: str) -> int:
    """Whitespace tokens: crude, deterministic and good enough for usage accounting."""
    return len(text.split())


def echo(request: Request) -> Reply:
    """The default responder: deterministic and content-dependent."""
    return Reply(text=f"Echo: {request.last_user_text()}")


# --------------------------------------------------------------------------- bodies

_OPENAI_ERRORS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Invalid request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: ("invalid_request_error", "unsupported_country_region_territory", "Forbidden."),
    404: ("invalid_request_error", "model_not_found", "The model does not exist."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached. Please try again later."),
    500: ("server_error", None, "The server had an error while processing your request."),
    503: ("server_error", None, "The engine is currently overloaded, please try again later."),
}
_OPENAI_CONTENT_POLICY = "Your request was rejected as a result of our safety system."

_ANTHROPIC_ERRORS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "Invalid request."),
    401: ("authentication_error", "invalid x-api-key"),
    403: ("permission_error", "Your API key does not have permission to use the specified resource."),
    404: ("not_found_error", "The requested resource could not be found."),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: ("rate_limit_error", "Number of requests has exceeded your rate limit."),
    500: ("api_error", "Internal server error."),
    504: ("timeout_error", "Request timed out."),
    529: ("overloaded_error", "Overloaded"),
}

_TO_OPENAI = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "refusal": "content_filter"}
_TO_ANTHROPIC = {"stop": "end_turn", "length": "max_tokens", "content_filter": "refusal"}


def error_body(provider: str, reply: Reply) -> dict[str, Any]:
    """The provider's real error envelope for ``reply.status``."""
    status = reply.status
    if provider == "anthropic":
        etype, message = _ANTHROPIC_ERRORS.get(status, ("api_error" if status >= 500 else "invalid_request_error", "Error."))
        return {
            "type": "error",
            "error": {"type": reply.error_type or etype, "message": reply.text or message},
        }
    default = _OPENAI_ERRORS.get(status) or (("server_error" if status >= 500 else "invalid_request_error"), None, "Error.")
    etype, code, message = default
    code = reply.error_code if reply.error_code is not None else code
    if code in ("content_policy_violation", "content_filter") and not reply.text:
        message = _OPENAI_CONTENT_POLICY
    return {
        "error": {
            "message": reply.text or message,
            "type": reply.error_type or etype,
            "param": None,
            "code": code,
        }
    }


def _merge_usage(base: dict[str, Any], extra: dict[str, Any] | None, aliases: dict[str, str]) -> dict[str, Any]:
    usage = dict(base)
    for key, value in (extra or {}).items():
        usage[aliases.get(key, key)] = value
    return usage


class _Ids:
    """Thread-safe sequential ids so responses are distinct but deterministic per server."""

    def __init__(self) -> None:
        self._counter = itertools.count(1)
        self._lock = threading.Lock()

    def next(self, prefix: str) -> str:
        with self._lock:
            return f"{prefix}{next(self._counter):08d}"


def success_body(request: Request, reply: Reply, model: str, ids: _Ids) -> dict[str, Any]:
    """A 200 body that validates against the SDK's own response type for ``request.kind``."""
    created = int(time.time())
    in_tokens = count_tokens(request.input_text())
    out_tokens = count_tokens(reply.text)
    body = request.body if isinstance(request.body, dict) else {}
    n = body.get("n") if isinstance(body.get("n"), int) and body.get("n", 0) > 0 else 1

    if request.kind == "anthropic":
        stop = reply.finish_reason or "end_turn"
        stop = _TO_ANTHROPIC.get(stop, stop)
        usage = _merge_usage(
            {"input_tokens": in_tokens, "output_tokens": out_tokens,
             "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0},
            reply.usage,
            {"prompt_tokens": "input_tokens", "completion_tokens": "output_tokens"},
        )
        return {
            "id": ids.next("msg_fake"),
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [{"type": "text", "text": reply.text}] if reply.text else [],
            "stop_reason": stop,
            "stop_sequence": None,
            "stop_details": {"type": "refusal", "category": None, "explanation": None} if stop == "refusal" else None,
            "usage": usage,
        }

    finish = reply.finish_reason or "stop"
    finish = _TO_OPENAI.get(finish, finish)
    usage = _merge_usage(
        {"prompt_tokens": in_tokens, "completion_tokens": out_tokens * n},
        reply.usage,
        {"input_tokens": "prompt_tokens", "output_tokens": "completion_tokens"},
    )
    usage.setdefault("total_tokens", usage["prompt_tokens"] + usage["completion_tokens"])
    if request.kind == "completions":
        return {
            "id": ids.next("cmpl-fake"),
            "object": "text_completion",
            "created": created,
            "model": model,
            "choices": [
                {"text": reply.text, "index": i, "logprobs": None, "finish_reason": finish} for i in range(n)
            ],
            "usage": usage,
            "system_fingerprint": "fp_fakeapi",
        }
    message: dict[str, Any] = {
        "role": "assistant",
        "content": None if reply.refusal is not None else reply.text,
        "refusal": reply.refusal,
        "annotations": [],
    }
    return {
        "id": ids.next("chatcmpl-fake"),
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {"index": i, "message": dict(message), "logprobs": None, "finish_reason": finish} for i in range(n)
        ],
        "usage": usage,
        "service_tier": "default",
        "system_fingerprint": "fp_fakeapi",
    }


def models_body(provider: str, ids: list[str]) -> dict[str, Any]:
    """The model listing in the provider's pagination shape."""
    if provider == "anthropic":
        data = [
            {"type": "model", "id": m, "display_name": m, "created_at": "2025-01-01T00:00:00Z"} for m in ids
        ]
        return {
            "data": data,
            "has_more": False,
            "first_id": ids[0] if ids else None,
            "last_id": ids[-1] if ids else None,
        }
    return {
        "object": "list",
        "data": [{"id": m, "object": "model", "created": 1735689600, "owned_by": "fakeapi"} for m in ids],
    }


# --------------------------------------------------------------------------- HTTP


class _BadRequest(Exception):
    """The bytes on the wire are not an HTTP request we can answer; close the connection."""


_REASONS = {
    100: "Continue", 200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
    404: "Not Found", 405: "Method Not Allowed", 409: "Conflict", 413: "Payload Too Large",
    422: "Unprocessable Entity", 429: "Too Many Requests", 500: "Internal Server Error",
    502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout", 529: "Overloaded",
}

_ROUTES = {
    ("POST", "/v1/chat/completions"): "chat",
    ("POST", "/v1/completions"): "completions",
    ("POST", "/v1/messages"): "anthropic",
    ("GET", "/v1/models"): "models",
}


def _abort_with_rst(transport: asyncio.BaseTransport) -> None:
    """Close with a TCP RST (SO_LINGER 0), the way a crashed proxy drops a connection."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    transport.abort()


async def _read_head(reader: asyncio.StreamReader) -> tuple[str, str, str, dict[str, str]] | None:
    """Read a request line and headers; None on a clean EOF between requests."""
    try:
        raw = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if not exc.partial.strip():
            return None
        raise _BadRequest("connection closed mid-headers") from exc
    except asyncio.LimitOverrunError as exc:
        raise _BadRequest("headers too large") from exc
    lines = raw.decode("latin-1").split("\r\n")
    while lines and not lines[0]:  # tolerate stray CRLFs between requests
        lines.pop(0)
    try:
        method, target, version = lines[0].split(" ", 2)
    except (ValueError, IndexError) as exc:
        raise _BadRequest("bad request line") from exc
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise _BadRequest("bad header line")
        headers[name.strip().lower()] = value.strip()
    return method.upper(), target, version, headers


async def _read_body(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, headers: dict[str, str]) -> bytes:
    """Read a Content-Length or chunked body, answering ``Expect: 100-continue`` first."""
    if headers.get("expect", "").lower() == "100-continue":
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        await writer.drain()
    try:
        if "chunked" in headers.get("transfer-encoding", "").lower():
            chunks = []
            total = 0
            while True:
                size_line = await reader.readuntil(b"\r\n")
                size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers
                        pass
                    break
                total += size
                if total > MAX_BODY_BYTES:
                    raise _BadRequest("body too large")
                chunks.append(await reader.readexactly(size))
                await reader.readexactly(2)
            body = b"".join(chunks)
        else:
            length = int(headers.get("content-length", "0") or "0")
            if length < 0 or length > MAX_BODY_BYTES:
                raise _BadRequest("bad content-length")
            body = await reader.readexactly(length) if length else b""
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
        raise _BadRequest("bad or truncated body") from exc
    encoding = headers.get("content-encoding", "").lower()
    try:
        if encoding == "gzip":
            body = gzip.decompress(body)
        elif encoding == "deflate":
            body = zlib.decompress(body)
    except (OSError, zlib.error) as exc:
        raise _BadRequest("bad content-encoding") from exc
    return body


def _build_request(method: str, target: str, headers: dict[str, str], raw: bytes) -> Request:
    path = target.split("?", 1)[0].split("#", 1)[0]
    if "://" in path:  # absolute-form target (proxies)
        path = "/" + path.split("://", 1)[1].partition("/")[2]
    if len(path) > 1:
        path = path.rstrip("/")
    body: Any = None
    if raw:
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            body = None
    kind = _ROUTES.get((method, path), "other")
    route_id = None
    if kind == "other":
        kind, route_id = _batch_route(method, path)
    request = Request(method=method, path=path, headers=headers, body=body, raw_body=raw, kind=kind,
                      received_at=time.monotonic(), route_id=route_id)
    if isinstance(body, dict):
        model = body.get("model")
        request.model = model if isinstance(model, str) else None
        messages = body.get("messages")
        if isinstance(messages, list):
            request.messages = [m for m in messages if isinstance(m, dict)]
        request.system = body.get("system")
        request.prompt = body.get("prompt")
    return request


# --------------------------------------------------------------------------- server


class FakeAPI(StrictMixin):
    """The fake provider: start on construction, script with respond/enqueue, close when done.

    As strict as the providers (``fakeapi_strict``): bodies are validated against the SDKs'
    parameter types and rejected ones recorded in ``invalid_requests``; models behave per
    their ``profile`` (reasoning models refuse parameters and spend hidden tokens).
    """

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, latency: float = 0.0,
                 hang_seconds: float = HANG_SECONDS, batches: bool = False) -> None:
        self.latency = latency
        self.batches_enabled = batches
        self.batch = _BatchEmulator(self)
        self.hang_seconds = hang_seconds
        self.served_model: dict[str, str] = {}
        self.listed_models: list[str] | None = None
        self.requests: list[Request] = []
        self.errors: list[str] = []  # tracebacks of responders that raised (answered with 500)
        self.successes = 0
        self.connections = 0  # TCP connections accepted (keep-alive reuse check)
        self.in_flight = 0  # requests received and not yet answered
        self.peak_in_flight = 0  # high-water mark of in_flight: checks client concurrency limits
        self._lock = threading.Lock()
        self._default: Responder | None = None
        self._per_model: dict[str, Responder] = {}
        self._queue: deque[Reply] = deque()
        self._model_queues: dict[str, deque[Reply]] = {}
        self._ids = _Ids()
        self._tasks: set[asyncio.Task[None]] = set()
        self._transports: set[asyncio.BaseTransport] = set()
        self._closed = False
        self._init_strict()

        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fakeapi", daemon=True)
        self._thread.start()
        try:
            self._server = asyncio.run_coroutine_threadsafe(self._start(host, port), self._loop).result(10)
        except BaseException:
            self._stop_loop()
            raise
        sock_host, sock_port = self._server.sockets[0].getsockname()[:2]
        self.host, self.port = sock_host, sock_port
        self.base_url = f"http://{sock_host}:{sock_port}"

    # ----------------------------------------------------------------- scripting API

    def respond(self, fn: Responder) -> None:
        """Set the default responder for every request without a more specific script.

        Responders run on the server's event loop: they must not block. Return a Reply
        with ``delay`` (or make the responder ``async``) to simulate slowness.
        """
        with self._lock:
            self._default = fn

    def respond_for(self, model: str, fn: Responder) -> None:
        """Set the responder for requests whose body names ``model``."""
        with self._lock:
            self._per_model[model] = fn

    def enqueue(self, *replies: Reply | str, model: str | None = None) -> None:
        """Queue one-shot replies, used before any responder, first in first out."""
        items = [Reply(text=r) if isinstance(r, str) else r for r in replies]
        with self._lock:
            queue = self._queue if model is None else self._model_queues.setdefault(model, deque())
            queue.extend(items)

    def count(self, path: str | None = None, model: str | None = None) -> int:
        """Requests received so far, filtered by path (or kind, e.g. "chat") and model."""
        with self._lock:
            snapshot = list(self.requests)
        return sum(
            1
            for r in snapshot
            if (path is None or path in (r.path, r.kind)) and (model is None or r.model == model)
        )

    def script_batches(self, *scripts: BatchScript) -> None:
        """Queue how the next batches created behave, FIFO (unscripted: ``BatchScript()``)."""
        with self._lock:
            self.batch.scripts.extend(scripts)

    @property
    def batch_requests(self) -> list[Request]:
        """Requests answered inside batches, in the order the batches ended."""
        return self.batch.answered

    @property
    def batch_http(self) -> deque[Reply]:
        """One-shot replies for the batch endpoints' own HTTP requests (before normal handling)."""
        return self.batch.http_replies

    def batches_created(self, provider: str | None = None) -> int:
        """Batches accepted so far ("openai" / "anthropic" / all)."""
        return sum(1 for b in self.batch.batches.values() if provider in (None, b.provider))

    def open_connections(self) -> int:
        """Connections currently being served (a leak check for fault tests)."""
        return len(self._tasks)

    def reset(self) -> None:
        """Forget scripts, queues, served-model overrides and recorded requests."""
        with self._lock:
            self._default = None
            self._per_model.clear()
            self._queue.clear()
            self._model_queues.clear()
            self.served_model.clear()
            self.listed_models = None
            self.requests.clear()
            self.errors.clear()
            self.successes = 0
            self.connections = 0
            self.peak_in_flight = self.in_flight
            self.batch.reset()
            self._reset_strict()

    def close(self) -> None:
        """Stop serving, cut every open connection and join the thread. Idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10)
        finally:
            self._stop_loop()

    def __enter__(self) -> "FakeAPI":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----------------------------------------------------------------- lifecycle

    async def _start(self, host: str, port: int) -> asyncio.Server:
        return await asyncio.start_server(self._on_connect, host, port, backlog=2048, limit=MAX_HEADER_BYTES)

    async def _shutdown(self) -> None:
        self._server.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for transport in self._transports:
            transport.abort()
        self._transports.clear()
        await self._server.wait_closed()
        for _ in range(3):  # let transports run their connection_lost callbacks
            await asyncio.sleep(0)

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.run_until_complete(self._loop.shutdown_asyncgens())
        self._loop.close()

    # ----------------------------------------------------------------- connection

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._transports.add(writer.transport)
        self.connections += 1
        try:
            await self._serve_connection(reader, writer)
        except (_BadRequest, ConnectionError, asyncio.CancelledError):
            pass
        except Exception:  # never let a connection bug kill the server; keep it visible
            self.errors.append(traceback.format_exc())
        finally:
            self._tasks.discard(task)
            writer.close()  # flushes what is buffered; _shutdown aborts any stragglers
            if not writer.transport.get_write_buffer_size():
                self._transports.discard(writer.transport)

    async def _serve_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            head = await _read_head(reader)
            if head is None:
                return
            method, target, version, headers = head
            raw = await _read_body(reader, writer, headers)
            request = _build_request(method, target, headers, raw)
            with self._lock:
                self.requests.append(request)
                self.in_flight += 1
                self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
            keep_alive = version.upper() == "HTTP/1.1" and headers.get("connection", "").lower() != "close"
            settle = _Settle(self, request)
            try:
                reusable = await self._answer(request, reader, writer, keep_alive, settle)
            finally:
                settle(success=False)
            if not reusable:
                return
            if not keep_alive:
                return

    async def _answer(self, request: Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                      keep_alive: bool, settle: "_Settle") -> bool:
        """Send one response; False when the connection must not be reused.

        The counters are settled *before* the bytes go out, so a client that has its
        response in hand always sees ``successes`` and ``in_flight`` already updated.
        """
        if request.kind in _BATCH_KINDS:
            if self.batches_enabled:
                return await self.batch.answer(request, writer, keep_alive, settle)
            request.kind = "other"  # a server without batch APIs: the usual 404
        reply = await self._pick_reply(request)
        wait = self.latency + reply.delay
        if wait > 0:
            await asyncio.sleep(wait)
        if reply.hang:
            settle(success=False)
            await self._hang(reader)
            return False

        status = reply.status
        provider = request.provider
        if reply.body is not None:
            payload = json.dumps(reply.body).encode()
        elif status >= 400:
            payload = json.dumps(error_body(provider, reply)).encode()
        elif request.kind == "models":
            ids = self.listed_models if self.listed_models is not None else self._known_models()
            payload = json.dumps(models_body(provider, ids)).encode()
        else:
            model = self.served_model.get(request.model or "", request.model or "unknown")
            body = self._shaped(request, reply, success_body(request, reply, model, self._ids))
            payload = json.dumps(body).encode()

        if reply.empty:
            payload = b""
        elif reply.malformed:
            payload = payload[: max(1, len(payload) // 2)] + b"\x00<<truncated"

        headers = {
            "date": formatdate(usegmt=True),
            "content-type": "application/json",
            "content-length": str(len(payload)),
            "connection": "keep-alive" if keep_alive else "close",
        }
        request_id = self._ids.next("req_fake")
        headers["request-id" if provider == "anthropic" else "x-request-id"] = request_id
        for name, value in reply.headers.items():
            headers[name.lower()] = str(value)
        head = f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        request.status = status

        if reply.reset:
            settle(success=False)
            writer.write(head.encode("latin-1") + payload[: max(1, len(payload) // 3)])
            await writer.drain()
            while writer.transport.get_write_buffer_size():
                await asyncio.sleep(0.001)
            _abort_with_rst(writer.transport)
            return False
        settle(success=status == 200 and not (reply.malformed or reply.empty) and not writer.transport.is_closing())
        writer.write(head.encode("latin-1") + payload)
        await writer.drain()
        return True

    async def _hang(self, reader: asyncio.StreamReader) -> None:
        """Hold the request unanswered until the client gives up (EOF) or time runs out."""
        async def drain_until_eof() -> None:
            while await reader.read(65536):
                pass

        try:
            await asyncio.wait_for(drain_until_eof(), self.hang_seconds)
        except (asyncio.TimeoutError, ConnectionError):
            pass

    async def _pick_reply(self, request: Request) -> Reply:
        if request.kind == "other":  # never consumes a script meant for a real endpoint
            return Reply(status=404, text=f"Unknown endpoint {request.method} {request.path}")
        rejection = self._strict_gate(request)  # the 400 a real API sends before any model runs
        with self._lock:
            queue = self._model_queues.get(request.model or "") if request.model else None
            queue = queue or self._queue
            # A scripted failure happens whatever the body; a scripted answer only for a valid one.
            if queue and (rejection is None or is_scripted_failure(queue[0])):
                return queue.popleft()
            if rejection is not None:
                return Reply(status=rejection.status, body=rejection.body)
            if request.method == "POST" and not isinstance(request.body, dict):
                return Reply(status=400, text="We could not parse the JSON body of your request.")
            if isinstance(request.body, dict) and request.body.get("stream"):
                return Reply(status=400, text="fakeapi does not implement streaming (stream=true).")
            if request.kind == "models":
                return Reply()
            fn = self._per_model.get(request.model or "") or self._default or echo
        try:
            result = fn(request)
            if inspect.isawaitable(result):
                result = await result
        except Exception:
            self.errors.append(traceback.format_exc())
            return Reply(status=500, text="fakeapi responder raised; see FakeAPI.errors")
        if isinstance(result, str):
            return Reply(text=result)
        if not isinstance(result, Reply):
            self.errors.append(f"responder returned {type(result).__name__}, not Reply or str")
            return Reply(status=500, text="fakeapi responder returned a bad value")
        return result

    def _known_models(self) -> list[str]:
        with self._lock:
            names = {"fake-model", *self._per_model, *self._model_queues, *self.served_model}
        return sorted(names)


class _Settle:
    """Closes the books on one request exactly once: in_flight down, successes maybe up."""

    def __init__(self, api: FakeAPI, request: Request) -> None:
        self._api = api
        self._request = request
        self._done = False

    def __call__(self, *, success: bool) -> None:
        if self._done:
            return
        self._done = True
        self._request.answered_at = time.monotonic()
        with self._api._lock:
            self._api.in_flight -= 1
            if success:
                self._api.successes += 1


# --------------------------------------------------------------------------- provider policy errors


def policy_error(code: str, *, message: str | None = None, status: int | None = None) -> Reply:
    """OpenAI's refusal of a request by a safety check, as a scriptable reply.

    ``code``: "bio_policy", "cyber_policy" (400), "misalignment_policy_violation" (403) or
    "content_policy_violation" (400); the body is the provider's own (``fakeapi_models``).
    """
    status, body = policy_body(code, message, status)
    return Reply(status=status, body=body)


def azure_content_filter(filtered: Mapping[str, str] | None = None, *, jailbreak: bool = False) -> Reply:
    """Azure OpenAI's 400 ``content_filter`` for a prompt, e.g. ``{"violence": "medium"}``."""
    return Reply(status=400, body=azure_content_filter_body(filtered, jailbreak))


# --------------------------------------------------------------------------- batch APIs

_BATCH_ROUTES = [
    ("POST", re.compile(r"^/v1/files$"), "file_upload"),
    ("GET", re.compile(r"^/v1/files/([^/]+)/content$"), "file_content"),
    ("GET", re.compile(r"^/v1/files/([^/]+)$"), "file_get"),
    ("POST", re.compile(r"^/v1/batches$"), "batch_create"),
    ("GET", re.compile(r"^/v1/batches/([^/]+)$"), "batch_get"),
    ("POST", re.compile(r"^/v1/messages/batches$"), "msgbatch_create"),
    ("GET", re.compile(r"^/v1/messages/batches/([^/]+)$"), "msgbatch_get"),
    ("GET", re.compile(r"^/v1/messages/batches/([^/]+)/results$"), "msgbatch_results"),
]
_BATCH_KINDS = {kind for _m, _r, kind in _BATCH_ROUTES}
_OPENAI_BATCH_URLS = {"/v1/chat/completions": "chat", "/v1/completions": "completions"}
_ANTHROPIC_CUSTOM_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_BATCH_WINDOW_S = 24 * 3600


def _batch_route(method: str, path: str) -> tuple[str, str | None]:
    for route_method, pattern, kind in _BATCH_ROUTES:
        match = pattern.match(path) if route_method == method else None
        if match:
            return kind, (match.group(1) if match.groups() else None)
    return "other", None


def _header_params(value: str) -> tuple[str, dict[str, str]]:
    """``type/sub; k=v; k2="v 2"`` -> ("type/sub", {k: v}); quoting per RFC 2045 via ``email``."""
    from email.message import Message
    from email.utils import collapse_rfc2231_value

    msg = Message()
    msg["x"] = value
    params = msg.get_params(header="x") or [("", "")]
    main = params[0][0].strip().lower()
    return main, {k.lower(): collapse_rfc2231_value(v) for k, v in params[1:]}


@dataclass
class FormPart:
    name: str
    filename: str | None
    content_type: str
    data: bytes


def parse_multipart(content_type: str, body: bytes) -> dict[str, FormPart]:
    """The parts of a multipart/form-data body by field name (RFC 7578); ValueError if malformed.

    The delimiter is CRLF + "--" + boundary; the first one may open the body without the
    CRLF, and the last is followed by "--". Data between delimiters is taken byte for byte.
    """
    kind, params = _header_params(content_type)
    boundary = params.get("boundary")
    if kind != "multipart/form-data" or not boundary:
        raise ValueError("expected multipart/form-data with a boundary")
    delimiter = b"\r\n--" + boundary.encode("latin-1")
    pieces = (b"\r\n" + body).split(delimiter)
    if len(pieces) < 3 or not pieces[-1].startswith(b"--"):
        raise ValueError("multipart body without its closing delimiter")
    parts: dict[str, FormPart] = {}
    for piece in pieces[1:-1]:
        line_end = piece.find(b"\r\n")  # transport padding may follow the delimiter
        if line_end < 0 or piece[:line_end].strip(b" \t"):
            raise ValueError("bad multipart delimiter line")
        head, sep, data = piece[line_end + 2:].partition(b"\r\n\r\n")
        if not sep:
            if head.startswith(b"\r\n"):  # a part with no headers at all
                head, data = b"", head[2:]
            else:
                raise ValueError("multipart part without a blank line after its headers")
        headers: dict[str, str] = {}
        for line in head.decode("utf-8").split("\r\n"):
            if line:
                name, colon, value = line.partition(":")
                if not colon:
                    raise ValueError("bad multipart header line")
                headers[name.strip().lower()] = value.strip()
        disposition, dparams = _header_params(headers.get("content-disposition", ""))
        if disposition != "form-data" or "name" not in dparams:
            raise ValueError("multipart part without Content-Disposition: form-data; name=...")
        parts[dparams["name"]] = FormPart(
            dparams["name"], dparams.get("filename"), headers.get("content-type", "text/plain"), data
        )
    return parts


@dataclass
class BatchScript:
    """How one batch created on the fake server behaves.

    ``polls``: retrievals that still see it running; the next one sees it ended.
    ``outcome``: "completed" (every request answered), "expired" or "cancelled" (only the
    first ``answered`` requests were), or "failed" (OpenAI: nothing ran, ``errors`` says
    ``message``; Anthropic has no failed batches: every request errors with ``message``).
    """

    polls: int = 1
    outcome: str = "completed"
    answered: int = 0
    message: str = "The batch could not be processed."


@dataclass
class FakeFile:
    id: str
    filename: str
    purpose: str
    data: bytes
    created_at: int

    def body(self) -> dict[str, Any]:
        return {"id": self.id, "object": "file", "bytes": len(self.data), "created_at": self.created_at,
                "filename": self.filename, "purpose": self.purpose, "status": "processed",
                "expires_at": None, "status_details": None}


@dataclass
class FakeBatch:
    id: str
    provider: str  # "openai" | "anthropic"
    script: BatchScript
    requests: list[tuple[str, Request]]  # custom_id, the inner request
    created_at: int
    endpoint: str = ""  # OpenAI only
    input_file_id: str = ""
    metadata: Any = None
    invalid: list[dict[str, Any]] = field(default_factory=list)  # OpenAI validation errors
    polls: int = 0
    ended_at: int | None = None
    status: str = "validating"
    output_file_id: str | None = None
    error_file_id: str | None = None
    results: list[dict[str, Any]] = field(default_factory=list)  # Anthropic result lines
    counts: dict[str, int] = field(default_factory=dict)


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


class _BatchEmulator:
    """The files, batches and message batches of one FakeAPI; runs on the server's loop."""

    def __init__(self, api: FakeAPI) -> None:
        self.api = api
        self.files: dict[str, FakeFile] = {}
        self.batches: dict[str, FakeBatch] = {}
        self.scripts: deque[BatchScript] = deque()
        self.http_replies: deque[Reply] = deque()
        self.answered: list[Request] = []
        self._finishing: asyncio.Lock | None = None

    def reset(self) -> None:
        self.files.clear()
        self.batches.clear()
        self.scripts.clear()
        self.http_replies.clear()
        self.answered.clear()

    # ----------------------------------------------------------------- HTTP

    async def answer(self, request: Request, writer: asyncio.StreamWriter, keep_alive: bool, settle: _Settle) -> bool:
        provider = "anthropic" if request.kind.startswith("msgbatch") else "openai"
        with self.api._lock:
            scripted = self.http_replies.popleft() if self.http_replies else None
        if self.api.latency + (scripted.delay if scripted else 0.0) > 0:
            await asyncio.sleep(self.api.latency + (scripted.delay if scripted else 0.0))
        content_type = "application/json"
        if scripted is not None and (scripted.status >= 400 or scripted.body is not None):
            status = scripted.status
            body = scripted.body if scripted.body is not None else error_body(provider, scripted)
            payload = json.dumps(body).encode()
        else:
            handler = getattr(self, "_" + request.kind)
            try:
                status, result = await handler(request)
            except Exception:  # noqa: BLE001 - a handler bug must stay visible, not kill the server
                self.api.errors.append(traceback.format_exc())
                status, result = 500, error_body(provider, Reply(status=500, text="fakeapi batch handler raised"))
            if isinstance(result, bytes):
                payload, content_type = result, "application/octet-stream"
            else:
                payload = json.dumps(result).encode()
        headers = {
            "date": formatdate(usegmt=True),
            "content-type": content_type,
            "content-length": str(len(payload)),
            "connection": "keep-alive" if keep_alive else "close",
            ("request-id" if provider == "anthropic" else "x-request-id"): self.api._ids.next("req_fake"),
        }
        for name, value in (scripted.headers if scripted else {}).items():
            headers[name.lower()] = str(value)
        head = f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        request.status = status
        settle(success=status == 200 and not writer.transport.is_closing())
        writer.write(head.encode("latin-1") + payload)
        await writer.drain()
        return True

    @staticmethod
    def _error(provider: str, status: int, message: str) -> tuple[int, dict[str, Any]]:
        return status, error_body(provider, Reply(status=status, text=message))

    # ----------------------------------------------------------------- OpenAI files

    async def _file_upload(self, request: Request) -> tuple[int, Any]:
        try:
            form = parse_multipart(request.headers.get("content-type", ""), request.raw_body)
        except (ValueError, UnicodeDecodeError) as exc:
            return self._error("openai", 400, f"Could not parse multipart form: {exc}")
        upload, purpose = form.get("file"), form.get("purpose")
        if upload is None or upload.filename is None:
            return self._error("openai", 400, "Missing required parameter: 'file'.")
        if purpose is None:
            return self._error("openai", 400, "Missing required parameter: 'purpose'.")
        file = FakeFile(self.api._ids.next("file-fake"), upload.filename, purpose.data.decode(), upload.data, int(time.time()))
        with self.api._lock:
            self.files[file.id] = file
        return 200, file.body()

    async def _file_get(self, request: Request) -> tuple[int, Any]:
        file = self.files.get(request.route_id or "")
        return (200, file.body()) if file else self._error("openai", 404, f"No such File object: {request.route_id}")

    async def _file_content(self, request: Request) -> tuple[int, Any]:
        file = self.files.get(request.route_id or "")
        return (200, file.data) if file else self._error("openai", 404, f"No such File object: {request.route_id}")

    # ----------------------------------------------------------------- OpenAI batches

    async def _batch_create(self, request: Request) -> tuple[int, Any]:
        body = request.body if isinstance(request.body, dict) else None
        if body is None:
            return self._error("openai", 400, "We could not parse the JSON body of your request.")
        endpoint, window = body.get("endpoint"), body.get("completion_window")
        file = self.files.get(str(body.get("input_file_id")))
        if file is None:
            return self._error("openai", 400, f"Invalid 'input_file_id': {body.get('input_file_id')!r}.")
        if file.purpose != "batch":
            return self._error("openai", 400, "The input file must be uploaded with purpose 'batch'.")
        if endpoint not in _OPENAI_BATCH_URLS:
            return self._error("openai", 400, f"Unsupported endpoint {endpoint!r} for this fake.")
        if window != "24h":
            return self._error("openai", 400, "Invalid 'completion_window': only '24h' is supported.")
        requests, invalid = self._parse_openai_input(file.data, endpoint)
        batch = FakeBatch(
            self.api._ids.next("batch_fake"), "openai", self._next_script(), requests, int(time.time()),
            endpoint=endpoint, input_file_id=file.id, metadata=body.get("metadata"), invalid=invalid,
        )
        with self.api._lock:
            self.batches[batch.id] = batch
        return 200, self._openai_body(batch)

    def _parse_openai_input(self, data: bytes, endpoint: str) -> tuple[list[tuple[str, Request]], list[dict[str, Any]]]:
        """The requests of an input file, and the validation errors that will fail the batch."""
        requests: list[tuple[str, Request]] = []
        invalid: list[dict[str, Any]] = []
        seen: set[str] = set()
        models: set[str] = set()

        def bad(line: int, code: str, message: str) -> None:
            invalid.append({"code": code, "message": message, "param": None, "line": line})

        for lineno, raw in enumerate(data.split(b"\n"), start=1):
            if not raw.strip():
                continue
            try:
                row = json.loads(raw)
            except (ValueError, UnicodeDecodeError):
                bad(lineno, "invalid_json_line", "This line is not parseable as valid JSON.")
                continue
            if not isinstance(row, dict) or not isinstance(row.get("custom_id"), str):
                bad(lineno, "missing_required_parameter", "Missing required parameter: 'custom_id'.")
                continue
            if row["custom_id"] in seen:
                bad(lineno, "duplicate_custom_id", "The custom_id for this request is a duplicate of another request.")
                continue
            seen.add(row["custom_id"])
            if row.get("method") != "POST" or row.get("url") != endpoint:
                bad(lineno, "mismatched_endpoint", f"The url of this request does not match the batch endpoint {endpoint}.")
                continue
            body = row.get("body")
            if not isinstance(body, dict) or not isinstance(body.get("model"), str):
                bad(lineno, "missing_required_parameter", "Missing required parameter: 'body.model'.")
                continue
            models.add(body["model"])
            requests.append((row["custom_id"], _build_request("POST", endpoint, {}, json.dumps(body).encode())))
        if len(models) > 1:
            bad(0, "mismatched_model", "Each batch input file may only include requests to a single model.")
        if not requests and not invalid:
            bad(0, "empty_file", "The batch input file is empty.")
        return requests, invalid

    async def _batch_get(self, request: Request) -> tuple[int, Any]:
        batch = await self._poll(request.route_id, "openai")
        if batch is None:
            return self._error("openai", 404, f"No batch found with id '{request.route_id}'.")
        return 200, self._openai_body(batch)

    def _openai_body(self, b: FakeBatch) -> dict[str, Any]:
        ended = b.ended_at
        errors = {"object": "list", "data": b.invalid} if b.status == "failed" else None
        counts = b.counts or {"total": len(b.requests), "completed": 0, "failed": 0}
        return {
            "id": b.id, "object": "batch", "endpoint": b.endpoint, "errors": errors,
            "input_file_id": b.input_file_id, "completion_window": "24h", "status": b.status,
            "output_file_id": b.output_file_id, "error_file_id": b.error_file_id,
            "created_at": b.created_at, "in_progress_at": b.created_at if b.status != "validating" else None,
            "expires_at": b.created_at + _BATCH_WINDOW_S,
            "finalizing_at": ended if b.status == "completed" else None,
            "completed_at": ended if b.status == "completed" else None,
            "failed_at": ended if b.status == "failed" else None,
            "expired_at": ended if b.status == "expired" else None,
            "cancelling_at": ended if b.status == "cancelled" else None,
            "cancelled_at": ended if b.status == "cancelled" else None,
            "request_counts": {k: counts.get(k, 0) for k in ("total", "completed", "failed")},
            "metadata": b.metadata,
        }

    # ----------------------------------------------------------------- Anthropic

    async def _msgbatch_create(self, request: Request) -> tuple[int, Any]:
        body = request.body if isinstance(request.body, dict) else {}
        rows = body.get("requests")
        if not isinstance(rows, list) or not rows:
            return self._error("anthropic", 400, "requests: Field required (a non-empty list)")
        if len(rows) > 100_000:
            return self._error("anthropic", 413, "A batch holds at most 100,000 requests.")
        seen: set[str] = set()
        requests: list[tuple[str, Request]] = []
        for i, row in enumerate(rows):
            cid = row.get("custom_id") if isinstance(row, dict) else None
            params = row.get("params") if isinstance(row, dict) else None
            if not isinstance(cid, str) or not _ANTHROPIC_CUSTOM_ID.match(cid):
                return self._error("anthropic", 400, f"requests.{i}.custom_id: must match ^[a-zA-Z0-9_-]{{1,64}}$")
            if cid in seen:
                return self._error("anthropic", 400, f"requests.{i}.custom_id: duplicate custom_id {cid!r}")
            seen.add(cid)
            if not (isinstance(params, dict) and isinstance(params.get("model"), str)
                    and isinstance(params.get("max_tokens"), int) and isinstance(params.get("messages"), list)):
                return self._error("anthropic", 400, f"requests.{i}.params: model, max_tokens and messages are required")
            if params.get("stream"):
                return self._error("anthropic", 400, f"requests.{i}.params.stream: not allowed in a batch")
            headers = {"anthropic-version": request.headers.get("anthropic-version", "2023-06-01")}
            requests.append((cid, _build_request("POST", "/v1/messages", headers, json.dumps(params).encode())))
        batch = FakeBatch(self.api._ids.next("msgbatch_fake"), "anthropic", self._next_script(), requests,
                          int(time.time()), status="in_progress")
        with self.api._lock:
            self.batches[batch.id] = batch
        return 200, self._anthropic_body(batch)

    async def _msgbatch_get(self, request: Request) -> tuple[int, Any]:
        batch = await self._poll(request.route_id, "anthropic")
        if batch is None:
            return self._error("anthropic", 404, f"No message batch found with id '{request.route_id}'.")
        return 200, self._anthropic_body(batch)

    async def _msgbatch_results(self, request: Request) -> tuple[int, Any]:
        batch = self.batches.get(request.route_id or "")
        if batch is None or batch.provider != "anthropic":
            return self._error("anthropic", 404, f"No message batch found with id '{request.route_id}'.")
        if batch.ended_at is None:
            return self._error("anthropic", 404, "Results are not available until the batch has ended.")
        return 200, "".join(json.dumps(line) + "\n" for line in batch.results).encode()

    def _anthropic_body(self, b: FakeBatch) -> dict[str, Any]:
        counts = {k: b.counts.get(k, 0) for k in ("succeeded", "errored", "canceled", "expired")}
        counts["processing"] = len(b.requests) if b.ended_at is None else 0
        return {
            "id": b.id, "type": "message_batch", "processing_status": b.status,
            "request_counts": counts, "created_at": _iso(b.created_at),
            "expires_at": _iso(b.created_at + _BATCH_WINDOW_S),
            "ended_at": _iso(b.ended_at) if b.ended_at is not None else None,
            "archived_at": None,
            "cancel_initiated_at": _iso(b.ended_at) if b.script.outcome == "cancelled" and b.ended_at else None,
            "results_url": f"{self.api.base_url}/v1/messages/batches/{b.id}/results" if b.ended_at is not None else None,
        }

    # ----------------------------------------------------------------- processing

    def _next_script(self) -> BatchScript:
        with self.api._lock:
            return self.scripts.popleft() if self.scripts else BatchScript()

    async def _poll(self, batch_id: str | None, provider: str) -> FakeBatch | None:
        """One retrieval: counts a poll, and ends the batch when its script says so."""
        batch = self.batches.get(batch_id or "")
        if batch is None or batch.provider != provider:
            return None
        if self._finishing is None:
            self._finishing = asyncio.Lock()
        async with self._finishing:
            if batch.ended_at is None:
                batch.polls += 1
                if batch.provider == "openai" and batch.status == "validating":
                    batch.status = "in_progress"
                if batch.polls > batch.script.polls:
                    await self._finish(batch)
        return batch

    async def _finish(self, b: FakeBatch) -> None:
        script = b.script
        if b.provider == "openai" and (b.invalid or script.outcome == "failed"):
            if not b.invalid:
                b.invalid = [{"code": "batch_failed", "message": script.message, "param": None, "line": None}]
            b.status, b.ended_at = "failed", int(time.time())
            b.counts = {"total": len(b.requests), "completed": 0, "failed": 0}
            return
        answered = len(b.requests) if script.outcome in ("completed", "failed") else max(0, script.answered)
        ok_lines: list[dict[str, Any]] = []
        error_lines: list[dict[str, Any]] = []
        counts = {"succeeded": 0, "errored": 0, "expired": 0, "canceled": 0}
        for index, (cid, inner) in enumerate(b.requests):
            if index >= answered:
                counts["canceled" if script.outcome == "cancelled" else "expired"] += 1
                if b.provider == "anthropic":
                    b.results.append({"custom_id": cid, "result": {"type": "canceled" if script.outcome == "cancelled" else "expired"}})
                else:
                    code, msg = (("batch_cancelled", "This request was cancelled before it ran.")
                                 if script.outcome == "cancelled" else
                                 ("batch_expired", "This request could not be executed before the completion window expired."))
                    error_lines.append({"id": self.api._ids.next("batch_req_fake"), "custom_id": cid, "response": None,
                                        "error": {"code": code, "message": msg}})
                continue
            if script.outcome == "failed":  # Anthropic: every request errors
                status, body = 500, error_body("anthropic", Reply(status=500, text=script.message))
            else:
                status, body = await self._run_inner(inner)
            counts["succeeded" if status == 200 else "errored"] += 1
            if b.provider == "anthropic":
                result = {"type": "succeeded", "message": body} if status == 200 else {"type": "errored", "error": body}
                b.results.append({"custom_id": cid, "result": result})
            else:
                line = {"id": self.api._ids.next("batch_req_fake"), "custom_id": cid,
                        "response": {"status_code": status, "request_id": self.api._ids.next("req_fake"), "body": body},
                        "error": None}
                (ok_lines if status == 200 else error_lines).append(line)
        b.ended_at = int(time.time())
        b.counts = counts
        if b.provider == "anthropic":
            b.status = "ended"
            return
        b.status = {"completed": "completed", "expired": "expired", "cancelled": "cancelled"}.get(script.outcome, "completed")
        b.counts = {"total": len(b.requests), "completed": counts["succeeded"], "failed": counts["errored"]}
        b.output_file_id = self._output_file(b.id, "output", ok_lines)
        b.error_file_id = self._output_file(b.id, "error", error_lines)

    def _output_file(self, batch_id: str, kind: str, lines: list[dict[str, Any]]) -> str | None:
        if not lines:
            return None
        data = "".join(json.dumps(line) + "\n" for line in lines).encode()
        file = FakeFile(self.api._ids.next("file-fake"), f"{batch_id}_{kind}.jsonl", "batch_output", data, int(time.time()))
        with self.api._lock:
            self.files[file.id] = file
        return file.id

    async def _run_inner(self, inner: Request) -> tuple[int, dict[str, Any]]:
        """One request of a batch, answered by the synchronous endpoints' script."""
        inner.received_at = time.monotonic()
        reply = await self.api._pick_reply(inner)
        with self.api._lock:
            self.answered.append(inner)
        provider = inner.provider
        if reply.hang or reply.reset or reply.malformed or reply.empty:
            status, body = 500, error_body(provider, Reply(status=500))
        elif reply.body is not None:
            status, body = reply.status, reply.body
        elif reply.status >= 400:
            status, body = reply.status, error_body(provider, reply)
        else:
            model = self.api.served_model.get(inner.model or "", inner.model or "unknown")
            status, body = 200, self.api._shaped(inner, reply, success_body(inner, reply, model, self.api._ids))
        inner.status, inner.answered_at = status, time.monotonic()
        return status, body


# --------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    """Serve the echo responder until killed; print the base URL first, stats on exit."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every response")
    parser.add_argument("--batches", action="store_true", help="serve the OpenAI and Anthropic batch APIs")
    args = parser.parse_args(argv)

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with FakeAPI(host=args.host, port=args.port, latency=args.latency, batches=args.batches) as api:
        print(api.base_url, flush=True)
        while not stop.wait(0.5):
            pass
        print(f"fakeapi: requests={len(api.requests)} successes={api.successes} invalid={len(api.invalid_requests)}",
              file=sys.stderr, flush=True)
        for line in api.invalid_report().splitlines()[1:]:
            print(f"fakeapi: invalid:{line}", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())


# =========================================================================== rate limits
# Owned by the rate-limit work (taxcheck/limits.py). Self-contained: responder wrappers built
# on the public Reply / Request / respond API, for tests and benchmarks/ratelimit.py.
#
#   api.respond(RateBucket(requests=(20, 10.0)).wrap(answer))      # 20 at once, 10 per s refill
#   api.respond(RandomLimit(0.2, retry_after=1.0).wrap(answer))    # 20 % 429s whatever the load
#   api.respond(Overload(0.1).wrap(answer))                        # 10 % Anthropic 529s
#   api.respond(ConcurrencyCap(api, 8).wrap(answer))               # 429 past 8 in flight
#
# Each wrapper decides when the request arrives (before any latency), counts what it did
# (``admitted``, ``rejected``) and otherwise hands the request to the wrapped responder (a
# Responder; default: echo). Rejections answer at once: a provider's limiter does not
# generate anything.

import datetime as _dt  # noqa: E402
import inspect as _inspect  # noqa: E402
import math as _math  # noqa: E402
import random as _random  # noqa: E402
import time as _time  # noqa: E402
from collections.abc import Callable as _Callable  # noqa: E402
from dataclasses import dataclass as _dataclass  # noqa: E402
from dataclasses import replace as _replace  # noqa: E402


async def _inner_reply(inner: Responder | None, request: Request) -> Reply:
    if inner is None:
        return Reply(text=f"Echo: {request.last_user_text()}")
    result = inner(request)
    if _inspect.isawaitable(result):
        result = await result
    return Reply(text=result) if isinstance(result, str) else result


class _Wrapper:
    """Counts for every wrapper; ``wrap`` turns the policy into a Responder."""

    def __init__(self) -> None:
        self.admitted = 0
        self.rejected = 0

    def admit(self, request: Request) -> Reply | dict[str, str] | None:
        """A Reply to reject with, extra headers for an admitted request, or None."""
        raise NotImplementedError

    def wrap(self, inner: Responder | None = None) -> Responder:
        async def respond(request: Request) -> Reply:
            decision = self.admit(request)
            if isinstance(decision, Reply):
                self.rejected += 1
                return decision
            self.admitted += 1
            reply = await _inner_reply(inner, request)
            if decision:
                reply = _replace(reply, headers={**reply.headers, **decision})
            return reply

        return respond


def go_duration(seconds: float) -> str:
    """A duration the way OpenAI's headers print it (Go's format): ``12ms``, ``1.5s``, ``6m0s``."""
    ms = max(0, _math.ceil(seconds * 1000))
    if ms < 1000:
        return f"{ms}ms"
    minutes, rest = divmod(ms, 60_000)
    secs = f"{rest / 1000:.3f}".rstrip("0").rstrip(".")
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"


@_dataclass
class _Level:
    capacity: float
    per_s: float
    tokens: float | None = None  # None until the first request: then full
    at: float = 0.0

    def refill(self, now: float) -> None:
        if self.tokens is None:
            self.tokens = self.capacity
        else:
            self.tokens = min(self.capacity, self.tokens + self.per_s * (now - self.at))
        self.at = now

    def time_to(self, amount: float) -> float:
        return max(0.0, (amount - self.tokens) / self.per_s)


class RateBucket(_Wrapper):
    """Token buckets per kind, continuously refilled, announced in every answer's headers.

    ``requests``, ``tokens`` (OpenAI: prompt tokens + the request's max_tokens, counted on
    arrival), ``input_tokens``, ``output_tokens`` (Anthropic: prompt tokens; max_tokens):
    each ``(capacity, refill per second)``. ``style`` picks the header names: "openai"
    (``x-ratelimit-*-KIND``, resets as Go durations) or "anthropic"
    (``anthropic-ratelimit-KIND-*``, resets as RFC 3339 times to the second, rounded up).
    A request that does not fit gets a 429 with ``retry-after`` (and the headers); with
    ``count_rejected`` (the providers' way) it still costs one request.
    """

    def __init__(self, *, requests: tuple[float, float] | None = None, tokens: tuple[float, float] | None = None,
                 input_tokens: tuple[float, float] | None = None, output_tokens: tuple[float, float] | None = None,
                 style: str = "openai", count_rejected: bool = True, clock: _Callable[[], float] = _time.monotonic) -> None:
        super().__init__()
        self.levels = {kind: _Level(*spec) for kind, spec in
                       (("requests", requests), ("tokens", tokens), ("input-tokens", input_tokens), ("output-tokens", output_tokens))
                       if spec is not None}
        self.style = style
        self.count_rejected = count_rejected
        self.clock = clock

    @staticmethod
    def cost(request: Request) -> dict[str, float]:
        body = request.body if isinstance(request.body, dict) else {}
        out = body.get("max_tokens") or body.get("max_completion_tokens") or 0
        inp = len(request.input_text().split())
        return {"requests": 1.0, "tokens": float(inp + out), "input-tokens": float(inp), "output-tokens": float(out)}

    def headers(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for kind, lv in self.levels.items():
            full_in = lv.time_to(lv.capacity)
            if self.style == "anthropic":
                when = _dt.datetime.now(_dt.timezone.utc) + _dt.timedelta(seconds=_math.ceil(full_in))
                out[f"anthropic-ratelimit-{kind}-limit"] = str(int(lv.capacity))
                out[f"anthropic-ratelimit-{kind}-remaining"] = str(max(0, _math.floor(lv.tokens)))
                out[f"anthropic-ratelimit-{kind}-reset"] = when.replace(microsecond=0).isoformat().replace("+00:00", "Z")
            else:
                out[f"x-ratelimit-limit-{kind}"] = str(int(lv.capacity))
                out[f"x-ratelimit-remaining-{kind}"] = str(max(0, _math.floor(lv.tokens)))
                out[f"x-ratelimit-reset-{kind}"] = go_duration(full_in)
        return out

    def admit(self, request: Request) -> Reply | dict[str, str]:
        now = self.clock()
        cost = self.cost(request)
        for lv in self.levels.values():
            lv.refill(now)
        short = [(kind, lv) for kind, lv in self.levels.items() if lv.tokens < min(cost[kind], lv.capacity)]
        if short:
            wait = max(lv.time_to(min(cost[kind], lv.capacity)) for kind, lv in short)
            if self.count_rejected and "requests" in self.levels:
                lv = self.levels["requests"]
                lv.tokens = max(-lv.capacity, lv.tokens - 1)
            headers = {**self.headers(), "retry-after": str(max(1, _math.ceil(wait))),
                       "retry-after-ms": str(max(1, _math.ceil(wait * 1000)))}
            return Reply(status=429, headers=headers, text="Rate limit reached; please retry after the indicated time.")
        for kind, lv in self.levels.items():
            lv.tokens -= cost[kind]
        return self.headers()


class RandomLimit(_Wrapper):
    """A share of requests answered 429 at random, whatever the load (an overloaded provider)."""

    def __init__(self, share: float, retry_after: float | None = 1.0, status: int = 429, seed: int = 0,
                 error_type: str | None = None) -> None:
        super().__init__()
        self.share, self.retry_after, self.status, self.error_type = share, retry_after, status, error_type
        self.rng = _random.Random(seed)

    def admit(self, request: Request) -> Reply | None:
        if self.rng.random() >= self.share:
            return None
        headers = {"retry-after": f"{self.retry_after:g}"} if self.retry_after is not None else {}
        return Reply(status=self.status, headers=headers, error_type=self.error_type)


class Overload(RandomLimit):
    """Anthropic's 529 ``overloaded_error`` for a share of requests (no Retry-After by default)."""

    def __init__(self, share: float, retry_after: float | None = None, seed: int = 0) -> None:
        super().__init__(share, retry_after, status=529, seed=seed, error_type="overloaded_error")


class ConcurrencyCap(_Wrapper):
    """429 (``retry-after``) for any request beyond ``limit`` in flight at ``api``."""

    def __init__(self, api: FakeAPI, limit: int, retry_after: float | None = 1.0) -> None:
        super().__init__()
        self.api, self.limit, self.retry_after = api, limit, retry_after

    def admit(self, request: Request) -> Reply | None:
        if self.api.in_flight <= self.limit:  # in_flight counts this request too
            return None
        headers = {"retry-after": f"{self.retry_after:g}"} if self.retry_after is not None else {}
        return Reply(status=429, headers=headers, text="Too many requests in flight.")
