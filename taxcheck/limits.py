"""Per-endpoint concurrency that adapts to the provider's rate limits.

Additive increase, multiplicative decrease, as TCP does: a 429 halves the number of
requests allowed in flight (at most once per cool-down, so one burst of 429s from the
same moment counts once), and each success adds ``1/limit``, so the limit climbs back by
about one per round trip of the whole window. The ceiling is ``-j``; the floor is 1.
"""

from __future__ import annotations

import asyncio
import time


class AdaptiveLimit:
    def __init__(self, maximum: int, cooldown_s: float = 1.0):
        self.maximum = max(1, maximum)
        self.limit = float(self.maximum)
        self.in_flight = 0
        self.cooldown_s = cooldown_s
        self._last_cut = 0.0
        self._waiters: list[asyncio.Future[None]] = []
        self.decreases = 0

    async def acquire(self) -> None:
        while self.in_flight >= int(self.limit):
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(fut)
            try:
                await fut
            finally:
                if fut in self._waiters:
                    self._waiters.remove(fut)
        self.in_flight += 1

    def release(self) -> None:
        self.in_flight -= 1
        self._wake()

    def _wake(self) -> None:
        free = int(self.limit) - self.in_flight
        while free > 0 and self._waiters:
            fut = self._waiters.pop(0)
            if not fut.done():
                fut.set_result(None)
                free -= 1

    def on_success(self) -> None:
        if self.limit < self.maximum:
            self.limit = min(float(self.maximum), self.limit + 1.0 / self.limit)
            self._wake()

    def on_rate_limited(self) -> None:
        now = time.monotonic()
        if now - self._last_cut >= self.cooldown_s:
            self._last_cut = now
            self.limit = max(1.0, self.limit / 2)
            self.decreases += 1
