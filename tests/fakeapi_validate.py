"""Request bodies checked against the SDKs' own parameter types, rejected the way the providers do.

Why: a fake that accepts whatever the client sends shares every blind spot of the client,
so tests end up agreeing with the client's own misunderstanding (issue 10). The real APIs
reject unknown fields at any depth and wrong types with a 400; so does this.

The types are the SDKs' request TypedDicts (``openai.types.chat.completion_create_params``,
``openai.types.completion_create_params``, ``anthropic.types.message_create_params``), built
into pydantic-core validators with three changes, because pydantic's defaults would let
exactly the bugs through that this module exists to catch:

* every TypedDict forbids extra keys (pydantic ignores them by default, at every level),
  except the few the SDK itself marks ``extra="allow"`` (a tool's JSON Schema);
* ``Iterable[...]`` fields (``messages``, content parts, tools) are validated as lists:
  pydantic validates an ``Iterable`` lazily, i.e. not at all until someone iterates;
* unions of TypedDicts told apart by a literal ``type`` or ``role`` field become tagged
  unions, so a bad content block yields one precise error instead of one per union member.

Validation is strict (no "5" for 5, no true for 1): the wire is JSON and the SDKs send JSON
types; a client that sends a string where a number belongs has a bug even if some server
would coerce it. Documented rules the types cannot express (ranges, Anthropic's non-empty
content, the thinking budget, the ``anthropic-version`` header) are checked after the types.

Error shapes and messages, as the providers send them according to public bug reports
(confirmed there: OpenAI's unrecognized, missing, invalid-type and empty-array messages and
codes; Anthropic's "Extra inputs", thinking-budget, thinking-temperature, empty-content and
missing-version messages. Assumed by analogy: OpenAI's wording for unknown *nested* fields
on chat completions, bad enum values and ranges, and the exact Anthropic wording of
pydantic-style type and tag errors):

* OpenAI: ``{"error": {"message", "type": "invalid_request_error", "param", "code"}}``; an
  unknown top-level field is "Unrecognized request argument supplied: X" (param and code
  null); a missing one "Missing required parameter: 'messages[0].role'."
  (``missing_required_parameter``); a wrong type "Invalid type for 'max_tokens': expected an
  integer, but got a string instead." (``invalid_type``); a bad enum value "Invalid value:
  'bot'. Supported values are: ..." (``invalid_value``); an unknown nested field "Unknown
  parameter: 'messages[0].x'." (``unknown_parameter``).
* Anthropic: ``{"type": "error", "error": {"type": "invalid_request_error", "message":
  "<path>: <pydantic message>"}}`` with dotted paths that keep content-block tags, e.g.
  "temperature: Extra inputs are not permitted" or
  "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024".
"""

from __future__ import annotations

import copy
import functools
import json
import math
import re
import threading
from dataclasses import dataclass
from typing import Any, Callable

__all__ = ["ANTHROPIC_NO_SAMPLING_VERSION", "Rejection", "check_body", "envelope", "warm_up"]

ANTHROPIC_NO_SAMPLING_VERSION = "2026-10-21"
"""From this API version on, Anthropic has no ``temperature`` / ``top_p`` / ``top_k`` at all."""

_MARK = "\x1e"
"""Prefix of the labels this module gives union branches in error locations (never a JSON key)."""

_SDK_TYPES = {
    "chat": ("openai.types.chat.completion_create_params", "CompletionCreateParamsNonStreaming"),
    "completions": ("openai.types.completion_create_params", "CompletionCreateParamsNonStreaming"),
    "anthropic": ("anthropic.types.message_create_params", "MessageCreateParamsNonStreaming"),
}

_STREAMING_400 = "fakeapi does not implement streaming (stream=true)."


@dataclass(frozen=True)
class Rejection:
    """A 400 the provider would send instead of an answer.

    ``invalid`` is True when the body is wrong for every model (it does not validate, or
    breaks a documented body rule): such requests are recorded and fail the test that sent
    them. False for the fake's own limits (streaming) and model-specific refusals.
    """

    status: int
    body: dict[str, Any]
    reason: str
    invalid: bool = True


