"""``--max-cost``: spend the budget, and never a cent past it.

**Never past it.** Each request reserves an upper bound of its cost before it is sent,
and at every moment ``spent + reserved <= max_usd``. The bound has to be a true bound,
not a guess, or one long answer breaks the promise:

* input: the UTF-8 byte count of the conversation plus a per-message allowance
  (``estimate.input_token_bound``), because a byte-level BPE token is at least one byte;
* output: the ``max_tokens`` the request is *sent with*, because the provider cannot bill
  more output than that.

So the reservation's output part is not an estimate of the answer: it is the answer's
ceiling, and a longer answer is cut by the provider rather than billed past the budget.
An attempt that fails in a way the provider may still bill (a timeout, a reset mid-body:
``may_have_been_billed``) is counted at its bound, and a retry reserves anew: retries
cannot spend what was never reserved.

**Spend it.** A reservation that does not fit is not the end: it waits (first come,
first served, so models stay paired item by item) for requests in flight to settle to
their real cost, which frees the difference, and the run goes on with fewer in flight,
down to one. When even one request at the full ``--max-tokens`` does not fit, the run's
own answers tell how long answers are: after ``MIN_ANSWERS`` answers of that model, a
last request may go with a smaller ``max_tokens`` that fits what is left, if it is at
least ``OUTPUT_MARGIN`` x the longest answer seen (plus ``OUTPUT_SLACK``). Such an answer
is kept only if it ended on its own: one cut by the smaller ceiling is not the answer
the run asked for, so it is discarded (its cost counted) and the run stops. Only then
does the budget stop the run: exit 4, having spent all but less than one request.

The budget covers this invocation: calls recorded by earlier, interrupted invocations
cost nothing now.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from taxcheck.errors import UserError
from taxcheck.cost.estimate import input_token_bound
from taxcheck.cost.pricing import price_for

MIN_ANSWERS = 5  # answers of a model seen before its output length is trusted
OUTPUT_MARGIN = 1.25
OUTPUT_SLACK = 16


@dataclass(frozen=True)
class Reservation:
    """Money held for one request, and the ``max_tokens`` it must be sent with."""

    amount: float
    max_tokens: int
    reduced: bool = False  # max_tokens is below the run's: keep the answer only if it was not cut


def may_have_been_billed(status: int | None) -> bool:
    """Could the provider bill a request that failed this way? Without an HTTP answer (a
    timeout, a reset mid-body, a body that would not parse) it may have generated the whole
    answer; a gateway's 502/504 too. A rejection (4xx, 429, 529) or a server error it reports
    itself (500, 503) was not processed."""
    return status is None or status in (502, 504)


def plan(free: float, in_flight: int, input_cost: float, output_price: float, max_tokens: int,
         needed_tokens: int | None) -> tuple[str, int]:
    """What to do with one request: ("send", max_tokens to send with), ("wait", 0) or ("stop", 0).

    ``free`` is the budget minus what is spent and reserved; ``output_price`` is USD per
    output token; ``needed_tokens`` the output ceiling the model's answers so far say is
    enough (None before ``MIN_ANSWERS``).
    """
    if input_cost + max_tokens * output_price <= free:
        return ("send", max_tokens)
    if in_flight > 0:
        return ("wait", 0)  # they will settle below their reservations: then look again
    if needed_tokens is not None and output_price > 0 and input_cost < free:
        cap = min(max_tokens - 1, math.floor((free - input_cost) / output_price - 1e-9))  # never on the edge
        if cap >= max(1, needed_tokens):
            return ("send", cap)
    return ("stop", 0)


@dataclass
class Budget:
    max_usd: float
    prices: Sequence[Sequence[Any]] = ()
    spent: float = 0.0
    in_flight: float = 0.0  # reserved by requests not yet settled
    stopped: bool = False
    refused: int = 0  # requests that asked for money and were not sent
    requests: int = 0  # requests settled (their cost is in ``spent``)
    discarded: int = 0  # answers cut by a reduced max_tokens: paid for, not recorded
    charged: int = 0  # failed attempts counted at their bound, in case the provider bills them
    _active: int = 0
    _longest: dict[str, int] = field(default_factory=dict)
    _answers: dict[str, int] = field(default_factory=dict)
    _queue: deque[asyncio.Event] = field(default_factory=deque)
    _price_cache: dict[str, tuple[float, float]] = field(default_factory=dict)

    def check_priced(self, specs: list[str]) -> None:
        missing = [s for s in specs if price_for(s, self.prices) is None]
        if missing:
            raise UserError(
                f"--max-cost needs a price for every model; none known for {', '.join(missing)}. "
                "Give them with --prices FILE or [prices] in taxcheck.toml"
            )

    def _price(self, spec: str) -> tuple[float, float]:
        p = self._price_cache.get(spec)
        if p is None:
            p = price_for(spec, self.prices) or (0.0, 0.0)
            self._price_cache[spec] = p
        return p

    def cost(self, spec: str, input_tokens: int, output_tokens: int) -> float:
        pin, pout = self._price(spec)
        return (input_tokens * pin + output_tokens * pout) / 1_000_000

    def needed_tokens(self, spec: str, max_tokens: int) -> int | None:
        """The output ceiling this model's answers say is enough, once it has given a few."""
        if self._answers.get(spec, 0) < MIN_ANSWERS:
            return None
        return min(max_tokens, math.ceil(self._longest.get(spec, 0) * OUTPUT_MARGIN) + OUTPUT_SLACK)

    @property
    def free(self) -> float:
        return self.max_usd - self.spent - self.in_flight

    @property
    def mean_cost(self) -> float | None:
        """Average settled cost of a request so far (None before the first)."""
        return self.spent / self.requests if self.requests else None

    # ---- the request's side

    async def reserve(self, spec: str, messages: list[dict[str, str]], max_tokens: int) -> Reservation | None:
        """Hold money for one request, waiting for requests in flight to settle if need be;
        None when the budget cannot pay for it (then ``stopped`` is set)."""
        if self.stopped:
            self.refused += 1
            return None
        if not self._queue:  # the common case: nobody waiting, and it fits
            res = self._try(spec, messages, max_tokens)
            if isinstance(res, Reservation) or res == "stop":
                return self._done(res)
        me = asyncio.Event()
        self._queue.append(me)
        try:
            while True:
                if self._queue[0] is me:
                    if self.stopped:
                        return self._done("stop")
                    res = self._try(spec, messages, max_tokens)
                    if isinstance(res, Reservation) or res == "stop":
                        return self._done(res)
                me.clear()
                await me.wait()
        finally:
            if me in self._queue:
                self._queue.remove(me)
            self._nudge()

    def _try(self, spec: str, messages: list[dict[str, str]], max_tokens: int) -> Reservation | str:
        pin, pout = self._price(spec)
        input_cost = input_token_bound(messages) * pin / 1_000_000
        action, cap = plan(self.free, self._active, input_cost, pout / 1_000_000, max_tokens,
                           self.needed_tokens(spec, max_tokens))
        if action != "send":
            return action
        amount = input_cost + cap * pout / 1_000_000
        self.in_flight += amount
        self._active += 1
        return Reservation(amount, cap, reduced=cap < max_tokens)

    def _done(self, res: Reservation | str) -> Reservation | None:
        if isinstance(res, Reservation):
            return res
        self.stopped = True
        self.refused += 1
        return None

    def _nudge(self) -> None:
        """Something changed: let the first waiter look again."""
        if self._queue:
            self._queue[0].set()

    def settle(self, res: Reservation, spec: str, input_tokens: int | None, output_tokens: int | None) -> None:
        """The request was answered: replace its reservation by what it really cost."""
        self._release(res)
        self.requests += 1
        if input_tokens is None and output_tokens is None:
            self.spent += res.amount  # no usage reported: assume the worst
        else:
            self.spent += self.cost(spec, input_tokens or 0, output_tokens or 0)
            if output_tokens is not None and not res.reduced:
                self._answers[spec] = self._answers.get(spec, 0) + 1
                self._longest[spec] = max(self._longest.get(spec, 0), output_tokens)
        self._nudge()

    def discard(self) -> None:
        """A reduced request's answer was cut short: it is not kept, and the budget is done."""
        self.discarded += 1
        self.stopped = True
        self._nudge()

    def release(self, res: Reservation) -> None:
        """The request was turned away unprocessed: its money is free again."""
        self._release(res)
        self._nudge()

    def charge(self, res: Reservation) -> None:
        """The request failed in a way the provider may still bill (``may_have_been_billed``):
        count its whole bound as spent; a retry reserves afresh."""
        self._release(res)
        self.spent += res.amount
        self.charged += 1
        self._nudge()

    def _release(self, res: Reservation) -> None:
        self.in_flight = max(0.0, self.in_flight - res.amount)
        self._active = max(0, self._active - 1)

    # ---- the report's side

    def partial_message(self, calls_not_sent: int, run_file: str) -> str:
        """One line for a run the budget stopped: what was spent, what is left, how to go on."""
        more = ""
        if self.mean_cost is not None and calls_not_sent > 0:
            need = self.mean_cost * calls_not_sent
            more = (f" (about ${need:.4f} more at the average cost so far); rerun with "
                    f"--max-cost {math.ceil((need * 1.1) * 100) / 100:g} -o {run_file} to finish")
        else:
            more = f"; rerun with a higher --max-cost -o {run_file} to continue"
        return (f"--max-cost ${self.max_usd:g} reached: ${self.spent:.4f} spent on {self.requests} requests; "
                f"{calls_not_sent} calls not sent{more}. The table covers what finished.")
