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

import re
from dataclasses import dataclass
from typing import Any

from taxcheck.errors import CallError

COMPLETIONS_STOP = ["\nUser:"]
MAX_RESPONSE_CHARS = 1_000_000


@dataclass(frozen=True)
class Params:
    """What a request asks of the model beyond its messages; the cache key covers every field
    (timeouts and retries are not here: they do not change an answer).

    ``temperature`` None means none is sent and the provider's default applies (a model whose
    profile takes no temperature, or one that rejected it). ``token_field`` None lets the
    endpoint decide (``max_completion_tokens`` on api.openai.com, ``max_tokens`` elsewhere).
    ``reasoning_effort`` is OpenAI's field; ``thinking_budget`` becomes Anthropic's
    ``thinking: {"type": "enabled", "budget_tokens": N}``; ``extra_body`` is merged into the
    body as given (provider fields taxcheck does not know) and ``extra_headers`` into the
    request headers.
    """

    temperature: float | None = 0.0
    max_tokens: int = 512
    token_field: str | None = None
    reasoning_effort: str | None = None
    thinking_budget: int | None = None
    extra_body: tuple[tuple[str, Any], ...] = ()
    extra_headers: tuple[tuple[str, str], ...] = ()

    @property
    def output_cap(self) -> int:
        """The most output tokens one answer can cost (thinking is spent on top of the cap)."""
        return self.max_tokens + (self.thinking_budget or 0)

    def cache_fields(self) -> dict[str, Any]:
        """The fields of the cache key. Defaults are left out, so that a plain request keeps
        the key it had before the other fields existed and an old cache still answers it."""
        out: dict[str, Any] = {"temperature": self.temperature, "max_tokens": self.max_tokens}
        for name in ("token_field", "reasoning_effort", "thinking_budget"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        if self.extra_body:
            out["extra_body"] = dict(self.extra_body)
        if self.extra_headers:
            out["extra_headers"] = dict(self.extra_headers)
        return out

    def describe(self) -> dict[str, Any]:
        """What is sent, for the run header and the JSON output (no header values: they may hold secrets)."""
        out = self.cache_fields()
        out.pop("extra_headers", None)
        if self.extra_headers:
            out["extra_headers"] = sorted(k for k, _ in self.extra_headers)
        return out


@dataclass(frozen=True)
class Completion:
    text: str
    finish_reason: str | None
    api_refusal: bool = False
    served_model: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    reasoning_tokens: int | None = None  # hidden reasoning, counted inside output_tokens
    headers: dict[str, str] | None = None  # rate-limit headers of the response, not stored

    def to_json(self) -> dict[str, Any]:
        out = {
            "text": self.text,
            "finish_reason": self.finish_reason,
            "api_refusal": self.api_refusal,
            "served_model": self.served_model,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
        }
        if self.reasoning_tokens is not None:
            out["reasoning_tokens"] = self.reasoning_tokens
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Completion":
        return cls(
            text=data.get("text") or "",
            finish_reason=data.get("finish_reason"),
            api_refusal=bool(data.get("api_refusal")),
            served_model=data.get("served_model"),
            input_tokens=_count(data.get("input_tokens")),
            output_tokens=_count(data.get("output_tokens")),
            reasoning_tokens=_count(data.get("reasoning_tokens")),
        )

    @property
    def cut_off(self) -> bool:
        """The answer stopped at the token cap (OpenAI ``length``, Anthropic ``max_tokens``)."""
        return self.finish_reason in LENGTH_FINISHES


LENGTH_FINISHES = ("length", "max_tokens")


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
    """Chat or completions body. The cap goes in ``params.token_field``, else the endpoint's
    default: OpenAI's own API wants ``max_completion_tokens`` (its reasoning models reject
    ``max_tokens``), compatible servers know ``max_tokens``. No temperature when it is None."""
    if api == "completions":
        body: dict[str, Any] = {"model": model, "prompt": completions_prompt(messages), "max_tokens": params.max_tokens,
                                "stop": COMPLETIONS_STOP}
    else:
        body = {"model": model, "messages": messages}
        field = params.token_field or ("max_completion_tokens" if hosted else "max_tokens")
        body[field] = params.max_tokens
        if params.reasoning_effort is not None:
            body["reasoning_effort"] = params.reasoning_effort
    if params.temperature is not None:
        body["temperature"] = params.temperature
    body.update(params.extra_body)
    return body


def anthropic_body(model: str, messages: list[dict[str, str]], params: Params) -> dict[str, Any]:
    """Messages body: the system prompt split out, ``max_tokens`` always set (with extended
    thinking the thinking budget is spent inside it, so it is raised to budget + the cap)."""
    system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
    body: dict[str, Any] = {
        "model": model,
        "max_tokens": params.max_tokens,
        "messages": [m for m in messages if m["role"] != "system"],
    }
    if system:
        body["system"] = system
    if params.temperature is not None:
        body["temperature"] = params.temperature
    if params.thinking_budget is not None:
        body["thinking"] = {"type": "enabled", "budget_tokens": params.thinking_budget}
        body["max_tokens"] = params.thinking_budget + params.max_tokens
    body.update(params.extra_body)
    return body


# --------------------------------------------------------------------------- answers


def _malformed(why: str) -> CallError:
    return CallError("malformed", why, retryable=True)


_MAX_TOKENS = 1 << 40  # a usage figure beyond this is not a token count


def _count(x: Any) -> int | None:
    """A token count a server reported, or None: negative, fractional, NaN or absurd values
    are not counts, and a negative one would be *subtracted* from a budget."""
    if isinstance(x, bool) or not isinstance(x, int) or not 0 <= x <= _MAX_TOKENS:
        return None
    return x


def _details(usage: dict[str, Any], key: str, field: str) -> int | None:
    d = usage.get(key)
    return _count(d.get(field)) if isinstance(d, dict) else None


_THINK = re.compile(r"\A\s*<think>(.*?)(?:</think>|\Z)", re.S)


def strip_reasoning(text: str) -> str:
    """The visible answer of a local reasoning model that writes its thoughts inline
    (``<think>...</think>`` before the answer, as Qwen3 and the DeepSeek-R1 distills do on
    servers that do not split them out); an unclosed block is all reasoning, no answer."""
    m = _THINK.match(text)
    return text[m.end():].lstrip() if m else text


def parse_openai(body: Any, api: str) -> Completion:
    """A chat or completions response body; ``CallError("malformed")`` when it is not one.

    Reasoning is never graded: vLLM's ``reasoning_content`` (and ``reasoning``) fields are
    ignored and an inline ``<think>`` block is cut off, so the scorers see the final answer.
    """
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
        "input_tokens": _count(usage.get("prompt_tokens")),
        "output_tokens": _count(usage.get("completion_tokens")),
        "reasoning_tokens": _details(usage, "completion_tokens_details", "reasoning_tokens"),
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
        text=strip_reasoning(content or "") or refusal or "",
        finish_reason=finish,
        api_refusal=finish == "content_filter" or bool(refusal),
        **common,
    )


