"""From a run file to a rendered report: the one path shared by ``run`` and ``report``.

``run`` writes the run file and then reports it exactly as ``taxcheck report`` would,
so the two can never disagree about a number.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from taxcheck.aggregate import Table, build_table
from taxcheck.errors import UserError
from taxcheck.grading import grade_run
from taxcheck.render import (
    Gate,
    ReportMeta,
    print_table,
    render_csv,
    render_json,
    render_markdown,
)
from taxcheck.runfile import RunData
from taxcheck.stats import above_allowance

FORMATS = ("table", "json", "markdown", "csv")


def usage_from_run(data: RunData) -> dict[str, dict[str, Any]]:
    """Usage per model over every call in the run file (earlier, interrupted invocations included)."""
    from taxcheck.pricing import cost_usd

    usage: dict[str, dict[str, Any]] = {}
    for m in data.header.models:
        usage[m] = {"requests": 0, "cached": 0, "input_tokens": 0, "output_tokens": 0, "cost_usd": None}
    batch_tokens: dict[str, list[int]] = {}
    for rec in data.calls.values():
        u = usage.get(rec.model)
        if u is None or not rec.ok:
            continue
        if rec.cached:
            u["cached"] += 1
        else:
            u["requests"] += 1
            u["input_tokens"] += rec.input_tokens or 0
            u["output_tokens"] += rec.output_tokens or 0
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
        if not rec.ok and rec.model in failures:
            failures[rec.model] += 1
    return failures


def parse_gates(specs: list[str]) -> list[Gate]:
    from taxcheck.aggregate import DIMENSION_NAMES

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
    grades: dict = None  # CallKey -> Grade, the verdicts the table was built from


GRADERS = ("auto", "rule", "judge")


def build_report(
    data: RunData,
    results_file: Path,
    gates: list[Gate] | None = None,
    notes: list[str] | None = None,
    grader: str = "auto",
) -> Report:
    """Grade, aggregate and gate a run. ``grader``: auto uses the judge where it has verdicts."""
    if grader not in GRADERS:
        raise UserError(f"--grader {grader!r}: one of {', '.join(GRADERS)}")
    grades = grade_run(data)
    agreement_figures = None
    graded_by = "rule"
    if data.verdicts:
        from taxcheck.agreement import agreement
        from taxcheck.grading import judge_grades

        agreement_figures = agreement(data, grades)
        if grader in ("auto", "judge"):
            grades = judge_grades(data, grades)
            graded_by = "judge"
            from taxcheck.judge import pending_tasks

            judge = max({v.judge for v in data.verdicts.values()}, key=lambda j: sum(v.judge == j for v in data.verdicts.values()))
            missing = sum(1 for t in pending_tasks(data, judge) if (t.call.key, f"judge:{t.rubric}") not in data.verdicts)
            if missing:
                notes = [*(notes or []), f"{missing} graded calls have no judge verdict (the judge stopped early); they keep "
                         f"their rule verdicts. `taxcheck regrade {results_file} --judge {judge}` completes them"]
    elif grader == "judge":
        raise UserError(f"{results_file} has no judge verdicts; add them with `taxcheck regrade {results_file} --judge SPEC`")
    header = data.header
    samples = int(header.params.get("samples", 1))
    table = build_table(data, grades, header.models, header.baseline, samples, failures_from_run(data))
    meta = ReportMeta(
        run_id=header.run_id,
        results_file=str(results_file),
        usage=usage_from_run(data),
        gates=list(gates or []),
        notes=list(notes or []),
        agreement=agreement_figures,
        graded_by=graded_by,
    )
    apply_gates(table, meta.gates)
    return Report(table, meta, grades)


def emit(report: Report, fmt: str, output: Path | None = None) -> None:
    """Write the report to ``output`` or stdout; only the document goes to stdout."""
    if fmt not in FORMATS:
        raise UserError(f"unknown format {fmt!r}; one of {', '.join(FORMATS)}")
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
