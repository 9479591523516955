"""Token counts before anything is sent: ``--dry-run``'s estimates, pacing's, the budget's bound.

Estimates are about four characters a token for English prose, plus a small
per-message overhead; the dry run puts output at a fraction of ``--max-tokens`` because
most answers stop well before the cap. Those figures are meant to tell a $5 run from a
$500 one, not to bill by. ``--max-cost`` needs the other kind of number, one that is
never below the bill: ``input_token_bound``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from taxcheck.cache import Cache, cache_key
from taxcheck.pricing import cost_usd

CHARS_PER_TOKEN = 4.0
MESSAGE_OVERHEAD_TOKENS = 4
OUTPUT_FRACTION = 0.5
BOUND_OVERHEAD_TOKENS = 8  # per message: role, separators
BOUND_REPLY_TOKENS = 16  # the assistant turn's priming, a system prompt's wrapper


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
    """About how many tokens a conversation is: for pacing and the dry run, not for billing."""
    return sum(int(len(m["content"]) / CHARS_PER_TOKEN) + MESSAGE_OVERHEAD_TOKENS for m in messages)


def input_token_bound(messages: list[dict[str, str]]) -> int:
    """At least as many tokens as a provider can bill for this conversation's input.

    Byte-level BPE tokenizers (OpenAI's, Anthropic's) never make a token of less than one
    byte, so the UTF-8 length bounds the text; the allowance covers the chat template's
    role and separator tokens. About four times ``estimate_tokens`` for English, which is
    the price of a bound that holds for any script (``--max-cost`` needs one).
    """
    return sum(len(m["content"].encode("utf-8", "surrogatepass")) + BOUND_OVERHEAD_TOKENS for m in messages) + BOUND_REPLY_TOKENS


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
    console.print(f"run file would be: {out}", highlight=False)
