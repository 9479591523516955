"""How a named model behaves beyond the wire format: parameter refusals, hidden reasoning, policy errors.

Why: the providers' reasoning models refuse parameters that other models take, and spend
part of the output budget on reasoning the client never sees; a client written against
``gpt-4o`` breaks on ``o4-mini`` in ways only these rules reveal (issue 10).

A ``ModelProfile`` is chosen per request by model name (``FakeAPI.profile`` overrides
first, then ``DEFAULT_PATTERNS``; case-insensitive ``fnmatch`` on the whole name and on the
part after the last "/", so ``openai/o4-mini`` behind a proxy is still an o-series model).
Names that match nothing (the tests' "A", "B", "strict", "judge", ...) get ``PLAIN`` on the
OpenAI wire: exactly the permissive fake of before. On the Anthropic wire every model
honours ``thinking`` (it is the request that asks for it, not the model name).

Kinds:

* ``openai_reasoning`` (o1, o3, o4, GPT-5, GPT-6): ``temperature``, ``top_p`` and the
  penalties only at their defaults (400 ``unsupported_value``); ``max_tokens`` refused (400
  ``unsupported_parameter``, "Use 'max_completion_tokens' instead."); GPT-6 refuses
  ``temperature``/``top_p``/``logprobs``/``top_logprobs`` outright. Reasoning tokens are
  spent first, counted in ``completion_tokens`` and reported in
  ``completion_tokens_details.reasoning_tokens``: a budget exhausted while reasoning gives
  empty content with ``finish_reason: "length"``; one exhausted while answering, a cut answer.
* ``openai_chat`` (GPT-4 family, GPT-3.5): refuse ``reasoning_effort``.
* ``local_reasoning`` (Qwen3, DeepSeek-R1 distills, gpt-oss behind vLLM / Ollama /
  llama.cpp): take any sampling parameter, spend ``max_tokens`` on reasoning the same way,
  and show it as ``message.reasoning_content`` (vLLM) or inline ``<think>...</think>``.
* ``anthropic``: ``thinking: enabled`` (budget-capped) or ``adaptive`` produce a thinking
  block before the text, counted in ``output_tokens`` (and ``output_tokens_details``); a
  ``max_tokens`` exhausted while thinking gives ``stop_reason: "max_tokens"`` and no text.

Tokens are whitespace-separated words, as everywhere in the fake (``count_tokens``).
Both OpenAI chat rules are "behavioural": they depend on the model, so unlike an invalid
body they do not fail the test by themselves; the client sees the 400 the provider sends.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Mapping

from fakeapi_validate import Rejection, envelope

if TYPE_CHECKING:  # fakeapi imports this module: no import cycle at run time
    from fakeapi import Reply

__all__ = [
    "DEFAULT_PATTERNS", "DEFAULT_REASONING_TOKENS", "KIND_NAMES", "KINDS", "ModelProfile", "PLAIN", "Spent",
    "applies", "azure_content_filter_body", "check_params", "default_profile", "matches", "policy_body", "shape",
    "spend",
]

DEFAULT_REASONING_TOKENS = 256
"""Reasoning a profile spends per answer at medium effort unless a test scripts another figure."""

REASONING_TEXT = "Let me work through this carefully, checking each step before I answer."
"""Words the visible reasoning styles show, repeated to length (the hidden style shows none)."""

EFFORT_SCALE = {"none": 0.0, "minimal": 0.25, "low": 0.5, "medium": 1.0, "high": 2.0, "xhigh": 3.0, "max": 4.0}
"""``reasoning_effort`` scales the reasoning spent, as it does on the real models."""

REASONING_STYLES = ("hidden", "reasoning_content", "think_tags")
KIND_NAMES = ("plain", "openai_reasoning", "openai_chat", "local_reasoning", "anthropic")


@dataclass(frozen=True)
class ModelProfile:
    """What one model does beyond the wire format (see the module docstring for the kinds).

    ``only_default``: parameter -> the only value accepted (anything else: ``unsupported_value``).
    ``unsupported``: parameter -> hint appended to its ``unsupported_parameter`` error.
    ``chat_only``: POST /v1/completions answers 404 "This is a chat model ...".
    """

    kind: str = "plain"
    reasoning_tokens: int = 0
    reasoning_style: str = "hidden"
    only_default: Mapping[str, float] = field(default_factory=dict)
    unsupported: Mapping[str, str] = field(default_factory=dict)
    chat_only: bool = False

    def __post_init__(self) -> None:
        if self.kind not in KIND_NAMES:
            raise ValueError(f"unknown profile kind {self.kind!r}; one of {KIND_NAMES}")
        if self.reasoning_style not in REASONING_STYLES:
            raise ValueError(f"unknown reasoning_style {self.reasoning_style!r}; one of {REASONING_STYLES}")
        if self.reasoning_tokens < 0:
            raise ValueError("reasoning_tokens must be >= 0")


_SAMPLING_DEFAULTS = {"temperature": 1, "top_p": 1, "presence_penalty": 0, "frequency_penalty": 0}
_USE_MCT = "Use 'max_completion_tokens' instead."

PLAIN = ModelProfile()
KINDS: dict[str, ModelProfile] = {
    "plain": PLAIN,
    "openai_reasoning": ModelProfile(
        kind="openai_reasoning", reasoning_tokens=DEFAULT_REASONING_TOKENS,
        only_default=_SAMPLING_DEFAULTS, unsupported={"max_tokens": _USE_MCT}, chat_only=True,
    ),
    "openai_chat": ModelProfile(kind="openai_chat", unsupported={"reasoning_effort": ""}, chat_only=True),
    "local_reasoning": ModelProfile(
        kind="local_reasoning", reasoning_tokens=DEFAULT_REASONING_TOKENS, reasoning_style="reasoning_content",
    ),
    "anthropic": ModelProfile(kind="anthropic", reasoning_tokens=DEFAULT_REASONING_TOKENS),
}
"""The template of each kind; ``FakeAPI.profile(pattern, kind, **changes)`` starts from one."""

_GPT6 = replace(
    KINDS["openai_reasoning"],
    only_default={"presence_penalty": 0, "frequency_penalty": 0},
    unsupported={"max_tokens": _USE_MCT, "temperature": "", "top_p": "", "logprobs": "", "top_logprobs": ""},
)

DEFAULT_PATTERNS: list[tuple[str, ModelProfile]] = [
    ("gpt-6*", _GPT6),
    *[(p, KINDS["openai_reasoning"]) for p in ("o1*", "o3*", "o4*", "gpt-5*")],
    *[(p, KINDS["openai_chat"]) for p in ("gpt-4*", "gpt-3.5*")],
    *[(p, KINDS["local_reasoning"]) for p in ("qwen3*", "deepseek-r1*", "gpt-oss*")],
]
"""First match wins; names matching none are ``PLAIN`` (OpenAI wire) or ``anthropic`` (Anthropic wire)."""


def matches(pattern: str, model: str | None) -> bool:
    """``pattern`` (fnmatch, case-insensitive) fits the model name or its last path segment."""
    if not model:
        return False
    name = model.lower()
    pattern = pattern.lower()
    return fnmatch.fnmatchcase(name, pattern) or fnmatch.fnmatchcase(name.rsplit("/", 1)[-1], pattern)


def default_profile(model: str | None, wire: str) -> ModelProfile:
    """The built-in profile for ``model`` on ``wire`` ("openai" or "anthropic")."""
    if wire == "anthropic":
        return KINDS["anthropic"]
    for pattern, profile in DEFAULT_PATTERNS:
        if matches(pattern, model):
            return profile
    return PLAIN


def applies(profile: ModelProfile, wire: str) -> bool:
    """A profile only acts on its own wire format (an o-series name sent to /v1/messages is plain)."""
    return (profile.kind == "anthropic") == (wire == "anthropic") or profile.kind == "plain"


# --------------------------------------------------------------------------- behavioural 400s


def _shown(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def check_params(kind: str, body: dict[str, Any], profile: ModelProfile) -> Rejection | None:
    """The 400 (or 404) this model sends for a body that is valid in general; None if none."""
    if profile.chat_only and kind == "completions":
        message = ("This is a chat model and not supported in the v1/completions endpoint. "
                   "Did you mean to use v1/chat/completions?")
        return Rejection(404, envelope("openai", message, "model", None), message, invalid=False)
    for name, value in body.items():
        if name in profile.unsupported:
            if value is None:
                message = f"Invalid type for '{name}': expected an unsupported value, but got null instead."
                code = "invalid_type"
            else:
                hint = profile.unsupported[name]
                message = f"Unsupported parameter: '{name}' is not supported with this model."
                message += f" {hint}" if hint else ""
                code = "unsupported_parameter"
            return Rejection(400, envelope("openai", message, name, code), message, invalid=False)
        if name in profile.only_default and value is not None and value != profile.only_default[name]:
            default = profile.only_default[name]
            message = (f"Unsupported value: '{name}' does not support {_shown(value)} with this model. "
                       f"Only the default ({_shown(default)}) value is supported.")
            return Rejection(400, envelope("openai", message, name, "unsupported_value"), message, invalid=False)
    return None


# --------------------------------------------------------------------------- reasoning and budgets


_WORD = re.compile(r"\S+")


def _first_words(text: str, k: int) -> str:
    """``text`` cut after its ``k``-th word, keeping the original spacing before it."""
    if k <= 0:
        return ""
    end = 0
    for i, match in enumerate(_WORD.finditer(text)):
        end = match.end()
        if i + 1 == k:
            break
    return text[:end]


def _words(text: str) -> int:
    return len(_WORD.findall(text))


def _reasoning(n: int) -> str:
    words = REASONING_TEXT.split()
    return " ".join(words[i % len(words)] for i in range(n))


@dataclass(frozen=True)
class Spent:
    """How an output budget was used: reasoning first, then the answer."""

    reasoning: int
    answer: int
    cut: bool  # the budget ran out (finish_reason "length" / stop_reason "max_tokens")


def spend(budget: int | None, reasoning: int, answer: int) -> Spent:
    """Reasoning tokens come out of the same budget as the answer, before it."""
    if budget is None or reasoning + answer <= budget:
        return Spent(reasoning, answer, False)
    if reasoning >= budget:
        return Spent(budget, 0, True)
    return Spent(reasoning, budget - reasoning, True)


def _reasoning_for(profile: ModelProfile, body: dict[str, Any]) -> int:
    effort = body.get("reasoning_effort")
    scale = EFFORT_SCALE.get(effort, 1.0) if isinstance(effort, str) else 1.0
    return int(profile.reasoning_tokens * scale)


def shape(kind: str, body: dict[str, Any], reply: Reply, response: dict[str, Any],
          profile: ModelProfile) -> dict[str, Any]:
    """Rewrite a success ``response`` for ``profile``: reasoning spent, budgets enforced.

    ``kind`` and ``body`` are the request's; ``reply`` the scripted ``Reply`` whose ``usage``
    overrides still win over the figures computed here.
    """
    if kind == "chat" and profile.kind in ("openai_reasoning", "local_reasoning") and reply.refusal is None:
        return _shape_chat(body, reply, response, profile)
    if kind == "anthropic" and profile.kind == "anthropic":
        thinking = body.get("thinking")
        if isinstance(thinking, dict) and thinking.get("type") in ("enabled", "adaptive"):
            return _shape_anthropic(body, thinking, reply, response, profile)
    return response


def _budget(body: dict[str, Any]) -> int | None:
    """``max_completion_tokens``, else ``max_tokens`` (which reasoning models refuse unless scripted not to)."""
    value = body.get("max_completion_tokens")
    if value is None:
        value = body.get("max_tokens")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _override(usage: dict[str, Any], reply: Reply, aliases: dict[str, str]) -> dict[str, Any]:
    for key, value in (reply.usage or {}).items():
        usage[aliases.get(key, key)] = value
    return usage


def _shape_chat(body: dict[str, Any], reply: Reply, response: dict[str, Any], profile: ModelProfile) -> dict[str, Any]:
    text = reply.text
    reasoning = _reasoning_for(profile, body)
    tags = profile.reasoning_style == "think_tags"
    spent = spend(_budget(body), reasoning + (2 if tags and reasoning else 0), _words(text))
    shown_reasoning = _reasoning(min(reasoning, max(0, spent.reasoning - (1 if tags else 0))))
    answer = _first_words(text, spent.answer)
    for choice in response["choices"]:
        message = choice["message"]
        if profile.reasoning_style == "hidden":
            message["content"] = answer
        elif profile.reasoning_style == "reasoning_content":
            message["reasoning_content"] = shown_reasoning or None
            message["content"] = answer or None
        else:  # <think> tags: the closing tag only once the reasoning is complete
            closed = spent.reasoning >= reasoning + 2
            think = f"<think>\n{shown_reasoning}" + ("\n</think>\n\n" if closed else "") if reasoning else ""
            message["content"] = think + answer
        if spent.cut:
            choice["finish_reason"] = "length"
    n = len(response["choices"])
    usage = response["usage"]
    usage["completion_tokens"] = (spent.reasoning + spent.answer) * n
    if profile.kind == "openai_reasoning":
        usage["completion_tokens_details"] = {
            "reasoning_tokens": spent.reasoning * n, "audio_tokens": 0,
            "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0,
        }
        usage["prompt_tokens_details"] = {"cached_tokens": 0, "audio_tokens": 0}
    _override(usage, reply, {"input_tokens": "prompt_tokens", "output_tokens": "completion_tokens"})
    if "total_tokens" not in (reply.usage or {}):
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
    return response


def _shape_anthropic(body: dict[str, Any], thinking: dict[str, Any], reply: Reply, response: dict[str, Any],
                     profile: ModelProfile) -> dict[str, Any]:
    planned = profile.reasoning_tokens
    if thinking.get("type") == "enabled" and isinstance(thinking.get("budget_tokens"), int):
        planned = min(planned, thinking["budget_tokens"])
    max_tokens = body.get("max_tokens") if isinstance(body.get("max_tokens"), int) else None
    spent = spend(max_tokens, planned, _words(reply.text))
    shown = "" if thinking.get("display") == "omitted" else _reasoning(spent.reasoning)
    blocks: list[dict[str, Any]] = []
    if spent.reasoning:
        blocks.append({"type": "thinking", "thinking": shown, "signature": f"fakesig-{response['id']}"})
    answer = _first_words(reply.text, spent.answer)
    if answer:
        blocks.append({"type": "text", "text": answer})
    response["content"] = blocks
    if spent.cut:
        response["stop_reason"] = "max_tokens"
    usage = response["usage"]
    usage["output_tokens"] = spent.reasoning + spent.answer
    usage["output_tokens_details"] = {"thinking_tokens": spent.reasoning}
    _override(usage, reply, {"prompt_tokens": "input_tokens", "completion_tokens": "output_tokens"})
    return response


# --------------------------------------------------------------------------- policy errors


_POLICIES: dict[str, tuple[int, str, str]] = {
    # code -> (status, error type, message). Sources are public bug reports, not API docs:
    # cyber_policy's whole body as a client received it in 2026 (inspect_ai PR 3607);
    # bio_policy's message as relayed by the Codex backend, its type assumed;
    # misalignment_policy_violation's 403 and type as summarised from OpenAI's GPT-6 notes,
    # its wording assumed (clients are told to match the code, never the message).
    "cyber_policy": (400, "invalid_request", "This request has been flagged for potentially high-risk cyber "
                     "activity. Learn more here: https://platform.openai.com/docs/guides/safety-checks/cybersecurity"),
    "bio_policy": (400, "invalid_request_error", "This content was flagged for possible biological risk. If this "
                   "seems wrong, try rephrasing your request."),
    "misalignment_policy_violation": (403, "invalid_request_error", "This request was blocked due to a "
                                      "misalignment policy violation."),
    "content_policy_violation": (400, "invalid_request_error", "Your request was rejected as a result of our "
                                 "safety system."),
}


def policy_body(code: str, message: str | None = None, status: int | None = None) -> tuple[int, dict[str, Any]]:
    """An OpenAI policy refusal: ``bio_policy``, ``cyber_policy``, ``misalignment_policy_violation``
    (403: it is raised before any output, per OpenAI's GPT-6 notes) or ``content_policy_violation``."""
    if code not in _POLICIES:
        raise ValueError(f"unknown policy code {code!r}; one of {sorted(_POLICIES)}")
    default_status, etype, default_message = _POLICIES[code]
    body = {"error": {"message": message or default_message, "type": etype, "param": None, "code": code}}
    return status or default_status, body


_AZURE_FILTER_MESSAGE = (
    "The response was filtered due to the prompt triggering Azure OpenAI's content management policy. "
    "Please modify your prompt and retry. To learn more about our content filtering policies please read our "
    "documentation: https://go.microsoft.com/fwlink/?linkid=2198766"
)
_AZURE_CATEGORIES = ("hate", "self_harm", "sexual", "violence")


def azure_content_filter_body(filtered: Mapping[str, str] | None = None, jailbreak: bool = False) -> dict[str, Any]:
    """Azure OpenAI's 400 for a filtered prompt; ``filtered`` maps category -> severity."""
    filtered = dict(filtered if filtered is not None else {"violence": "medium"})
    unknown = set(filtered) - set(_AZURE_CATEGORIES)
    if unknown:
        raise ValueError(f"unknown Azure filter categories {sorted(unknown)}; use {_AZURE_CATEGORIES}")
    result: dict[str, Any] = {
        c: {"filtered": c in filtered, "severity": filtered.get(c, "safe")} for c in _AZURE_CATEGORIES
    }
    result["jailbreak"] = {"filtered": jailbreak, "detected": jailbreak}
    return {"error": {
        "message": _AZURE_FILTER_MESSAGE, "type": None, "param": "prompt", "code": "content_filter", "status": 400,
        "innererror": {"code": "ResponsibleAIPolicyViolation", "content_filter_result": result},
    }}
