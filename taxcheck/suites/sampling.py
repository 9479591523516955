"""``--limit N``: a seeded sample of a suite that keeps every category's share and never splits a pair.

Items are grouped into units (a pair is one unit of two items, anything else a unit of
one). The limit is shared out in two steps, because a category is what a row of the table
measures and a type is only what keeps a category's sample varied:

1. between *categories* (a contrast pair's two halves count as one category group, the
   ``refusal`` family; pressure pairs are ``sycophancy.pressure``): in proportion to their
   size by largest remainder, after every category first gets one unit where the limit
   allows, so no row of the table silently disappears from a small sample;
2. inside a category, between its *types*, the same way (without the minimum), so that
   ``homonyms`` and ``fiction`` keep their share of the contrast pairs where they can.

Largest remainder is computed greedily: each unit goes to the group whose count is
furthest below its proportional share (``exact - taken - size / 2``: for groups of one-item
units this is exactly Hamilton's method; for pair groups it picks the unit that lands
nearest the share), so pairs and single items compete fairly and nothing overshoots the
limit. Which units of a type are taken, and how ties between equally deserving types are
broken, is drawn from ``random.Random(seed)``: the same ``--seed`` picks the same items on
every machine (a rerun resumes the same sample), another seed picks other items. How many
items each *category* gets does not depend on the seed, so ``--dry-run`` can print it.
"""

from __future__ import annotations

import heapq
import random
from collections import Counter
from dataclasses import dataclass, field

from taxcheck.suites.format import SuiteItem, pair_family

Unit = list[SuiteItem]


def _units(items: list[SuiteItem]) -> list[Unit]:
    units: list[Unit] = []
    by_pair: dict[tuple[str, str], Unit] = {}
    for item in items:
        if item.pair is None:
            units.append([item])
            continue
        key = (pair_family(item.category) or item.category, item.pair)
        if key not in by_pair:
            by_pair[key] = []
            units.append(by_pair[key])
        by_pair[key].append(item)
    return units


def category_of(unit: Unit) -> str:
    """The category group a unit is allotted in: a pair family, or the item's category."""
    first = unit[0]
    return (pair_family(first.category) if first.pair is not None else None) or first.category


def type_of(unit: Unit) -> str:
    return unit[0].type or ""


@dataclass
class _Group:
    """Units competing for the limit as one group (a category, or a type inside one)."""

    key: str
    size: int  # items in the whole group
    tiebreak: float
    units: list[Unit] = field(default_factory=list)  # still available, the next drawn *last* (O(1) pops)
    taken: int = 0  # items taken so far

    def next_fitting(self, room: int) -> int | None:
        """Index in ``units`` of the next unit drawn that fits ``room`` items, or None."""
        for i in range(len(self.units) - 1, -1, -1):
            if len(self.units[i]) <= room:
                return i
        return None


def _allot(groups: list[_Group], budget: int, total: int, minimum_one: bool) -> list[Unit]:
    """Take units from ``groups`` (``total`` items in all) until no unit fits ``budget``."""
    chosen: list[Unit] = []
    room = budget

    def take(g: _Group, idx: int) -> None:
        nonlocal room
        unit = g.units.pop(idx)
        g.taken += len(unit)
        room -= len(unit)
        chosen.append(unit)

    def priority(g: _Group, idx: int) -> float:
        return budget * g.size / total - g.taken - len(g.units[idx]) / 2

    if minimum_one:
        for g in sorted(groups, key=lambda g: (-g.size, g.tiebreak)):
            idx = g.next_fitting(room)
            if idx is not None:
                take(g, idx)
    # While every unit fits, only the group that just took changes priority: a heap keeps
    # this O(log groups) per unit (an 80,000-item suite has thousands of units to draw).
    biggest = max((len(u) for g in groups for u in g.units), default=0)
    heap = [(-priority(g, len(g.units) - 1), g.tiebreak, i) for i, g in enumerate(groups) if g.units]
    heapq.heapify(heap)
    while heap and room >= biggest:
        _neg, _tie, i = heapq.heappop(heap)
        g = groups[i]
        take(g, len(g.units) - 1)
        if g.units:
            heapq.heappush(heap, (-priority(g, len(g.units) - 1), g.tiebreak, i))
    # the tail, where a pair may no longer fit but a single item still does: scan
    while room > 0:
        best: tuple[float, float, _Group, int] | None = None
        for g in groups:
            idx = g.next_fitting(room)
            if idx is None:
                continue
            score = (priority(g, idx), -g.tiebreak)
            if best is None or score > best[:2]:
                best = (*score, g, idx)
        if best is None:
            break
        take(best[2], best[3])
    return chosen


def _category_budgets(units: list[Unit], limit: int) -> dict[str, int]:
    """Items per category group: seed-independent, so a dry run can say what a limit gives."""
    total = sum(len(u) for u in units)
    sizes: Counter[str] = Counter()
    by_cat: dict[str, list[Unit]] = {}
    for u in units:
        sizes[category_of(u)] += len(u)
        by_cat.setdefault(category_of(u), []).append(u)
    # the unit sizes matter for what fits, not which unit: allot over the units as listed
    groups = [_Group(c, sizes[c], float(rank), by_cat[c][::-1]) for rank, c in enumerate(sorted(sizes))]
    _allot(groups, limit, total, minimum_one=True)
    return {g.key: g.taken for g in groups}


def sample_items(items: list[SuiteItem], limit: int, seed: int = 0) -> list[SuiteItem]:
    """At most ``limit`` items (one fewer when only a pair would fit), in the suite's own order."""
    if limit >= len(items):
        return list(items)
    units = _units(items)
    budgets = _category_budgets(units, limit)
    rng = random.Random(seed)
    by_cat: dict[str, dict[str, list[Unit]]] = {}
    for u in units:
        by_cat.setdefault(category_of(u), {}).setdefault(type_of(u), []).append(u)
    chosen: list[Unit] = []
    for cat in sorted(by_cat):
        types = by_cat[cat]
        groups = []
        for t in sorted(types):
            drawn = list(types[t])
            rng.shuffle(drawn)
            groups.append(_Group(t, sum(len(u) for u in drawn), rng.random(), drawn))
        chosen += _allot(groups, budgets[cat], sum(g.size for g in groups), minimum_one=False)
    keep = {id(item) for unit in chosen for item in unit}
    return [item for item in items if id(item) in keep]


def category_counts(items: list[SuiteItem]) -> dict[str, int]:
    """Items per suite category, largest first: what ``--dry-run`` shows a limit produced."""
    counts = Counter(i.category for i in items)
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
