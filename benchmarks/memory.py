"""Memory: peak RSS of a 20,000-call run, and of ``--dry-run`` on an 80,000-item suite.

Issue 5 §1 targets: under 300 MB for both; the dry run under 5 s wall.

Peak RSS is the child's own ``ru_maxrss`` from ``os.wait4`` (the high-water mark of resident
memory over the whole process life). The send run uses a zero-latency fake server at
``-j 64`` with the cache off (``--no-cache``) so it measures the run, not SQLite; pass
``--with-cache`` to keep the cache on. The dry run needs no server.

    python benchmarks/memory.py [--calls 20000] [--dry-items 80000] [-j 64] [--repeats 1]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    banner,
    count_call_lines,
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

RSS_TARGET_MB = 300.0
DRY_TARGET_S = 5.0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=20000, help="calls in the send run")
    ap.add_argument("--dry-items", type=int, default=80000, help="items in the --dry-run suite")
    ap.add_argument("-j", "--concurrency", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=1, help="runs per figure (peak RSS barely varies; a 20,000-call run takes minutes)")
    ap.add_argument("--with-cache", action="store_true", help="keep the response cache on in the send run")
    ap.add_argument("--skip-send", action="store_true", help="only the dry run")
    args = ap.parse_args(argv)
    banner("memory: peak RSS of a big run and of a big --dry-run")
    ok = True
    with workdir() as work:
        if not args.skip_send:
            suite = write_suite(work / "send.jsonl", args.calls)
            with fake_server(0.0) as server:
                env = taxcheck_env(server, work)
                base = taxcheck_cmd() + ["run", "-m", "openai:bench", "-s", str(suite), "-j", str(args.concurrency), "-f", "json"]
                if not args.with_cache:
                    base.append("--no-cache")
                print(f"   command: {' '.join(base)} -o NEW.jsonl")
                rss, walls, cpus = [], [], []
                for rep in range(args.repeats):
                    out = work / f"send-{rep}.jsonl"
                    res = run_child(base + ["-o", str(out)], env=env)
                    if count_call_lines(out) != args.calls:
                        raise SystemExit(f"send run {rep}: wrong number of call records")
                    rss.append(res.maxrss_mb)
                    walls.append(res.wall_s)
                    cpus.append(res.cpu_s)
                    out.unlink()
                    print(f"     run {rep + 1}: peak RSS {res.maxrss_mb:.1f} MB, wall {res.wall_s:.1f} s, CPU {res.cpu_s:.1f} s  ({load_line()})", flush=True)
            print(f"   {args.calls} calls, -j {args.concurrency}, latency 0: peak RSS [MB] {spread(rss)}")
            print(f"     wall [s] {spread(walls)}; CPU [s] {spread(cpus)}; CPU ms/call {median(cpus) * 1000 / args.calls:.2f}")
            ok &= median(rss) < RSS_TARGET_MB

        suite = write_suite(work / "dry.jsonl", args.dry_items, prefix="d")
        env = taxcheck_env(None, work)
        env["OPENAI_BASE_URL"] = "http://127.0.0.1:9/v1"  # never contacted by a dry run
        argv_ = taxcheck_cmd() + ["run", "-m", "openai:bench", "-s", str(suite), "--dry-run", "-o", str(work / "dry-run.jsonl")]
        print(f"   command: {' '.join(argv_)}")
        rss, walls, cpus = [], [], []
        for _ in range(args.repeats):
            res = run_child(argv_, env=env)
            rss.append(res.maxrss_mb)
            walls.append(res.wall_s)
            cpus.append(res.cpu_s)
        print(f"   --dry-run on {args.dry_items} items: peak RSS [MB] {spread(rss)}")
        print(f"     wall [s] {spread(walls)}; CPU [s] {spread(cpus)}")
        ok &= median(rss) < RSS_TARGET_MB and median(walls) < DRY_TARGET_S
    print(f"== memory targets (< {RSS_TARGET_MB:.0f} MB, dry run < {DRY_TARGET_S} s) {'met' if ok else 'MISSED'}  ({load_line()})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
