"""The HTTP transport under both SDK clients: response bodies read with a byte cap, before
decoding and before decompression.

Why: the SDKs read a whole response body into memory and let httpx2 inflate it. A hostile
or broken server (a proxy, a local server someone else runs) can answer with a 2 MB gzip
body that inflates to gigabytes; four of those at once took 10 GB here. So the raw bytes are
read through a cap, and gzip/deflate are inflated here with a cap on the output, and only
then handed to the SDK as an ordinary, already-decoded response. Anything over a cap is a
``BodyTooLarge``, which ``clients.py`` turns into a non-retryable "oversized" failure.

Batch result downloads (``/files/{id}/content``, ``/messages/batches/{id}/results``) are
allowed a larger cap, since a 50,000-request batch has a legitimately large output file.
"""

from __future__ import annotations

import zlib
from typing import Any

import httpx2

MAX_BODY_BYTES = 32 * 1024 * 1024  # one answer is at most ~1 M characters (wire.MAX_RESPONSE_CHARS)
MAX_BATCH_BODY_BYTES = 1024 * 1024 * 1024
_CHUNK = 64 * 1024


class BodyTooLarge(Exception):
    """A response body past its cap (raw or inflated); never retried."""

    def __init__(self, limit: int, what: str):
        super().__init__(f"response body over {limit // (1024 * 1024)} MiB {what}; not read")
        self.limit = limit


def _cap_for(request: httpx2.Request) -> int:
    path = request.url.path
    if path.endswith("/content") or path.endswith("/results"):
        return MAX_BATCH_BODY_BYTES
    return MAX_BODY_BYTES


def inflate(data: bytes, encoding: str, limit: int) -> bytes:
    """Decompress ``data`` (gzip or deflate, raw or zlib-wrapped) to at most ``limit`` bytes."""
    if encoding == "gzip":
        decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
    elif encoding == "deflate":
        # servers send both zlib-wrapped and raw deflate under this name
        decoder = zlib.decompressobj(zlib.MAX_WBITS if data[:1] == b"\x78" else -zlib.MAX_WBITS)
    else:
        raise BodyTooLarge(limit, f"in an encoding taxcheck does not accept ({encoding})")
    try:
        out = decoder.decompress(data, limit + 1)
    except zlib.error as exc:
        raise httpx2.DecodingError(f"bad {encoding} body: {exc}") from None
    if len(out) > limit or decoder.unconsumed_tail:
        raise BodyTooLarge(limit, "once inflated")
    return out


class CappedTransport(httpx2.AsyncBaseTransport):
    """An ``AsyncHTTPTransport`` whose responses are read whole, under a cap, and inflated here."""

    def __init__(self, **transport_kwargs: Any):
        self._inner = httpx2.AsyncHTTPTransport(**transport_kwargs)

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        request.headers["accept-encoding"] = "gzip, deflate"  # the encodings inflate() caps
        response = await self._inner.handle_async_request(request)
        limit = _cap_for(request)
        chunks: list[bytes] = []
        size = 0
        try:
            async for chunk in response.stream:
                size += len(chunk)
                if size > limit:
                    raise BodyTooLarge(limit, "from the server")
                chunks.append(chunk)
        finally:
            await response.aclose()
        body = b"".join(chunks)
        headers = httpx2.Headers(response.headers)
        encoding = headers.get("content-encoding", "").strip().lower()
        if encoding and encoding != "identity":
            body = inflate(body, encoding, limit)
            del headers["content-encoding"]
        headers["content-length"] = str(len(body))
        return httpx2.Response(response.status_code, headers=headers, content=body, request=request,
                               extensions=response.extensions)

    async def aclose(self) -> None:
        await self._inner.aclose()
