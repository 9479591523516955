"""Rendering a tax table: rich for terminals, and JSON / Markdown / CSV for scripts.

On a terminal the table takes the widest layout that fits (``layout.py``): side by side,
then a block per dimension, then two columns; a number is never cut. Intervals show both
ends, a cell without a value says why (``empty_reasons``), and every string that came from
outside (model ids, file names, server messages) is escaped before it is printed.

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

from rich.text import Text

from taxcheck import __version__
from taxcheck.measure.aggregate import Row, Table, TaxCell
from taxcheck.layout import Column, Grid, print_first_fit, whole, wrapping
from taxcheck.measure.stats import LOW_N

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
    failure_causes: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # model -> grouped causes
    sampling: dict[str, dict[str, Any]] = field(default_factory=dict)  # model -> what its requests carried
    sandbox: dict[str, Any] | None = None  # where model code ran (code_stage.sandbox_summary); None: no code
    breakdown: dict[str, list[dict[str, Any]]] | None = None  # dimension -> its types (report --by type)
    partial: dict[str, Any] | None = None  # why the run stopped before it finished (--max-cost) and how to go on


def json_number(x: float) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else round(x, 6)


def score_text(value: float, low: float, high: float, n: int) -> str:
    """``5.0% [1.4, 16.5] (40)``: both ends of the interval, never a ± half-width, which
    near 0 % or 100 % hides how far the interval reaches on the open side."""
    if n == 0 or math.isnan(value):
        return "— (0)"
    return f"{value * 100:.1f}% [{low * 100:.1f}, {high * 100:.1f}] ({n})"


def tax_text(t: TaxCell) -> str:
    if t.n == 0 or math.isnan(t.value):
        return "— (0)"
    return f"{t.value * 100:+.1f} [{t.ci_low * 100:+.1f}, {t.ci_high * 100:+.1f}]"


# --------------------------------------------------------------------------- JSON


def row_document(row: Row, incomplete: bool = False) -> dict[str, Any]:
    """One row of the JSON document (a dimension, or a type of a breakdown)."""
    return {
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
        "incomplete": incomplete,
    }


def to_document(table: Table, meta: ReportMeta) -> dict[str, Any]:
    rows = [row_document(row, row.dimension.name in meta.incomplete) for row in table.rows]
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
    doc["failure_causes"] = meta.failure_causes
    doc["sampling"] = meta.sampling
    if meta.sandbox is not None:
        doc["sandbox"] = meta.sandbox
    if meta.breakdown is not None:
        doc["breakdown"] = meta.breakdown
    if meta.partial is not None:
        doc["partial"] = meta.partial
    doc["graded_by"] = meta.graded_by
    doc["grader"] = meta.grader
    doc["incomplete"] = meta.incomplete
    if meta.agreement is not None:
        doc["agreement"] = meta.agreement
    return doc


# What json.dumps(ensure_ascii=False) leaves raw but a terminal may act on: DEL, the C1
# controls (U+009B is CSI), line separators and bidi controls. As \\u escapes they decode to
# the same strings, so the document stays exact and a terminal it is printed on sees text.
_JSON_RAW = {c: f"\\u{c:04x}" for c in (0x7F, *range(0x80, 0xA0), 0x2028, 0x2029, *range(0x202A, 0x202F), *range(0x2066, 0x206A))}


def json_text(doc: Any) -> str:
    """A JSON document for stdout or a file: UTF-8 text kept, every control character escaped."""
    return json.dumps(doc, indent=2, ensure_ascii=False, allow_nan=False).translate(_JSON_RAW)


def render_json(table: Table, meta: ReportMeta) -> str:
    return json_text(to_document(table, meta))


# --------------------------------------------------------------------------- empty cells

# Why a conditional dimension has no value: its rate is over answers that met a condition.
_CONDITION_UNMET = {
    "hedging": "no benign answer complied, so no hedge can be measured",
    "sycophancy.pressure": "no neutral answer was right, so no flip can be measured",
    "sycophancy.pushback": "no first answer was right, so no flip can be measured",
    "pair_accuracy": "no contrast pair has both answers graded",
}
# Dimensions computed from other rows' answers: when those are empty too, their reason holds.
_SOURCES = {"hedging": ("over_refusal", "creative", "dual_use"), "pair_accuracy": ("over_refusal", "harmful_refusal")}
ALL_FAILED = "every call failed (see failures)"
NO_COMMON = "no item both models have a value for"


def why_empty(dimension: str, n_by_dimension: dict[str, int], failed: int | None) -> str:
    """Why a model has no value on ``dimension``, from what a table knows.

    ``n_by_dimension`` is the model's n on every row of the table; ``failed`` its calls that
    failed after retries (None when unknown, as in a diff). The table does not say which
    dimension a failed call belonged to, so a conditional reason names the failures beside
    itself rather than guess that they are, or are not, the cause.
    """
    if failed and not any(n_by_dimension.values()):
        return ALL_FAILED
    present = [s for s in _SOURCES.get(dimension, ()) if s in n_by_dimension]
    if present and not any(n_by_dimension[s] for s in present):
        return why_empty(present[0], n_by_dimension, failed)
    reason = _CONDITION_UNMET.get(dimension)
    if reason is None:
        return ALL_FAILED if failed else "no answer was graded"
    return reason + (f" ({failed} calls of this model failed: see failures)" if failed else "")


def empty_reasons(table: Table) -> dict[tuple[str, str, str], str]:
    """``(dimension, model, "score" | "tax") -> reason`` for every cell without a value.

    An empty tax takes the reason of the candidate's empty score, else the baseline's;
    when both have values but no unit in common, it says so.
    """
    n_of = {m: {r.dimension.name: r.scores[m].n for r in table.rows} for m in table.models}
    out: dict[tuple[str, str, str], str] = {}
    for row in table.rows:
        d = row.dimension.name
        for m in table.models:
            if row.scores[m].n == 0:
                out[(d, m, "score")] = why_empty(d, n_of[m], table.failures.get(m, 0))
        for m, t in row.tax.items():
            if t.n == 0:
                base = (d, table.baseline or "", "score")
                out[(d, m, "tax")] = out.get((d, m, "score")) or (f"the baseline has no value: {out[base]}" if base in out else NO_COMMON)
    return out


# --------------------------------------------------------------------------- terminal

TITLE = "taxcheck: alignment tax"
SCORE_HEAD = "score [95% CI] (n)"
TAX_HEAD = "tax, pp [95% CI]"


def direction_words(direction: str) -> str:
    return "lower is better" if direction == "lower" else "higher is better"


def candidates_of(table: Table) -> list[str]:
    return [m for m in table.models if m != table.baseline] if table.baseline else []


def model_label(model: str, baseline: str | None, indent: str = "") -> Text:
    from taxcheck.console import outside_text

    label = Text(indent) + outside_text(model)
    if model == baseline:
        label.append(" (baseline)", style="dim")
    return label


def tax_style(t: TaxCell) -> str:
    return SIG_STYLE[t.significance] if t.n else "dim"


class CellNotes:
    """Lettered notes under the wide table: one per dimension and reason, naming its cells."""

    def __init__(self) -> None:
        self.keys: dict[tuple[str, str], str] = {}
        self.owners: dict[tuple[str, str], list[str]] = {}

    def mark(self, dimension: str, reason: str, owner: str) -> str:
        k = (dimension, reason)
        if k not in self.keys:
            i = len(self.keys)
            self.keys[k] = "abcdefghijklmnopqrstuvwxyz"[i % 26] + (str(i // 26 + 1) if i >= 26 else "")
        owners = self.owners.setdefault(k, [])
        if owner not in owners:
            owners.append(owner)
        return self.keys[k]

    def lines(self, every: int) -> list[Text]:
        from taxcheck.console import printable_line

        out = []
        for (dim, reason), key in self.keys.items():
            owners = self.owners[(dim, reason)]
            who = "every model" if len(owners) >= every else ", ".join(printable_line(o) for o in owners)
            out.append(Text(f"note {key}) {dim}, {who}: {printable_line(reason)}", style="dim"))
        return out


def _wide_grid(table: Table, reasons: dict[tuple[str, str, str], str]) -> Grid:
    """The side-by-side table: a column per model's score, then one per candidate's tax."""
    from taxcheck.console import outside_text

    cands = candidates_of(table)
    dim_w = max((len(r.dimension.name) for r in table.rows), default=9)
    cols = [Column("dimension", floor=dim_w), Column("better")]
    cols += [Column(model_label(m, table.baseline), "right") for m in table.models]
    cols += [Column(Text("tax ") + outside_text(m), "right") for m in cands]
    grid = Grid(cols, title=TITLE)
    notes = CellNotes()
    for row in table.rows:
        d = row.dimension.name
        name = Text(d)
        if row.low_n:
            name.append(" low n", style="dim italic")
        cells = [wrapping(name), whole("↓" if row.dimension.direction == "lower" else "↑")]
        for m in table.models:
            c = row.scores[m]
            why = reasons.get((d, m, "score"))
            cells.append(whole(f"— (0) note {notes.mark(d, why, m)}", "dim") if why else whole(score_text(c.value, c.ci_low, c.ci_high, c.n)))
        for m in cands:
            t = row.tax[m]
            why = reasons.get((d, m, "tax"))
            if why:  # the note of the empty score that explains it, else its own
                owner = next((o for o in (m, table.baseline) if (d, o, "score") in reasons), None)
                key = notes.mark(d, reasons[(d, owner, "score")], owner) if owner else notes.mark(d, why, f"tax {m}")
                cells.append(whole(f"— (0) note {key}", "dim"))
            else:
                cells.append(whole(tax_text(t), tax_style(t)))
        grid.add(*cells)
    grid.after = notes.lines(every=len(table.models))
    return grid


EMPTY_TEXT = "— (0)"


def reason_line(what: str, reason: str, indent: str = "    ") -> Text:
    """The line under a model's row in the compact layouts that says why a cell is empty."""
    from taxcheck.console import printable_line

    return Text(f"{indent}{what}: {printable_line(reason)}", style="dim")


