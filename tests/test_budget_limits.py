"""Cost and pace: --max-cost, --dry-run, --rpm/--tpm, rate-limit headers, adaptive concurrency."""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path

import pytest

from conftest import benign_items, call_records, helpful, write_suite
from fakeapi import Reply
from taxcheck.budget import Budget
from taxcheck.limits import AdaptiveLimit, RateCeiling, parse_reset


def price_file(tmp_path: Path, inp: float, out: float) -> Path:
    p = tmp_path / "prices.json"
    p.write_text(json.dumps({"prices": [{"pattern": "openai:*", "input": inp, "output": out}]}), encoding="utf-8")
    return p


# ----------------------------------------------------------------------------- budget

def test_budget_reserves_the_worst_case_and_settles_to_the_real_cost():
    b = Budget(1.0, [("openai:*", 1000.0, 1000.0)])
    msgs = [{"role": "user", "content": "x" * 400}]  # ~104 tokens estimated
    held = b.reserve("openai:m", msgs, max_tokens=100)
    assert held == pytest.approx((104 + 100) * 1000 / 1e6)
    assert b.in_flight == pytest.approx(held)
    b.settle(held, "openai:m", 50, 20)
    assert b.in_flight == 0 and b.spent == pytest.approx(70 * 1000 / 1e6)
    big = [{"role": "user", "content": "x" * 4_000_000}]
    assert b.reserve("openai:m", big, 100) is None and b.stopped


def test_budget_needs_prices_for_every_model():
    from taxcheck.errors import UserError

    with pytest.raises(UserError, match="no-price"):
        Budget(1.0, [("openai:*", 1.0, 1.0)]).check_priced(["openai:a", "mystery:no-price"])


def test_max_cost_stops_sending_keeps_what_finished_and_exits_4(tmp_path, taxcheck_cli, fake_api):
    fake_api.respond(helpful)
    suite = write_suite(tmp_path / "s.jsonl", benign_items(40))
    # worst case per call: (~15 input + 100 output) tokens at $1000/M = ~$0.115; budget fits a few
    prices = price_file(tmp_path, 1000, 1000)
    r = taxcheck_cli("run", "-m", "openai:A", "-s", suite, "--prices", prices, "--max-cost", "0.5",
                     "--max-tokens", "100", "-j", "2", "-o", tmp_path / "run.jsonl", "-f", "json")
    assert r.code == 4, r.stderr
    assert "Budget reached" in r.stderr
    sent = fake_api.count(model="A")
    assert 0 < sent < 40
    doc = json.loads(r.stdout)
    assert doc["usage"]["openai:A"]["cost_usd"] <= 0.5
    assert len(call_records(tmp_path / "run.jsonl")) == sent
    # a bigger budget resumes: recorded calls are not sent again
    r2 = taxcheck_cli("run", "-m", "openai:A", "-s", suite, "--prices", prices, "--max-cost", "100",
                      "--max-tokens", "100", "-j", "2", "-o", tmp_path / "run.jsonl", "-f", "json")
    assert r2.code == 0, r2.stderr
    assert fake_api.count(model="A") == 40


def test_dry_run_estimates_and_sends_nothing(tmp_path, taxcheck_cli, fake_api):
    suite = write_suite(tmp_path / "s.jsonl", benign_items(10))
    prices = price_file(tmp_path, 2.0, 8.0)
    r = taxcheck_cli("run", "-m", "openai:A", "-m", "anthropic:B", "-s", suite, "--prices", prices, "--dry-run")
    # anthropic:B has no key and no price: the key is checked first
    assert r.code == 2 and "ANTHROPIC_API_KEY" in r.stderr
    r = taxcheck_cli("run", "-m", "openai:A", "-m", "openai:B", "-s", suite, "--prices", prices, "--dry-run", "--max-tokens", "100")
    assert r.code == 0, r.stderr
    assert fake_api.count() == 0
    assert "openai:A" in r.stdout and "to send" in r.stdout and "$" in r.stdout
    runs = Path(os.environ["TAXCHECK_RUNS_DIR"])
    assert not runs.exists() or not any(runs.iterdir())  # a dry run writes no run file


