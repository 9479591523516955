"""The retry policy as pure functions: server hints, backoff windows, what is retryable."""

from __future__ import annotations

import random
from email.utils import formatdate

import pytest

from taxcheck.retry import BASE_DELAY_S, MAX_BACKOFF_S, MAX_RETRY_AFTER_S, backoff_delay, is_retryable_status, retry_after_seconds

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
        (0.0, 0.0, 0.1),
        (1.0, 1.0, 1.2),
        (10.0, 10.0, 11.0),
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
