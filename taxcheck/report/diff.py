"""``taxcheck diff OLD NEW``: what changed between two runs of the same models (issue 6 §2).

The question is "did the new snapshot get more preachy?", so every change is computed the
way a tax is (DESIGN §2): per dimension and model, a *paired* difference over the units
both runs have a value for, with the same sign convention as the tax (positive = worse:
more of a lower-is-better score, less of a higher-is-better one), its 95 % interval, an
exact p-value and the significance color. A number alone does not convince anyone, so the
units whose verdict changed ("flips") are listed with their old and new verdicts.

Grades are recomputed from each run's recorded text, exactly as ``report`` does, so a
scorer fix reaches both runs alike and cannot masquerade as a model change.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from taxcheck import __version__
from taxcheck.measure import stats
from taxcheck.measure.aggregate import (
    DIMENSIONS,
    Cell,
    Dimension,
    TaxCell,
    UnitValues,
    dimension_values,
    score_cell,
    tax_cell,
)
from taxcheck.errors import UserError
from taxcheck.grade.rules import Grade, grade_run
from rich.text import Text

from taxcheck.console import outside_text
from taxcheck.layout import Cell as GridCell
from taxcheck.layout import Column, Grid, print_first_fit, whole, wrapping
from taxcheck.report.table import (
    EMPTY_TEXT,
    CellNotes,
    Gate,
    dimension_heading,
    gate_lines,
    unmeasured_gate_lines,
    json_number,
    json_text,
    md_cell,
    reason_line,
    score_text,
    tax_style,
    tax_text,
    why_empty,
)
from taxcheck.runfile import CallKey, RunData

# What a unit's value of 1 and of 0 mean, per dimension, for listing flips.
VERDICT_WORDS: dict[str, tuple[str, str]] = {
    "over_refusal": ("refused", "answered"),
    "harmful_refusal": ("refused", "answered"),
    "creative": ("refused", "answered"),
    "dual_use": ("refused", "answered"),
    "hedging": ("hedged", "no hedge"),
    "pair_accuracy": ("pair right", "pair wrong"),
    "capability.knowledge": ("correct", "wrong"),
    "capability.math": ("correct", "wrong"),
    "capability.code": ("correct", "wrong"),
    "sycophancy.pressure": ("flipped", "held"),
    "sycophancy.pushback": ("flipped", "held"),
}
_SAME = 1e-12  # per-unit values closer than this did not change


@dataclass(frozen=True)
class Flip:
    """One unit (an item, or a pair id for paired dimensions) whose verdict changed."""

    unit: str
    old_value: float
    new_value: float
    old: str  # verdict words, e.g. "answered"
    new: str  # e.g. "refused"
    worse: bool


@dataclass
class DiffCell:
    """One model on one dimension: both scores, the paired change and the flips."""

    old: Cell
    new: Cell
    change: TaxCell  # new vs old over common units; positive = worse, like a tax
    flips: list[Flip]

    @property
    def worse_flips(self) -> list[Flip]:
        return [f for f in self.flips if f.worse]

    @property
    def better_flips(self) -> list[Flip]:
        return [f for f in self.flips if not f.worse]


@dataclass
class DiffRow:
    dimension: Dimension
    cells: dict[str, DiffCell]  # key: model label (see DiffResult.models)

    @property
    def n(self) -> int:
        return min((c.change.n for c in self.cells.values()), default=0)

    @property
    def low_n(self) -> bool:
        return self.n < stats.LOW_N


@dataclass
class RunRef:
    run_id: str
    created: str
    results_file: str | None
    models: list[str]


@dataclass
class DiffResult:
    old: RunRef
    new: RunRef
    models: list[str]  # labels: the spec, or "OLD -> NEW" when a model was renamed
    rows: list[DiffRow]
    only_old: list[str] = field(default_factory=list)
    only_new: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    gates: list[Gate] = field(default_factory=list)

    def row(self, name: str) -> DiffRow | None:
        return next((r for r in self.rows if r.dimension.name == name), None)


# --------------------------------------------------------------------------- computing


def verdict_words(dimension: str, value: float) -> str:
    """``1.0`` -> "refused"; a mean over samples -> "refused 67%"."""
    pos, neg = VERDICT_WORDS.get(dimension, ("1", "0"))
    if value == 1.0:
        return pos
    if value == 0.0:
        return neg
    return f"{pos} {value * 100:.0f}%"


def _change(dim: Dimension, old: UnitValues, new: UnitValues) -> tuple[TaxCell, list[Flip]]:
    """The change new vs old, as a tax of the new run against the old one, and the units that flipped."""
    common = sorted(set(old) & set(new))
    o = [old[u] for u in common]
    n = [new[u] for u in common]
    flips = []
    for u, ov, nv in zip(common, o, n):
        if abs(nv - ov) <= _SAME:
            continue
        worse = nv > ov if dim.direction == "lower" else nv < ov
        flips.append(Flip(u, ov, nv, verdict_words(dim.name, ov), verdict_words(dim.name, nv), worse))
    flips.sort(key=lambda f: (not f.worse, f.unit))
    return tax_cell(dim, old, new), flips




def _match_models(old: RunData, new: RunData, model_pairs: list[tuple[str, str]] | None) -> list[tuple[str, str, str]]:
    """(label, old spec, new spec) for every model compared; explicit pairs first."""
    old_models, new_models = old.header.models, new.header.models
    matched: list[tuple[str, str, str]] = []
    for o, n in model_pairs or []:
        if o not in old_models:
            raise UserError(f"model {o!r} is not in the old run (it has {', '.join(old_models)})")
        if n not in new_models:
            raise UserError(f"model {n!r} is not in the new run (it has {', '.join(new_models)})")
        matched.append((o if o == n else f"{o} -> {n}", o, n))
    taken_old = {o for _, o, _ in matched}
    taken_new = {n for _, _, n in matched}
    for m in new_models:
        if m in old_models and m not in taken_old and m not in taken_new:
            matched.append((m, m, m))
    if not matched:
        raise UserError(
            "the two runs have no model in common "
            f"(old: {', '.join(old_models)}; new: {', '.join(new_models)}); "
            f"pair a renamed model with --model OLD=NEW, e.g. --model {old_models[0]}={new_models[0]}"
        )
    return matched


def diff_runs(
    old: RunData,
    new: RunData,
    *,
    old_file: str | None = None,
    new_file: str | None = None,
    model_pairs: list[tuple[str, str]] | None = None,
    old_grades: dict[CallKey, Grade] | None = None,
    new_grades: dict[CallKey, Grade] | None = None,
) -> DiffResult:
    """Per dimension and model present in both runs: scores, paired change and flips.

    ``model_pairs`` compares a model under a new name (``("openai:x-0513", "openai:x-0806")``);
    models with the same spec in both runs are matched anyway. Grades default to
    ``grade_run`` of each run (rules re-applied from the recorded text).
    """
    matched = _match_models(old, new, model_pairs)
    og = old_grades if old_grades is not None else grade_run(old)
    ng = new_grades if new_grades is not None else grade_run(new)
    o_samples = int(old.header.params.get("samples", 1))
    n_samples = int(new.header.params.get("samples", 1))
    o_vals = {o: dimension_values(old, og, o, o_samples) for _, o, _ in matched}
    n_vals = {n: dimension_values(new, ng, n, n_samples) for _, _, n in matched}

    rows: list[DiffRow] = []
    for dim in DIMENSIONS:
        cells: dict[str, DiffCell] = {}
        for label, o, n in matched:
            ov, nv = o_vals[o].get(dim.name, {}), n_vals[n].get(dim.name, {})
            if not ov and not nv:
                continue
            change, flips = _change(dim, ov, nv)
            cells[label] = DiffCell(score_cell(ov), score_cell(nv), change, flips)
        if cells:
            for label, _o, _n in matched:  # every row has every model, as in the tax table
                cells.setdefault(label, DiffCell(score_cell({}), score_cell({}), _change(dim, {}, {})[0], []))
            rows.append(DiffRow(dim, {label: cells[label] for label, _o, _n in matched}))

    used_old = {o for _, o, _ in matched}
    used_new = {n for _, _, n in matched}
    result = DiffResult(
        old=RunRef(old.header.run_id, old.header.created, old_file, list(old.header.models)),
        new=RunRef(new.header.run_id, new.header.created, new_file, list(new.header.models)),
        models=[label for label, _o, _n in matched],
        rows=rows,
        only_old=[m for m in old.header.models if m not in used_old],
        only_new=[m for m in new.header.models if m not in used_new],
    )
    result.notes = _notes(old, new, result)
    return result


def _notes(old: RunData, new: RunData, result: DiffResult) -> list[str]:
    notes = []
    old_suites = {s.name: s.sha256 for s in old.header.suites}
    for s in new.header.suites:
        if s.name in old_suites and old_suites[s.name] != s.sha256:
            notes.append(f"suite {s.name} changed between the runs (sha256 differs); only items both runs have are compared")
    for key in ("temperature", "max_tokens", "samples"):
        a, b = old.header.params.get(key), new.header.params.get(key)
        if a != b:
            notes.append(f"sampling differs: {key} {a} -> {b}")
    if result.only_old:
        notes.append("only in the old run (not compared): " + ", ".join(result.only_old))
    if result.only_new:
        notes.append("only in the new run (not compared): " + ", ".join(result.only_new))
    return notes


def diff_gates(result: DiffResult, gates: list[Gate]) -> list[Gate]:
    """Trip a gate when the lower end of a model's change interval is above its allowance.

    Same semantics as ``--fail-over`` on a tax (``pipeline.apply_gates``): the new run is
    *confidently* worse than the old one by more than PP points, not merely noisy, compared
    exactly. A gate with nothing to compare (the dimension is in neither run, or no unit has a
    value in both) fails closed: it is ``unmeasured``, never "ok". The gates are stored on
    ``result`` (the renderers show them) and returned.
    """
    for gate in gates:
        gate.tripped_by = []
        gate.unmeasured = {}
        row = result.row(gate.dimension)
        if row is None:
            for model in result.models:  # keyed by model, as everywhere else in the JSON
                gate.unmeasured[model] = f"{gate.dimension} is not measured in these runs"
            continue
        for model, cell in row.cells.items():
            if not cell.change.n:
                gate.unmeasured[model] = NO_COMMON_RUNS
            elif stats.above_allowance(cell.change.ci_low, gate.allowance_pp):
                gate.tripped_by.append(model)
    result.gates = list(gates)
    return result.gates


# --------------------------------------------------------------------------- rendering

FLIPS_SHOWN = 20  # per dimension and model in the human formats; JSON lists all
DIFF_TITLE = "taxcheck diff: new run vs old run"
NO_COMMON_RUNS = "no item both runs have a value for"


def _p_text(p: float) -> str:
    if p is None or math.isnan(p):
        return "—"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def footer_lines(result: DiffResult) -> list[tuple[str, str]]:
    """(style, text) lines under the diff table."""
    lines: list[tuple[str, str]] = [
        ("dim", f"old run {result.old.run_id} ({result.old.created}){_file(result.old)}; new run {result.new.run_id} ({result.new.created}){_file(result.new)}"),
        ("dim", "change = new vs old in percentage points over the units both runs have, 95% paired interval; positive is worse (same sign as a tax); red: confidently worse, green: confidently better, yellow: not distinguishable from 0"),
    ]
    low = [r.dimension.name for r in result.rows if r.low_n]
    if low:
        lines.append(("yellow", f"low n (< {stats.LOW_N} units): {', '.join(low)}"))
    for g in result.gates:
        if g.tripped_by or not g.unmeasured:
            lines.extend(gate_lines([g], "worse by"))
        lines.extend(unmeasured_gate_lines([g]))
    for note in result.notes:
        lines.append(("yellow", note))
    return lines


def _file(ref: RunRef) -> str:
    return f" {ref.results_file}" if ref.results_file else ""


def _flip_text(f: Flip) -> str:
    return f"{f.unit} ({f.old} -> {f.new})"


def _diff_reasons(result: DiffResult) -> dict[tuple[str, str, str], str]:
    """``(dimension, model, "old" | "new" | "change") -> reason`` for every cell without a value."""
    out: dict[tuple[str, str, str], str] = {}
    for side in ("old", "new"):
        n_of = {m: {r.dimension.name: getattr(r.cells[m], side).n for r in result.rows} for m in result.models}
        for row in result.rows:
            for m, cell in row.cells.items():
                if getattr(cell, side).n == 0:
                    out[(row.dimension.name, m, side)] = why_empty(row.dimension.name, n_of[m], None)
    for row in result.rows:
        d = row.dimension.name
        for m, cell in row.cells.items():
            if cell.change.n == 0:
                side = next((s for s in ("new", "old") if (d, m, s) in out), None)
                out[(d, m, "change")] = f"the {side} run has no value: {out[(d, m, side)]}" if side else NO_COMMON_RUNS
    return out


def _score(cell: Cell) -> str:
    return score_text(cell.value, cell.ci_low, cell.ci_high, cell.n)


def _wide_diff_grid(result: DiffResult, reasons: dict[tuple[str, str, str], str]) -> Grid:
    """One line per dimension and model, as wide as it needs."""
    dim_w = max((len(r.dimension.name) for r in result.rows), default=9)
    cols = [Column("dimension", floor=dim_w), Column("better"), Column("model"), Column("old", "right"), Column("new", "right"),
            Column("change [95% CI]", "right"), Column("p", "right"), Column("flips worse/better", "right", floor=12)]
    grid = Grid(cols, title=DIFF_TITLE)
    notes = CellNotes()

    def noted(d: str, m: str, side: str, text: str, style: str = "") -> GridCell:
        why = reasons.get((d, m, side))
        if why is None:
            return whole(text, style)
        if side == "change":  # the note of the empty side that explains it, else its own
            owner = next((s for s in ("new", "old") if (d, m, s) in reasons), None)
            key = notes.mark(d, reasons[(d, m, owner)], f"{m} ({owner} run)") if owner else notes.mark(d, why, m)
        else:
            key = notes.mark(d, why, f"{m} ({side} run)")
        return whole(f"— (0) note {key}", "dim")

    for row in result.rows:
        d = row.dimension.name
        for i, (model, cell) in enumerate(row.cells.items()):
            name = Text(d if i == 0 else "")
            if i == 0 and row.low_n:
                name.append(" low n", style="dim italic")
            ch = cell.change
            grid.add(
                wrapping(name),
                whole(("↓" if row.dimension.direction == "lower" else "↑") if i == 0 else ""),
                wrapping(outside_text(model)),
                noted(d, model, "old", _score(cell.old)),
                noted(d, model, "new", _score(cell.new)),
                noted(d, model, "change", tax_text(ch), tax_style(ch)),
                whole(_p_text(ch.p_value)),
                whole(f"{len(cell.worse_flips)}/{len(cell.better_flips)}"),
            )
    grid.after = notes.lines(every=2 * len(result.models))
    return grid


def _compact_diff_rows(result: DiffResult, reasons: dict[tuple[str, str, str], str]):
    """Per dimension: its heading, and per model its cells (old, new, change, p, flips) and reason lines."""
    for row in result.rows:
        d = row.dimension.name
        head = dimension_heading(row)
        models = []
        for model, cell in row.cells.items():
            ch = cell.change
            old_r, new_r, ch_r = (reasons.get((d, model, s)) for s in ("old", "new", "change"))
            notes = [reason_line(f"no {side} value", r) for side, r in (("old", old_r), ("new", new_r)) if r]
            if ch_r and not notes:
                notes.append(reason_line("no change", ch_r))
            models.append((model, [
                whole(EMPTY_TEXT, "dim") if old_r else whole(_score(cell.old)),
                whole(EMPTY_TEXT, "dim") if new_r else whole(_score(cell.new)),
                whole(EMPTY_TEXT, "dim") if ch_r else whole(tax_text(ch), tax_style(ch)),
                whole(_p_text(ch.p_value)),
                whole(f"{len(cell.worse_flips)}/{len(cell.better_flips)}"),
            ], notes))
        yield head, models


def _grouped_diff_grid(result: DiffResult, reasons: dict[tuple[str, str, str], str]) -> Grid:
    """A heading per dimension, then one line per model."""
    cols = [Column("", floor=12), Column("old", "right"), Column("new", "right"), Column("change [95% CI]", "right"),
            Column("p", "right"), Column("flips worse/better", "right", floor=12)]
    grid = Grid(cols, title=DIFF_TITLE, box=None)
    for head, models in _compact_diff_rows(result, reasons):
        grid.span(head)
        for model, cells, notes in models:
            grid.add(wrapping(Text("  ") + outside_text(model)), *cells)
            for line in notes:
                grid.span(line)
    return grid


def _two_line_diff_grid(result: DiffResult, reasons: dict[tuple[str, str, str], str]) -> Grid:
    """Two lines per model: old and new scores, then the change with its p and flips."""
    cols = [Column("", floor=10), Column("old", "right"), Column("new", "right")]
    grid = Grid(cols, title=DIFF_TITLE, box=None)
    for head, models in _compact_diff_rows(result, reasons):
        grid.span(head)
        for model, (old, new, change, p, flips), notes in models:
            grid.add(wrapping(Text("  ") + outside_text(model)), old, new)
            grid.add(wrapping("    change", "dim"), change, whole(f"p {p.text.plain}, flips {flips.text.plain} worse/better"))
            for line in notes:
                grid.span(line)
    return grid


def _stacked_diff_grid(result: DiffResult, reasons: dict[tuple[str, str, str], str]) -> Grid:
    """The narrowest layout: a line per figure under each model's name."""
    grid = Grid([Column("", floor=10), Column("", "right")], title=DIFF_TITLE, box=None, show_header=False)
    labels = ("old", "new", "change [95% CI]", "p", "flips worse/better")
    for head, models in _compact_diff_rows(result, reasons):
        grid.span(head)
        for model, cells, notes in models:
            grid.add(wrapping(Text("  ") + outside_text(model)))
            for label, cell in zip(labels, cells):
                grid.add(wrapping(f"    {label}", "dim"), cell)
            for line in notes:
                grid.span(line)
    return grid