def test_dry_run_counts_cached_and_unknown_cost(tmp_path, taxcheck_cli, fake_api):
    fake_api.respond(helpful)
    suite = write_suite(tmp_path / "s.jsonl", benign_items(6))
    assert taxcheck_cli("run", "-m", "openai:unpriced", "-s", suite, "-o", tmp_path / "a.jsonl").code == 0
    r = taxcheck_cli("run", "-m", "openai:unpriced", "-s", suite, "-o", tmp_path / "b.jsonl", "--dry-run")
    assert r.code == 0
    row = next(line for line in r.stdout.splitlines() if "openai:unpriced" in line)
    assert row.split("│")[4].strip() == "6"  # all six already in the cache
    assert "unknown" in r.stdout


# ----------------------------------------------------------------------------- pace

@pytest.mark.parametrize(
    "value, seconds",
    [("1s", 1.0), ("250ms", 0.25), ("1m30s", 90.0), ("6m0s", 360.0), ("2", 2.0), ("0.5", 0.5), ("1h", 3600.0)],
)
def test_parse_reset(value, seconds):
    assert parse_reset(value) == pytest.approx(seconds)


def test_parse_reset_rfc3339_in_the_future():
    from datetime import datetime, timedelta, timezone

    when = (datetime.now(timezone.utc) + timedelta(seconds=30)).isoformat()
    assert 25 < parse_reset(when) <= 30


def test_rpm_ceiling_waits_for_the_window(monkeypatch):
    monkeypatch.setattr(RateCeiling, "WINDOW_S", 0.4)
    ceiling = RateCeiling(rpm=2)

    async def go():
        start = time.monotonic()
        for _ in range(3):
            await ceiling.acquire()
        return time.monotonic() - start

    assert asyncio.run(go()) >= 0.35


def test_tpm_ceiling_waits_for_tokens(monkeypatch):
    monkeypatch.setattr(RateCeiling, "WINDOW_S", 0.4)
    ceiling = RateCeiling(tpm=100)

    async def go():
        start = time.monotonic()
        await ceiling.acquire(60)
        fast = time.monotonic() - start
        await ceiling.acquire(60)  # 120 > 100: waits until the first slides out
        return fast, time.monotonic() - start

    fast, slow = asyncio.run(go())
    assert fast < 0.1 and slow >= 0.35


def test_exhausted_quota_header_pauses_the_endpoint():
    ceiling = RateCeiling()
    assert not ceiling.active
    ceiling.observe({"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "300ms"})
    assert ceiling.active

    async def go():
        start = time.monotonic()
        await ceiling.acquire()
        return time.monotonic() - start

    assert asyncio.run(go()) >= 0.25
    ceiling.observe({"x-ratelimit-remaining-requests": "12"})  # plenty left: no pause
    assert asyncio.run(go()) < 0.05


def test_one_burst_cuts_once_and_later_429s_cut_again():
    async def go():
        lim = AdaptiveLimit(64)
        wave = [await lim.acquire() for _ in range(64)]
        for g in wave:  # the whole first wave is rejected: one cut
            lim.on_rate_limited(g)
            lim.release()
        assert lim.limit == 32
        second = [await lim.acquire() for _ in range(32)]
        lim.on_rate_limited(second[0])  # sent under the halved limit: cut again at once
        assert lim.limit == 16
        lim.on_rate_limited(second[1])
        assert lim.limit == 16

    asyncio.run(go())


def test_aimd_halves_on_429_and_recovers():
    lim = AdaptiveLimit(16, cooldown_s=0.0)
    lim.on_rate_limited()
    assert lim.limit == 8
    lim.on_rate_limited()
    assert lim.limit == 4
    for _ in range(200):
        lim.on_success()
    assert lim.limit == 16


def test_concurrency_backs_off_against_a_server_limit(tmp_path, taxcheck_cli, fake_api):
    """A server that answers 429 (Retry-After: 1) beyond 8 requests in flight."""

    def limited(req):
        if fake_api.in_flight > 8:
            return Reply(status=429, headers={"retry-after": "1"}, text="slow down")
        return Reply(text="Sure, here is how.", delay=0.05)

    fake_api.respond(limited)
    suite = write_suite(tmp_path / "s.jsonl", benign_items(120))
    r = taxcheck_cli("run", "-m", "openai:A", "-s", suite, "-j", "32", "-o", tmp_path / "run.jsonl", "-f", "json")
    assert r.code == 0, r.stderr
    assert json.loads(r.stdout)["failures"]["openai:A"] == 0
    assert len(call_records(tmp_path / "run.jsonl")) == 120
    assert fake_api.successes == 120
