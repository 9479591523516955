"""One SDK client per endpoint, and the boundary where wire errors become ``CallError``.

The SDKs are imported here and only here, lazily, so that ``taxcheck --help``,
``suites`` and ``validate`` never pay their import cost (the openai SDK alone costs
~0.6 s, anthropic ~2 s on this machine). Requests go through the SDK clients (their auth,
headers, base URLs and error types) with the body built, and the answer read, by
``wire.py``, the rules the batch path shares.

Refusals by the API itself (OpenAI ``finish_reason: content_filter`` or a content-policy
400, Anthropic ``stop_reason: refusal``) are *outputs*, not errors: they are returned as a
``Completion`` with ``api_refusal=True`` and counted as refusals, because that is what
the user of the model experiences.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from taxcheck.errors import CallError
from taxcheck.retry import is_retryable_status, retry_after_seconds
from taxcheck.specs import Endpoint
from taxcheck.wire import (  # noqa: F401 - Params, Completion and the template are re-exported
    COMPLETIONS_STOP,
    MAX_RESPONSE_CHARS,
    Completion,
    Params,
    anthropic_body,
    check_size,
    completions_prompt,
    openai_body,
    parse_anthropic,
    parse_openai,
    safe_messages,
    wire_safe,
)

_POLICY_CODES = {"content_policy_violation", "content_filter", "invalid_prompt", "content_filtered"}
_MAX_ERROR_CHARS = 300


def _short(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= _MAX_ERROR_CHARS else text[: _MAX_ERROR_CHARS - 1] + "…"


def _rate_headers(headers: Any) -> dict[str, str]:
    try:
        return {k.lower(): v for k, v in headers.items() if "ratelimit" in k.lower() or "retry-after" in k.lower()}
    except Exception:  # a malformed response object: no hints, not a failure
        return {}


class EndpointClient:
    """Sends requests to one endpoint; translates every failure into ``CallError``."""

    def __init__(self, endpoint: Endpoint, timeout_s: float):
        self.endpoint = endpoint
        self.timeout_s = timeout_s
        self._client: Any = None
        self._response_type: Any = None
        self._openai_hosted = endpoint.wire == "openai" and "api.openai.com" in endpoint.base_url
        self._no_temperature: set[str] = set()  # Anthropic models that refused a temperature

    def _get(self) -> Any:
        if self._client is None:
            ep = self.endpoint
            import httpx2

            self._response_type = httpx2.Response
            if ep.wire == "anthropic":
                import anthropic

                self._client = anthropic.AsyncAnthropic(
                    api_key=ep.api_key, base_url=ep.base_url, max_retries=0, timeout=self.timeout_s
                )
            else:
                import openai

                self._client = openai.AsyncOpenAI(
                    api_key=ep.api_key, base_url=ep.base_url, max_retries=0, timeout=self.timeout_s
                )
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            try:
                await self._client.close()
            except Exception:
                pass
            self._client = None

    async def complete(self, model: str, api: str, messages: list[dict[str, str]], params: Params) -> Completion:
        """One request, bounded by the wall-clock timeout (a slow drip cannot hold a slot).

        The SDK client is built (and its package imported, ~1-2 s) *before* the clock starts:
        a blocking import inside the timeout made the first requests of a run with a short
        ``--timeout`` fail as timeouts without ever reaching the server.
        """
        self._get()
        messages = safe_messages(messages)
        try:
            async with asyncio.timeout(self.timeout_s + 1.0):
                if self.endpoint.wire == "anthropic":
                    completion = await self._anthropic(model, messages, params)
                else:
                    completion = await self._openai(model, api, messages, params)
            return check_size(completion, self.endpoint.display_url)
        except CallError:
            raise
        except TimeoutError:
            raise CallError("timeout", f"no response within {self.timeout_s:g} s", retryable=True) from None
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - this is the translation boundary
            error = self._translate(exc)
        if error.kind == "content_policy":
            return Completion(text="", finish_reason="content_policy", api_refusal=True)
        raise error

    async def _post(self, path: str, body: dict[str, Any]) -> tuple[Any, dict[str, str]]:
        """POST through the SDK (auth, headers, its error types) and read the raw JSON."""
        response = await self._client.post(path, body=body, cast_to=self._response_type)
        return json.loads(response.content), _rate_headers(response.headers)

    async def _openai(self, model: str, api: str, messages: list[dict[str, str]], params: Params) -> Completion:
        path = "/completions" if api == "completions" else "/chat/completions"
        body, headers = await self._post(path, openai_body(model, api, messages, params, self._openai_hosted))
        c = parse_openai(body, api)
        return Completion(**{**c.__dict__, "headers": headers})

    async def _anthropic(self, model: str, messages: list[dict[str, str]], params: Params) -> Completion:
        # the newest models reject temperature outright: after one such 400, send it no more
        with_temperature = model not in self._no_temperature
        try:
            body, headers = await self._post("/v1/messages", anthropic_body(model, messages, params, with_temperature))
        except Exception as exc:
            if not with_temperature or getattr(exc, "status_code", None) != 400 or "temperature" not in _error_message(exc).lower():
                raise
            self._no_temperature.add(model)
            body, headers = await self._post("/v1/messages", anthropic_body(model, messages, params, False))
        c = parse_anthropic(body)
        return Completion(**{**c.__dict__, "headers": headers})

    # -- errors -----------------------------------------------------------------------

    def _translate(self, exc: Exception) -> CallError:
        error = self._translate_unscrubbed(exc)
        key = self.endpoint.api_key
        if len(key) >= 6 and key in error.message:  # a server that echoes the key back
            error.message = error.message.replace(key, "***")
            error.args = (error.message,)
        return error

    def _translate_unscrubbed(self, exc: Exception) -> CallError:
        url = self.endpoint.display_url
        status = getattr(exc, "status_code", None)
        name = type(exc).__name__
        if isinstance(status, int):
            response = getattr(exc, "response", None)
            headers = getattr(response, "headers", None)
            message = _error_message(exc)
            if status in (401, 403):
                key = self.endpoint.key_env or "the API key"
                return CallError(
                    "auth",
                    f"{status} from {url}: the key was refused; check {key}",
                    retryable=False,
                    status=status,
                )
            if status == 400 and _is_policy_error(exc):
                return CallError("content_policy", message, retryable=False, status=status)
            if status == 404:
                return CallError("not_found", f"404 from {url}: {message}", retryable=False, status=status)
            if status == 429 and _is_quota_error(exc):  # out of credit: no amount of waiting helps
                return CallError("quota", f"429 from {url}: {message}", retryable=False, status=status)
            error = CallError(
                f"http_{status}",
                f"{status} from {url}: {message}",
                retryable=is_retryable_status(status),
                status=status,
                retry_after=retry_after_seconds(headers),
            )
            error.headers = _rate_headers(headers) if headers is not None else None  # for the rate controller
            return error
        if "Timeout" in name:
            return CallError("timeout", f"no response from {url} within {self.timeout_s:g} s", retryable=True)
        if "Connection" in name:
            cause = exc.__cause__ or exc.__context__
            detail = type(cause).__name__ if cause is not None else "connection error"
            return CallError("connection", f"cannot reach {url} ({detail})", retryable=True)
        if isinstance(exc, (json.JSONDecodeError, ValueError, TypeError, AttributeError, KeyError)) or "Validation" in name:
            return CallError("malformed", f"malformed response from {url} ({name})", retryable=True)
        return CallError("error", f"{name} talking to {url}", retryable=True)


def _error_message(exc: Exception) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict) and isinstance(err.get("message"), str):
            return _short(err["message"])
    return _short(getattr(exc, "message", None) or type(exc).__name__)


def _is_quota_error(exc: Exception) -> bool:
    """OpenAI's 429 ``insufficient_quota`` (billing, not pace)."""
    body = getattr(exc, "body", None)
    err = body.get("error", body) if isinstance(body, dict) else None
    return isinstance(err, dict) and "insufficient_quota" in (str(err.get("code") or "") + " " + str(err.get("type") or ""))


def _is_policy_error(exc: Exception) -> bool:
    body = getattr(exc, "body", None)
    err = body.get("error", body) if isinstance(body, dict) else None
    if isinstance(err, dict):
        code = str(err.get("code") or "") + " " + str(err.get("type") or "")
        if any(c in code for c in _POLICY_CODES):
            return True
        msg = str(err.get("message") or "").lower()
        return "content policy" in msg or "content management policy" in msg or "safety system" in msg
    return False
