"""Response bodies are read through a byte cap before decoding and decompression (issue 11 §4).

A plain threaded HTTP server on loopback sends exactly the bytes a hostile server would (a
gzip bomb, an endless body), and the real SDK clients read them through taxcheck's transport.
"""

from __future__ import annotations

import asyncio
import gzip
import http.server
import json
import threading
import tracemalloc
import zlib

import pytest

from taxcheck.send.clients import EndpointClient, Params
from taxcheck.errors import CallError
from taxcheck.send.specs import Endpoint
from taxcheck.send.transport import MAX_BODY_BYTES, BodyTooLarge, inflate

ANSWER = json.dumps({"model": "m", "choices": [{"index": 0, "finish_reason": "stop",
                                                  "message": {"role": "assistant", "content": "Fine."}}],
                     "usage": {"prompt_tokens": 1, "completion_tokens": 1}}).encode()


class _Server:
    """Answers every POST with ``body`` and ``headers``; counts the requests."""

    def __init__(self, body: bytes, headers: dict[str, str]):
        self.requests = 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                outer.requests += 1
                self.rfile.read(int(self.headers.get("content-length", 0)))
                self.send_response(200)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                try:
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def _ask(url: str):
    async def go():
        client = EndpointClient(Endpoint(name="x", wire="openai", base_url=url, key_env=None, api_key="k"), 10.0)
        try:
            return await client.complete("m", "chat", [{"role": "user", "content": "hi"}], Params())
        finally:
            await client.aclose()

    return asyncio.run(go())


@pytest.fixture
def serve():
    made = []

    def make(body, headers=None):
        made.append(_Server(body, {"content-type": "application/json", **(headers or {})}))
        return made[-1]

    yield make
    for s in made:
        s.close()


def test_a_gzip_answer_is_read(serve):
    s = serve(gzip.compress(ANSWER), {"content-encoding": "gzip"})
    assert _ask(s.url).text == "Fine."


def test_a_compression_bomb_is_refused_without_inflating_it(serve):
    bomb = zlib.compress(b"{" + b" " * (200 * 1024 * 1024), 1)  # 200 MiB of spaces
    assert len(bomb) < 1024 * 1024
    s = serve(bomb, {"content-encoding": "deflate"})
    tracemalloc.start()
    try:
        with pytest.raises(CallError) as info:
            _ask(s.url)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert info.value.kind == "oversized" and not info.value.retryable and "once inflated" in info.value.message
    assert peak < 3 * MAX_BODY_BYTES  # bounded by the cap, nowhere near the 200 MiB it would inflate to
    assert s.requests == 1


def test_an_oversized_raw_body_is_cut_while_it_arrives(serve):
    s = serve(b"x" * (MAX_BODY_BYTES + 1024))
    with pytest.raises(CallError) as info:
        _ask(s.url)
    assert info.value.kind == "oversized" and "from the server" in info.value.message


def test_inflate_caps_and_rejects_unknown_encodings():
    data = zlib.compress(b"a" * 10_000)
    assert inflate(data, "deflate", 10_000) == b"a" * 10_000
    with pytest.raises(BodyTooLarge):
        inflate(data, "deflate", 9_999)
    with pytest.raises(BodyTooLarge, match="encoding"):
        inflate(data, "br", 10_000)
