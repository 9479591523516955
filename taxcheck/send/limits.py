"""Per-endpoint rate control: how many requests may be in flight, and when the next may go.

Providers limit in three shapes, and each leaves its own trace:

* **a concurrency cap** (a gateway or a local server that takes N at a time): 429s whose
  rate rises with the number of requests in flight. Answer: a smaller window.
* **noise** (an overloaded provider turning away a share of requests whatever the load:
  OpenAI's "engine overloaded" 429s, Anthropic's 529 ``overloaded_error``): a 429 rate
  that does not fall when concurrency falls. Answer: keep the window and let each
  rejected request wait its own Retry-After (``retry.py``). Cutting the window only slows
  the run: additive-increase/multiplicative-decrease reads noise as congestion and ends
  at about 3 in flight.
* **a bucket** (requests or tokens per minute) that the provider announces in every
  response: OpenAI ``x-ratelimit-{limit,remaining,reset}-{requests,tokens}``, Anthropic
  ``anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-{limit,remaining,reset}``.
  Answer: pace. Providers count rejected requests against the bucket, so finding it by
  collecting 429s costs throughput; the headers say where it stands, so send when it
  holds enough.

**Congestion or noise.** Every request records its *level*: how many requests were on
the wire, itself included, when it was sent. Because a window fills one request at a
time and refills as answers land, levels spread over the whole range, so recent outcomes
are a natural experiment, and ``classify`` reads it when a request is rate-limited:

* congestion, when some split below the rejected request's level separates levels that
  mostly get through from levels limited clearly more often (at least ``GAP`` more, and
  ``Z_MIN`` standard errors apart). The split with the strongest contrast is the cap, and
  the window becomes the cap. Near a cap the contrast is blurred (a request sent as the
  ninth may find the server already done with one of the eight), which is why the test
  is statistical and not "everything above fails".
* noise, when there is no such split and a fair share (``NOISE_THROUGH``) of requests sent
  that high got through anyway. The window stays; a cut made while guessing is undone.
* unknown, otherwise (too few outcomes, or everything that high was turned away, as when
  a cap's lower side has not answered yet): the window is halved once per generation (a
  wave of 56 rejections cuts once), never below a level that demonstrably got through,
  unless the last clear reading was noise.

The window creeps back up by one every ``PROBE_RTTS`` round trips, so a raised cap is
found again at the cost of an occasional probe.

**Buckets.** A reading (limit, remaining, seconds until full) is a snapshot of the
server's bucket when the request that carried it was admitted. ``Bucket`` keeps the
latest snapshot (by send order, not arrival order), learns the refill rate from
``(limit - remaining) / reset`` (time-to-full, both providers' meaning), and predicts what
is available now: the snapshot plus refill since its answer arrived (not since the
unknown moment of admission: the safe side, by one round trip's refill), minus the cost
of every request sent after it. Each new answer corrects the prediction, so an estimated
cost only has to be right for the few requests in flight. Before the first answer of a model nothing is
known, so its first request goes alone (for at most ``PROBE_WAIT_S``) instead of a blind
burst into a small bucket.

The decisions are pure (``read_headers``, ``classify``, ``Window``, ``Bucket.wait_s``,
``RateCeiling.wait_s``: time is passed in); ``AdaptiveLimit`` is the thin async shell
that waits on them.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from taxcheck.send.retry import is_rate_limited_status

KINDS = ("requests", "tokens", "input-tokens", "output-tokens")
N_MIN = 4  # outcomes needed on each side of a split before it means anything
GAP = 0.25  # 429 rate above a congestion split exceeds the rate below by at least this
Z_MIN = 4.0  # and the difference is this many standard errors
NOISE_THROUGH = 0.2  # noise: at least this share of requests sent as high got through anyway
HORIZON = 256  # outcomes remembered for classify
SENT_MEMORY = 4096  # sends remembered per model for the buckets' arithmetic
PROBE_RTTS = 4.0  # the window grows by one every this many round trips of successes
PROBE_WAIT_S = 2.0  # how long a model's other requests wait for its first answer's headers
READING_HOLD_S = 60.0  # the longest one bucket reading may hold sends back
WORKERS_PER_SLOT = 4  # senders per window slot that keep the window full (``AdaptiveLimit.workers``)


# --------------------------------------------------------------------------- headers


@dataclass(frozen=True)
class Reading:
    """One bucket as a response describes it: capacity, what is left, seconds until full."""

    kind: str
    limit: float
    remaining: float
    reset_s: float | None


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        x = float(value.strip())
    except ValueError:
        return None
    return x if math.isfinite(x) else None


def read_headers(headers: Mapping[str, str] | None) -> list[Reading]:
    """Every bucket the headers announce (both providers' names; keys lower-case)."""
    if not headers:
        return []
    out = []
    for kind in KINDS:
        for limit_h, remaining_h, reset_h in (
            (f"x-ratelimit-limit-{kind}", f"x-ratelimit-remaining-{kind}", f"x-ratelimit-reset-{kind}"),
            (f"anthropic-ratelimit-{kind}-limit", f"anthropic-ratelimit-{kind}-remaining", f"anthropic-ratelimit-{kind}-reset"),
        ):
            remaining = _number(headers.get(remaining_h))
            if remaining is None:
                continue
            limit = _number(headers.get(limit_h))
            reset = headers.get(reset_h)
            out.append(Reading(kind, limit if limit and limit > 0 else max(remaining, 1.0), remaining,
                               parse_reset(reset) if reset else None))
            break
    return out


def parse_reset(value: str) -> float:
    """Seconds until a quota resets: OpenAI's ``1m30s`` / ``250ms`` / ``2``, or Anthropic's RFC 3339 time."""
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


def exhausted(readings: Iterable[Reading], cost: Mapping[str, float]) -> bool:
    """Does some announced bucket hold less than this request costs? (Then a 429 is the
    bucket's doing, for the pacer to answer, not a sign of congestion.)"""
    return any(r.remaining < max(1.0, cost.get(r.kind, 0.0)) for r in readings if cost.get(r.kind, 0.0) > 0)


# --------------------------------------------------------------------------- congestion or noise


@dataclass(frozen=True)
class Verdict:
    kind: str  # "congestion" | "noise" | "unknown"
    cap: int | None = None  # congestion: the highest level that gets through


UNKNOWN = Verdict("unknown")
NOISE = Verdict("noise")


def _z(k1: int, n1: int, k2: int, n2: int) -> float:
    """Pooled two-proportion z of k1/n1 above k2/n2 (large when the first is clearly higher)."""
    p = (k1 + k2) / (n1 + n2)
    se = math.sqrt(p * (1 - p) * (1 / n1 + 1 / n2))
    return math.inf if se == 0 else (k1 / n1 - k2 / n2) / se


def classify(outcomes: Iterable[tuple[int, bool]], level: int) -> Verdict:
    """Why was a request sent at ``level`` rate-limited, given recent (level, limited) outcomes?

    Congestion when some split below ``level`` separates requests that mostly got through
    from requests limited at least ``GAP`` more often, ``Z_MIN`` standard errors apart; the
    cap is the split with the strongest contrast. Noise when there is no such split and a
    fair share (``NOISE_THROUGH``) of the requests sent at or above ``level`` got through
    all the same: the limit does not care how many are in flight.
    Otherwise unknown: too few outcomes, or everything that high was turned away (a cap
    whose lower side has not answered yet looks exactly like that).
    """
    n: dict[int, int] = {}
    k: dict[int, int] = {}
    for lvl, limited in outcomes:
        n[lvl] = n.get(lvl, 0) + 1
        k[lvl] = k.get(lvl, 0) + int(limited)
    total_n, total_k = sum(n.values()), sum(k.values())
    best: tuple[float, int] | None = None
    below_n = below_k = 0
    for split in sorted(n):
        if split >= level:
            break
        below_n += n[split]
        below_k += k[split]
        above_n, above_k = total_n - below_n, total_k - below_k
        if above_n < N_MIN or below_n < N_MIN or below_k / below_n > 1 - GAP:
            continue
        if above_k / above_n - below_k / below_n >= GAP:
            z = _z(above_k, above_n, below_k, below_n)
            if z >= Z_MIN and (best is None or z > best[0]):
                best = (z, split)
    if best is not None:
        return Verdict("congestion", best[1])
    hi_n = sum(c for lvl, c in n.items() if lvl >= level)
    hi_k = sum(c for lvl, c in k.items() if lvl >= level)
    if hi_n >= N_MIN and (hi_n - hi_k) / hi_n >= NOISE_THROUGH:
        return NOISE
    return UNKNOWN


@dataclass
class Window:
    """How many requests may be in flight: the decisions, with no clock and no waiting."""

    maximum: int
    limit: float = 0.0
    generation: int = 0
    cuts: int = 0
    outcomes: deque[tuple[int, bool]] = field(default_factory=lambda: deque(maxlen=HORIZON))
    last: Verdict = UNKNOWN  # the last verdict that was not unknown
    guessed_from: float | None = None  # the limit before cuts made on unknown verdicts

    def __post_init__(self) -> None:
        self.maximum = max(1, self.maximum)
        self.limit = float(self.maximum) if self.limit <= 0 else self.limit

    @property
    def size(self) -> int:
        return max(1, int(self.limit))

    def _got_through(self) -> int:
        return max((lvl for lvl, limited in self.outcomes if not limited), default=0)

    def on_success(self, level: int) -> None:
        self.outcomes.append((level, False))
        if self.guessed_from is not None and level > self.limit:
            # a guess cut below what is now seen to get through: undo that much of it
            self.limit = min(float(level), self.guessed_from)
        elif self.limit < self.maximum:
            self.limit = min(float(self.maximum), self.limit + 1.0 / (self.limit * PROBE_RTTS))

    def on_limited(self, level: int, generation: int) -> Verdict:
        """A request sent at ``level`` under ``generation`` was rate-limited: resize."""
        self.outcomes.append((level, True))
        verdict = classify(self.outcomes, level)
        if verdict.kind == "congestion":
            assert verdict.cap is not None
            new = float(max(1, min(self.maximum, verdict.cap)))
            if new < self.limit:
                self.generation += 1
                self.cuts += 1
            self.limit = new
            self.guessed_from = None
        elif verdict.kind == "noise":  # the window did not cause it: undo what guessing took
            if self.guessed_from is not None:
                self.limit = max(self.limit, self.guessed_from)
                self.guessed_from = None
        elif self.last.kind == "noise":
            pass  # too few outcomes this high yet; the last clear reading said noise
        elif generation == self.generation:  # unknown: halve, once per generation
            if self.guessed_from is None:
                self.guessed_from = self.limit
            self.generation += 1
            self.cuts += 1
            self.limit = max(1.0, min(self.limit, max(self.limit / 2, float(self._got_through()))))
        if verdict.kind != "unknown":
            self.last = verdict
        return verdict


# --------------------------------------------------------------------------- buckets


@dataclass
class Bucket:
    """The provider's bucket of one kind for one model, as its headers describe it."""

    kind: str
    limit: float = 0.0
    remaining: float = 0.0
    observed_at: float = 0.0  # when the answer carrying the reading arrived
    seq: int = -1  # that request's send order
    _deficit: float = 0.0  # decayed sums for the refill rate
    _reset: float = 0.0

    @property
    def rate(self) -> float:
        """Refill per second: learned from time-to-full readings, else the per-minute prior."""
        if self._reset > 0 and self._deficit > 0:
            return self._deficit / self._reset
        return self.limit / 60.0

    def observe(self, reading: Reading, seq: int, at: float) -> bool:
        """Take a reading if it is newer (by send order) than the one held.

        ``at`` is when the answer carrying it arrived. The server took the reading earlier,
        when it admitted the request, but exactly when is unknown (the SDK and the network
        stand between our send and its arrival), so no refill is credited before the
        answer: the prediction stays on the safe side by the refill of one round trip, a
        constant margin, not a cumulative loss.
        """
        if reading.reset_s is not None and reading.reset_s > 0 and reading.remaining < reading.limit:
            self._deficit = 0.9 * self._deficit + (reading.limit - reading.remaining)
            self._reset = 0.9 * self._reset + reading.reset_s
        if seq < self.seq:
            return False
        self.limit, self.remaining, self.observed_at, self.seq = reading.limit, reading.remaining, at, seq
        return True

    def available(self, now: float, pending: float) -> float:
        """What the bucket holds now: the reading, plus refill since, minus what was sent after it."""
        refilled = min(self.limit, self.remaining + self.rate * max(0.0, now - self.observed_at))
        return refilled - pending

    def wait_s(self, now: float, cost: float, pending: float) -> float:
        """Seconds until ``cost`` fits with one more such request (or 2 % of the bucket) to
        spare: requests sent together can reach the server in another order than they left,
        so a reading may not yet count one sent just before it. A constant spare costs
        nothing in the long run (the refill rate is the same); one request too many costs a
        429 that the provider counts."""
        if cost <= 0:
            return 0.0
        need = min(self.limit, cost + max(cost, 0.02 * self.limit))
        short = need - self.available(now, pending)
        if short <= 0:
            return 0.0
        rate = self.rate
        wait = math.inf if rate <= 0 else short / rate
        # A reading holds sends back for at most READING_HOLD_S: one that says "wait a year"
        # (a broken header, a daily quota) would otherwise stop the run with nothing sent and
        # so nothing to correct it. After that a request goes, and its answer (or its 429's
        # Retry-After) is the next reading.
        return min(wait, max(0.0, self.observed_at + READING_HOLD_S - now))


def costs(input_tokens: int, output_tokens: int) -> dict[str, float]:
    """What one request takes from each kind of bucket. OpenAI counts ``max_tokens`` against
    its token bucket when the request is admitted; Anthropic's output bucket likewise."""
    return {"requests": 1.0, "tokens": float(input_tokens + output_tokens),
            "input-tokens": float(input_tokens), "output-tokens": float(output_tokens)}


@dataclass
class Pacer:
    """The buckets of one model, and what was sent since their readings."""

    buckets: dict[str, Bucket] = field(default_factory=dict)
    sent: deque[tuple[int, dict[str, float]]] = field(default_factory=deque)
    probe: str = "none"  # "none" | "out" (first request in flight) | "done"
    probe_done: asyncio.Event | None = None
    lock: asyncio.Lock | None = None

    def pending(self, kind: str, after: int) -> float:
        return sum(c.get(kind, 0.0) for seq, c in self.sent if seq > after)

    def wait_s(self, now: float, cost: Mapping[str, float]) -> float:
        return max((b.wait_s(now, cost.get(kind, 0.0), self.pending(kind, b.seq)) for kind, b in self.buckets.items()),
                   default=0.0)

    def observe(self, readings: Iterable[Reading], seq: int, at: float) -> None:
        for r in readings:
            self.buckets.setdefault(r.kind, Bucket(r.kind)).observe(r, seq, at)
        if self.buckets:  # forget sends every bucket has seen past
            oldest = min(b.seq for b in self.buckets.values())
            while self.sent and self.sent[0][0] <= oldest:
                self.sent.popleft()
        while len(self.sent) > SENT_MEMORY:  # a model without buckets: keep memory flat
            self.sent.popleft()


# --------------------------------------------------------------------------- --rpm / --tpm


class RateCeiling:
    """Client-side requests-per-minute and tokens-per-minute ceilings (``--rpm``/``--tpm``).

    A sliding 60 s window of what was started: at most ``rpm`` starts and ``tpm``
    estimated tokens in any 60 s, exactly what the flags promise.
    """

    WINDOW_S = 60.0

    def __init__(self, rpm: int | None = None, tpm: int | None = None):
        self.rpm = rpm
        self.tpm = tpm
        self._starts: deque[tuple[float, int]] = deque()  # (monotonic time, tokens)

    @property
    def active(self) -> bool:
        return self.rpm is not None or self.tpm is not None

    def wait_s(self, now: float, tokens: int = 0) -> float:
        """Seconds until one more start of ``tokens`` fits in the window."""
        cutoff = now - self.WINDOW_S
        while self._starts and self._starts[0][0] <= cutoff:
            self._starts.popleft()
        wait = 0.0
        if self.rpm is not None and len(self._starts) >= self.rpm:
            wait = max(wait, self._starts[len(self._starts) - self.rpm][0] - cutoff)
        if self.tpm is not None and self._starts:
            used = sum(t for _, t in self._starts)
            if used + tokens > self.tpm:  # wait until enough of the window has slid out
                excess, acc, i = used + tokens - self.tpm, 0, 0
                while i < len(self._starts) and acc < excess:
                    acc += self._starts[i][1]
                    i += 1
                wait = max(wait, self._starts[i - 1][0] - cutoff)
        return wait

    def record(self, now: float, tokens: int = 0) -> None:
        if self.active:
            self._starts.append((now, tokens))


# --------------------------------------------------------------------------- the async shell


@dataclass
class Ticket:
    """One request on the wire: what ``finish`` needs to learn from its outcome."""

    key: str
    level: int
    generation: int
    seq: int
    sent_at: float
    cost: dict[str, float]
    probe: bool = False


@dataclass
class LimitStats:
    sent: int = 0
    limited: int = 0  # 429/529 answers
    bucket_limited: int = 0  # of which a bucket announced in the headers explains
    paced: int = 0  # sends delayed to fit a bucket or a ceiling


class AdaptiveLimit:
    """One endpoint's rate controller: a window, the models' buckets, the user's ceilings.

    ``acquire`` waits for a slot in the window, then for the ceilings and buckets to allow
    the request, and returns a ``Ticket``; ``finish`` takes the outcome (HTTP status, or
    None for a failure that never got an answer, and the rate-limit headers) and frees the
    slot.
    """

    def __init__(self, maximum: int, ceiling: RateCeiling | None = None):
        self.window = Window(maximum)
        self.ceiling = ceiling if ceiling is not None else RateCeiling()
        self.in_flight = 0  # slots held: waiting for a bucket, or on the wire
        self.on_wire = 0
        self.stats = LimitStats()
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._pacers: dict[str, Pacer] = {}
        self._seq = 0

    @property
    def limit(self) -> float:
        return self.window.limit

    @property
    def maximum(self) -> int:
        return self.window.maximum

    @property
    def workers(self) -> int:
        """How many concurrent senders keep this window full. A call waiting out its
        Retry-After holds its sender but no slot, so with one sender per slot a 20 % 429
        rate with 1 s waits and 0.2 s answers leaves most of the window empty; the extra
        senders just queue for slots."""
        return self.window.maximum * WORKERS_PER_SLOT

    async def acquire(self, key: str = "", cost: Mapping[str, float] | None = None, *, retry: bool = False) -> Ticket:
        """A slot for one attempt. A ``retry`` (a call that already waited out a Retry-After or
        a backoff) goes to the head of the queue: the server scheduled it, and sending it
        behind every fresh call would push all such waits into the run's tail."""
        cost = dict(cost) if cost is not None else costs(0, 0)
        await self._slot(retry)
        try:
            pacer = self._pacers.get(key)
            if pacer is None:
                pacer = self._pacers[key] = Pacer()
            probe = await self._pace(pacer, cost)
        except BaseException:
            self.in_flight -= 1
            self._wake()
            raise
        self._seq += 1
        self.on_wire += 1
        self.stats.sent += 1
        pacer.sent.append((self._seq, cost))
        return Ticket(key, self.on_wire, self.window.generation, self._seq, time.monotonic(), cost, probe)

    def finish(self, ticket: Ticket, status: int | None, headers: Mapping[str, str] | None = None) -> None:
        """The request is over: learn from how (``status`` 200 for an answer)."""
        self.on_wire -= 1
        self.in_flight -= 1
        pacer = self._pacers.get(ticket.key)
        readings = read_headers(headers)
        if pacer is not None:
            pacer.observe(readings, ticket.seq, time.monotonic())
            if ticket.probe:
                pacer.probe = "done"
                if pacer.probe_done is not None:
                    pacer.probe_done.set()
        if status is not None and is_rate_limited_status(status):
            self.stats.limited += 1
            if exhausted(readings, ticket.cost):
                self.stats.bucket_limited += 1  # the pacer has the reading; the window is not at fault
            else:
                self.window.on_limited(ticket.level, ticket.generation)
        elif status is not None and status < 500:
            self.window.on_success(ticket.level)
        self._wake()

    # ---- waiting

    async def _slot(self, first: bool = False) -> None:
        """Take a slot, or queue for one (``first``: at the head). ``_wake`` counts the slot
        for a waiter before waking it, so no newcomer can take it in between and send the
        waiter back to the end of the queue."""
        if self.in_flight < self.window.size and not self._waiters:
            self.in_flight += 1
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if first:
            self._waiters.appendleft(fut)
        else:
            self._waiters.append(fut)
        try:
            await fut
        except BaseException:
            if fut in self._waiters:
                self._waiters.remove(fut)
            elif fut.done() and not fut.cancelled():  # handed a slot, then cancelled: give it back
                self.in_flight -= 1
                self._wake()
            raise

    def _wake(self) -> None:
        while self.in_flight < self.window.size and self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                self.in_flight += 1
                fut.set_result(None)

    async def _pace(self, pacer: Pacer, cost: Mapping[str, float]) -> bool:
        """Wait until the model's buckets and the user's ceilings allow the request, and
        record it against the ceilings; True if it goes as the model's probe."""
        probe = pacer.probe == "none"
        if probe:
            pacer.probe = "out"
            pacer.probe_done = asyncio.Event()
        if pacer.lock is None:
            pacer.lock = asyncio.Lock()
        tokens = int(cost.get("tokens", 0))
        async with pacer.lock:  # first come, first served: no herd on each refill
            if not probe and pacer.probe == "out" and pacer.probe_done is not None:
                try:
                    await asyncio.wait_for(pacer.probe_done.wait(), PROBE_WAIT_S)
                except TimeoutError:
                    pass
                pacer.probe = "done"
            delayed = False
            while True:
                now = time.monotonic()
                wait = max(pacer.wait_s(now, cost), self.ceiling.wait_s(now, tokens) if self.ceiling.active else 0.0)
                if wait <= 0:
                    break
                delayed = True
                await asyncio.sleep(min(wait, 5.0))  # a new reading may change the answer
            self.ceiling.record(time.monotonic(), tokens)  # the start, as close to the send as it gets
            if delayed:
                self.stats.paced += 1
        return probe
