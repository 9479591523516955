"""Per-endpoint concurrency that adapts to the provider's rate limits.

Additive increase, multiplicative decrease, as TCP does: a 429 halves the number of
requests allowed in flight, and each success adds ``1/limit``, so the limit climbs back by
about one per round trip of the whole window. The ceiling is ``-j``; the floor is 1.

One burst counts once: every request carries the *generation* of the limit it was sent
under, and only a 429 for a request sent since the last cut cuts again. So 56 rejections
of one over-eager wave halve the limit once, while rejections of requests sent under the
already-halved limit halve it again at once, without waiting for a timer.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque


class AdaptiveLimit:
    def __init__(self, maximum: int, cooldown_s: float = 1.0, ceiling: "RateCeiling | None" = None):
        self.ceiling = ceiling if ceiling is not None else RateCeiling()
        self.maximum = max(1, maximum)
        self.limit = float(self.maximum)
        self.in_flight = 0
        self.cooldown_s = cooldown_s
        self._last_cut = 0.0
        self._waiters: list[asyncio.Future[None]] = []
        self.decreases = 0
        self.generation = 0
        self._ok_in_flight = 0

    async def acquire(self) -> int:
        """Wait for a slot; returns the generation to pass back to ``on_rate_limited``."""
        while self.in_flight >= int(self.limit):
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(fut)
            try:
                await fut
            finally:
                if fut in self._waiters:
                    self._waiters.remove(fut)
        self.in_flight += 1
        return self.generation

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
        # how many were in flight when a request got through: a direct reading of what
        # the server is taking right now (its 429s come back fast, its answers do not)
        self._ok_in_flight = max(self._ok_in_flight, self.in_flight + 1)
        if self.limit < self.maximum:
            self.limit = min(float(self.maximum), self.limit + 1.0 / self.limit)
            self._wake()

    def on_rate_limited(self, generation: int | None = None) -> None:
        """Halve the limit, once per generation (or, without one, once per cool-down)."""
        now = time.monotonic()
        if generation is not None:
            if generation != self.generation:
                return  # sent before the last cut: that cut already answered it
        elif now - self._last_cut < self.cooldown_s:
            return
        self._last_cut = now
        self.generation += 1
        # halve, but never below what demonstrably got through since the last cut
        self.limit = max(1.0, min(self.limit, max(self.limit / 2, float(self._ok_in_flight))))
        if self._ok_in_flight >= self.limit:
            self.limit = max(1.0, self.limit - 1)  # at the edge: step just under it
        self._ok_in_flight = 0
        self.decreases += 1


class RateCeiling:
    """Client-side requests-per-minute and tokens-per-minute ceilings (``--rpm``/``--tpm``),
    plus pauses the provider asks for through its rate-limit headers.

    A sliding 60 s window of what was started; ``acquire`` waits until one more request
    (and its estimated tokens) fits. Headers that say nothing is left
    (``x-ratelimit-remaining-requests: 0``, ``anthropic-ratelimit-tokens-remaining: 0``)
    pause the endpoint until the reset they announce, so we wait instead of collecting 429s.
    """

    WINDOW_S = 60.0
    MAX_PAUSE_S = 60.0

    def __init__(self, rpm: int | None = None, tpm: int | None = None):
        self.rpm = rpm
        self.tpm = tpm
        self._starts: deque[tuple[float, int]] = deque()  # (monotonic time, tokens)
        self._paused_until = 0.0
        self._lock = asyncio.Lock()

    @property
    def active(self) -> bool:
        return self.rpm is not None or self.tpm is not None or self._paused_until > 0

    async def acquire(self, tokens: int = 0) -> None:
        if not self.active:  # the common case costs nothing
            return
        async with self._lock:  # one waiter at a time keeps the window arithmetic simple
            while True:
                now = time.monotonic()
                if now < self._paused_until:
                    await asyncio.sleep(self._paused_until - now)
                    continue
                cutoff = now - self.WINDOW_S
                while self._starts and self._starts[0][0] <= cutoff:
                    self._starts.popleft()
                wait = 0.0
                if self.rpm is not None and len(self._starts) >= self.rpm:
                    wait = max(wait, self._starts[len(self._starts) - self.rpm][0] - cutoff)
                if self.tpm is not None and self._starts:
                    used = sum(t for _, t in self._starts)
                    if used + tokens > self.tpm:
                        # wait until enough of the window has slid out
                        freed, i = used + tokens - self.tpm, 0
                        acc = 0
                        while i < len(self._starts) and acc < freed:
                            acc += self._starts[i][1]
                            i += 1
                        wait = max(wait, self._starts[i - 1][0] - cutoff)
                if wait <= 0:
                    if self.rpm is not None or self.tpm is not None:
                        self._starts.append((now, tokens))
                    return
                await asyncio.sleep(min(wait, self.WINDOW_S))

    def observe(self, headers: dict[str, str] | None) -> None:
        """Pause when the provider says a quota is exhausted until it resets."""
        if not headers:
            return
        pause = 0.0
        for kind in ("requests", "tokens", "input-tokens", "output-tokens"):
            remaining = headers.get(f"x-ratelimit-remaining-{kind}") or headers.get(f"anthropic-ratelimit-{kind}-remaining")
            if remaining is None or remaining.strip() not in ("0", "0.0"):
                continue
            reset = headers.get(f"x-ratelimit-reset-{kind}") or headers.get(f"anthropic-ratelimit-{kind}-reset")
            pause = max(pause, parse_reset(reset) if reset else 1.0)
        if pause > 0:
            self._paused_until = max(self._paused_until, time.monotonic() + min(pause, self.MAX_PAUSE_S))


def parse_reset(value: str) -> float:
    """Seconds until a quota resets: OpenAI's ``1m30s`` / ``250ms`` / ``2``, or Anthropic's RFC 3339 time."""
    import re
    from datetime import datetime, timezone

    v = value.strip()
    try:
        return max(0.0, float(v))
    except ValueError:
        pass
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", v)
    if parts and "".join(n + u for n, u in parts) == v.replace(" ", ""):
        scale = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
        return sum(float(n) * scale[u] for n, u in parts)
    try:
        when = datetime.fromisoformat(v.replace("Z", "+00:00"))
    except ValueError:
        return 1.0
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())