def dimension_heading(row: Any) -> Text:
    """A dimension's heading line in the stacked layouts (tax table and diff alike)."""
    head = Text(row.dimension.name, style="bold")
    head.append(f" · {direction_words(row.dimension.direction)}", style="dim")
    if row.low_n:
        head.append(" · low n", style="dim italic")
    return head


def _compact_rows(table: Table, reasons: dict[tuple[str, str, str], str]):
    """Per dimension: its heading line, and per model (label, score, tax or None, reason lines)."""
    for row in table.rows:
        d = row.dimension.name
        head = dimension_heading(row)
        why = {reasons.get((d, m, "score")) for m in table.models}
        if len(why) == 1 and None not in why:  # no model has a value, for the same reason
            head.append(f" · {EMPTY_TEXT} for every model: {why.pop()}", style="dim")
            yield head, []
            continue
        models = []
        for m in table.models:
            c = row.scores[m]
            notes = []
            r = reasons.get((d, m, "score"))
            if r:
                score = whole(EMPTY_TEXT, "dim")
                notes.append(reason_line("no value", r))
            else:
                score = whole(score_text(c.value, c.ci_low, c.ci_high, c.n))
            tax = None
            if m in row.tax:
                t = row.tax[m]
                r_tax = reasons.get((d, m, "tax"))
                if r_tax:
                    tax = whole(EMPTY_TEXT, "dim")
                    if not r:  # an empty tax beside an empty score needs no second reason
                        notes.append(reason_line("no tax", r_tax))
                else:
                    tax = whole(tax_text(t), tax_style(t))
            models.append((m, score, tax, notes))
        yield head, models


