"""Model profiles: what each model family accepts and needs, as data (``prompts/profiles.json``).

Why a table: the request a model accepts is a property of the model, not of taxcheck's code.
OpenAI's reasoning models (o-series, GPT-5 family) answer 400 to any ``temperature`` but the
default and to ``max_tokens`` (they want ``max_completion_tokens``), even behind a proxy;
Anthropic's API version 2026-10-21, which the anthropic SDK 2.x sends on every request,
takes no ``temperature`` on any model; reasoning models spend hidden tokens inside the answer
cap, so a 512-token cap leaves many of them with nothing to say. Written as code, each of
these became an ``if`` in the wire layer and a surprise for the next model; as rows, a user
adds one to ``taxcheck.toml`` the day a new model ships:

    [profiles."my-reasoner-*"]
    wire = "openai"                 # optional: which wire format the pattern applies to
    temperature = false
    token_field = "max_completion_tokens"
    reasoning = true
    max_tokens = 8192

A model no row names gets the default profile, and the client adjusts at run time (a 400 that
rejects ``temperature`` or ``max_tokens`` adjusts that model once, on stderr and in the run
file; see ``clients.py``). The same file holds the error codes that mean "the provider refused
the content" (``bio_policy``, ``content_filter`` ...): those are API-level refusals, outputs
rather than failures, and belong next to the rest of what taxcheck knows about providers.
"""

from __future__ import annotations

import fnmatch
import json
import tomllib
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from taxcheck.errors import SpecError
from taxcheck.paths import prompts_dir

TokenField = Literal["auto", "max_completion_tokens", "max_tokens"]
_TOKEN_FIELDS = ("auto", "max_completion_tokens", "max_tokens")
_KEYS = {"wire", "model", "temperature", "token_field", "reasoning", "max_tokens"}


@dataclass(frozen=True)
class Profile:
    """What one model accepts. ``pattern`` names the row that matched (for the run header)."""

    temperature: bool = True
    token_field: TokenField = "auto"
    reasoning: bool = False
    max_tokens: int = 512
    pattern: str = "default"

    def token_field_for(self, hosted_openai: bool) -> str:
        """The request field that caps the answer on this endpoint."""
        if self.token_field != "auto":
            return self.token_field
        return "max_completion_tokens" if hosted_openai else "max_tokens"


@dataclass(frozen=True)
class ProfileRow:
    wire: str | None
    model: str
    profile: Profile

    def matches(self, wire: str, model: str) -> bool:
        return (self.wire is None or self.wire == wire) and fnmatch.fnmatchcase(model.lower(), self.model.lower())


def _row(data: Any, where: str) -> ProfileRow:
    if not isinstance(data, dict):
        raise SpecError(f"{where}: a profile is a table of {', '.join(sorted(_KEYS - {'model'}))}")
    unknown = set(data) - _KEYS
    if unknown:
        raise SpecError(f"{where}: unknown keys {sorted(unknown)} (allowed: {', '.join(sorted(_KEYS - {'model'}))})")
    model = data.get("model")
    wire = data.get("wire")
    if not isinstance(model, str) or not model:
        raise SpecError(f"{where}: needs a model name pattern")
    if wire not in (None, "openai", "anthropic"):
        raise SpecError(f"{where}: wire must be \"openai\" or \"anthropic\"")
    token_field = data.get("token_field", "auto")
    if token_field not in _TOKEN_FIELDS:
        raise SpecError(f"{where}: token_field must be one of {', '.join(_TOKEN_FIELDS)}")
    for key in ("temperature", "reasoning"):
        if key in data and not isinstance(data[key], bool):
            raise SpecError(f"{where}: {key} must be true or false")
    max_tokens = data.get("max_tokens", 8192 if data.get("reasoning") else 512)
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise SpecError(f"{where}: max_tokens must be a positive whole number")
    profile = Profile(
        temperature=data.get("temperature", True),
        token_field=token_field,
        reasoning=data.get("reasoning", False),
        max_tokens=max_tokens,
        pattern=(f"{wire}:" if wire else "") + model,
    )
    return ProfileRow(wire, model, profile)


@lru_cache(maxsize=1)
def _builtin() -> tuple[tuple[ProfileRow, ...], Profile, frozenset[str]]:
    data = json.loads((prompts_dir() / "profiles.json").read_text(encoding="utf-8"))
    rows = tuple(_row(r, f"profiles.json row {i}") for i, r in enumerate(data["profiles"], start=1))
    default = _row({"model": "*", **data["default"]}, "profiles.json default").profile
    return rows, replace(default, pattern="default"), frozenset(c.lower() for c in data["api_refusal_codes"])


def api_refusal_codes() -> frozenset[str]:
    """Error codes (lower case) by which a provider says it refused the content itself."""
    return _builtin()[2]


def config_profiles(path: Path | None) -> tuple[ProfileRow, ...]:
    """``[profiles."PATTERN"]`` tables of taxcheck.toml (default ./taxcheck.toml), in file order."""
    p = path or Path("taxcheck.toml")
    if not p.exists():
        return ()
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError):
        return ()  # the registry reports a broken config with its own message
    table = data.get("profiles", {})
    if not isinstance(table, dict):
        raise SpecError(f"{p}: [profiles.\"PATTERN\"] must be tables")
    return tuple(_row({**v, "model": k} if isinstance(v, dict) else v, f"{p}: [profiles.\"{k}\"]") for k, v in table.items())


def profile_for(wire: str, model: str, user_rows: tuple[ProfileRow, ...] = ()) -> Profile:
    """The first row, the user's before the built-in ones, whose pattern names ``model``."""
    rows, default, _codes = _builtin()
    for row in (*user_rows, *rows):
        if row.matches(wire, model):
            return row.profile
    return default
