"""Cache: wall time of a fully cached rerun of a 2,000-call run.

Issue 5 §1 target: under 2 s wall.

The first run (zero-latency fake server, cache on) fills a fresh cache directory; each timed
run then repeats the same command with a *new* ``-o`` so nothing is resumed from a run file
and every call must come from the cache. The timed run is checked to have sent no request
(the server's request counter does not move, and every call record says ``cached``).

    python benchmarks/cache.py [-n 2000] [-j 16] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
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

TARGET_S = 2.0


def cached_flags(run_file: Path) -> tuple[int, int]:
    """(call records, of which cached)."""
    calls = cached = 0
    with open(run_file, encoding="utf-8") as fh:
        for line in fh:
            if line.startswith('{"type":"call"'):
                calls += 1
                cached += bool(json.loads(line).get("cached"))
    return calls, cached


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", "--items", type=int, default=2000, help="calls in the run")
    ap.add_argument("-j", "--concurrency", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    banner("cache: fully cached rerun")
    with workdir() as work, fake_server(0.0) as server:
        suite = write_suite(work / "suite.jsonl", args.items)
        env = taxcheck_env(server, work)
        base = taxcheck_cmd() + ["run", "-m", "openai:bench", "-s", str(suite), "-j", str(args.concurrency), "-f", "json"]
        fill = run_child(base + ["-o", str(work / "fill.jsonl")], env=env)
        print(f"   fill run ({args.items} calls sent, latency 0) wall [s]: {fill.wall_s:.3f}")
        print(f"   command: {' '.join(base)} -o NEW.jsonl")
        walls, cpus, rss = [], [], []
        for rep in range(args.repeats):
            out = work / f"cached-{rep}.jsonl"
            res = run_child(base + ["-o", str(out)], env=env)
            calls, cached = cached_flags(out)
            if calls != args.items or cached != calls:
                raise SystemExit(f"rerun {rep}: {cached}/{calls} calls cached, expected {args.items}/{args.items}")
            walls.append(res.wall_s)
            cpus.append(res.cpu_s)
            rss.append(res.maxrss_mb)
        print(f"   cached rerun wall [s]: {spread(walls)}")
        print(f"   cached rerun CPU  [s]: {spread(cpus)}")
        print(f"   cached rerun peak RSS [MB]: {median(rss):.1f}")
        ok = median(walls) < TARGET_S
        print(f"== cache target (< {TARGET_S} s) {'met' if ok else 'MISSED'}  ({load_line()})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