def _grouped_grid(table: Table, reasons: dict[tuple[str, str, str], str]) -> Grid:
    """A heading per dimension, then a line per model: its score and, for a candidate, its tax."""
    cands = candidates_of(table)
    cols = [Column("", floor=16), Column(SCORE_HEAD, "right")] + ([Column(TAX_HEAD, "right")] if cands else [])
    grid = Grid(cols, title=TITLE, box=None)
    for head, models in _compact_rows(table, reasons):
        grid.span(head)
        for m, score, tax, notes in models:
            if m == table.baseline:  # the tax column of the baseline's own line says what it is
                grid.add(wrapping(model_label(m, None, "  ")), score, whole("baseline", "dim"))
            else:
                grid.add(wrapping(model_label(m, None, "  ")), score, *([tax] if tax else []))
            for line in notes:
                grid.span(line)
    return grid


def _stacked_grid(table: Table, reasons: dict[tuple[str, str, str], str]) -> Grid:
    """The narrowest layout: two columns, the tax on its own line under the candidate's score."""
    head = SCORE_HEAD + (" / " + TAX_HEAD if table.baseline else "")
    grid = Grid([Column("", floor=10), Column(head, "right")], title=TITLE, box=None)
    for heading, models in _compact_rows(table, reasons):
        grid.span(heading)
        for m, score, tax, notes in models:
            grid.add(wrapping(model_label(m, table.baseline, "  ")), score)
            if tax is not None:
                grid.add(wrapping("    tax", "dim"), tax)
            for line in notes:
                grid.span(line)
    return grid


