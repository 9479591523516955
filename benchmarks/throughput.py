"""Throughput: ``taxcheck run`` against a bare ``AsyncOpenAI`` loop, same server, same prompts.

Issue 5 §1 target: taxcheck <= 1.15 x the bare SDK loop at (N=500, C=32, L=0.2) and at
(N=500, C=128, L=0.2).

Both sides run as child processes of this script against one loopback fake server
(``tests/fakeapi.py``, a separate process, latency L per response), so each side's CPU time
and wall time are its own. Figures printed per configuration (median of ``--repeats``):

* whole-command wall time: ``taxcheck run --no-cache ... -f json`` from fork to exit
  (interpreter start-up, imports, suite load, sending, grading, report) vs the bare child
  from fork to exit (interpreter start-up, ``import openai``, the loop). The honest figure.
* sending only: taxcheck's first-to-last call record in the run file (watched as it grows;
  add about L for the first request's own round trip) vs the bare loop's own timer around
  ``gather``.
* the ideal N*L/C, and CPU milliseconds per request (user+sys of that child / N, from
  ``os.wait4``).

    python benchmarks/throughput.py [-n 500] [-c 32 -c 128] [-l 0.2] [--repeats 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    PYTHON,
    banner,
    fake_server,
    load_line,
    median,
    run_child,
    spread,
    taxcheck_cmd,
    taxcheck_env,
    workdir,
    write_suite,
)

TARGET_RATIO = 1.15


# --------------------------------------------------------------------------- bare child


async def _bare_loop(base_url: str, prompts: list[str], concurrency: int) -> dict[str, float]:
    t_import = time.perf_counter()
    import openai

    imported = time.perf_counter()
    client = openai.AsyncOpenAI(base_url=base_url, api_key="bench-key", max_retries=0)
    sem = asyncio.Semaphore(concurrency)
    failures = 0

    async def one(prompt: str) -> None:
        nonlocal failures
        async with sem:
            try:
                resp = await client.chat.completions.create(
                    model="bench", messages=[{"role": "user", "content": prompt}], temperature=0.0, max_tokens=512
                )
                _ = resp.choices[0].message.content
            except Exception:  # noqa: BLE001 - counted and reported, never hidden
                failures += 1

    start = time.perf_counter()
    await asyncio.gather(*(one(p) for p in prompts))
    loop_s = time.perf_counter() - start
    await client.close()
    return {"import_s": imported - t_import, "loop_s": loop_s, "failures": failures}


def bare_child_main(base_url: str, suite: str, concurrency: int) -> None:
    """Entry point of the bare-loop child process: prints one JSON line of timings."""
    with open(suite, encoding="utf-8") as fh:
        prompts = [json.loads(line)["prompt"] for line in fh if line.strip()]
    print(json.dumps(asyncio.run(_bare_loop(base_url, prompts, concurrency))))


# --------------------------------------------------------------------------- run-file watcher


class CallWatcher:
    """Polls a growing run file; notes when the first and the last call record appear."""

    def __init__(self, path: Path, expected: int):
        self.path = path
        self.expected = expected
        self.offset = 0
        self.partial = b""
        self.calls = 0
        self.first_at: float | None = None
        self.last_at: float | None = None

    def __call__(self) -> None:
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self.offset)
                chunk = fh.read()
        except FileNotFoundError:
            return
        if not chunk:
            return
        now = time.perf_counter()
        self.offset += len(chunk)
        data = self.partial + chunk
        lines = data.split(b"\n")
        self.partial = lines.pop()
        new = sum(1 for ln in lines if ln.startswith(b'{"type":"call"'))
        if new:
            if self.first_at is None:
                self.first_at = now
            self.calls += new
            self.last_at = now

    @property
    def window_s(self) -> float | None:
        if self.first_at is None or self.last_at is None:
            return None
        return self.last_at - self.first_at


# --------------------------------------------------------------------------- one configuration


@dataclass
class Sample:
    tc_wall: float
    tc_window: float
    tc_cpu_ms: float
    tc_rss: float
    tc_head: float
    tc_tail: float
    bare_wall: float
    bare_loop: float
    bare_import: float
    bare_cpu_ms: float


def measure(server, suite: Path, n: int, c: int, work: Path, rep: int) -> Sample:
    env = taxcheck_env(server, work)
    out = work / f"run-c{c}-{rep}.jsonl"
    argv = taxcheck_cmd() + [
        "run", "--no-cache", "-m", "openai:bench", "-s", str(suite), "-j", str(c), "-f", "json", "-o", str(out),
    ]
    watcher = CallWatcher(out, n)
    tc = run_child(argv, env=env, poll=watcher)
    if watcher.calls != n:
        raise SystemExit(f"taxcheck wrote {watcher.calls} call records, expected {n}")
    json.loads(tc.stdout)  # the report must be valid JSON
    bare = run_child(
        [PYTHON, __file__, "--bare-child", server.openai_url, str(suite), str(c)], env=env
    )
    b = json.loads(bare.stdout.strip().splitlines()[-1])
    if b["failures"]:
        raise SystemExit(f"bare loop: {b['failures']} failed requests")
    return Sample(
        tc_wall=tc.wall_s,
        tc_window=watcher.window_s or 0.0,
        tc_cpu_ms=tc.cpu_s * 1000 / n,
        tc_rss=tc.maxrss_mb,
        tc_head=(watcher.first_at or tc.ended_at) - tc.started_at,
        tc_tail=tc.ended_at - (watcher.last_at or tc.ended_at),
        bare_wall=bare.wall_s,
        bare_loop=b["loop_s"],
        bare_import=b["import_s"],
        bare_cpu_ms=bare.cpu_s * 1000 / n,
    )


def report(n: int, c: int, latency: float, samples: list[Sample]) -> bool:
    def col(name: str) -> list[float]:
        return [getattr(s, name) for s in samples]

    ideal = n * latency / c
    tc_wall, bare_wall = median(col("tc_wall")), median(col("bare_wall"))
    tc_win, bare_loop = median(col("tc_window")), median(col("bare_loop"))
    ratio_wall = tc_wall / bare_wall
    ratio_send = (tc_win + latency) / bare_loop
    ok = ratio_wall <= TARGET_RATIO
    print(f"-- N={n} C={c} L={latency}  ({load_line()} after the runs)")
    print(f"   ideal N*L/C                                : {ideal:.3f} s")
    print(f"   taxcheck whole command wall [s]            : {spread(col('tc_wall'))}")
    print(f"   bare AsyncOpenAI child wall [s]            : {spread(col('bare_wall'))}")
    print(f"     of which `import openai` [s]             : {spread(col('bare_import'))}")
    print(f"   ratio taxcheck/bare, whole command         : {ratio_wall:.2f}  (target <= {TARGET_RATIO}) {'OK' if ok else 'MISSED'}")
    print(f"   taxcheck sending, first->last call rec [s] : {spread(col('tc_window'))}  (+L for the first round trip)")
    print(f"   bare loop sending, gather() only [s]       : {spread(col('bare_loop'))}")
    print(f"   ratio taxcheck/bare, sending only          : {ratio_send:.2f}  ((window+L)/loop)")
    print(f"   taxcheck launch -> first call record [s]   : {spread(col('tc_head'))}  (start-up, suite load, SDK import, 1st round trip)")
    print(f"   taxcheck last call record -> exit [s]      : {spread(col('tc_tail'))}  (re-read run file, grade, report)")
    print(f"   CPU ms/request taxcheck / bare             : {median(col('tc_cpu_ms')):.2f} / {median(col('bare_cpu_ms')):.2f}")
    print(f"   taxcheck peak RSS [MB]                     : {median(col('tc_rss')):.1f}")
    return ok


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", "--items", type=int, default=500, help="requests (suite items)")
    ap.add_argument("-c", "--concurrency", type=int, action="append", help="concurrency; repeatable (default 32 and 128)")
    ap.add_argument("-l", "--latency", type=float, default=0.2, help="server latency per response, seconds")
    ap.add_argument("--repeats", type=int, default=3, help="measurements per configuration (median reported)")
    ap.add_argument("--bare-child", nargs=3, metavar=("URL", "SUITE", "C"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.bare_child:
        url, suite, c = args.bare_child
        bare_child_main(url, suite, int(c))
        return 0
    concurrencies = args.concurrency or [32, 128]
    banner("throughput: taxcheck run vs bare AsyncOpenAI loop")
    print(f"   command: {' '.join(taxcheck_cmd())} run --no-cache -m openai:bench -s SUITE -j C -f json -o RUN")
    all_ok = True
    with workdir() as work, fake_server(args.latency) as server:
        suite = write_suite(work / "suite.jsonl", args.items)
        for c in concurrencies:
            samples = [measure(server, suite, args.items, c, work, rep) for rep in range(args.repeats)]
            all_ok &= report(args.items, c, args.latency, samples)
    print(f"== throughput target {'met' if all_ok else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
