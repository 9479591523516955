"""One SDK client per endpoint, and the boundary where wire errors become ``CallError``.

The SDKs are imported here and only here, lazily, so that ``taxcheck --help``,
``suites`` and ``validate`` never pay their import cost (the openai SDK alone costs
~0.6 s, anthropic ~2 s on this machine).

Refusals by the API itself (OpenAI ``finish_reason: content_filter`` or a content-policy
400, Anthropic ``stop_reason: refusal``) are *outputs*, not errors: they are returned as a
``Completion`` with ``api_refusal=True`` and counted as refusals, because that is what
the user of the model experiences.

Base models without a chat template go through the completions API with this plain-text
template (the form most base models continue sensibly, and the one the InstructGPT-era
evaluations used)::

    {system}\n\n                      (only when there is a system prompt)
    User: {user turn}\n\nAssistant: {assistant turn}\n\n   (earlier turns)
    User: {last user turn}\n\nAssistant:

with ``\\nUser:`` as a stop sequence so the model does not write the user's next turn.
"""

from __future__ import annotations

import asyncio
import inspect
import json
from dataclasses import dataclass
from typing import Any

from taxcheck.errors import CallError
from taxcheck.retry import is_retryable_status, retry_after_seconds
from taxcheck.specs import Endpoint

COMPLETIONS_STOP = ["\nUser:"]
# No answer capped at --max-tokens comes near this; a body this large is a broken server
# (or a hostile one), and storing it would bloat the run file and the cache.
MAX_RESPONSE_CHARS = 1_000_000
_POLICY_CODES = {"content_policy_violation", "content_filter", "invalid_prompt", "content_filtered"}
_MAX_ERROR_CHARS = 300


@dataclass(frozen=True)
class Params:
    """Sampling parameters; part of the cache key (timeouts and retries are not)."""

    temperature: float = 0.0
    max_tokens: int = 512