# --------------------------------------------------------------------------- validators


_build_lock = threading.Lock()


@functools.cache
def _validator(kind: str) -> Any:
    """The strict validator for one endpoint kind, built once per process (~0.05-0.2 s)."""
    import importlib

    from pydantic import TypeAdapter
    from pydantic_core import SchemaValidator

    module, name = _SDK_TYPES[kind]
    params_type = getattr(importlib.import_module(module), name)
    schema = copy.deepcopy(TypeAdapter(params_type).core_schema)
    return SchemaValidator(_strictify(schema))


def warm_up(kinds: tuple[str, ...] = ("chat", "completions", "anthropic")) -> None:
    """Build the validators now (imports the SDK types: a second or two), not on a request."""
    for kind in kinds:
        with _build_lock:
            _validator(kind)


def _strictify(schema: dict[str, Any]) -> dict[str, Any]:
    """The core schema with extras forbidden, iterables as lists and unions tagged/labelled."""
    refs: dict[str, dict[str, Any]] = {}

    def collect(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("ref"), str):
                refs[node["ref"]] = node
            for value in node.values():
                collect(value)
        elif isinstance(node, (list, tuple)):
            for value in node:
                collect(value)

    collect(schema)

    def resolve(node: dict[str, Any]) -> dict[str, Any]:
        while node.get("type") == "definition-ref" and node.get("schema_ref") in refs:
            node = refs[node["schema_ref"]]
        return node

    def transform(node: Any) -> Any:
        if isinstance(node, list):
            return [transform(v) for v in node]
        if isinstance(node, tuple):
            return tuple(transform(v) for v in node)
        if not isinstance(node, dict):
            return node
        out = {k: transform(v) for k, v in node.items()}
        kind = out.get("type")
        if kind == "typed-dict" and out.get("extra_behavior") != "allow":  # the SDK allows a few (JSON Schemas)
            out["extra_behavior"] = "forbid"
        elif kind == "generator":
            keep = ("items_schema", "min_length", "max_length", "ref", "metadata")
            out = {"type": "list", **{k: v for k, v in out.items() if k in keep}}
        elif kind == "union":
            out = _union(out, resolve)
        return out

    return transform(schema)


def _union(node: dict[str, Any], resolve: Callable[[dict[str, Any]], dict[str, Any]]) -> dict[str, Any]:
    choices = [c[0] if isinstance(c, tuple) else c for c in node["choices"]]
    # The SDKs also accept their own response objects (pydantic models that allow extra
    # keys) where a TypedDict block is expected: a JSON body can only ever be the TypedDict.
    wire = [c for c in choices if not _python_only(c, resolve)]
    choices = wire or choices
    if len(choices) == 1:
        return choices[0]
    field = _discriminator(choices, resolve)
    if field is None:
        labelled = [(choice, f"{_MARK}#{i}") for i, choice in enumerate(choices)]
        return {**node, "choices": labelled}
    tagged: dict[str, Any] = {}
    for choice in choices:
        for tag in resolve(resolve(choice)["fields"][field]["schema"])["expected"]:
            tagged[f"{_MARK}{field}={tag}"] = choice
    expected = [t.split("=", 1)[1] for t in tagged]
    out = {
        "type": "tagged-union",
        "choices": tagged,
        "discriminator": _tag_of(field),
        "custom_error_type": "fakeapi_tag",
        "custom_error_message": f"Unable to find a matching '{field}'",
        "custom_error_context": {"field": field, "expected": expected},
    }
    if "ref" in node:
        out["ref"] = node["ref"]
    return out


def _python_only(node: dict[str, Any], resolve: Callable[[dict[str, Any]], dict[str, Any]]) -> bool:
    """A pydantic model, or a union of nothing but models: only Python objects fit it."""
    node = resolve(node)
    kind = node.get("type")
    if kind == "model":
        return True
    if kind == "union":
        return all(_python_only(c[0] if isinstance(c, tuple) else c, resolve) for c in node["choices"])
    if kind == "tagged-union":
        return all(_python_only(c, resolve) for c in node["choices"].values())
    return False


