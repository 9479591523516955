"""From a run file to a rendered report: the one path shared by ``run`` and ``report``.

``run`` writes the run file and then reports it exactly as ``taxcheck report`` would,
so the two can never disagree about a number.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from taxcheck.measure.aggregate import Row, Table, build_table, dimension_values
from taxcheck.errors import EXIT_FAILURES, EXIT_GATE, EXIT_OK, UserError
from taxcheck.grade.rules import Grade, grade_run
from taxcheck.report.table import (
    Gate,
    ReportMeta,
    gate_lines,
    print_table,
    render_csv,
    render_json,
    render_markdown,
    unmeasured_gate_lines,
)
from taxcheck.runfile import CallKey, RunData
from taxcheck.measure.stats import above_allowance

FORMATS = ("table", "json", "markdown", "csv")


def usage_from_run(data: RunData) -> dict[str, dict[str, Any]]:
    """Usage per model over every call in the run file (earlier, interrupted invocations included)."""
    from taxcheck.cost.pricing import cost_usd
    from taxcheck.send.wire import LENGTH_FINISHES

    usage: dict[str, dict[str, Any]] = {}
    for m in data.header.models:
        usage[m] = {"requests": 0, "cached": 0, "input_tokens": 0, "output_tokens": 0, "cost_usd": None}
    batch_tokens: dict[str, list[int]] = {}
    for rec in data.calls.values():
        u = usage.get(rec.model)
        if u is None or not rec.ok:
            continue
        if rec.finish_reason in LENGTH_FINISHES:  # graded on what it said before the cap
            u["cut_off"] = u.get("cut_off", 0) + 1
        if rec.cached:
            u["cached"] += 1
        else:
            u["requests"] += 1
            u["input_tokens"] += rec.input_tokens or 0
            u["output_tokens"] += rec.output_tokens or 0
            if rec.reasoning_tokens:  # hidden reasoning, inside output_tokens (and billed as output)
                u["reasoning_tokens"] = u.get("reasoning_tokens", 0) + rec.reasoning_tokens
            if rec.batch:
                bt = batch_tokens.setdefault(rec.model, [0, 0])
                bt[0] += rec.input_tokens or 0
                bt[1] += rec.output_tokens or 0
    for v in data.verdicts.values():  # the judge's own calls
        u = usage.setdefault(
            v.judge, {"requests": 0, "cached": 0, "input_tokens": 0, "output_tokens": 0, "cost_usd": None, "role": "judge"}
        )
        u["requests"] += v.requests
        u["cached"] += v.cached
        u["input_tokens"] += v.input_tokens
        u["output_tokens"] += v.output_tokens
    for m, u in usage.items():
        bin_, bout = batch_tokens.get(m, (0, 0))
        sync = cost_usd(m, u["input_tokens"] - bin_, u["output_tokens"] - bout, data.header.prices)
        batched = cost_usd(m, bin_, bout, data.header.prices, batch=True)
        u["cost_usd"] = None if sync is None or batched is None else round(sync + batched, 6)
    return usage


def failures_from_run(data: RunData) -> dict[str, int]:
    failures = {m: 0 for m in data.header.models}
    for rec in data.calls.values():
        if rec.failed and rec.model in failures:
            failures[rec.model] += 1
    return failures


def parse_gates(specs: list[str]) -> list[Gate]:
    from taxcheck.measure.aggregate import DIMENSION_NAMES

    gates = []
    for spec in specs:
        dim, sep, pp = spec.partition("=")
        if not sep:
            raise UserError(f"--fail-over {spec!r}: expected DIM=PP, e.g. --fail-over over_refusal=5")
        if dim not in DIMENSION_NAMES:
            raise UserError(f"--fail-over {spec!r}: unknown dimension {dim!r}; one of {', '.join(DIMENSION_NAMES)}")
        try:
            allowance = float(pp)
        except ValueError:
            raise UserError(f"--fail-over {spec!r}: {pp!r} is not a number of percentage points") from None
        gates.append(Gate(dim, allowance))
    return gates


def apply_gates(table: Table, gates: list[Gate]) -> None:
    """A gate trips when the lower end of a candidate's tax interval is above the allowance.

    Compared exactly (``stats.above_allowance``): ``ci_low * 100 > allowance`` let float
    noise (0.14000000000000004) trip a 14-point gate.
    """
    for gate in gates:
        row = table.row(gate.dimension)
        gate.tripped_by = []
        if row is None:
            continue
        for model, tax in row.tax.items():
            if tax.n and above_allowance(tax.ci_low, gate.allowance_pp):
                gate.tripped_by.append(model)


@dataclass
class Report:
    table: Table
    meta: ReportMeta
    grades: dict[CallKey, Grade] = field(default_factory=dict)  # the verdicts the table was built from (Grade.source says whose)
    rule_grades: dict[CallKey, Grade] = field(default_factory=dict)  # the rule scorers' own (the same as grades without a judge)
    causes: dict = field(default_factory=dict)  # model -> failures.Cause list: stderr and JSON say the same
    values: dict = field(default_factory=dict)  # model -> aggregate.dimension_values under ``grades``
    warnings: list[str] = field(default_factory=list)  # said once on stderr by ``emit``
    breakdown: list = field(default_factory=list)  # breakdown.DimensionBreakdown per dimension (--by type)


GRADERS = ("auto", "rule", "judge")


def build_report(
    data: RunData,
    results_file: Path,
    gates: list[Gate] | None = None,
    notes: list[str] | None = None,
    grader: str = "auto",
    by: str | None = None,
    partial: dict | None = None,
    timeout_s: float | None = None,
) -> Report:
    """Grade, aggregate and gate a run. ``grader``: auto uses the judge where it has verdicts."""
    if grader not in GRADERS:
        raise UserError(f"--grader {grader!r}: one of {', '.join(GRADERS)}")
    grades = rule_grades = grade_run(data)
    agreement_figures = None
    notes = list(notes or [])
    warnings: list[str] = []
    if data.verdicts:
        from taxcheck.measure.agreement import agreement
        from taxcheck.grade.rules import judge_grades
        from taxcheck.grade.provenance import judge_health

        agreement_figures = agreement(data, grades)
        if grader in ("auto", "judge"):
            grades = judge_grades(data, grades, grader)
        health = judge_health(data)
        sentence = health.sentence(grader)
        if sentence:
            warnings.append(sentence)
            notes.append(_missing_note(health, grader, results_file))
    elif grader == "judge":
        raise UserError(f"{results_file} has no judge verdicts; add them with `taxcheck regrade {results_file} --judge SPEC`")
    header = data.header
    samples = int(header.params.get("samples", 1))
    # each model's unit values, once: the table, the breakdown and the HTML contrasts all read them
    values = {m: dimension_values(data, grades, m, samples) for m in header.models}
    table = build_table(data, grades, header.models, header.baseline, samples, failures_from_run(data),
                        value_source=values.__getitem__)
    from taxcheck.grade.provenance import graded_by, incomplete

    counts = graded_by(data, grades)
    by_dim = {row.dimension.name: counts.get(row.dimension.name, {"judge": 0, "rule": 0, "missing": 0}) for row in table.rows}
    from taxcheck.report.failures import failure_causes
    from taxcheck.grade.code_stage import sandbox_summary
    from taxcheck.runfile import requests_sent

    causes = failure_causes(data, timeout_s)  # timeout_s: the run's --timeout, for the fix it names
    meta = ReportMeta(
        failure_causes={m: [c.to_json() for c in cs] for m, cs in causes.items()},
        sampling=requests_sent(data),
        sandbox=sandbox_summary(data),
        partial=partial,
        run_id=header.run_id,
        results_file=str(results_file),
        usage=usage_from_run(data),
        gates=list(gates or []),
        notes=notes,
        agreement=agreement_figures,
        graded_by=by_dim,
        grader=grader,
        incomplete=incomplete(by_dim),
    )
    apply_gates(table, meta.gates)
    close_gates(table, meta.gates, data, meta.incomplete)
    parts = []
    if by is not None:
        from taxcheck.measure.breakdown import breakdown

        parts = breakdown(data, grades, table, samples, values)
        from taxcheck.report.by_type import breakdown_document

        meta.breakdown = {p.dimension.name: breakdown_document(p) for p in parts}
    return Report(table, meta, grades, rule_grades, causes, values, warnings, parts)


def _missing_note(health, grader: str, results_file: Path) -> str:
    kept = {"auto": "those calls keep their rule verdicts", "judge": "those calls are left unscored", "rule": "the table uses the rules only"}[grader]
    note = f"{health.failed} of {health.owed} judge verdicts are missing; {kept}."
    if health.retryable:
        judge = health.main_judge
        note += f" `taxcheck regrade {results_file} --judge {judge}` asks again for the {health.retryable} never asked or failed"
    return note


def close_gates(table: Table, gates: list[Gate], data: RunData, incomplete: dict[str, str]) -> None:
    """A gate that cannot be measured fails closed (DESIGN §2): named, with its reason, never "ok".

    For each candidate that did not trip: the dimension is not in the run, its tax has no
    paired item (every call failed, or nothing the dimension is conditional on happened), or
    under ``--grader judge`` some of its verdicts have no judge grade.
    """
    candidates = [m for m in table.models if m != table.baseline]
    for gate in gates:
        gate.unmeasured = {}
        row = table.row(gate.dimension)
        for m in candidates:
            if m in gate.tripped_by:
                continue
            why = _unmeasured(gate.dimension, row, m, table.baseline, data, incomplete)
            if why:
                gate.unmeasured[m] = why


def _unmeasured(dim: str, row: Row | None, model: str, baseline: str | None, data: RunData, incomplete: dict[str, str]) -> str | None:
    if row is None:
        return f"the run has no items that measure {dim}"
    if dim in incomplete:
        return incomplete[dim]
    tax = row.tax.get(model)
    if tax is not None and tax.n:
        return None
    for m in (model, baseline):
        if m is not None and row.scores[m].n == 0:
            return _no_value_reason(dim, m, data)
    return f"no item has a value for both {model} and {baseline}: no paired items"


_CONDITIONAL = {
    "hedging": "no benign answer of {m} complied, so no hedge can be measured",
    "sycophancy.pressure": "no neutral answer of {m} was right, so no flip can be measured",
    "sycophancy.pushback": "no first answer of {m} was right, so no flip can be measured",
    "pair_accuracy": "no contrast pair of {m} has both answers graded",
}


def _no_value_reason(dim: str, model: str, data: RunData) -> str:
    from taxcheck.grade.provenance import fed_fields

    ids = {i.id for i in data.items.values() if any(d == dim for _f, d in fed_fields(i))}
    recs = [r for r in data.calls.values() if r.model == model and r.item in ids]
    if not recs:
        return f"{model} has no recorded answer for its items"
    if not any(r.ok for r in recs):
        return f"every call of {model} on its items failed (see failures)"
    return _CONDITIONAL.get(dim, "no answer of {m} could be graded").format(m=model)


def exit_code(report: Report) -> int:
    """0 done; 1 a gate tripped; 3 a gate could not be measured, verdicts are missing under
    ``--grader judge``, or some items failed (the table printed, with what is missing named)."""
    gates = report.meta.gates
    if any(g.tripped_by for g in gates):
        return EXIT_GATE
    if any(g.unmeasured for g in gates) or report.meta.incomplete or any(report.table.failures.values()):
        return EXIT_FAILURES
    return EXIT_OK


def emit(report: Report, fmt: str, output: Path | None = None) -> None:
    """Write the report to ``output`` or stdout; only the document goes to stdout.

    Its warnings go to stderr, once; and unless the table's footer is on the terminal to
    name them, so do the gates that did not pass, so that a CI log shows why it failed.
    """
    if fmt not in FORMATS:
        raise UserError(f"unknown format {fmt!r}; one of {', '.join(FORMATS)}")
    say_warnings(report, gates_too=fmt != "table" or output is not None)
    if fmt == "table":
        from taxcheck.console import stdout_console

        if output is not None:
            with open(output, "w", encoding="utf-8") as fh:
                print_table(report.table, report.meta, stdout_console(fh, color=False))
            return
        print_table(report.table, report.meta, stdout_console())
        return
    text = {"json": render_json, "markdown": render_markdown, "csv": render_csv}[fmt](report.table, report.meta)
    if output is not None:
        output.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        sys.stdout.flush()


def say_warnings(report: Report, gates_too: bool) -> None:
    """The report's warnings on stderr, and with ``gates_too`` the gates that did not pass."""
    from taxcheck.console import say, stderr_console

    lines = [("warning", "yellow", w) for w in report.warnings]
    if gates_too:
        failed = gate_lines([g for g in report.meta.gates if g.tripped_by]) + unmeasured_gate_lines(report.meta.gates)
        lines += [("gate", style, text) for style, text in failed]
    if lines:
        err = stderr_console()
        for label, style, text in lines:
            say(err, label, style, text)