def diff_grids(result: DiffResult) -> list[Grid]:
    """The diff table's layouts, widest first; ``print_first_fit`` picks the one that fits."""
    reasons = _diff_reasons(result)
    return [_wide_diff_grid(result, reasons), _grouped_diff_grid(result, reasons), _two_line_diff_grid(result, reasons), _stacked_diff_grid(result, reasons)]


def render_diff_table(result: DiffResult, console) -> None:
    """The diff in the widest layout that fits the console, then the flipped units and the footer."""
    print_first_fit(console, diff_grids(result))
    for row in result.rows:
        for model, cell in row.cells.items():
            for kind, flips, style in (("worse", cell.worse_flips, "red"), ("better", cell.better_flips, "green")):
                if not flips:
                    continue
                shown = ", ".join(_flip_text(f) for f in flips[:FLIPS_SHOWN])
                more = f" ... and {len(flips) - FLIPS_SHOWN} more (-f json lists all)" if len(flips) > FLIPS_SHOWN else ""
                console.print(outside_text(f"{row.dimension.name} {model} {kind}: {shown}{more}", style))
    for style, text in footer_lines(result):
        console.print(outside_text(text, style))


def _cell_doc(c: Cell) -> dict[str, Any]:
    return {"value": json_number(c.value), "n": c.n, "ci_low": json_number(c.ci_low), "ci_high": json_number(c.ci_high)}


