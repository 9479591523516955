"""Every shape of rate limit in one run: how close ``taxcheck run`` gets to what each allows.

The loopback server (``tests/fakeapi.py``, its rate-limit wrappers) runs in a thread of this
script; each ``taxcheck run --no-cache -f json`` is a child process, so the client's CPU and
start-up are its own. Answers take ``LATENCY`` (0.2 s); rejections answer at once, as a
provider's limiter does. Shapes (issue 13 §2):

* ``cap``: 429 (Retry-After 1 s) past 8 in flight; 300 calls at ``-j 64``. Ideal: 300 x 0.2 / 8.
  Target <= 1.5 x ideal.
* ``noise``: 20 % of requests 429 (Retry-After 1 s) whatever the load; 500 calls at ``-j 32``.
  Target: every call answered, <= 1.3 x the wall of the same run without faults (``clean``).
  Also printed: ``floor``, the wall of a bare ``AsyncOpenAI`` loop (a child process) that
  keeps all 32 slots busy and waits exactly each Retry-After: no client that honours the
  server's waits does better.
* ``rpm-10``, ``rpm-60``, ``tpm``, ``anthropic``: buckets announced in the headers (OpenAI
  ``x-ratelimit-*``; Anthropic ``anthropic-ratelimit-*`` with RFC 3339 resets to the second),
  scaled to refill in seconds. Ideal: what the bucket allows, from the server's own cost of
  every request: max over kinds of (total cost - capacity) / refill, plus one answer's latency.
  Target <= 1.15 x ideal and <= 5 % of requests rejected.
* ``overload``: Anthropic 529 ``overloaded_error`` for 10 % of requests; 300 calls at ``-j 32``.
  Target: every call answered.

For each: the sending phase (first request received to last answer sent, at the server)
against its ideal, the whole command's wall, requests rejected, calls lost (neither
answered nor recorded), and whether the target is met. The ratio to an ideal is taken on the
sending phase, which is what an ideal describes; ``noise`` compares whole commands, as the
target is stated.

    python benchmarks/ratelimit.py [--only cap,noise,...] [--latency 0.2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from _common import PYTHON, banner, run_child, taxcheck_cmd, workdir, write_suite  # noqa: E402
from fakeapi import ConcurrencyCap, FakeAPI, Overload, RandomLimit, RateBucket, Reply  # noqa: E402

ANSWER = "The answer is 42."


@dataclass
class Shape:
    name: str
    calls: int
    jobs: int
    wrapper: Callable[[FakeAPI], object | None]
    wire: str = "openai"
    max_tokens: int = 100
    target: str = ""


@dataclass
class Outcome:
    shape: Shape
    wall_s: float  # the whole command
    send_s: float  # first request received .. last answer sent, at the server
    requests: int
    rejected: int
    answered: int
    lost: int
    code: int
    costs: list[dict[str, float]]  # the server's cost of each request (buckets)
    wrapper: object | None


def _run(shape: Shape, work: Path, latency: float) -> Outcome:
    suite = write_suite(work / f"{shape.name}.jsonl", shape.calls, prefix=shape.name)
    with FakeAPI() as api:
        wrapper = shape.wrapper(api)

        def answer(request):
            return Reply(text=ANSWER, delay=latency)

        api.respond(wrapper.wrap(answer) if wrapper is not None else answer)
        spec = f"{shape.wire}:bench-model"
        env = dict(os.environ, TAXCHECK_CACHE_DIR=str(work / "cache"), TAXCHECK_RUNS_DIR=str(work / "runs"), NO_COLOR="1",
                   OPENAI_BASE_URL=api.base_url + "/v1", OPENAI_API_KEY="bench-key",
                   ANTHROPIC_BASE_URL=api.base_url, ANTHROPIC_API_KEY="bench-key")
        env.pop("PYTHONPROFILEIMPORTTIME", None)
        out = work / f"{shape.name}.run.jsonl"
        child = run_child(taxcheck_cmd() + ["run", "-m", spec, "-s", str(suite), "--no-cache", "-j", str(shape.jobs),
                                            "--max-tokens", str(shape.max_tokens), "-o", str(out), "-f", "json"],
                          env=env, check=False)
        reqs = [r for r in api.requests if r.kind in ("chat", "anthropic")]
        answered = sum(1 for r in reqs if r.status == 200)
        rejected = sum(1 for r in reqs if r.status in (429, 529))
        recorded_ok = 0
        if out.exists():
            for line in out.read_text(encoding="utf-8").splitlines():
                rec = json.loads(line)
                if rec.get("type") == "call" and not rec.get("error"):
                    recorded_ok += 1
        send_s = (max(r.answered_at or r.received_at for r in reqs) - min(r.received_at for r in reqs)) if reqs else 0.0
        costs = [RateBucket.cost(r) for r in reqs if r.status == 200]
        if child.returncode not in (0, 3):
            print(f"   !! {shape.name}: exit {child.returncode}: {child.stderr[-500:]}")
        return Outcome(shape, child.wall_s, send_s, len(reqs), rejected, answered, shape.calls - recorded_ok,
                       child.returncode, costs, wrapper)


def bucket_ideal(o: Outcome, latency: float) -> float:
    """The fastest the bucket lets these requests through: after the first burst, at the refill."""
    b = o.wrapper
    assert isinstance(b, RateBucket)
    worst = 0.0
    for kind, level in b.levels.items():
        total = sum(c[kind] for c in o.costs)
        worst = max(worst, (total - level.capacity) / level.per_s)
    return max(worst, 0.0) + latency


# --------------------------------------------------------------------------- the floor for noise


async def _floor_loop(base_url: str, calls: int, jobs: int) -> dict[str, float]:
    import openai

    client = openai.AsyncOpenAI(base_url=base_url, api_key="bench-key", max_retries=0)
    sem = asyncio.Semaphore(jobs)
    lost = 0

    async def one(i: int) -> None:
        nonlocal lost
        while True:
            async with sem:
                try:
                    await client.chat.completions.create(model="bench-model", max_tokens=100,
                                                         messages=[{"role": "user", "content": f"What is {i}+3?"}])
                    return
                except openai.RateLimitError as exc:
                    wait = float(exc.response.headers.get("retry-after", "1"))
                except Exception:  # noqa: BLE001 - counted, never hidden
                    lost += 1
                    return
            await asyncio.sleep(wait)  # outside the semaphore: the slot serves another call meanwhile

    start = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(calls)))
    loop_s = time.perf_counter() - start
    await client.close()
    return {"loop_s": loop_s, "lost": lost}


def _floor(shape: Shape, latency: float) -> tuple[float, float, int]:
    """(whole child wall, its loop alone, calls lost) of the bare loop against ``shape``."""
    with FakeAPI() as api:
        wrapper = shape.wrapper(api)
        api.respond(wrapper.wrap(lambda r: Reply(text=ANSWER, delay=latency)))
        child = run_child([PYTHON, __file__, "--floor-child", api.base_url + "/v1", str(shape.calls), str(shape.jobs)],
                          check=False)
        if child.returncode != 0:
            print(f"   !! floor child failed: {child.stderr[-500:]}")
            return child.wall_s, float("nan"), -1
        doc = json.loads(child.stdout.strip().splitlines()[-1])
        return child.wall_s, doc["loop_s"], int(doc["lost"])


# --------------------------------------------------------------------------- main


def shapes() -> list[Shape]:
    return [
        Shape("cap", 300, 64, lambda api: ConcurrencyCap(api, 8, retry_after=1.0), target="<= 1.5 x ideal"),
        Shape("clean", 500, 32, lambda api: None, target="(no faults: the noise run's yardstick)"),
        Shape("noise", 500, 32, lambda api: RandomLimit(0.2, retry_after=1.0, seed=13),
              target="all answered, <= 1.3 x clean"),
        Shape("rpm-10", 100, 32, lambda api: RateBucket(requests=(10, 10.0)), target="<= 1.15 x ideal, <= 5 % rejected"),
        Shape("rpm-60", 300, 32, lambda api: RateBucket(requests=(60, 30.0)), target="<= 1.15 x ideal, <= 5 % rejected"),
        Shape("tpm", 150, 32, lambda api: RateBucket(tokens=(3000, 2000.0)), target="<= 1.15 x ideal, <= 5 % rejected"),
        Shape("anthropic", 150, 32, lambda api: RateBucket(requests=(20, 15.0), input_tokens=(400, 150.0),
                                                            output_tokens=(4000, 2000.0), style="anthropic"),
              wire="anthropic", target="<= 1.15 x ideal, <= 5 % rejected"),
        Shape("overload", 300, 32, lambda api: Overload(0.1, seed=17), wire="anthropic", target="all answered"),
    ]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="", help="comma-separated shape names")
    ap.add_argument("--latency", type=float, default=0.2)
    ap.add_argument("--no-floor", action="store_true", help="skip the bare-loop floor of the noise shape")
    ap.add_argument("--floor-child", nargs=3, metavar=("URL", "CALLS", "JOBS"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.floor_child:
        url, calls, jobs = args.floor_child
        print(json.dumps(asyncio.run(_floor_loop(url, int(calls), int(jobs)))))
        return 0
    wanted = {s for s in args.only.split(",") if s}
    todo = [s for s in shapes() if not wanted or s.name in wanted or (s.name == "clean" and "noise" in wanted)]
    banner("rate limits: every shape against the loopback server")
    lat = args.latency
    results: dict[str, Outcome] = {}
    all_met = True
    with workdir() as work:
        for shape in todo:
            o = results[shape.name] = _run(shape, work, lat)
            share = o.rejected / o.requests if o.requests else 0.0
            line = (f"   {shape.name:10s} {shape.calls:4d} calls -j {shape.jobs:<3d} sending {o.send_s:6.2f} s, "
                    f"whole command {o.wall_s:6.2f} s; {o.requests} requests, {o.rejected} rejected ({share:.1%}), "
                    f"lost {o.lost}")
            met: bool | None = None
            if shape.name == "cap":
                ideal = shape.calls * lat / 8
                ratio = o.send_s / ideal
                met = ratio <= 1.5 and o.lost == 0
                line += f"\n              ideal {ideal:.2f} s: {ratio:.2f} x  [target {shape.target}: {'met' if met else 'MISSED'}]"
            elif shape.name == "noise" and "clean" in results:
                clean = results["clean"]
                ratio = o.wall_s / clean.wall_s
                met = o.lost == 0 and ratio <= 1.3
                line += (f"\n              clean run {clean.wall_s:.2f} s whole ({clean.send_s:.2f} s sending): "
                         f"{ratio:.2f} x whole, {o.send_s / clean.send_s:.2f} x sending  "
                         f"[target {shape.target}: {'met' if met else 'MISSED'}]")
                if not args.no_floor:
                    fwall, floop, flost = _floor(shape, lat)
                    line += (f"\n              floor (bare loop, full window, exact Retry-After): {fwall:.2f} s whole, "
                             f"{floop:.2f} s sending, lost {flost}: {fwall / clean.wall_s:.2f} x clean whole; "
                             f"taxcheck {o.wall_s / fwall:.2f} x the floor")
            elif shape.name.startswith(("rpm", "tpm", "anthropic")):
                ideal = bucket_ideal(o, lat)
                ratio = o.send_s / ideal
                met = ratio <= 1.15 and share <= 0.05 and o.lost == 0
                line += (f"\n              ideal {ideal:.2f} s: {ratio:.2f} x, {share:.1%} rejected  "
                         f"[target {shape.target}: {'met' if met else 'MISSED'}]")
            elif shape.name == "overload":
                met = o.lost == 0
                line += f"\n              [target {shape.target}: {'met' if met else 'MISSED'}]"
            print(line, flush=True)
            if met is False:
                all_met = False
    print(f"== rate-limit targets {'all met' if all_met else 'NOT all met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
