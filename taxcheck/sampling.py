"""``--limit N``: a seeded, stratified sample of a suite that never splits a pair.

Items are grouped into units (a pair is one unit of two items, anything else a unit of
one), units into strata by (category family, type), and N items are shared out between
the strata in proportion to their size by largest remainder. Within a stratum the choice is seeded, so the same
``--seed`` picks the same items on every machine and a rerun resumes the same sample.
"""

from __future__ import annotations

import random
from collections import defaultdict

from taxcheck.suite import SuiteItem, pair_family


def _units(items: list[SuiteItem]) -> list[list[SuiteItem]]:
    units: list[list[SuiteItem]] = []
    by_pair: dict[tuple[str, str], list[SuiteItem]] = {}
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


def stratum_of(unit: list[SuiteItem]) -> tuple[str, str]:
    first = unit[0]
    return (pair_family(first.category) or first.category, first.type or "")


def sample_items(items: list[SuiteItem], limit: int, seed: int = 0) -> list[SuiteItem]:
    """At most ``limit`` items (one fewer when only a pair would fit), in the suite's own order."""
    if limit >= len(items):
        return list(items)
    units = _units(items)
    strata: dict[tuple[str, str], list[int]] = defaultdict(list)
    for idx, unit in enumerate(units):
        strata[stratum_of(unit)].append(idx)
    total = len(items)
    # each stratum gets a whole number of its units (a pair is two items), shared out in
    # proportion to its size by largest remainder, never more than `limit` items in all
    quantum = {s: len(units[idxs[0]]) for s, idxs in strata.items()}
    exact = {s: limit * sum(len(units[i]) for i in idxs) / total for s, idxs in strata.items()}
    take = {s: min(len(strata[s]), int(exact[s] // quantum[s])) for s in strata}
    left = limit - sum(take[s] * quantum[s] for s in strata)
    for s in sorted(strata, key=lambda s: (exact[s] - take[s] * quantum[s], s), reverse=True):
        if quantum[s] <= left and take[s] < len(strata[s]):
            take[s] += 1
            left -= quantum[s]
    rng = random.Random(seed)
    chosen: set[int] = set()
    for s in sorted(strata):
        idxs = list(strata[s])
        rng.shuffle(idxs)
        chosen.update(idxs[: take[s]])
    keep = {id(item) for i in chosen for item in units[i]}
    return [item for item in items if id(item) in keep]
