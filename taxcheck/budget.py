"""``--max-cost``: stop sending before the money runs out, not after.

Every request reserves its worst case (estimated input tokens plus the whole
``--max-tokens`` of output) before it is sent, and settles to its real cost when it
returns. A request whose reservation would take spent + in flight past the budget is not
sent; what finished is kept and reported, and the run exits 4. The budget covers this
invocation: calls recorded by earlier, interrupted invocations cost nothing now.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from taxcheck.errors import UserError
from taxcheck.estimate import estimate_tokens
from taxcheck.pricing import price_for


@dataclass
class Budget:
    max_usd: float
    prices: Sequence[Sequence[Any]] = ()
    spent: float = 0.0
    in_flight: float = 0.0
    stopped: bool = False
    refused: int = 0
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

    def reserve(self, spec: str, messages: list[dict[str, str]], max_tokens: int) -> float | None:
        """The reserved amount, or None when sending would risk passing the budget."""
        worst = self.cost(spec, estimate_tokens(messages), max_tokens)
        if self.spent + self.in_flight + worst > self.max_usd:
            self.stopped = True
            self.refused += 1
            return None
        self.in_flight += worst
        return worst

    def settle(self, reserved: float, spec: str, input_tokens: int | None, output_tokens: int | None) -> None:
        self.in_flight = max(0.0, self.in_flight - reserved)
        if input_tokens is None and output_tokens is None:
            self.spent += reserved  # no usage reported: assume the worst
        else:
            self.spent += self.cost(spec, input_tokens or 0, output_tokens or 0)

    def release(self, reserved: float) -> None:
        self.in_flight = max(0.0, self.in_flight - reserved)