@dataclass(frozen=True)
class Completion:
    text: str
    finish_reason: str | None
    api_refusal: bool = False
    served_model: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    headers: dict[str, str] | None = None  # rate-limit headers of the response, not stored

    def to_json(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "finish_reason": self.finish_reason,
            "api_refusal": self.api_refusal,
            "served_model": self.served_model,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Completion":
        return cls(
            text=data.get("text") or "",
            finish_reason=data.get("finish_reason"),
            api_refusal=bool(data.get("api_refusal")),
            served_model=data.get("served_model"),
            input_tokens=data.get("input_tokens"),
            output_tokens=data.get("output_tokens"),
        )


def completions_prompt(messages: list[dict[str, str]]) -> str:
    """Render chat messages with the plain-text template documented above."""
    parts: list[str] = []
    for m in messages:
        if m["role"] == "system":
            parts.append(f"{m['content']}\n\n")
        elif m["role"] == "user":
            parts.append(f"User: {m['content']}\n\n")
        else:
            parts.append(f"Assistant: {m['content']}\n\n")
    parts.append("Assistant:")
    return "".join(parts)


def wire_safe(text: str) -> str:
    """``text`` as it can travel in UTF-8 JSON: lone surrogates become U+FFFD.

    A suite may hold a lone surrogate (JSON allows the ``\\ud800`` escape) but no HTTP body
    can carry one; without this the SDK fails to encode the request, every retry fails
    the same way, and the failure reads like the server's fault.
    """
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


async def _parsed(raw: Any) -> Any:
    """The typed body of a raw response: openai's ``parse()`` is sync, anthropic's async one a coroutine."""
    resp = raw.parse()
    if inspect.isawaitable(resp):
        resp = await resp
    return resp


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
        # OpenAI's own API wants max_completion_tokens (its reasoning models reject
        # max_tokens); compatible servers (vLLM, Ollama, llama.cpp) know max_tokens.
        self._openai_hosted = endpoint.wire == "openai" and "api.openai.com" in endpoint.base_url
        self._no_temperature: set[str] = set()  # Anthropic models that refused a temperature

    def _get(self) -> Any:
        if self._client is None:
            ep = self.endpoint
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
        messages = [{**m, "content": wire_safe(m["content"])} for m in messages]
        try:
            async with asyncio.timeout(self.timeout_s + 1.0):
                if self.endpoint.wire == "anthropic":
                    completion = await self._anthropic(model, messages, params)
                elif api == "completions":
                    completion = await self._openai_completions(model, messages, params)
                else:
                    completion = await self._openai_chat(model, messages, params)
            if len(completion.text) > MAX_RESPONSE_CHARS:
                raise CallError(
                    "oversized",
                    f"response of {len(completion.text):,} characters from {self.endpoint.display_url} "
                    f"(limit {MAX_RESPONSE_CHARS:,}); not recorded",
                    retryable=False,
                )
            return completion
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

    # -- OpenAI -----------------------------------------------------------------------

    async def _openai_chat(self, model: str, messages: list[dict[str, str]], params: Params) -> Completion:
        client = self._get()
        kwargs: dict[str, Any] = {"model": model, "messages": messages, "temperature": params.temperature}
        kwargs["max_completion_tokens" if self._openai_hosted else "max_tokens"] = params.max_tokens
        raw = await client.chat.completions.with_raw_response.create(**kwargs)
        resp = await _parsed(raw)
        choices = getattr(resp, "choices", None)
        if not choices:
            raise CallError("malformed", "response has no choices", retryable=True)
        choice = choices[0]
        msg = getattr(choice, "message", None)
        if msg is None:
            raise CallError("malformed", "response choice has no message", retryable=True)
        # The SDK does not validate response bodies: a wrong-typed field arrives as is.
        content = getattr(msg, "content", None)
        refusal_text = getattr(msg, "refusal", None)
        if content is not None and not isinstance(content, str):
            raise CallError("malformed", f"response content is {type(content).__name__}, not text", retryable=True)
        if refusal_text is not None and not isinstance(refusal_text, str):
            raise CallError("malformed", f"response refusal is {type(refusal_text).__name__}, not text", retryable=True)
        text = content or ""
        finish = getattr(choice, "finish_reason", None)
        api_refusal = finish == "content_filter" or bool(refusal_text)
        if not text and refusal_text:
            text = refusal_text
        usage = getattr(resp, "usage", None)
        return Completion(
            text=text,
            finish_reason=finish,
            api_refusal=api_refusal,
            served_model=getattr(resp, "model", None),
            input_tokens=getattr(usage, "prompt_tokens", None),
            output_tokens=getattr(usage, "completion_tokens", None),
            headers=_rate_headers(raw.headers),
        )

    async def _openai_completions(self, model: str, messages: list[dict[str, str]], params: Params) -> Completion:
        client = self._get()
        raw = await client.completions.with_raw_response.create(
            model=model,
            prompt=completions_prompt(messages),
            temperature=params.temperature,
            max_tokens=params.max_tokens,
            stop=COMPLETIONS_STOP,
        )
        resp = await _parsed(raw)
        choices = getattr(resp, "choices", None)
        if not choices or not isinstance(choices[0].text, str):
            raise CallError("malformed", "response has no text choice", retryable=True)
        usage = getattr(resp, "usage", None)
        return Completion(
            text=choices[0].text.strip(),
            finish_reason=choices[0].finish_reason,
            api_refusal=choices[0].finish_reason == "content_filter",
            served_model=getattr(resp, "model", None),
            input_tokens=getattr(usage, "prompt_tokens", None),
            output_tokens=getattr(usage, "completion_tokens", None),
            headers=_rate_headers(raw.headers),
        )

    # -- Anthropic --------------------------------------------------------------------

    async def _anthropic(self, model: str, messages: list[dict[str, str]], params: Params) -> Completion:
        client = self._get()
        system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
        turns = [m for m in messages if m["role"] != "system"]
        kwargs: dict[str, Any] = {"model": model, "messages": turns, "max_tokens": params.max_tokens}
        if system:
            kwargs["system"] = system
        # anthropic >= 1.0 dropped the sampling parameters from create()'s signature (the
        # wire format still has them; the SDK's migration guide says to use extra_body),
        # and the newest models reject temperature outright: then send it no more.
        if model not in self._no_temperature:
            kwargs["extra_body"] = {"temperature": params.temperature}
        try:
            raw = await client.messages.with_raw_response.create(**kwargs)
        except Exception as exc:
            if getattr(exc, "status_code", None) != 400 or "temperature" not in _error_message(exc).lower() or "extra_body" not in kwargs:
                raise
            self._no_temperature.add(model)
            kwargs.pop("extra_body")
            raw = await client.messages.with_raw_response.create(**kwargs)
        resp = await _parsed(raw)
        content = getattr(resp, "content", None)
        if content is None or not isinstance(content, list):
            raise CallError("malformed", "response has no content list", retryable=True)
        text = "".join(getattr(block, "text", "") or "" for block in content if getattr(block, "type", None) == "text")
        usage = getattr(resp, "usage", None)
        return Completion(
            text=text,
            finish_reason=getattr(resp, "stop_reason", None),
            api_refusal=getattr(resp, "stop_reason", None) == "refusal",
            served_model=getattr(resp, "model", None),
            input_tokens=getattr(usage, "input_tokens", None),
            output_tokens=getattr(usage, "output_tokens", None),
            headers=_rate_headers(raw.headers),
        )

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
            return CallError(
                f"http_{status}",
                f"{status} from {url}: {message}",
                retryable=is_retryable_status(status),
                status=status,
                retry_after=retry_after_seconds(headers),
            )
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