def table_grids(table: Table) -> list[Grid]:
    """The tax table's layouts, widest first; ``print_first_fit`` picks the one that fits."""
    reasons = empty_reasons(table)
    return [_wide_grid(table, reasons), _grouped_grid(table, reasons), _stacked_grid(table, reasons)]


def footer_lines(table: Table, meta: ReportMeta) -> list[tuple[str, str]]:
    """(style, text) lines under the table."""
    lines: list[tuple[str, str]] = []
    if table.baseline:
        lines.append(("dim", "tax in percentage points vs the baseline, 95% paired interval; red: a confident cost, green: a confident bonus, yellow: not distinguishable from 0"))
    low = [r.dimension.name for r in table.rows if r.low_n]
    if low:
        lines.append(("yellow", f"low n (< {LOW_N} items, or paired items for a tax): {', '.join(low)}"))
    failed = {m: n for m, n in table.failures.items() if n}
    if failed:
        lines.append(("red", "failed after retries (excluded from n): " + ", ".join(f"{m} {n}" for m, n in failed.items())))
    for m, u in meta.usage.items():
        cost = u.get("cost_usd")
        cost_s = f", ${cost:.4f}" if isinstance(cost, (int, float)) else ", cost unknown"
        lines.append(("dim", f"{m}: {u['requests']} requests, {u['cached']} cached, {u['input_tokens']} in / {u['output_tokens']} out tokens{cost_s}"))
        if u.get("cut_off"):
            n = u["cut_off"]
            lines.append(("yellow", f"{m}: {n} {'answer' if n == 1 else 'answers'} cut off at the token cap, graded on what "
                                    f"{'it' if n == 1 else 'they'} said (raise --max-tokens to let them finish)"))
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
    lines.extend(sandbox_lines(meta.sandbox))
    for note in meta.notes:
        lines.append(("yellow", note))
    lines.append(("dim", f"run file: {meta.results_file}"))
    return lines


def sandbox_lines(sandbox: dict[str, Any] | None) -> list[tuple[str, str]]:
    """Where model code ran, under the table: the tier, or why the code dimension is not graded."""
    if not sandbox:
        return []
    ran = ", ".join(f"{n} in the {tier} sandbox" for tier, n in sorted(sandbox["verdicts"].items()))
    lines = []
    if ran:
        style = "bold yellow" if "unsafe" in sandbox["verdicts"] else "dim"
        lines.append((style, f"model code ran: {ran}" + (" (no isolation boundary: --unsafe-run-code)" if "unsafe" in sandbox["verdicts"] else "")))
    if sandbox["not_graded"]:
        why = sandbox.get("why") or "no sandbox verdict is stored; `taxcheck regrade RUN --rerun-code` runs it"
        lines.append(("yellow", f"capability.code: {sandbox['not_graded']} answers not graded: {why}"))
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
    """The table in the widest layout that fits the console, then the footer lines."""
    from taxcheck.console import outside_text

    print_first_fit(console, table_grids(table))
    for style, text in footer_lines(table, meta):
        console.print(outside_text(text, style))


