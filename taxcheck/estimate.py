"""``--dry-run``: what a run would send and cost, without sending anything.

Token counts are estimates (about four characters a token for English prose, plus a
small per-message overhead); output tokens are estimated at a fraction of
``--max-tokens`` because most answers stop well before the cap. The figures are meant
to tell a $5 run from a $500 one, not to bill by.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from taxcheck.cache import Cache, cache_key
from taxcheck.pricing import cost_usd

CHARS_PER_TOKEN = 4.0
MESSAGE_OVERHEAD_TOKENS = 4
OUTPUT_FRACTION = 0.5


@dataclass
class Estimate:
    calls: int = 0
    recorded: int = 0
    cached: int = 0
    input_tokens: int = 0
    output_tokens: int = 0

    def cost(self, spec: str, prices=()) -> float | None:
        return cost_usd(spec, self.input_tokens, self.output_tokens, prices)


def estimate_tokens(messages: list[dict[str, str]]) -> int:
    return sum(int(len(m["content"]) / CHARS_PER_TOKEN) + MESSAGE_OVERHEAD_TOKENS for m in messages)


def estimate(plan, cache: Cache) -> dict[str, Estimate]:
    params_key = {"temperature": plan.params.temperature, "max_tokens": plan.params.max_tokens}
    out_tokens = int(plan.params.max_tokens * OUTPUT_FRACTION)
    result = {m.spec: Estimate() for m in plan.models}
    look_up = cache.enabled and not cache.is_empty()
    for item in plan.items:
        first = item.first_messages()
        first_tokens = estimate_tokens(first)
        turns = item.n_turns
        for sample in range(plan.samples):
            for m in plan.models:
                e = result[m.spec]
                for turn in range(turns):
                    e.calls += 1
                    rec = plan.done.get((m.spec, item.id, sample, turn))
                    if rec is not None and rec.ok:
                        e.recorded += 1
                        continue
                    if turn == 0 and look_up:
                        key = cache_key(m.endpoint.base_url, m.endpoint.wire, m.api, m.model, first, params_key, sample)
                        if cache.get(key) is not None:
                            e.cached += 1
                            continue
                    extra = (out_tokens + estimate_tokens([{"content": item.turns[1]}])) if turn == 1 and item.turns else 0
                    e.input_tokens += first_tokens + extra
                    e.output_tokens += out_tokens
    return result


def print_dry_run(plan, cache: Cache, out: Path, prices=()) -> None:
    from rich.table import Table

    from taxcheck.console import stdout_console

    est = estimate(plan, cache)
    t = Table(title="taxcheck --dry-run: nothing was sent", title_justify="left")
    for col in ("model", "calls", "recorded", "cached", "to send", "est. input tok", "est. output tok", "est. cost"):
        t.add_column(col, justify="left" if col == "model" else "right")
    total_cost: float | None = 0.0
    for spec, e in est.items():
        cost = e.cost(spec, prices)
        total_cost = None if cost is None or total_cost is None else total_cost + cost
        t.add_row(
            spec, str(e.calls), str(e.recorded), str(e.cached), str(e.calls - e.recorded - e.cached),
            f"{e.input_tokens:,}", f"{e.output_tokens:,}", "unknown" if cost is None else f"${cost:.4f}",
        )
    console = stdout_console(width=160)
    console.print(t)
    console.print(f"total estimated cost: {'unknown (no price for some model)' if total_cost is None else f'${total_cost:.4f}'}", highlight=False)
    from taxcheck.sampling import category_counts

    counts = category_counts(plan.items)
    console.print(f"items per category ({len(plan.items)} in all): " + ", ".join(f"{c} {n}" for c, n in counts.items()), highlight=False, soft_wrap=True)
    console.print(f"run file would be: {out}", highlight=False)
