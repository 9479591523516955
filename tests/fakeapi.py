"""A real HTTP/1.1 server on loopback that speaks the OpenAI and Anthropic wire formats.

Why: taxcheck's end-to-end tests and benchmarks drive the *real* `openai` and `anthropic`
SDK clients (never monkeypatched), so the thing on the other end of the socket has to
behave like the providers do: the same JSON bodies, the same error shapes, the same
headers, and the same ugly failures (hangs, resets, truncated bodies). This module is pure
standard library: an asyncio server running its own loop in a daemon thread.

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

Counters for assertions: ``requests`` (every request, arrival order), ``successes``
(well-formed 200s sent), ``in_flight`` / ``peak_in_flight`` (requests held at once: checks a
client's concurrency limit), ``connections`` (TCP accepts: checks keep-alive reuse) and
``errors`` (tracebacks of responders that raised; those requests got a 500). Counters are
settled before the response bytes leave, so a client holding its answer sees them updated.

A ``hang`` reply holds the request until the client closes the socket (its timeout), the
server closes, or ``hang_seconds`` pass; it never blocks ``close()``. Streaming requests
(``stream: true``) are answered with a 400: the fake does not speak SSE.

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
from typing import Any, Awaitable, Callable, Union

__all__ = ["FakeAPI", "Reply", "Request", "Responder"]

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
    request = Request(method=method, path=path, headers=headers, body=body, raw_body=raw, kind=kind,
                      received_at=time.monotonic())
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


class FakeAPI:
    """The fake provider: start on construction, script with respond/enqueue, close when done."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, latency: float = 0.0,
                 hang_seconds: float = HANG_SECONDS) -> None:
        self.latency = latency
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
            payload = json.dumps(success_body(request, reply, model, self._ids)).encode()

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
        with self._lock:
            queue = self._model_queues.get(request.model or "") if request.model else None
            if queue:
                return queue.popleft()
            if self._queue:
                return self._queue.popleft()
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


# --------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    """Serve the echo responder until killed; print the base URL first, stats on exit."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every response")
    args = parser.parse_args(argv)

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with FakeAPI(host=args.host, port=args.port, latency=args.latency) as api:
        print(api.base_url, flush=True)
        while not stop.wait(0.5):
            pass
        print(f"fakeapi: requests={len(api.requests)} successes={api.successes}", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