def _discriminator(choices: list[dict[str, Any]], resolve: Callable[[dict[str, Any]], dict[str, Any]]) -> str | None:
    """The literal field that tells the TypedDict branches apart ("type", "role"), if any."""
    branches = [resolve(c) for c in choices]
    if len(branches) < 2 or any(b.get("type") != "typed-dict" for b in branches):
        return None
    common = set.intersection(*(set(b["fields"]) for b in branches))
    for field in sorted(common, key=lambda f: (f not in ("type", "role"), f)):
        seen: set[str] = set()
        ok = True
        for branch in branches:
            spec = branch["fields"][field]
            literal = resolve(spec["schema"])
            values = literal.get("expected") if literal.get("type") == "literal" else None
            required = spec.get("required", branch.get("total", True))
            if not required or not values or not all(isinstance(v, str) for v in values) or seen & set(values):
                ok = False
                break
            seen |= set(values)
        if ok:
            return field
    return None


def _tag_of(field: str) -> Callable[[Any], str | None]:
    def tag(value: Any) -> str | None:
        if isinstance(value, dict) and isinstance(value.get(field), str):
            return f"{_MARK}{field}={value[field]}"
        return None

    return tag


# --------------------------------------------------------------------------- checking


def check_body(kind: str, body: Any, headers: dict[str, str]) -> Rejection | None:
    """None when ``body`` is a request the provider accepts for ``kind``, else its 400.

    ``kind`` is "chat", "completions" or "anthropic"; ``headers`` are lower-cased.
    """
    provider = "anthropic" if kind == "anthropic" else "openai"
    if not isinstance(body, dict) or _non_finite(body):
        return _reject(provider, "We could not parse the JSON body of your request.", code=None)
    body = dict(body)
    streaming = body.pop("stream", None) is True
    if provider == "anthropic":
        rejection = _anthropic_headers(headers)
        if rejection is not None:
            return rejection
        version = headers.get("anthropic-version", "")
        if version < ANTHROPIC_NO_SAMPLING_VERSION:
            rejection = _legacy_sampling(body)  # pops temperature/top_p/top_k once checked
            if rejection is not None:
                return rejection
    from pydantic_core import ValidationError

    try:
        _validator(kind).validate_python(body, strict=True)
    except ValidationError as exc:
        return _from_errors(provider, exc.errors(include_url=False))
    rejection = _openai_rules(body) if provider == "openai" else _anthropic_rules(body, headers)
    if rejection is not None:
        return rejection
    if streaming:
        return Rejection(400, envelope(provider, _STREAMING_400, None, None), _STREAMING_400, invalid=False)
    return None


def _non_finite(body: Any) -> bool:
    """NaN or Infinity anywhere: Python's json reads and writes them, but they are not JSON."""
    stack = [body]
    while stack:
        value = stack.pop()
        if isinstance(value, float) and not math.isfinite(value):
            return True
        if isinstance(value, dict):
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return False


def envelope(provider: str, message: str, param: str | None, code: str | None) -> dict[str, Any]:
    """The provider's 400 error body (OpenAI's carries ``param`` and ``code``)."""
    if provider == "anthropic":
        return {"type": "error", "error": {"type": "invalid_request_error", "message": message}}
    return {"error": {"message": message, "type": "invalid_request_error", "param": param, "code": code}}


def _reject(provider: str, message: str, *, param: str | None = None, code: str | None = None) -> Rejection:
    return Rejection(400, envelope(provider, message, param, code), message)


# ----------------------------------------------------------------- pydantic errors -> provider errors


def _is_branch(item: Any) -> bool:
    return isinstance(item, str) and item.startswith(f"{_MARK}#")


def _is_tag(item: Any) -> bool:
    return isinstance(item, str) and item.startswith(_MARK) and not _is_branch(item)


