"""Which grader fed each number, and why a judge's verdicts are missing.

A judge that is down, refuses the key or never answers in the required form must never
change the numbers silently. Under ``--grader auto`` its missing verdicts fall back to the
rules (``grade.rules.judge_grades``); this module is what makes that visible: per dimension, how
many verdicts came from the judge and how many from the rules (JSON ``graded_by``, the
footer), which dimensions are incomplete under ``--grader judge``, and one sentence naming
the cause of the judge's failures for stderr.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from taxcheck.grade.rules import REFUSAL_CATEGORIES, Grade
from taxcheck.runfile import CallKey, RunData, ok_calls
from taxcheck.suites.format import SuiteItem

SOURCES = ("judge", "rule", "missing")


def fed_fields(item: SuiteItem) -> list[tuple[str, str]]:
    """(Grade field, dimension) pairs a call of this item feeds."""
    cat = item.category
    if cat in REFUSAL_CATEGORIES:
        out = [("refusal", cat)]
        if item.pair is not None and cat in ("over_refusal", "harmful_refusal"):
            out.append(("refusal", "pair_accuracy"))
        if item.expect == "comply":
            out.append(("hedged", "hedging"))
        return out
    if item.answer is not None:
        return [("correct", cat)]
    return []


def graded_by(data: RunData, grades: dict[CallKey, Grade]) -> dict[str, dict[str, int]]:
    """Per dimension, how many call verdicts each source gave: judge, rule, missing."""
    counts: dict[str, Counter[str]] = {}
    for key, g in grades.items():
        item = data.items.get(key[1])
        if item is None:
            continue
        for fname, dim in fed_fields(item):
            source = g.source(fname)
            if source is not None:
                counts.setdefault(dim, Counter())[source] += 1
    return {dim: {s: c.get(s, 0) for s in SOURCES} for dim, c in counts.items()}


def incomplete(counts: dict[str, dict[str, int]]) -> dict[str, str]:
    """Dimensions with verdicts missing (``--grader judge``), and the reason to print."""
    return {
        dim: f"{c['missing']} of its {sum(c.values())} verdicts have no judge grade (--grader judge)"
        for dim, c in counts.items()
        if c.get("missing")
    }


# ----------------------------------------------------------------------------- judge failures

_CAUSES = {
    "connection": "unreachable",
    "auth": "key refused",
    "timeout": "timed out",
    "malformed": "malformed replies",
    "not_found": "model not found",
    "content_policy": "refused by the provider's policy",
}
FAILED = "judge call failed"  # reason prefix of a verdict whose request failed (network, server, key); judge.py writes it
_FAILED = re.compile(re.escape(FAILED) + r"(?: \((?P<kind>[\w.-]+)\))?: (?P<detail>.*)", re.S)


def failure_cause(reason: str) -> str:
    """A short cause for an unscored verdict's reason, e.g. ``unreachable (cannot reach ...)``."""
    m = _FAILED.match(reason)
    if m:
        kind, detail = m.group("kind") or "", m.group("detail").strip()
        name = _CAUSES.get(kind) or (f"HTTP {kind[5:]}" if kind.startswith("http_") else "call failed")
        if kind == "connection" and "ConnectError" not in detail:
            name = "connection lost"  # it answered, then dropped (reset, closed mid-reply)
        return f"{name} ({detail})"
    if reason.startswith("unscored:"):
        why = reason[len("unscored:"):].replace("(asked twice)", "").strip()
        return f"never answered in the required form ({why}, asked twice)"
    return reason or "no reason recorded"


@dataclass
class JudgeHealth:
    """How many of the verdicts a judge owed this run it gave, and why not the rest."""

    judges: list[str]
    owed: int = 0  # (call, rubric) pairs to grade
    scored: int = 0
    causes: Counter[str] = field(default_factory=Counter)  # cause -> unscored verdicts
    never_asked: int = 0  # no verdict at all: the judge was given up on, or stopped early
    retryable: int = 0  # never asked or failed requests: what `regrade` with this judge asks again

    main_judge: str = ""  # the judge that gave most of the verdicts

    @property
    def failed(self) -> int:
        return self.owed - self.scored

    def sentence(self, grader: str) -> str | None:
        """One line for stderr, or None when every verdict is in."""
        if not self.failed:
            return None
        parts = [f"{n} {cause}" for cause, n in self.causes.most_common(3)]
        rest = sum(self.causes.values()) - sum(n for _c, n in self.causes.most_common(3))
        if rest:
            parts.append(f"{rest} for other reasons")
        if self.never_asked:
            parts.append(f"{self.never_asked} never asked (the judge was given up on or stopped early)")
        consequence = {
            "auto": "those calls keep their rule verdicts (--grader auto)",
            "judge": "those calls are left unscored and their dimensions marked incomplete (--grader judge)",
            "rule": "the table uses the rules only (--grader rule)",
        }[grader]
        who = ", ".join(self.judges) or "the judge"
        return f"judge {who}: {self.failed} of {self.owed} verdicts missing: {'; '.join(parts)}; {consequence}"


def judge_health(data: RunData) -> JudgeHealth:
    from taxcheck.grade.judge import is_call_failure, rubrics_for

    by_judge = Counter(v.judge for v in data.verdicts.values())
    health = JudgeHealth(judges=sorted(by_judge), main_judge=by_judge.most_common(1)[0][0] if by_judge else "")
    for key, _rec, item in ok_calls(data):
        for rubric in rubrics_for(item):
            health.owed += 1
            v = data.verdicts.get((key, f"judge:{rubric}"))
            if v is None:
                health.never_asked += 1
                health.retryable += 1
            elif v.label is None:
                health.causes[failure_cause(v.reason)] += 1
                health.retryable += is_call_failure(v)
            else:
                health.scored += 1
    return health
