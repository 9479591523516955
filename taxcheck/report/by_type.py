"""``report --by type``: a breakdown (``measure.breakdown``) in every format.

Each dimension's types are a small tax table of their own, so they are shown with the main
table's own renderers: the terminal layouts that fit the width (``table.table_grids``), its
Markdown and its JSON row shape, with "type" where the main table says "dimension".
"""

from __future__ import annotations

from typing import Any

from taxcheck.measure.breakdown import DimensionBreakdown
from taxcheck.report.table import markdown_table, md_cell, row_document, table_grids


def breakdown_document(part: DimensionBreakdown) -> list[dict[str, Any]]:
    """One dimension's types as JSON rows (the main table's row shape, keyed by "type")."""
    out = []
    for row in part.table.rows:
        doc = row_document(row)
        doc["type"] = doc.pop("dimension")
        doc.pop("incomplete", None)
        out.append(doc)
    return out


def breakdown_markdown(parts: list[DimensionBreakdown]) -> str:
    out = []
    for part in parts:
        out.append(f"### {md_cell(part.dimension.name)} by type ({md_cell(part.dimension.label)})")
        out.append("")
        out.extend(markdown_table(part.table, first="type"))
        out.append("")
    return "\n".join(out) + ("\n" if out else "no item of this run has a type\n")


def print_breakdown(parts: list[DimensionBreakdown], console) -> None:
    """Each dimension's types in the widest layout that fits the console (numbers never cut)."""
    from taxcheck.console import outside_text
    from taxcheck.layout import print_first_fit

    if not parts:
        console.print(outside_text("no item of this run has a type: nothing to break down"))
        return
    for part in parts:
        console.print(outside_text(f"{part.dimension.name} by type ({part.dimension.label}), largest tax first", "bold"))
        grids = table_grids(part.table)
        for g in grids:
            g.title = None
        print_first_fit(console, grids)
