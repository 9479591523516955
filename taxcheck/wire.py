"""The wire formats: request bodies and how an answer is read, for every way we send.

The synchronous client (``clients.py``) and the batch runner (``batch.py``) build the
same bodies and read answers by the same rules, so a refusal or a malformed body means
the same thing whichever path it came by. Bodies are read as plain JSON rather than
through the SDKs' typed models: the SDKs do not validate response bodies anyway (a
wrong-typed field arrives as is), and skipping their model construction saves about a
third of the client CPU per request, which is what bounds throughput at high concurrency.

Base models without a chat template go through the completions API with this plain-text
template (the form most base models continue sensibly, and the one the InstructGPT-era
evaluations used)::

    {system}\\n\\n                      (only when there is a system prompt)
    User: {user turn}\\n\\nAssistant: {assistant turn}\\n\\n   (earlier turns)
    User: {last user turn}\\n\\nAssistant:

with ``\\nUser:`` as a stop sequence so the model does not write the user's next turn.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from taxcheck.errors import CallError

COMPLETIONS_STOP = ["\nUser:"]
MAX_RESPONSE_CHARS = 1_000_000


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


def wire_safe(text: str) -> str:
    """``text`` as it can travel in UTF-8 JSON: lone surrogates become U+FFFD.

    A suite may hold a lone surrogate (JSON allows the ``\\ud800`` escape) but no HTTP body
    can carry one; without this the request fails to encode, every retry fails the same
    way, and the failure reads like the server's fault.
    """
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def safe_messages(messages: list[dict[str, str]]) -> list[dict[str, str]]:
    return [{**m, "content": wire_safe(m["content"])} for m in messages]


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


# --------------------------------------------------------------------------- bodies


def openai_body(model: str, api: str, messages: list[dict[str, str]], params: Params, hosted: bool) -> dict[str, Any]:
    """Chat or completions body. OpenAI's own API wants ``max_completion_tokens`` (its
    reasoning models reject ``max_tokens``); compatible servers know ``max_tokens``."""
    if api == "completions":
        return {"model": model, "prompt": completions_prompt(messages), "temperature": params.temperature,
                "max_tokens": params.max_tokens, "stop": COMPLETIONS_STOP}
    body: dict[str, Any] = {"model": model, "messages": messages, "temperature": params.temperature}
    body["max_completion_tokens" if hosted else "max_tokens"] = params.max_tokens
    return body


def anthropic_body(model: str, messages: list[dict[str, str]], params: Params, temperature: bool = True) -> dict[str, Any]:
    """Messages body: the system prompt split out, ``max_tokens`` always set. Some newer
    models reject ``temperature``; callers drop it for them (``temperature=False``)."""
    system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
    body: dict[str, Any] = {
        "model": model,
        "max_tokens": params.max_tokens,
        "messages": [m for m in messages if m["role"] != "system"],
    }
    if system:
        body["system"] = system
    if temperature:
        body["temperature"] = params.temperature
    return body


# --------------------------------------------------------------------------- answers


def _malformed(why: str) -> CallError:
    return CallError("malformed", why, retryable=True)


def _int_or_none(x: Any) -> int | None:
    return x if isinstance(x, int) and not isinstance(x, bool) else None


def parse_openai(body: Any, api: str) -> Completion:
    """A chat or completions response body; ``CallError("malformed")`` when it is not one."""
    if not isinstance(body, dict):
        raise _malformed(f"response body is {type(body).__name__}, not an object")
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise _malformed("response has no choices")
    choice = choices[0]
    usage = body.get("usage") if isinstance(body.get("usage"), dict) else {}
    finish = choice.get("finish_reason") if isinstance(choice.get("finish_reason"), str) else None
    served = body.get("model") if isinstance(body.get("model"), str) else None
    common = {
        "served_model": served,
        "input_tokens": _int_or_none(usage.get("prompt_tokens")),
        "output_tokens": _int_or_none(usage.get("completion_tokens")),
    }
    if api == "completions":
        if not isinstance(choice.get("text"), str):
            raise _malformed("response has no text choice")
        return Completion(text=choice["text"].strip(), finish_reason=finish, api_refusal=finish == "content_filter", **common)
    msg = choice.get("message")
    if not isinstance(msg, dict):
        raise _malformed("response choice has no message")
    content, refusal = msg.get("content"), msg.get("refusal")
    if content is not None and not isinstance(content, str):
        raise _malformed(f"response content is {type(content).__name__}, not text")
    if refusal is not None and not isinstance(refusal, str):
        raise _malformed(f"response refusal is {type(refusal).__name__}, not text")
    return Completion(
        text=content or refusal or "",
        finish_reason=finish,
        api_refusal=finish == "content_filter" or bool(refusal),
        **common,
    )


def parse_anthropic(body: Any) -> Completion:
    """A Messages response body; ``stop_reason: refusal`` is an API-level refusal."""
    if not isinstance(body, dict):
        raise _malformed(f"response body is {type(body).__name__}, not an object")
    content = body.get("content")
    if not isinstance(content, list):
        raise _malformed("response has no content list")
    parts = []
    for block in content:
        if isinstance(block, dict) and block.get("type") == "text":
            if not isinstance(block.get("text"), str):
                raise _malformed("a text block holds no text")
            parts.append(block["text"])
    usage = body.get("usage") if isinstance(body.get("usage"), dict) else {}
    stop = body.get("stop_reason") if isinstance(body.get("stop_reason"), str) else None
    return Completion(
        text="".join(parts),
        finish_reason=stop,
        api_refusal=stop == "refusal",
        served_model=body.get("model") if isinstance(body.get("model"), str) else None,
        input_tokens=_int_or_none(usage.get("input_tokens")),
        output_tokens=_int_or_none(usage.get("output_tokens")),
    )


def check_size(completion: Completion, where: str) -> Completion:
    """An answer past MAX_RESPONSE_CHARS is a failure, not a record (a 50 MB body is a fault)."""
    if len(completion.text) > MAX_RESPONSE_CHARS:
        raise CallError(
            "oversized",
            f"response of {len(completion.text):,} characters from {where} (limit {MAX_RESPONSE_CHARS:,}); not recorded",
            retryable=False,
        )
    return completion
