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

from taxcheck.send.cache import Cache, cache_key
from taxcheck.cost.pricing import cost_usd

CHARS_PER_TOKEN = 4.0
MESSAGE_OVERHEAD_TOKENS = 4
OUTPUT_FRACTION = 0.5
VISIBLE_CAP_TOKENS = 512  # the default cap: what a visible answer is estimated against
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
    """Per model: calls, what is recorded or cached, and estimated tokens. Output is estimated
    from each model's own cap (a reasoning model's larger default cap shows here)."""
    result = {m.spec: Estimate() for m in plan.models}
    look_up = cache.enabled and not cache.is_empty()
    per_model = {}
    for m in plan.models:
        p = plan.params_for(m)
        # A reasoning model's cap holds its hidden reasoning too, but only the visible answer
        # goes back as the second turn's input: that is estimated against the default cap.
        visible = int(min(p.output_cap, VISIBLE_CAP_TOKENS) * OUTPUT_FRACTION)
        per_model[m.spec] = (p.cache_fields(), int(p.output_cap * OUTPUT_FRACTION), visible)
    for item in plan.items:
        turns = item.n_turns
        for m in plan.models:
            params_key, out_tokens, visible_tokens = per_model[m.spec]
            first = m.messages(item.first_messages())
            first_tokens = estimate_tokens(first)
            e = result[m.spec]
            for sample in range(plan.samples):
                for turn in range(turns):
                    e.calls += 1
                    rec = plan.done.get((m.spec, item.id, sample, turn))
                    if rec is not None and rec.settled:
                        e.recorded += 1
                        continue
                    if turn == 0 and look_up:
                        key = cache_key(m.endpoint.base_url, m.endpoint.wire, m.api, m.model, first, params_key, sample)
                        if cache.get(key) is not None:
                            e.cached += 1
                            continue
                    extra = (visible_tokens + estimate_tokens([{"content": item.turns[1]}])) if turn == 1 and item.turns else 0
                    e.input_tokens += first_tokens + extra
                    e.output_tokens += out_tokens
    return result