def parse_anthropic(body: Any) -> Completion:
    """A Messages response body; ``stop_reason: refusal`` is an API-level refusal. Only text
    blocks are the answer: ``thinking`` and ``redacted_thinking`` blocks are reasoning."""
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
        input_tokens=_count(usage.get("input_tokens")),
        output_tokens=_count(usage.get("output_tokens")),
        reasoning_tokens=_details(usage, "output_tokens_details", "thinking_tokens"),
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


def check_answer(completion: Completion, params: Params) -> Completion:
    """An answer with no visible text that stopped at the token cap is a failure, not a refusal.

    A reasoning model can spend the whole cap thinking and return nothing; graded, that
    empty answer would read as a refusal and inflate over-refusal with no warning. So it is
    recorded as a failed call (excluded from n, counted, named with the fix). A cut answer that
    has text keeps its verdict; the report counts it as cut off.
    """
    if completion.cut_off and not completion.api_refusal and not completion.text.strip():
        spent = f"{completion.reasoning_tokens:,} reasoning tokens" if completion.reasoning_tokens else "no visible answer"
        raise CallError(
            "budget_exhausted",
            f"token budget exhausted ({spent} within max_tokens {params.max_tokens:,}); "
            "raise --max-tokens (or the variant's max_tokens, or lower its reasoning effort / thinking budget)",
            retryable=False,
        )
    return completion


# --------------------------------------------------------------------------- 400s that name a parameter

# The wording of "this parameter is not accepted", across OpenAI (codes unsupported_value /
# unsupported_parameter, "Unrecognized request argument supplied: X"), Anthropic ("X: Extra
# inputs are not permitted", "X is deprecated for this model") and compatible servers.
_PARAM_CODES = ("unsupported_value", "unsupported_parameter", "unknown_parameter", "invalid_parameter")
_PARAM_MESSAGES = (
    re.compile(r"unrecognized request arguments? supplied:\s*['\"]?([A-Za-z_][\w.]*)", re.I),
    re.compile(r"unsupported (?:value|parameter):\s*['\"]([A-Za-z_][\w.]*)['\"]", re.I),
    re.compile(r"^\s*([A-Za-z_][\w.]*)\s*:\s*extra inputs are not permitted", re.I | re.M),
    re.compile(r"['\"`]?([A-Za-z_][\w.]*)['\"`]? (?:is|are) (?:not supported|unsupported|deprecated|not allowed|not permitted)", re.I),
    re.compile(r"(?:does not support|doesn't support|unsupported parameter) ['\"`]?([A-Za-z_][\w.]*)", re.I),
)


def rejected_parameter(status: int | None, body: Any, message: str) -> str | None:
    """The request field a 400 rejects as unsupported, or None when the 400 says something else.

    Pure, so that every provider's wording is a row in a table of test cases.
    """
    if status not in (400, 422):
        return None
    err = body.get("error", body) if isinstance(body, dict) else None
    if isinstance(err, dict):
        code = str(err.get("code") or "").lower()
        param = err.get("param")
        if code in _PARAM_CODES and isinstance(param, str) and param:
            return param.split(".")[0]
    for pattern in _PARAM_MESSAGES:
        m = pattern.search(message or "")
        if m:
            return m.group(1).split(".")[0]
    return None
