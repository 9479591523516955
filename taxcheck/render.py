"""Rendering a tax table: rich for terminals, and JSON / Markdown / CSV for scripts.

The JSON document is a public interface (DESIGN §5, README "JSON output"): keys are only
ever added, never renamed or removed. Rates and taxes are fractions in JSON (0.12) and
percentage points in the human formats (+12.0).
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field
from typing import Any

from taxcheck import __version__
from taxcheck.aggregate import Table, TaxCell

SIG_STYLE = {"cost": "bold red", "bonus": "bold green", "unclear": "yellow"}


@dataclass
class Gate:
    dimension: str
    allowance_pp: float
    tripped_by: list[str] = field(default_factory=list)  # candidate specs
    unmeasured: dict[str, str] = field(default_factory=dict)  # candidate -> why its tax cannot be measured (fails closed)


@dataclass
class ReportMeta:
    run_id: str
    results_file: str
    usage: dict[str, dict[str, Any]]
    gates: list[Gate] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # footer lines: interruptions, auth failures
    agreement: dict[str, Any] | None = None  # rule-vs-judge, per dimension
    graded_by: dict[str, dict[str, int]] = field(default_factory=dict)  # dimension -> {"judge": n, "rule": n, "missing": n}
    grader: str = "auto"  # --grader
    incomplete: dict[str, str] = field(default_factory=dict)  # dimension -> why (judge verdicts missing)


def json_number(x: float) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else round(x, 6)


def pct(x: float) -> str:
    return "—" if x is None or math.isnan(x) else f"{x * 100:.1f}"


def score_text(value: float, low: float, high: float, n: int) -> str:
    if n == 0 or math.isnan(value):
        return "— (0)"
    half = (high - low) / 2
    return f"{value * 100:.1f}% ±{half * 100:.1f} ({n})"


def tax_text(t: TaxCell) -> str:
    if t.n == 0 or math.isnan(t.value):
        return "— (0)"
    return f"{t.value * 100:+.1f} [{t.ci_low * 100:+.1f}, {t.ci_high * 100:+.1f}]"


# --------------------------------------------------------------------------- JSON


def to_document(table: Table, meta: ReportMeta) -> dict[str, Any]:
    rows = []
    for row in table.rows:
        rows.append(
            {
                "dimension": row.dimension.name,
                "direction": row.dimension.direction,
                "n": row.n,
                "low_n": row.low_n,
                "scores": {
                    m: {"value": json_number(c.value), "n": c.n, "ci_low": json_number(c.ci_low), "ci_high": json_number(c.ci_high)}
                    for m, c in row.scores.items()
                },
                "tax": {
                    m: {
                        "value": json_number(t.value),
                        "n": t.n,
                        "ci_low": json_number(t.ci_low),
                        "ci_high": json_number(t.ci_high),
                        "p_value": json_number(t.p_value),
                        "significance": t.significance,
                    }
                    for m, t in row.tax.items()
                },
                "incomplete": row.dimension.name in meta.incomplete,
            }
        )
    doc: dict[str, Any] = {
        "taxcheck_version": __version__,
        "run_id": meta.run_id,
        "results_file": meta.results_file,
        "baseline": table.baseline,
        "models": table.models,
        "rows": rows,
        "failures": table.failures,
        "usage": meta.usage,
        "gates": [
            {
                "dimension": g.dimension,
                "allowance_pp": g.allowance_pp,
                # a gate that could not be measured fails closed: it has not passed
                "tripped": bool(g.tripped_by or g.unmeasured),
                "tripped_by": g.tripped_by,
                "status": "tripped" if g.tripped_by else "unmeasured" if g.unmeasured else "ok",
                "unmeasured": g.unmeasured,
            }
            for g in meta.gates
        ],
    }
    doc["graded_by"] = meta.graded_by
    doc["grader"] = meta.grader
    doc["incomplete"] = meta.incomplete
    if meta.agreement is not None:
        doc["agreement"] = meta.agreement
    return doc


def render_json(table: Table, meta: ReportMeta) -> str:
    return json.dumps(to_document(table, meta), indent=2, ensure_ascii=False, allow_nan=False)


# --------------------------------------------------------------------------- terminal


def rich_table(table: Table):
    from rich.table import Table as RichTable
    from rich.text import Text

    t = RichTable(title="taxcheck: alignment tax", title_justify="left", header_style="bold", show_lines=False)
    t.add_column("dimension", no_wrap=True)
    t.add_column("better", no_wrap=True)
    for m in table.models:
        t.add_column(m + (" (baseline)" if m == table.baseline else ""), justify="right", no_wrap=True)
    candidates = [m for m in table.models if m != table.baseline] if table.baseline else []
    for m in candidates:
        t.add_column(f"tax {m}", justify="right", no_wrap=True)
    for row in table.rows:
        name = Text(row.dimension.name)
        if row.low_n:
            name.append(" low n", style="dim italic")
        cells: list[Any] = [name, "↓" if row.dimension.direction == "lower" else "↑"]
        for m in table.models:
            c = row.scores[m]
            cells.append(score_text(c.value, c.ci_low, c.ci_high, c.n))
        for m in candidates:
            tc = row.tax[m]
            cells.append(Text(tax_text(tc), style=SIG_STYLE[tc.significance] if tc.n else "dim"))
        t.add_row(*cells)
    return t


def footer_lines(table: Table, meta: ReportMeta) -> list[tuple[str, str]]:
    """(style, text) lines under the table."""
    lines: list[tuple[str, str]] = []
    if table.baseline:
        lines.append(("dim", "tax in percentage points vs the baseline, 95% paired interval; red: a confident cost, green: a confident bonus, yellow: not distinguishable from 0"))
    low = [r.dimension.name for r in table.rows if r.low_n]
    if low:
        lines.append(("yellow", f"low n (< 30 items): {', '.join(low)}"))
    failed = {m: n for m, n in table.failures.items() if n}
    if failed:
        lines.append(("red", "failed after retries (excluded from n): " + ", ".join(f"{m} {n}" for m, n in failed.items())))
    for m, u in meta.usage.items():
        cost = u.get("cost_usd")
        cost_s = f", ${cost:.4f}" if isinstance(cost, (int, float)) else ", cost unknown"
        lines.append(("dim", f"{m}: {u['requests']} requests, {u['cached']} cached, {u['input_tokens']} in / {u['output_tokens']} out tokens{cost_s}"))
    if meta.agreement:
        parts = []
        for dim, a in meta.agreement.items():
            kappa = "—" if a["kappa"] is None else f"{a['kappa']:.2f}"
            agree = "—" if a["agreement"] is None else f"{a['agreement'] * 100:.0f}%"
            parts.append(f"{dim} {agree} κ={kappa} (n={a['n']}, unscored {a['unscored']})")
        lines.append(("dim", "rule vs judge agreement: " + "; ".join(parts)))
    if meta.agreement is not None or any(c.get("judge") or c.get("missing") for c in meta.graded_by.values()):
        parts = [
            f"{dim} {c['judge']} judge / {c['rule']} rule" + (f" / {c['missing']} missing" if c.get("missing") else "")
            for dim, c in meta.graded_by.items()
        ]
        lines.append(("dim", f"verdicts by grader (--grader {meta.grader}): " + "; ".join(parts)))
    if meta.incomplete:
        parts = [f"{dim} {meta.graded_by[dim]['missing']} of {sum(meta.graded_by[dim].values())}" if dim in meta.graded_by else dim
                 for dim in meta.incomplete]
        lines.append(("bold yellow", "incomplete (verdicts without a judge grade, --grader judge): " + "; ".join(parts)))
    for g in meta.gates:
        if g.tripped_by or not g.unmeasured:
            lines.extend(gate_lines([g]))
        lines.extend(unmeasured_gate_lines([g]))
    for note in meta.notes:
        lines.append(("yellow", note))
    lines.append(("dim", f"run file: {meta.results_file}"))
    return lines


def gate_lines(gates: list[Gate], what: str = "") -> list[tuple[str, str]]:
    """(style, text) per ``--fail-over`` gate; ``what`` qualifies the measure ("worse by")."""
    lines = []
    for g in gates:
        if g.tripped_by:
            lines.append(("bold red", f"GATE TRIPPED {g.dimension} {what + ' ' if what else ''}> {g.allowance_pp:g} pp: {', '.join(g.tripped_by)}"))
        else:
            lines.append(("green", f"gate ok {g.dimension} <= {g.allowance_pp:g} pp"))
    return lines


def unmeasured_gate_lines(gates: list[Gate]) -> list[tuple[str, str]]:
    """(style, text) per gate that could not be measured for some candidate: it fails closed."""
    lines = []
    for g in gates:
        if g.unmeasured:
            why = "; ".join(f"{m}: {reason}" for m, reason in g.unmeasured.items())
            lines.append(("bold red", f"GATE NOT MEASURED {g.dimension} (fails closed): {why}"))
    return lines


def print_table(table: Table, meta: ReportMeta, console) -> None:
    from rich.text import Text

    console.print(rich_table(table))
    for style, text in footer_lines(table, meta):
        console.print(Text(text, style=style))


# --------------------------------------------------------------------------- markdown / csv


def render_markdown(table: Table, meta: ReportMeta) -> str:
    candidates = [m for m in table.models if m != table.baseline] if table.baseline else []
    head = ["dimension", "better"] + [m + (" (baseline)" if m == table.baseline else "") for m in table.models]
    head += [f"tax {m}" for m in candidates]
    out = ["| " + " | ".join(md_cell(h) for h in head) + " |", "|" + "---|" * len(head)]
    mark = {"cost": " 🔴 cost", "bonus": " 🟢 bonus", "unclear": ""}
    for row in table.rows:
        cells = [row.dimension.name + (" *(low n)*" if row.low_n else ""), "lower" if row.dimension.direction == "lower" else "higher"]
        cells += [score_text(c.value, c.ci_low, c.ci_high, c.n) for c in (row.scores[m] for m in table.models)]
        for m in candidates:
            tc = row.tax[m]
            text = tax_text(tc)
            cells.append((f"**{text}**" if tc.significance != "unclear" else text) + mark[tc.significance])
        out.append("| " + " | ".join(md_cell(c) for c in cells) + " |")
    out.append("")
    for _style, text in footer_lines(table, meta):
        out.append(f"- {md_cell(text)}")
    return "\n".join(out) + "\n"


def md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_csv(table: Table, meta: ReportMeta) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["dimension", "direction", "model", "baseline", "value", "n", "ci_low", "ci_high", "tax", "tax_n", "tax_ci_low", "tax_ci_high", "p_value", "significance", "low_n"])
    for row in table.rows:
        for m in table.models:
            c = row.scores[m]
            t = row.tax.get(m)
            w.writerow(
                [row.dimension.name, row.dimension.direction, m, table.baseline or "", _csvnum(c.value), c.n, _csvnum(c.ci_low), _csvnum(c.ci_high)]
                + ([_csvnum(t.value), t.n, _csvnum(t.ci_low), _csvnum(t.ci_high), _csvnum(t.p_value), t.significance] if t else ["", "", "", "", "", ""])
                + [str(row.low_n).lower()]
            )
    return buf.getvalue()


def _csvnum(x: float) -> str:
    v = json_number(x)
    return "" if v is None else f"{v:.6g}"