def openai_path(loc: tuple[Any, ...]) -> str:
    """``('messages', 0, <tag>, 'content')`` -> ``messages[0].content`` (OpenAI's param form)."""
    out = ""
    for item in loc:
        if isinstance(item, str) and item.startswith(_MARK):
            continue
        out += f"[{item}]" if isinstance(item, int) else (f".{item}" if out else str(item))
    return out


def anthropic_path(loc: tuple[Any, ...]) -> str:
    """Dotted, keeping content-block tags as Anthropic does (``thinking.enabled.budget_tokens``)."""
    parts: list[str] = []
    for item in loc:
        if _is_tag(item):
            field, _, value = item[1:].partition("=")
            if field == "type":
                parts.append(value)
        elif not _is_branch(item):
            parts.append(str(item))
    return ".".join(parts)


def _clean(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(i for i in loc if not (isinstance(i, str) and i.startswith(_MARK)))


def _relevant(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Drop "this union branch has the wrong type" errors when another branch got further.

    A list of content parts fails the ``str`` branch at once and the list branch deeper
    down; the deeper error is the one that says what is wrong.
    """
    kept = []
    for error in errors:
        loc = tuple(error["loc"])
        if loc and _is_branch(loc[-1]):
            prefix = loc[:-1]
            deeper = any(
                tuple(o["loc"])[: len(prefix)] == prefix and len(o["loc"]) > len(loc)
                and tuple(o["loc"])[len(prefix)] != loc[-1]
                for o in errors
            )
            if deeper:
                continue
        kept.append(error)
    return kept or errors


_TYPE_NAMES = {
    "string_type": "a string", "int_type": "an integer", "float_type": "a decimal", "bool_type": "a boolean",
    "list_type": "an array", "dict_type": "an object", "none_required": "null",
    "literal_error": "one of the listed values",
    "is_instance_of": "an array", "iterable_type": "an array", "fakeapi_tag": "an object",
}


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _quoted_list(values: list[str]) -> str:
    quoted = [f"'{v}'" for v in values]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + f", and {quoted[-1]}"


def _literal_values(error: dict[str, Any]) -> list[str]:
    ctx = error.get("ctx") or {}
    if isinstance(ctx.get("expected"), list):
        return [str(v) for v in ctx["expected"]]
    return re.findall(r"'([^']*)'", str(ctx.get("expected", "")))


def _from_errors(provider: str, errors: list[dict[str, Any]]) -> Rejection:
    errors = _relevant(errors)
    # Several branches of one union all failed at the top: one "expected one of" problem.
    first = errors[0]
    same_place = [e for e in errors if _clean(tuple(e["loc"])) == _clean(tuple(first["loc"]))
                  and tuple(e["loc"]) and _is_branch(tuple(e["loc"])[-1])]
    if provider == "openai":
        top_extra = [e for e in errors if e["type"] == "extra_forbidden" and len(_clean(tuple(e["loc"]))) == 1]
        chosen = top_extra[0] if top_extra else first
        if not top_extra and len(same_place) > 1:
            return _openai_type(first, [_TYPE_NAMES.get(e["type"], e["type"]) for e in same_place], len(errors))
        return _openai_error(chosen, len(errors))
    if len(same_place) > 1:
        path = anthropic_path(tuple(first["loc"]))
        shown = " or ".join(dict.fromkeys(e["msg"].removeprefix("Input should be ") for e in same_place))
        return _reject(provider, f"{path}: Input should be {shown}")
    return _anthropic_error(first)


def _openai_type(error: dict[str, Any], expected: list[str], count: int) -> Rejection:
    path = openai_path(tuple(error["loc"]))
    wanted = expected[0] if len(expected) == 1 else "one of " + " or ".join(dict.fromkeys(expected))
    message = f"Invalid type for '{path}': expected {wanted}, but got {_json_type(error['input'])} instead."
    return _counted(_reject("openai", message, param=path, code="invalid_type"), count)


def _counted(rejection: Rejection, count: int) -> Rejection:
    if count <= 1:
        return rejection
    return Rejection(rejection.status, rejection.body, f"{rejection.reason} (+{count - 1} more)", rejection.invalid)


def _openai_error(error: dict[str, Any], count: int) -> Rejection:
    loc = tuple(error["loc"])
    path = openai_path(loc)
    kind = error["type"]
    if kind == "extra_forbidden":
        if len(_clean(loc)) == 1:
            rejection = _reject("openai", f"Unrecognized request argument supplied: {path}")
        else:
            rejection = _reject("openai", f"Unknown parameter: '{path}'.", param=path, code="unknown_parameter")
    elif kind == "missing":
        rejection = _reject("openai", f"Missing required parameter: '{path}'.", param=path,
                            code="missing_required_parameter")
    elif kind == "fakeapi_tag" and isinstance(error["input"], dict):
        field = error["ctx"]["field"]
        where = f"{path}.{field}" if path else field
        if field not in error["input"]:
            rejection = _reject("openai", f"Missing required parameter: '{where}'.", param=where,
                                code="missing_required_parameter")
        else:
            rejection = _invalid_value(where, error["input"][field], error["ctx"]["expected"])
    elif kind == "literal_error":
        rejection = _invalid_value(path, error["input"], _literal_values(error))
    else:
        return _openai_type(error, [_TYPE_NAMES.get(kind, kind.replace("_", " "))], count)
    return _counted(rejection, count)


def _invalid_value(path: str, value: Any, allowed: list[str]) -> Rejection:
    shown = value if isinstance(value, str) else json.dumps(value)
    message = f"Invalid value: '{shown}'. Supported values are: {_quoted_list(allowed)}."
    return _reject("openai", message, param=path, code="invalid_value")


def _anthropic_error(error: dict[str, Any]) -> Rejection:
    loc = tuple(error["loc"])
    path = anthropic_path(loc)
    if error["type"] == "fakeapi_tag" and isinstance(error["input"], dict):
        field, expected = error["ctx"]["field"], error["ctx"]["expected"]
        if field not in error["input"]:
            message = (f"{path}: Unable to extract tag using discriminator '{field}'" if field == "type"
                       else f"{path}.{field}: Field required")
        elif field == "type":
            message = (f"{path}: Input tag '{error['input'][field]}' found using '{field}' does not match any "
                       f"of the expected tags: {', '.join(repr(t) for t in expected)}")
        else:
            allowed = [f"'{t}'" for t in expected]
            message = f"{path}.{field}: Input should be {', '.join(allowed[:-1])} or {allowed[-1]}"
        return _reject("anthropic", message)
    if error["type"] == "fakeapi_tag":
        return _reject("anthropic", f"{path}: Input should be a valid dictionary or instance of a model")
    return _reject("anthropic", f"{path}: {error['msg']}" if path else error["msg"])


# ----------------------------------------------------------------- documented rules beyond the types


_OPENAI_RANGES: dict[str, tuple[float | None, float | None]] = {
    "temperature": (0, 2), "top_p": (0, 1), "presence_penalty": (-2, 2), "frequency_penalty": (-2, 2),
    "n": (1, 128), "max_tokens": (1, None), "max_completion_tokens": (1, None), "top_logprobs": (0, 20),
}


_INTEGER_PARAMS = ("n", "max_tokens", "max_completion_tokens", "top_logprobs")


def _fmt(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _openai_rules(body: dict[str, Any]) -> Rejection | None:
    for name, (low, high) in _OPENAI_RANGES.items():
        value = body.get(name)
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            continue
        noun = "integer" if isinstance(value, int) and name in _INTEGER_PARAMS else "decimal"
        if low is not None and value < low:
            return _reject("openai", f"Invalid '{name}': {noun} below minimum value. Expected a value >= {_fmt(low)}, "
                           f"but got {_fmt(value)} instead.", param=name, code=f"{noun}_below_min_value")
        if high is not None and value > high:
            return _reject("openai", f"Invalid '{name}': {noun} above maximum value. Expected a value <= {_fmt(high)}, "
                           f"but got {_fmt(value)} instead.", param=name, code=f"{noun}_above_max_value")
    arrays = [("messages", body.get("messages"))]
    arrays += [(f"messages[{i}].tool_calls", m.get("tool_calls")) for i, m in enumerate(body.get("messages") or [])]
    for name, value in arrays:
        if value == []:
            return _reject("openai", f"Invalid '{name}': empty array. Expected an array with minimum length 1, but got "
                           "an empty array instead.", param=name, code="empty_array")
    return None


def _anthropic_headers(headers: dict[str, str]) -> Rejection | None:
    if not headers.get("anthropic-version"):
        return _reject("anthropic", "anthropic-version: header is required")
    return None


_LEGACY_SAMPLING = {"temperature": (0.0, 1.0), "top_p": (0.0, 1.0), "top_k": (0, None)}


def _legacy_sampling(body: dict[str, Any]) -> Rejection | None:
    """Before 2026-10-21 Anthropic took temperature/top_p/top_k; check them, then drop them."""
    thinking = body.get("thinking") if isinstance(body.get("thinking"), dict) else {}
    for name, (low, high) in _LEGACY_SAMPLING.items():
        if name not in body:
            continue
        value = body.pop(name)
        integral = name == "top_k"
        if isinstance(value, bool) or not isinstance(value, int if integral else (int, float)):
            return _reject("anthropic", f"{name}: Input should be a valid {'integer' if integral else 'number'}")
        if low is not None and value < low:
            return _reject("anthropic", f"{name}: Input should be greater than or equal to {_fmt(low)}")
        if high is not None and value > high:
            return _reject("anthropic", f"{name}: Input should be less than or equal to {_fmt(high)}")
        if name == "temperature" and value != 1 and thinking.get("type") in ("enabled", "adaptive"):
            return _reject("anthropic", "`temperature` may only be set to 1 when thinking is enabled or in adaptive "
                           "mode. Please consult our documentation at "
                           "https://platform.claude.com/docs/en/build-with-claude/extended-thinking")
    return None


_BUDGET_DOCS = "https://docs.claude.com/en/docs/build-with-claude/extended-thinking#max-tokens-and-context-window-size"


def _anthropic_rules(body: dict[str, Any], headers: dict[str, str]) -> Rejection | None:
    thinking = body.get("thinking")
    if isinstance(thinking, dict) and thinking.get("type") == "enabled":
        budget = thinking.get("budget_tokens", 0)
        if budget < 1024:
            return _reject("anthropic", "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024")
        if body.get("max_tokens", 0) <= budget:
            return _reject("anthropic", f"`max_tokens` must be greater than `thinking.budget_tokens`. Please consult "
                           f"our documentation at {_BUDGET_DOCS}")
    if isinstance(body.get("max_tokens"), int) and body["max_tokens"] < 0:
        return _reject("anthropic", "max_tokens: Input should be greater than or equal to 0")
    system = body.get("system")
    if isinstance(system, list) and any(isinstance(b, dict) and b.get("type") == "text" and b.get("text") == ""
                                        for b in system):
        return _reject("anthropic", "system: text content blocks must be non-empty")
    return _anthropic_empty_content(body.get("messages", []))


def _anthropic_empty_content(messages: list[Any]) -> Rejection | None:
    """Empty text is rejected; only a final assistant message (a prefill) may be empty."""
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            continue
        content = message.get("content")
        final_assistant = i == len(messages) - 1 and message.get("role") == "assistant"
        if content in ("", []) and not final_assistant:
            return _reject("anthropic", f"messages.{i}: all messages must have non-empty content except for the "
                           "optional final assistant message")
        if isinstance(content, list) and any(isinstance(b, dict) and b.get("type") == "text" and b.get("text") == ""
                                             for b in content):
            return _reject("anthropic", "messages: text content blocks must be non-empty")
    return None
