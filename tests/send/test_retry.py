"""The retry policy as pure functions: server hints, backoff windows, what is retryable, when to stop."""

from __future__ import annotations

import random
from email.utils import formatdate

import pytest

from taxcheck.send.retry import (
    BASE_DELAY_S,
    MAX_BACKOFF_S,
    MAX_RETRY_AFTER_S,
    RATE_LIMIT_DEADLINE_S,
    Tries,
    backoff_delay,
    is_rate_limited_status,
    is_retryable_status,
    next_delay,
    retry_after_seconds,
)

NOW = 1_700_000_000.0


@pytest.mark.parametrize(
    "headers, expected",
    [
        (None, None),
        ({}, None),
        ({"retry-after": "1"}, 1.0),
        ({"Retry-After": "2.5"}, 2.5),
        ({"retry-after": " 7 "}, 7.0),
        ({"retry-after": "0"}, 0.0),
        ({"retry-after": "-3"}, None),
        ({"retry-after": "soon"}, None),
        ({"retry-after": ""}, None),
        ({"retry-after-ms": "250"}, 0.25),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),  # the precise one wins
        ({"retry-after-ms": "bogus", "retry-after": "9"}, 9.0),
        ({"retry-after-ms": "-5", "retry-after": "4"}, 4.0),
        ({"retry-after": formatdate(NOW + 30, usegmt=True)}, 30.0),
        ({"retry-after": formatdate(NOW - 30, usegmt=True)}, 0.0),  # a date in the past: go now
        ({"retry-after": "Mon, 99 Foo 2024 99:99:99 GMT"}, None),
        ({"retry-after-ms": "nan", "retry-after": "2"}, 2.0),
    ],
)
def test_retry_after_seconds(headers, expected):
    got = retry_after_seconds(headers, now=NOW)
    assert got == (pytest.approx(expected, abs=1.0) if expected else expected)


@pytest.mark.parametrize("attempt", [1, 2, 3, 4, 6, 10, 50])
def test_backoff_without_hint_is_jittered_exponential_and_capped(attempt):
    window = min(MAX_BACKOFF_S, BASE_DELAY_S * 2 ** (attempt - 1))
    rng = random.Random(attempt)
    delays = [backoff_delay(attempt, None, rng) for _ in range(200)]
    assert all(window / 2 <= d <= window for d in delays)
    assert len(set(delays)) > 100  # jittered: workers do not come back in lockstep


@pytest.mark.parametrize(
    "hint, low, high",
    [
        (0.0, 0.0, 0.02),
        (1.0, 1.0, 1.07),  # a small spread: a second's wait must not become 1.2 s for every call
        (10.0, 10.0, 10.52),
        (MAX_RETRY_AFTER_S, MAX_RETRY_AFTER_S, MAX_RETRY_AFTER_S + 1.0),
    ],
)
def test_backoff_honours_a_sane_server_hint(hint, low, high):
    rng = random.Random(0)
    for attempt in (1, 5):
        d = backoff_delay(attempt, hint, rng)
        assert low <= d <= high


@pytest.mark.parametrize("hint", [MAX_RETRY_AFTER_S + 1, 3600.0, -1.0])
def test_backoff_ignores_an_insane_hint(hint):
    d = backoff_delay(1, hint, random.Random(0))
    assert BASE_DELAY_S / 2 <= d <= BASE_DELAY_S


@pytest.mark.parametrize(
    "status, retryable",
    [(400, False), (401, False), (403, False), (404, False), (422, False), (408, True), (409, True),
     (429, True), (500, True), (502, True), (503, True), (529, True)],
)
def test_retryable_statuses(status, retryable):
    assert is_retryable_status(status) is retryable


@pytest.mark.parametrize("status, limited", [(429, True), (529, True), (500, False), (503, False), (408, False), (None, False)])
def test_rate_limited_statuses(status, limited):
    assert is_rate_limited_status(status) is limited


T0 = 1000.0


@pytest.mark.parametrize(
    "case, tries, rate_limited, hint, retries, now, expected",
    [
        # rate-limited: the server's hint, however many times, while inside the deadline
        ("first 429, hint", Tries(1, 0, T0), True, 1.0, 4, T0 + 0.1, (1.0, 1.07)),
        ("tenth 429 still waits", Tries(10, 0, T0), True, 1.0, 4, T0 + 12.0, (1.0, 1.07)),
        ("429s do not use --retries", Tries(50, 4, T0), True, 1.0, 4, T0 + 60.0, (1.0, 1.07)),
        ("a long hint is honoured", Tries(1, 0, T0), True, 120.0, 4, T0, (120.0, 121.0)),
        ("hint past the deadline", Tries(1, 0, T0), True, RATE_LIMIT_DEADLINE_S + 1, 4, T0, None),
        ("an infinite hint is not waited for", Tries(1, 0, T0), True, float("inf"), 4, T0, None),
        ("deadline reached", Tries(300, 0, T0), True, 1.0, 4, T0 + RATE_LIMIT_DEADLINE_S - 0.5, None),
        ("429 without a hint: backoff", Tries(1, 0, T0), True, None, 4, T0, (BASE_DELAY_S / 2, BASE_DELAY_S)),
        ("429 backoff grows", Tries(4, 0, T0), True, None, 4, T0, (2.0, 4.0)),
        ("429 backoff is capped", Tries(40, 0, T0), True, None, 4, T0, (MAX_BACKOFF_S / 2, MAX_BACKOFF_S)),
        ("--retries 0 means one attempt", Tries(1, 0, T0), True, 1.0, 0, T0, None),
        # other failures: counted
        ("first 500", Tries(0, 1, T0), False, None, 4, T0, (BASE_DELAY_S / 2, BASE_DELAY_S)),
        ("fourth 500", Tries(0, 4, T0), False, None, 4, T0, (2.0, 4.0)),
        ("fifth 500: out of retries", Tries(0, 5, T0), False, None, 4, T0, None),
        ("429s in between do not count", Tries(9, 4, T0), False, None, 4, T0, (2.0, 4.0)),
        ("503 with a sane hint", Tries(0, 1, T0), False, 3.0, 4, T0, (3.0, 3.2)),
        ("503 with an insane hint: backoff", Tries(0, 1, T0), False, 3600.0, 4, T0, (BASE_DELAY_S / 2, BASE_DELAY_S)),
        ("--retries 0", Tries(0, 1, T0), False, None, 0, T0, None),
    ],
)
def test_next_delay(case, tries, rate_limited, hint, retries, now, expected):
    got = next_delay(tries, rate_limited, hint, retries, now, rng=random.Random(1))
    if expected is None:
        assert got is None, case
    else:
        assert got is not None and expected[0] <= got <= expected[1], (case, got)
