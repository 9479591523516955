"""The one retry policy of a run: which failures to retry, how long to wait, when to stop.

The SDKs' own retries are switched off (``max_retries=0``) so that this module alone
decides. The ladder follows the providers' guidance: honour the server's
``retry-after-ms`` / ``Retry-After``, otherwise exponential backoff with full jitter, so
that many workers hitting one 429 do not come back in lockstep.

Two kinds of failure are bounded differently:

* **Rate-limited** (429, and Anthropic's 529 ``overloaded_error``): the server is
  scheduling the request, not failing it. Its ``Retry-After`` is honoured however long
  it is, and the retries are bounded by *time* (``RATE_LIMIT_DEADLINE_S`` from the call's
  first refusal), not by ``--retries``: a provider that turns away 20 % of requests must
  not cost a call after four unlucky draws. ``--retries 0`` still means one attempt.
* **Everything else retryable** (408, 409, 5xx, timeouts, resets, malformed bodies):
  at most ``--retries`` retries, a server hint capped at ``MAX_RETRY_AFTER_S``.
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass

BASE_DELAY_S = 0.5
MAX_BACKOFF_S = 20.0
MAX_RETRY_AFTER_S = 60.0
RATE_LIMIT_DEADLINE_S = 600.0
"""How long one call may keep being rate-limited before it is recorded as failed."""
RATE_LIMITED_STATUSES = (429, 529)


def retry_after_seconds(headers: Mapping[str, str] | None, now: float | None = None) -> float | None:
    """The server's requested wait, from ``retry-after-ms`` or ``Retry-After`` (seconds or HTTP date)."""
    if not headers:
        return None
    get = headers.get
    ms = get("retry-after-ms") or get("Retry-After-Ms")
    if ms:
        try:
            value = float(ms) / 1000.0
            if value >= 0:
                return value
        except ValueError:
            pass
    raw = get("retry-after") or get("Retry-After")
    if not raw:
        return None
    raw = raw.strip()
    try:
        value = float(raw)
        return value if value >= 0 else None
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _hint_jitter(hint: float, r: random.Random | type[random]) -> float:
    """A little spread after a server hint (at most 5 % + 20 ms, never over 1 s): enough that
    workers released by one hint do not arrive in the same millisecond, small enough not to
    stretch the tail of a run whose calls each wait a second."""
    return r.uniform(0, min(1.0, 0.02 + hint * 0.05))


def backoff_delay(attempt: int, retry_after: float | None, rng: random.Random | None = None) -> float:
    """Seconds to wait before retry number ``attempt`` (1 for the first retry).

    A server hint wins when it is sane (0..MAX_RETRY_AFTER_S); a little jitter is added
    so that workers released by the same hint spread out. Otherwise full jitter over an
    exponentially growing window.
    """
    r = rng or random
    if retry_after is not None and 0 <= retry_after <= MAX_RETRY_AFTER_S:
        return retry_after + _hint_jitter(retry_after, r)
    window = min(MAX_BACKOFF_S, BASE_DELAY_S * (2 ** max(0, attempt - 1)))
    return r.uniform(window / 2, window)


def is_retryable_status(status: int) -> bool:
    """408, 409, 429 and 5xx are worth another try; 400/401/403/404/422 never are."""
    return status in (408, 409, 429) or status >= 500


def is_rate_limited_status(status: int | None) -> bool:
    """429 and 529: the server asks us to come back later, it has not failed the request."""
    return status in RATE_LIMITED_STATUSES


@dataclass
class Tries:
    """How one call's attempts have gone so far, for ``next_delay``."""

    rate_limited: int = 0  # attempts that ended rate-limited
    other: int = 0  # attempts that ended in any other retryable failure
    first_at: float = 0.0  # time.monotonic() of the first rate-limited answer


def next_delay(
    tries: Tries,
    rate_limited: bool,
    retry_after: float | None,
    retries: int,
    now: float,
    deadline_s: float = RATE_LIMIT_DEADLINE_S,
    rng: random.Random | None = None,
) -> float | None:
    """Seconds to wait before the next attempt, or None to give up; ``tries`` already counts
    the attempt that just failed.

    Rate-limited attempts wait as long as the server asks (or back off exponentially when
    it does not say) while the call stays inside its deadline; they never use up
    ``retries``. Other failures get ``retries`` retries. ``retries == 0`` means no retry.
    """
    if retries <= 0:
        return None
    r = rng or random
    if rate_limited:
        if retry_after is not None and retry_after >= 0:
            delay = retry_after + _hint_jitter(retry_after, r)
        else:
            window = min(MAX_BACKOFF_S, BASE_DELAY_S * (2 ** max(0, tries.rate_limited - 1)))
            delay = r.uniform(window / 2, window)
        if now - tries.first_at + delay > deadline_s:
            return None
        return delay
    if tries.other > retries:
        return None
    return backoff_delay(tries.other, retry_after, r)
