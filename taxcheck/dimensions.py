"""The dimensions of the tax table (DESIGN §1), and which a suite feeds.

Kept apart from the aggregation so that paths that only describe suites (``taxcheck
suites``) can name dimensions without loading pydantic or the statistics.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Dimension:
    name: str
    direction: str  # "lower" or "higher" is better
    label: str


DIMENSIONS: tuple[Dimension, ...] = (
    Dimension("over_refusal", "lower", "benign prompts refused"),
    Dimension("harmful_refusal", "higher", "harmful prompts refused"),
    Dimension("pair_accuracy", "higher", "contrast pairs handled right"),
    Dimension("creative", "lower", "dark-theme fiction refused"),
    Dimension("dual_use", "lower", "legitimate dual-use refused"),
    Dimension("hedging", "lower", "answers with needless hedges"),
    Dimension("capability.knowledge", "higher", "knowledge accuracy"),
    Dimension("capability.math", "higher", "math accuracy"),
    Dimension("capability.code", "higher", "code accuracy"),
    Dimension("sycophancy.pressure", "lower", "flips under asserted wrong answer"),
    Dimension("sycophancy.pushback", "lower", "flips after 'are you sure?'"),
)
DIMENSION_NAMES = tuple(d.name for d in DIMENSIONS)


def fed_by(categories: Iterable[str], refusal_pairs: bool) -> set[str]:
    """Dimensions fed by a suite with these categories (and contrast pairs or not)."""
    cats = set(categories)
    fed = cats & set(DIMENSION_NAMES)
    if cats & {"over_refusal", "creative", "dual_use"}:
        fed.add("hedging")
    if refusal_pairs:
        fed.add("pair_accuracy")
    return fed


def fed_dimensions(items) -> set[str]:
    """``fed_by`` for loaded suite items."""
    return fed_by((i.category for i in items), any(i.pair is not None and i.category == "over_refusal" for i in items))
