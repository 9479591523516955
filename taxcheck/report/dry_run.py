"""``--dry-run``: the plan of a run, printed before anything is sent.

Per model: calls, what the run file and the cache already hold, estimated tokens and cost
(``cost.estimate``); the items per category a ``--limit`` gives; and, per dimension, the
smallest tax the run could call confident (``measure.power``), so that a run too small to
see the tax it is for is caught before it is paid for. ``suites show`` prints the same
detectable-tax lines for a suite (``print_power``).
"""

from __future__ import annotations

from pathlib import Path



def print_power(console, items, samples: int, assume, heading: str) -> None:
    """The detectable-tax sentences under ``heading`` (one per dimension, then what K buys)."""
    from taxcheck.console import outside_text
    from taxcheck.measure.power import power_lines

    console.print(outside_text(heading))
    for line in power_lines(items, samples, assume):
        console.print(outside_text("  " + line), soft_wrap=True)


def print_dry_run(plan, cache, out: Path, prices=(), assume=None) -> None:
    from taxcheck.console import outside_text, stdout_console
    from taxcheck.layout import Column, Grid, print_first_fit, stacked, whole, wrapping

    """What a run would send and cost, per model, and the smallest tax it could detect; nothing is sent."""
    from taxcheck.cost.estimate import estimate  # here: ``suites show`` prints the power lines alone

    est = estimate(plan, cache)
    cols = [Column("model")] + [Column(c, "right") for c in ("calls", "recorded", "cached", "to send", "est. input tok", "est. output tok", "est. cost")]
    grid = Grid(cols, title="taxcheck --dry-run: nothing was sent")
    total_cost: float | None = 0.0
    for spec, e in est.items():
        cost = e.cost(spec, prices)
        total_cost = None if cost is None or total_cost is None else total_cost + cost
        grid.add(
            wrapping(outside_text(spec)),
            *(whole(v) for v in (str(e.calls), str(e.recorded), str(e.cached), str(e.calls - e.recorded - e.cached),
                                 f"{e.input_tokens:,}", f"{e.output_tokens:,}", "unknown" if cost is None else f"${cost:.4f}")),
        )
    console = stdout_console(width=160)
    print_first_fit(console, [grid, stacked(grid)])
    console.print(outside_text(f"total estimated cost: {'unknown (no price for some model)' if total_cost is None else f'${total_cost:.4f}'}"))
    from taxcheck.suites.sampling import category_counts

    counts = category_counts(plan.items)
    console.print(outside_text(f"items per category ({len(plan.items)} in all): " + ", ".join(f"{c} {n}" for c, n in counts.items())),
                  soft_wrap=True)
    print_power(console, plan.items, plan.samples, assume, "smallest tax this run can call confident (80 % power):")
    console.print(outside_text(f"run file would be: {out}"))
