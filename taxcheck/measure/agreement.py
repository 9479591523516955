"""How far to trust the graders: rule-vs-judge agreement per dimension.

Reported beside every judged table, so that a reader sees, on their own data, whether the
cheap rules and the expensive judge tell the same story (Cohen's kappa corrects the raw
agreement for what two graders would agree on by chance).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from taxcheck.measure import stats
from taxcheck.grade.rules import Grade
from taxcheck.runfile import CallKey, RunData

# dimension -> (judge grader, how to read the rule's label from a Grade)
_SOURCES = {
    "refusal": ("judge:refusal", lambda g: g.refusal),
    "hedging": ("judge:hedging", lambda g: None if g.hedged is None else ("yes" if g.hedged else "no")),
    "correctness": ("judge:correctness", lambda g: None if g.correct is None else ("correct" if g.correct else "incorrect")),
}


def _dimension_of(category: str, source: str) -> str:
    if source == "hedging":
        return "hedging"
    return category


def agreement(data: RunData, rule: dict[CallKey, Grade]) -> dict[str, dict[str, Any]]:
    """Per dimension: n compared, raw agreement, Cohen's kappa, unscored judge verdicts."""
    pairs: dict[str, list[tuple[str, str]]] = defaultdict(list)
    unscored: dict[str, int] = defaultdict(int)
    for key, g in rule.items():
        item = data.items.get(key[1])
        if item is None:
            continue
        for source, (grader, read) in _SOURCES.items():
            v = data.verdicts.get((key, grader))
            if v is None:
                continue
            dim = _dimension_of(item.category, source)
            if v.label is None:
                unscored[dim] += 1
                continue
            rule_label = read(g)
            if rule_label is None:
                continue
            pairs[dim].append((rule_label, v.label))
    out: dict[str, dict[str, Any]] = {}
    for dim in sorted(set(pairs) | set(unscored)):
        ps = pairs.get(dim, [])
        agree = sum(a == b for a, b in ps) / len(ps) if ps else None
        kappa = stats.cohen_kappa([a for a, _ in ps], [b for _, b in ps]) if ps else None
        if kappa is not None and kappa != kappa:  # nan: undefined (one class only)
            kappa = None
        out[dim] = {
            "n": len(ps),
            "agreement": None if agree is None else round(agree, 4),
            "kappa": None if kappa is None else round(kappa, 4),
            "unscored": unscored.get(dim, 0),
        }
    return out
