"""The rate controller: header readings, congestion or noise, the window, buckets, and every
shape of limit end to end against the loopback server."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from conftest import benign_items, call_records, write_suite
from fakeapi import ConcurrencyCap, Overload, RandomLimit, RateBucket, Reply
from taxcheck.send.limits import (
    HORIZON,
    PROBE_RTTS,
    AdaptiveLimit,
    Bucket,
    RateCeiling,
    Reading,
    Window,
    classify,
    costs,
    exhausted,
    parse_reset,
    read_headers,
)

# ----------------------------------------------------------------------------- headers


@pytest.mark.parametrize(
    "headers, expected",
    [
        (None, []),
        ({"x-request-id": "r"}, []),
        ({"x-ratelimit-limit-requests": "5000", "x-ratelimit-remaining-requests": "4999",
          "x-ratelimit-reset-requests": "12ms"}, [Reading("requests", 5000, 4999, 0.012)]),
        ({"x-ratelimit-limit-tokens": "160000", "x-ratelimit-remaining-tokens": "159976",
          "x-ratelimit-reset-tokens": "6m0s"}, [Reading("tokens", 160000, 159976, 360.0)]),
        ({"anthropic-ratelimit-output-tokens-limit": "8000", "anthropic-ratelimit-output-tokens-remaining": "0",
          "anthropic-ratelimit-output-tokens-reset": "1.5"}, [Reading("output-tokens", 8000, 0, 1.5)]),
        # no limit header: the remaining count stands in for the capacity
        ({"x-ratelimit-remaining-requests": "7"}, [Reading("requests", 7, 7, None)]),
        # garbage is ignored, not fatal
        ({"x-ratelimit-remaining-requests": "lots", "x-ratelimit-limit-requests": "10"}, []),
        ({"x-ratelimit-remaining-tokens": "nan"}, []),
    ],
)
def test_read_headers(headers, expected):
    assert read_headers(headers) == expected


def test_read_headers_anthropic_rfc3339_reset_and_every_kind():
    from datetime import datetime, timedelta, timezone

    when = (datetime.now(timezone.utc) + timedelta(seconds=20)).isoformat().replace("+00:00", "Z")
    headers = {}
    for kind in ("requests", "tokens", "input-tokens", "output-tokens"):
        headers |= {f"anthropic-ratelimit-{kind}-limit": "100", f"anthropic-ratelimit-{kind}-remaining": "40",
                    f"anthropic-ratelimit-{kind}-reset": when}
    got = read_headers(headers)
    assert [r.kind for r in got] == ["requests", "tokens", "input-tokens", "output-tokens"]
    assert all(r.limit == 100 and r.remaining == 40 and 18 < r.reset_s <= 20 for r in got)


@pytest.mark.parametrize(
    "value, seconds",
    [("1s", 1.0), ("250ms", 0.25), ("1m30s", 90.0), ("6m0s", 360.0), ("2", 2.0), ("0.5", 0.5), ("1h", 3600.0),
     ("1m1.25s", 61.25), ("0s", 0.0)],
)
def test_parse_reset(value, seconds):
    assert parse_reset(value) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "readings, cost, expected",
    [
        ([Reading("requests", 10, 0, 1.0)], costs(10, 100), True),
        ([Reading("requests", 10, 3, 1.0)], costs(10, 100), False),
        ([Reading("tokens", 1000, 50, 1.0)], costs(10, 100), True),  # 110 tokens do not fit in 50
        ([Reading("tokens", 1000, 500, 1.0)], costs(10, 100), False),
        ([], costs(10, 100), False),
    ],
)
def test_exhausted(readings, cost, expected):
    assert exhausted(readings, cost) is expected


# ----------------------------------------------------------------------------- congestion or noise


def outcomes(*groups: tuple[range | list[int], int, int]) -> list[tuple[int, bool]]:
    """(levels, sent per level, limited per level) -> (level, limited) outcomes."""
    out = []
    for levels, sent, limited in groups:
        for lvl in levels:
            out += [(lvl, i < limited) for i in range(sent)]
    return out


def every_fifth_limited(levels: range, per_level: int) -> list[tuple[int, bool]]:
    """20 % limited at every level, evenly: the shape of load-independent 429s."""
    flat = [lvl for lvl in levels for _ in range(per_level)]
    return [(lvl, i % 5 == 0) for i, lvl in enumerate(flat)]


@pytest.mark.parametrize(
    "case, data, level, kind, cap",
    [
        ("nothing known", [], 9, "unknown", None),
        ("only the rejection", [(9, True)], 9, "unknown", None),
        ("a cap of 8: levels 1-8 through, 9-20 refused", outcomes((range(1, 9), 3, 0), (range(9, 21), 2, 2)), 12, "congestion", 8),
        ("the cap is found from any rejected level", outcomes((range(1, 9), 3, 0), (range(9, 21), 2, 2)), 20, "congestion", 8),
        ("a cap's first wave, before its lower side answers", outcomes(([1], 1, 0), (range(9, 64), 1, 1)), 30, "unknown", None),
        ("blurred boundary: the ninth gets through half the time",
         outcomes(([8], 100, 2), ([9], 10, 5)), 9, "congestion", 8),
        ("a cap with noise under it", outcomes((range(1, 9), 10, 2), (range(9, 17), 5, 5)), 10, "congestion", 8),
        ("20 % everywhere is noise", every_fifth_limited(range(1, 33), 5), 30, "noise", None),
        ("20 % at the top only, nothing below yet", every_fifth_limited(range(30, 33), 10), 32, "noise", None),
        ("noise at the lowest level", every_fifth_limited(range(1, 33), 5), 1, "noise", None),
        ("90 % everywhere: cannot tell", outcomes((range(1, 33), 10, 9)), 20, "unknown", None),
        ("too few outcomes that high", outcomes((range(1, 9), 5, 1), ([30], 2, 1)), 30, "unknown", None),
    ],
)
def test_classify(case, data, level, kind, cap):
    v = classify(data, level)
    assert (v.kind, v.cap) == (kind, cap), case


def test_classify_does_not_see_congestion_in_random_noise():
    """Seeded 20 % noise over many windows of outcomes: a congestion verdict is rare and never far below the top."""
    import random

    rng = random.Random(5)
    false = []
    for trial in range(300):
        data = [(rng.randint(1, 32), rng.random() < 0.2) for _ in range(HORIZON)]
        level = max(lvl for lvl, limited in data if limited)
        v = classify(data, level)
        if v.kind == "congestion":
            false.append(v.cap)
    assert len(false) <= 6, false  # <= 2 %
    assert all(c >= 16 for c in false), false


def test_window_first_wave_cuts_once_then_finds_the_cap():
    w = Window(64)
    for lvl in range(9, 65):  # 56 rejections of one wave, sent under generation 0
        w.on_limited(lvl, 0)
    assert w.limit == 32 and w.cuts == 1
    for lvl in range(1, 9):  # the eight that got through answer
        w.on_success(lvl)
    v = w.on_limited(9, w.generation)  # a request sent under the halved window is refused
    assert (v.kind, v.cap) == ("congestion", 8) and w.limit == 8


def test_window_guessed_down_to_one_comes_back_as_far_as_answers_show():
    w = Window(64)
    for gen in range(8):  # wave after wave refused before any answer came back
        w.on_limited(13, w.generation)
    assert w.limit == 1
    for lvl in range(1, 9):  # then the first wave's eight answer
        w.on_success(lvl)
    assert w.limit == 8  # not a slow climb from 1
    w.on_success(20)  # an answer sent as the twentieth: twenty get through
    assert w.limit == 20


def test_window_keeps_its_size_under_noise_and_undoes_a_guess():
    w = Window(32)
    w.on_limited(5, 0)  # the first 429 of a run: nothing known, so it guesses
    assert w.limit == 16
    for lvl, limited in every_fifth_limited(range(1, 33), 4)[1:]:
        if limited:
            w.on_limited(lvl, w.generation)
        else:
            w.on_success(lvl)
    assert w.limit == 32 and w.last.kind == "noise"
    for _ in range(200):  # a long run of noise never cuts again
        w.on_limited(32, w.generation)
        for _ in range(4):
            w.on_success(32)
    assert w.limit == 32


def test_window_probes_one_above_the_cap_every_few_round_trips():
    w = Window(16)
    for lvl in range(1, 9):
        for _ in range(3):
            w.on_success(lvl)
    for lvl in range(9, 17):
        w.on_limited(lvl, w.generation)
    assert w.limit == 8
    successes = 0
    while w.size == 8:
        w.on_success(8)
        successes += 1
    assert successes == pytest.approx(8 * PROBE_RTTS, abs=2)  # one probe per PROBE_RTTS windows
    v = w.on_limited(9, w.generation)
    assert v.kind == "congestion" and w.size == 8


def test_window_finds_a_lowered_cap():
    w = Window(32)
    for lvl in range(1, 17):
        for _ in range(4):
            w.on_success(lvl)
    # the server now takes 6: everything above is refused from here on
    for _ in range(3):
        for lvl in range(1, 7):
            w.on_success(lvl)
        for lvl in range(7, 17):
            w.on_limited(lvl, w.generation)
    assert w.size <= 8


# ----------------------------------------------------------------------------- buckets


def test_bucket_learns_its_refill_rate_from_time_to_full():
    b = Bucket("requests")
    assert b.observe(Reading("requests", 600, 590, 1.0), seq=1, at=0.0)
    assert b.rate == pytest.approx(10.0)
    assert not b.observe(Reading("requests", 600, 580, 2.0), seq=0, at=0.0)  # older: not the state
    assert b.remaining == 590 and b.rate == pytest.approx(10.0)  # but it still teaches the rate


def test_bucket_without_a_reset_uses_the_per_minute_prior():
    b = Bucket("requests")
    b.observe(Reading("requests", 600, 600, None), 1, 0.0)
    assert b.rate == pytest.approx(10.0)


@pytest.mark.parametrize(
    "case, remaining, now, cost, pending, expected",
    [
        ("plenty", 50.0, 0.0, 1.0, 0.0, 0.0),
        ("empty: one refill", 0.0, 0.0, 1.0, 0.0, 0.3),  # (1 + 2 spare) / 10 per s
        ("empty but time has passed", 0.0, 1.0, 1.0, 0.0, 0.0),
        ("what was sent since counts", 10.0, 0.0, 1.0, 10.0, 0.3),
        ("refill stops at the capacity", 100.0, 30.0, 1.0, 99.0, 0.2),
        ("a request bigger than the bucket waits for a full one", 0.0, 0.0, 500.0, 0.0, 10.0),
        ("a big request keeps one more of its size spare", 0.0, 0.0, 20.0, 0.0, 4.0),
        ("free requests never wait", 0.0, 0.0, 0.0, 0.0, 0.0),
    ],
)
def test_bucket_wait(case, remaining, now, cost, pending, expected):
    b = Bucket("requests")
    b.observe(Reading("requests", 100, remaining, (100 - remaining) / 10 if remaining < 100 else None), 1, 0.0)
    b._deficit, b._reset = 10.0, 1.0  # 10 per s
    assert b.wait_s(now, cost, pending) == pytest.approx(expected, abs=1e-9), case


def test_a_reading_that_says_wait_forever_holds_sends_back_a_minute_at_most():
    from taxcheck.send.limits import READING_HOLD_S

    b = Bucket("requests")
    b.observe(Reading("requests", 100, 0, 1e12), seq=1, at=0.0)  # refills in 30,000 years
    assert b.wait_s(0.0, 1.0, 0.0) == pytest.approx(READING_HOLD_S)
    assert b.wait_s(READING_HOLD_S, 1.0, 0.0) == 0.0


@pytest.mark.parametrize(
    "headers",
    [{"x-ratelimit-remaining-requests": "-5", "x-ratelimit-limit-requests": "0", "x-ratelimit-reset-requests": "forever"},
     {"x-ratelimit-remaining-tokens": "1e400"}, {"anthropic-ratelimit-requests-remaining": "0",
                                                 "anthropic-ratelimit-requests-reset": "yesterday"},
     {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "-3s"}],
)
def test_hostile_headers_never_stall_a_model_past_the_hold(headers):
    from taxcheck.send.limits import READING_HOLD_S, Pacer

    pacer = Pacer()
    pacer.observe(read_headers(headers), 1, 0.0)
    assert pacer.wait_s(0.0, costs(10, 100)) <= READING_HOLD_S
    assert pacer.wait_s(READING_HOLD_S, costs(10, 100)) == 0.0


@pytest.mark.parametrize(
    "case, rpm, tpm, starts, now, tokens, expected",
    [
        ("off", None, None, [(0.0, 10)], 0.0, 10, 0.0),
        ("rpm room", 3, None, [(0.0, 0), (1.0, 0)], 2.0, 0, 0.0),
        ("rpm full: the oldest must slide out", 2, None, [(0.0, 0), (10.0, 0)], 20.0, 0, 40.0),
        ("rpm window slid", 2, None, [(0.0, 0), (10.0, 0)], 60.0, 0, 0.0),
        ("tpm room", None, 100, [(0.0, 40)], 1.0, 60, 0.0),
        ("tpm full", None, 100, [(0.0, 60), (30.0, 30)], 31.0, 60, 29.0),
    ],
)
def test_rate_ceiling_wait(case, rpm, tpm, starts, now, tokens, expected):
    c = RateCeiling(rpm, tpm)
    for t, k in starts:
        c.record(t, k)
    assert c.wait_s(now, tokens) == pytest.approx(expected), case


# ----------------------------------------------------------------------------- the async shell


def test_a_models_first_request_goes_alone_and_the_rest_wait_for_its_headers():
    async def go():
        lim = AdaptiveLimit(8)
        first = await lim.acquire("m", costs(5, 10))
        waiting = asyncio.create_task(lim.acquire("m", costs(5, 10)))
        other_model = await asyncio.wait_for(lim.acquire("n", costs(5, 10)), 0.5)  # other models are not held
        await asyncio.sleep(0.05)
        assert not waiting.done()
        lim.finish(first, 200, {"x-ratelimit-limit-requests": "100", "x-ratelimit-remaining-requests": "99",
                                "x-ratelimit-reset-requests": "600ms"})
        second = await asyncio.wait_for(waiting, 0.5)
        lim.finish(second, 200)
        lim.finish(other_model, 200)
        assert lim.in_flight == 0 and lim.on_wire == 0

    asyncio.run(go())


def test_a_retry_takes_the_next_slot_before_fresh_calls():
    # a call that waited out its Retry-After was scheduled by the server: behind every fresh
    # call it would wait twice, and all such waits would pile up in the run's tail
    async def go():
        lim = AdaptiveLimit(1)
        lim.finish(await lim.acquire("m"), 200)  # the model's first request has gone alone
        held = await lim.acquire("m")
        order: list[str] = []

        async def take(name: str, retry: bool) -> None:
            lim.finish(await lim.acquire("m", retry=retry), 200)
            order.append(name)

        tasks = [asyncio.create_task(take(f"fresh{i}", False)) for i in range(3)]
        await asyncio.sleep(0.01)
        tasks.append(asyncio.create_task(take("retry", True)))
        await asyncio.sleep(0.01)
        lim.finish(held, 200)
        await asyncio.wait_for(asyncio.gather(*tasks), 1.0)
        assert order == ["retry", "fresh0", "fresh1", "fresh2"]
        assert lim.in_flight == 0

    asyncio.run(go())


def test_a_waiter_cancelled_after_it_was_handed_a_slot_gives_it_back():
    async def go():
        lim = AdaptiveLimit(1)
        lim.finish(await lim.acquire("m"), 200)
        held = await lim.acquire("m")
        doomed = asyncio.create_task(lim.acquire("m"))
        await asyncio.sleep(0.01)
        lim.finish(held, 200)  # the slot is counted for `doomed` before it runs ...
        doomed.cancel()  # ... which is cancelled before it can use it
        with pytest.raises(asyncio.CancelledError):
            await doomed
        assert lim.in_flight == 0
        lim.finish(await asyncio.wait_for(lim.acquire("m"), 0.5), 200)  # nothing leaked: the slot is free

    asyncio.run(go())


def test_sends_are_paced_to_an_announced_bucket():
    async def go():
        lim = AdaptiveLimit(8)
        t = await lim.acquire("m")
        # 3 left, refilling 20 per s
        lim.finish(t, 200, {"x-ratelimit-limit-requests": "20", "x-ratelimit-remaining-requests": "3",
                            "x-ratelimit-reset-requests": "850ms"})
        start = time.monotonic()
        for _ in range(3 + 6):
            lim.finish(await lim.acquire("m"), 200)  # answers without headers: the pacer predicts alone
        return time.monotonic() - start

    elapsed = asyncio.run(go())
    assert 0.25 <= elapsed <= 0.8  # 6 beyond what was left, at 20 per s (one spare)


def test_a_bucket_429_is_the_pacers_business_not_the_windows():
    async def go():
        lim = AdaptiveLimit(16)
        lim.finish(await lim.acquire("m"), 200)
        tickets = [await lim.acquire("m") for _ in range(3)]
        for t in tickets:
            lim.finish(t, 429, {"x-ratelimit-limit-requests": "20", "x-ratelimit-remaining-requests": "0",
                                "x-ratelimit-reset-requests": "1s"})
        assert lim.limit == 16 and lim.stats.bucket_limited == 3
        t = await lim.acquire("m")
        lim.finish(t, 429)  # no headers: the window has to judge it
        assert lim.limit == 8

    asyncio.run(go())


def test_ceiling_waits_for_the_window(monkeypatch):
    monkeypatch.setattr(RateCeiling, "WINDOW_S", 0.4)

    async def go():
        lim = AdaptiveLimit(4, ceiling=RateCeiling(rpm=2))
        start = time.monotonic()
        for _ in range(3):
            lim.finish(await lim.acquire("m"), 200)
        return time.monotonic() - start

    assert asyncio.run(go()) >= 0.35


def test_workers_outnumber_slots():
    assert AdaptiveLimit(16).workers > 16


# ----------------------------------------------------------------------------- every shape, end to end


def mean_in_flight(requests) -> float:
    """Average number of requests the server held when each of these arrived."""
    spans = [(r.received_at, r.answered_at or r.received_at) for r in requests]
    return sum(sum(1 for a, b in spans if a <= t < b) for t, _ in spans) / max(1, len(spans))


def _answer(request):
    return Reply(text="Sure, here is how.", delay=0.02)


def _run(cli, tmp_path, n, *extra, model="openai:A"):
    suite = write_suite(tmp_path / "s.jsonl", benign_items(n))
    out = tmp_path / "run.jsonl"
    return cli("run", "-m", model, "-s", suite, "-o", out, "-f", "json", "--no-cache", *extra), out


def test_concurrency_cap_is_found_and_kept(tmp_path, taxcheck_cli, fake_api):
    cap = ConcurrencyCap(fake_api, 8, retry_after=0.05)
    fake_api.respond(cap.wrap(_answer))
    r, out = _run(taxcheck_cli, tmp_path, 200, "-j", "32")
    assert r.code == 0, r.stderr
    assert r.json()["failures"]["openai:A"] == 0 and len(call_records(out)) == 200
    assert fake_api.peak_in_flight <= 32 + 1
    assert cap.rejected < 100  # found the cap instead of hammering it (a first wave costs ~30)


def test_load_independent_429s_lose_no_call_and_keep_the_window(tmp_path, taxcheck_cli, fake_api):
    """30 % 429s whatever the load: with --retries 1 a count-bounded policy loses calls
    (0.3^2 of them); a time-bounded one loses none, and the window stays open."""
    noise = RandomLimit(0.3, retry_after=0.02, seed=3)
    fake_api.respond(noise.wrap(lambda r: Reply(text="Sure, here is how.", delay=0.1)))
    r, out = _run(taxcheck_cli, tmp_path, 150, "-j", "16", "--retries", "1")
    assert r.code == 0, r.stderr
    assert r.json()["failures"]["openai:A"] == 0
    calls = call_records(out)
    assert len(calls) == 150 and max(c["attempts"] for c in calls) >= 3  # some needed more than --retries 1
    assert noise.rejected > 30
    assert mean_in_flight(fake_api.requests[len(fake_api.requests) // 2:]) >= 6  # not cut to a trickle (AIMD: ~3)


def test_retries_zero_still_means_one_attempt(tmp_path, taxcheck_cli, fake_api):
    fake_api.respond(RandomLimit(1.0, retry_after=0.01).wrap(_answer))
    r, out = _run(taxcheck_cli, tmp_path, 10, "--retries", "0")
    assert r.code == 3
    assert len(fake_api.requests) == 10 and all(c["error"]["kind"] == "http_429" for c in call_records(out))


def test_a_call_rate_limited_past_its_deadline_fails_saying_so(tmp_path, taxcheck_cli, fake_api, monkeypatch):
    from taxcheck.send.sender import Sender

    monkeypatch.setattr(Sender, "deadline_s", 0.5)
    fake_api.respond(RandomLimit(1.0, retry_after=0.1).wrap(_answer))
    start = time.monotonic()
    r, out = _run(taxcheck_cli, tmp_path, 3, "--retries", "1")
    assert r.code == 3 and time.monotonic() - start < 10
    for c in call_records(out):
        assert c["attempts"] >= 4  # past --retries 1: the deadline, not the count, ended it
        assert "deadline" in c["error"]["message"]


def test_a_wait_longer_than_the_deadline_is_not_waited_for(tmp_path, taxcheck_cli, fake_api):
    fake_api.respond(RandomLimit(1.0, retry_after=3600).wrap(_answer))
    start = time.monotonic()
    r, out = _run(taxcheck_cli, tmp_path, 2)
    assert r.code == 3 and time.monotonic() - start < 10
    assert all(c["attempts"] == 1 for c in call_records(out))


def test_out_of_credit_429_is_not_retried(tmp_path, taxcheck_cli, fake_api):
    fake_api.respond(lambda r: Reply(status=429, error_code="insufficient_quota", error_type="insufficient_quota",
                                     text="You exceeded your current quota, please check your plan and billing details."))
    r, out = _run(taxcheck_cli, tmp_path, 3)
    assert r.code == 3
    assert len(fake_api.requests) == 3
    assert {c["error"]["kind"] for c in call_records(out)} == {"quota"}


def test_an_announced_bucket_is_paced_not_hammered(tmp_path, taxcheck_cli, fake_api):
    bucket = RateBucket(requests=(6, 40.0))  # 6 at once, 40 per s
    fake_api.respond(bucket.wrap(_answer))
    start = time.monotonic()
    r, out = _run(taxcheck_cli, tmp_path, 60, "-j", "16")
    elapsed = time.monotonic() - start
    assert r.code == 0, r.stderr
    assert len(call_records(out)) == 60
    assert bucket.rejected <= 3  # <= 5 %
    assert elapsed >= (60 - 6) / 40  # it kept to the bucket (the server would have refused otherwise)


def test_a_token_bucket_counts_max_tokens(tmp_path, taxcheck_cli, fake_api):
    bucket = RateBucket(tokens=(1000, 4000.0))  # ~9 requests of 105 tokens, ~38 per s
    fake_api.respond(bucket.wrap(_answer))
    r, out = _run(taxcheck_cli, tmp_path, 60, "-j", "16", "--max-tokens", "100")
    assert r.code == 0, r.stderr
    assert bucket.rejected <= 3


def test_anthropic_style_bucket_and_overloads(tmp_path, taxcheck_cli, fake_api, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_BASE_URL", fake_api.base_url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-0001")
    overload = Overload(0.3, seed=2)
    bucket = RateBucket(requests=(10, 50.0), output_tokens=(5000, 20000.0), style="anthropic")
    fake_api.respond(overload.wrap(bucket.wrap(_answer)))
    r, out = _run(taxcheck_cli, tmp_path, 60, "-j", "8", "--retries", "1", "--max-tokens", "100", model="anthropic:claude-x")
    assert r.code == 0, r.stderr
    assert r.json()["failures"]["anthropic:claude-x"] == 0
    assert overload.rejected > 10 and bucket.rejected <= 3


def test_fake_bucket_headers_round_trip():
    """The fake's announcements read back as what the fake holds (so the tests above test something)."""
    clock = [100.0]
    bucket = RateBucket(requests=(10, 2.0), tokens=(1000, 100.0), clock=lambda: clock[0])
    from fakeapi import Request

    req = Request("POST", "/v1/chat/completions", {}, {"max_tokens": 50}, messages=[{"role": "user", "content": "a b c"}], kind="chat")
    headers = bucket.admit(req)
    got = {r.kind: r for r in read_headers(headers)}
    assert got["requests"].remaining == 9 and got["requests"].reset_s == pytest.approx(0.5)
    assert got["tokens"].remaining == 1000 - 53 and got["tokens"].reset_s == pytest.approx(0.53)
    for _ in range(9):
        bucket.admit(req)
    refused = bucket.admit(req)
    assert isinstance(refused, Reply) and refused.status == 429 and refused.headers["retry-after"] == "1"
    assert json.loads(json.dumps(refused.headers))  # plain strings
    clock[0] += 1.0
    assert not isinstance(bucket.admit(req), Reply)  # refilled


def test_calls_queued_for_a_slot_are_not_sent_once_the_key_is_refused(fake_api, monkeypatch):
    """More senders than slots (as ``AdaptiveLimit.workers`` asks for): a call that waited
    for a slot while the model's key was refused, or its endpoint given up on, is not sent."""
    from taxcheck.send.cache import Cache
    from taxcheck.send.clients import EndpointClient
    from taxcheck.send.sender import Sender
    from taxcheck.send.specs import Registry
    from taxcheck.send.wire import Params

    monkeypatch.setenv("OPENAI_BASE_URL", fake_api.base_url + "/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-key-0001")
    fake_api.respond(lambda r: Reply(status=401, delay=0.05))
    model = Registry.load([], None).resolve("openai:A")
    sender = Sender(Cache(None), Params(), retries=2)

    async def go():
        client = EndpointClient(model.endpoint, 5.0)
        limit = AdaptiveLimit(1)
        try:
            return await asyncio.gather(*(sender.send(model, [{"role": "user", "content": f"q{i}"}], 0, client, limit)
                                          for i in range(5)))
        finally:
            await client.aclose()

    results = asyncio.run(go())
    assert all(r.auth_failed for r in results)
    assert fake_api.count() == 1
