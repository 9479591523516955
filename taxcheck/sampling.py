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
    """At most ``limit`` items (a pair may round up by one), in the suite's own order."""
    if limit >= len(items):
        return list(items)
    units = _units(items)
    strata: dict[tuple[str, str], list[int]] = defaultdict(list)
    for idx, unit in enumerate(units):
        strata[stratum_of(unit)].append(idx)
    total = len(items)
    # target item counts per stratum by largest remainder
    sizes = {s: sum(len(units[i]) for i in idxs) for s, idxs in strata.items()}
    exact = {s: limit * size / total for s, size in sizes.items()}
    target = {s: int(x) for s, x in exact.items()}
    left = limit - sum(target.values())
    for s in sorted(exact, key=lambda s: (exact[s] - target[s], s), reverse=True)[:left]:
        target[s] += 1
    rng = random.Random(seed)
    chosen: set[int] = set()
    for s in sorted(strata):
        idxs = list(strata[s])
        rng.shuffle(idxs)
        budget = target[s]
        taken = 0
        for i in idxs:
            if taken >= max(budget, 0):
                break
            chosen.add(i)
            taken += len(units[i])
    keep = {id(item) for i in chosen for item in units[i]}
    return [item for item in items if id(item) in keep]
