"""Where the tax falls: each dimension broken down by the items' ``type`` (``report --by type``).

A vendor-vetting team asks "which of *our kinds* of legitimate request does it refuse":
the built-in suites give every item a type (homonyms, privacy, medical, security education,
kitchen chemistry ...), XSTest imports carry XSTest's ten, and a custom suite may use any
string. Each type's rows come from the same statistics as the main table (``aggregate``'s
``score_cell`` and ``tax_cell``, so an interval here means what it means there), and a
dimension's types are sorted by tax, the largest cost first: where the tax falls is the
first line. Pairs (``pair_accuracy``, ``sycophancy.pressure``) take the type of their items.
How it is shown (table, Markdown, JSON, HTML) is ``report.by_type``'s job.
"""

from __future__ import annotations

from dataclasses import dataclass
from taxcheck.measure.aggregate import DIMENSIONS, Dimension, Row, Table, dimension_values, score_cell, tax_cell
from taxcheck.grade.rules import Grade
from taxcheck.runfile import CallKey, RunData

NO_TYPE = "(no type)"


@dataclass
class DimensionBreakdown:
    dimension: Dimension
    table: Table  # one row per type; the row's "dimension" is the type, with the dimension's direction


def unit_types(data: RunData) -> dict[str, str]:
    """Unit id -> type: an item's own id, and a pair's id (the type of its first typed item)."""
    types: dict[str, str] = {}
    for item in data.items.values():
        t = item.type or NO_TYPE
        types[item.id] = t
        if item.pair is not None and (item.pair not in types or types[item.pair] == NO_TYPE):
            types[item.pair] = t
    return types


def breakdown(data: RunData, grades: dict[CallKey, Grade], main: Table, samples: int,
              values: dict | None = None) -> list[DimensionBreakdown]:
    """Per dimension of ``main`` whose items have types, a table of its types, costliest first.
    ``values``: each model's ``dimension_values``, when the caller has them already."""
    types = unit_types(data)
    if all(t == NO_TYPE for t in types.values()):
        return []
    per_model = values if values is not None else {m: dimension_values(data, grades, m, samples) for m in main.models}
    out: list[DimensionBreakdown] = []
    for dim in DIMENSIONS:
        if main.row(dim.name) is None:
            continue
        by_type: dict[str, dict[str, dict[str, float]]] = {}
        for m in main.models:
            for unit, value in per_model[m].get(dim.name, {}).items():
                by_type.setdefault(types.get(unit, NO_TYPE), {}).setdefault(m, {})[unit] = value
        if not by_type or set(by_type) == {NO_TYPE}:
            continue
        rows = []
        for t, values in by_type.items():
            row_dim = Dimension(t, dim.direction, dim.label)
            scores = {m: score_cell(values.get(m, {})) for m in main.models}
            tax = {}
            if main.baseline is not None:
                for m in main.models:
                    if m != main.baseline:
                        tax[m] = tax_cell(dim, values.get(main.baseline, {}), values.get(m, {}))
            rows.append(Row(row_dim, scores, tax))
        rows.sort(key=lambda r: _order(r, main))
        out.append(DimensionBreakdown(dim, Table(main.models, main.baseline, rows)))
    return out


def _order(row: Row, main: Table) -> tuple[float, str]:
    """Largest tax first (or, without a baseline, the highest score for lower-is-better); ties by name."""
    import math

    if row.tax:
        worst = max((t.value for t in row.tax.values() if t.n and not math.isnan(t.value)), default=-math.inf)
        return (-worst, row.dimension.name)
    first = row.scores[main.models[0]]
    sign = 1 if row.dimension.direction == "lower" else -1
    value = first.value if first.n and not math.isnan(first.value) else -math.inf * sign
    return (-sign * value, row.dimension.name)
