"""The one retry policy of a run: which failures to retry and how long to wait.

The SDKs' own retries are switched off (``max_retries=0``) so that this module alone
decides. The ladder follows the providers' guidance: honour the server's
``retry-after-ms`` / ``Retry-After`` up to a cap, otherwise exponential backoff with full
jitter, so that many workers hitting one 429 do not come back in lockstep.
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Mapping

BASE_DELAY_S = 0.5
MAX_BACKOFF_S = 20.0
MAX_RETRY_AFTER_S = 60.0


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


def backoff_delay(attempt: int, retry_after: float | None, rng: random.Random | None = None) -> float:
    """Seconds to wait before retry number ``attempt`` (1 for the first retry).

    A server hint wins when it is sane (0..MAX_RETRY_AFTER_S); a little jitter is added
    so that workers released by the same hint spread out. Otherwise full jitter over an
    exponentially growing window.
    """
    r = rng or random
    if retry_after is not None and 0 <= retry_after <= MAX_RETRY_AFTER_S:
        return retry_after + r.uniform(0, min(1.0, 0.1 + retry_after * 0.1))
    window = min(MAX_BACKOFF_S, BASE_DELAY_S * (2 ** max(0, attempt - 1)))
    return r.uniform(window / 2, window)


def is_retryable_status(status: int) -> bool:
    """408, 409, 429 and 5xx are worth another try; 400/401/403/404/422 never are."""
    return status in (408, 409, 429) or status >= 500