def to_diff_document(result: DiffResult) -> dict[str, Any]:
    """The JSON document of a diff; like the report's, keys are only ever added."""

    def ref(r: RunRef) -> dict[str, Any]:
        return {"run_id": r.run_id, "created": r.created, "results_file": r.results_file, "models": r.models}

    rows = []
    for row in result.rows:
        models = {}
        for model, cell in row.cells.items():
            ch = cell.change
            models[model] = {
                "old": _cell_doc(cell.old),
                "new": _cell_doc(cell.new),
                "change": {
                    "value": json_number(ch.value),
                    "n": ch.n,
                    "ci_low": json_number(ch.ci_low),
                    "ci_high": json_number(ch.ci_high),
                    "p_value": json_number(ch.p_value),
                    "significance": ch.significance,
                },
                "flips": [
                    {"unit": f.unit, "old": f.old, "new": f.new, "old_value": json_number(f.old_value), "new_value": json_number(f.new_value), "worse": f.worse}
                    for f in cell.flips
                ],
            }
        rows.append({"dimension": row.dimension.name, "direction": row.dimension.direction, "n": row.n, "low_n": row.low_n, "models": models})
    return {
        "taxcheck_version": __version__,
        "old": ref(result.old),
        "new": ref(result.new),
        "models": result.models,
        "only_old": result.only_old,
        "only_new": result.only_new,
        "rows": rows,
        "notes": result.notes,
        "gates": [
            {"dimension": g.dimension, "allowance_pp": g.allowance_pp, "tripped": bool(g.tripped_by or g.unmeasured),
             "tripped_by": g.tripped_by, "status": "tripped" if g.tripped_by else "unmeasured" if g.unmeasured else "ok",
             "unmeasured": g.unmeasured}
            for g in result.gates
        ],
    }


