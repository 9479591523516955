"""Failures that explain themselves: the failed calls of a run, grouped by cause, with the fix.

Why: a mistyped model name, a wrong base path, a parameter the model rejects or a server that
hangs all used to end the same way, exit 3 and an empty table, with the reason only inside
the run file. One line per distinct cause and model (never one per call, never none) says
what happened, how often and what to do::

    openai:gpt-4o-mnii: 160 calls failed: 404 from https://api.openai.com/v1: The model
    `gpt-4o-mnii` does not exist (check the model name: `taxcheck models openai:gpt-4o-mnii`)

The same groups go into the JSON document (``failure_causes``), beside the per-model counts
of ``failures`` that scripts already read.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from taxcheck.runfile import RunData

# Ids, counts and numbers inside otherwise identical messages (batch ids, request ids,
# "after 5 tries"): masked for grouping only; the line shows the first message as it was.
_VARYING = re.compile(r"\b[\w-]*\d[\w-]*\b")


@dataclass(frozen=True)
class Cause:
    kind: str
    message: str
    calls: int
    fix: str | None

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "message": self.message, "calls": self.calls, "fix": self.fix}


def fix_for(kind: str, message: str, spec: str, endpoint: dict[str, str] | None, timeout_s: Any = None) -> str | None:
    """What to do about one kind of failure, when its cause suggests it (pure: a table of cases)."""
    url = (endpoint or {}).get("url", "")
    wire = (endpoint or {}).get("wire", "")
    if kind == "not_found":
        if wire == "anthropic" and url.rstrip("/").endswith("/v1"):
            return "the Anthropic base URL must not end in /v1 (the SDK adds /v1/messages): drop it from ANTHROPIC_BASE_URL"
        return f"check the model name and the base URL: `taxcheck models {spec}`"
    if kind.startswith("http_400") or kind == "http_422":
        m = re.search(r"does not accept '([^']+)'", message)
        if m:
            return f"drop {m.group(1)} from the variant, or give the model a profile in taxcheck.toml"
        return f"the endpoint rejected the request: `taxcheck models {spec} --probe` shows the form it accepts"
    if kind == "timeout":
        return f"raise --timeout (it was {timeout_s:g} s)" if isinstance(timeout_s, (int, float)) else "raise --timeout"
    if kind in ("connection", "unreachable"):
        return f"is the server at {url or 'its URL'} running, and the URL right?"
    if kind == "http_429":
        return "the rate limit never cleared: lower -j, or set --rpm/--tpm to the key's limits"
    if kind.startswith("http_5") or kind == "malformed":
        return "the server kept failing; rerun the same command later to retry only these calls"
    if kind == "oversized":
        return "the server sent a body over taxcheck's cap; check what is answering at that URL"
    return None  # budget_exhausted and others carry their fix in the message


def failure_causes(data: RunData, timeout_s: float | None = None) -> dict[str, list[Cause]]:
    """Per model, its failed calls grouped by (kind, message with ids masked), largest first."""
    groups: dict[str, dict[tuple[str, str], list[str]]] = defaultdict(lambda: defaultdict(list))
    for rec in data.calls.values():
        if not rec.failed or rec.error is None:
            continue
        kind = str(rec.error.get("kind") or "error")
        message = " ".join(str(rec.error.get("message") or "").split())
        groups[rec.model][(kind, _VARYING.sub("#", message))].append(message)
    out: dict[str, list[Cause]] = {}
    for model, by_cause in groups.items():
        endpoint = data.header.endpoints.get(model)
        causes = [Cause(kind, msgs[0], len(msgs), fix_for(kind, msgs[0], model, endpoint, timeout_s))
                  for (kind, _key), msgs in by_cause.items()]
        out[model] = sorted(causes, key=lambda c: (-c.calls, c.kind))
    return out


def cause_lines(causes: dict[str, list[Cause]]) -> list[str]:
    """One line per model and cause, for stderr."""
    lines = []
    for model, cs in causes.items():
        for c in cs:
            noun = "call" if c.calls == 1 else "calls"
            lines.append(f"{model}: {c.calls} {noun} failed: {c.message}" + (f" ({c.fix})" if c.fix else ""))
    return lines


def say_failures(causes: dict[str, list[Cause]], err) -> None:
    """One stderr line per model and distinct cause of failure, with the fix where one is known
    (``causes``: the report's, so stderr and the JSON's ``failure_causes`` never differ)."""
    from taxcheck.console import say

    for line in cause_lines(causes):
        say(err, "failed", "bold red", line)