# --------------------------------------------------------------------------- markdown / csv


def render_markdown(table: Table, meta: ReportMeta) -> str:
    out = markdown_table(table)
    out.append("")
    for _style, text in footer_lines(table, meta):
        out.append(f"- {md_cell(text)}")
    return "\n".join(out) + "\n"


def markdown_table(table: Table, first: str = "dimension") -> list[str]:
    """The tax table as Markdown lines; ``first`` heads the first column (a breakdown's "type")."""
    candidates = candidates_of(table)
    head = [first, "better"] + [m + (" (baseline)" if m == table.baseline else "") for m in table.models]
    head += [f"tax {m}" for m in candidates]
    out = ["| " + " | ".join(md_cell(h) for h in head) + " |", "|" + "---|" * len(head)]
    mark = {"cost": " 🔴 cost", "bonus": " 🟢 bonus", "unclear": ""}
    reasons = empty_reasons(table)
    for row in table.rows:
        d = row.dimension.name
        cells = [d + (" *(low n)*" if row.low_n else ""), "lower" if row.dimension.direction == "lower" else "higher"]
        for m in table.models:
            c, why = row.scores[m], reasons.get((d, m, "score"))
            cells.append(f"— (0): {why}" if why else score_text(c.value, c.ci_low, c.ci_high, c.n))
        for m in candidates:
            tc, why = row.tax[m], reasons.get((d, m, "tax"))
            if why:
                cells.append("—" if (d, m, "score") in reasons else f"— (0): {why}")
                continue
            text = tax_text(tc)
            cells.append((f"**{text}**" if tc.significance != "unclear" else text) + mark[tc.significance])
        out.append("| " + " | ".join(md_cell(c) for c in cells) + " |")
    return out


def md_cell(text: str) -> str:
    """One Markdown table cell or list item: control characters escaped, ``|`` and newlines too."""
    from taxcheck.console import printable_line

    return printable_line(text).replace("|", "\\|")


# A cell starting with one of these is run as a formula by spreadsheet programs (=HYPERLINK,
# =cmd|..., +, -, @) or shifts a formula in (tab, carriage return).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_text(value: str) -> str:
    """A text cell of outside origin, safe to open in a spreadsheet: ``'=cmd`` for ``=cmd``.

    Only text columns go through here; numbers (a tax of -0.12) are written as numbers.
    Control characters are escaped as in a terminal, because a CSV on stdout may be one.
    """
    from taxcheck.console import printable_line

    return ("'" if value.startswith(_FORMULA_START) else "") + printable_line(value)


def render_csv(table: Table, meta: ReportMeta) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["dimension", "direction", "model", "baseline", "value", "n", "ci_low", "ci_high", "tax", "tax_n", "tax_ci_low", "tax_ci_high", "p_value", "significance", "low_n"])
    base = csv_text(table.baseline or "")
    for row in table.rows:
        dim, direction = csv_text(row.dimension.name), csv_text(row.dimension.direction)
        for m in table.models:
            c = row.scores[m]
            t = row.tax.get(m)
            w.writerow(
                [dim, direction, csv_text(m), base, _csvnum(c.value), c.n, _csvnum(c.ci_low), _csvnum(c.ci_high)]
                + ([_csvnum(t.value), t.n, _csvnum(t.ci_low), _csvnum(t.ci_high), _csvnum(t.p_value), t.significance] if t else ["", "", "", "", "", ""])
                + [str(row.low_n).lower()]
            )
    return buf.getvalue()


def _csvnum(x: float) -> str:
    v = json_number(x)
    return "" if v is None else f"{v:.6g}"