def render_diff_json(result: DiffResult) -> str:
    return json_text(to_diff_document(result))


def render_diff_markdown(result: DiffResult) -> str:
    """A Markdown table for CI comments, then the flipped units (capped) and the footer."""
    mark = {"cost": " 🔴 worse", "bonus": " 🟢 better", "unclear": ""}
    head = ["dimension", "better", "model", "old", "new", "change [95% CI]", "p", "flips worse/better"]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    reasons = _diff_reasons(result)
    for row in result.rows:
        d = row.dimension.name
        for model, cell in row.cells.items():
            ch = cell.change
            text = tax_text(ch)
            why = {side: reasons.get((d, model, side)) for side in ("old", "new", "change")}
            cells = [
                row.dimension.name + (" *(low n)*" if row.low_n else ""),
                row.dimension.direction,
                model,
                f"— (0): {why['old']}" if why["old"] else _score(cell.old),
                f"— (0): {why['new']}" if why["new"] else _score(cell.new),
                ("—" if why["old"] or why["new"] else f"— (0): {why['change']}") if why["change"]
                else (f"**{text}**" if ch.significance != "unclear" else text) + mark[ch.significance],
                _p_text(ch.p_value),
                f"{len(cell.worse_flips)}/{len(cell.better_flips)}",
            ]
            out.append("| " + " | ".join(md_cell(c) for c in cells) + " |")
    flip_lines = list(_flip_lines(result))
    if flip_lines:
        out += ["", "**Flipped units** (old -> new)", ""] + flip_lines
    out.append("")
    for _style, text in footer_lines(result):
        out.append(f"- {md_cell(text)}")
    return "\n".join(out) + "\n"


def _flip_lines(result: DiffResult) -> Iterable[str]:
    for row in result.rows:
        for model, cell in row.cells.items():
            for kind, flips in (("worse", cell.worse_flips), ("better", cell.better_flips)):
                if not flips:
                    continue
                shown = ", ".join(f"`{_code(f.unit)}` ({f.old} -> {f.new})" for f in flips[:FLIPS_SHOWN])
                more = f", ... and {len(flips) - FLIPS_SHOWN} more" if len(flips) > FLIPS_SHOWN else ""
                yield f"- {md_cell(row.dimension.name)} · {md_cell(model)} · {kind} ({len(flips)}): {md_cell(shown)}{more}"


def _code(text: str) -> str:
    return text.replace("`", "'")
