"""Adaptive concurrency against a server that rate-limits by concurrency.

The loopback server answers 429 (Retry-After: 1) to any request beyond LIMIT in flight.
taxcheck runs CALLS calls at ``-j J``; it should finish with no failed call within
1.5 x the ideal time at concurrency LIMIT (CALLS x LATENCY / LIMIT).

    python benchmarks/ratelimit.py [--calls 300] [-j 64] [--limit 8] [--latency 0.2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from fakeapi import FakeAPI, Reply  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=300)
    ap.add_argument("-j", type=int, default=64)
    ap.add_argument("--limit", type=int, default=8)
    ap.add_argument("--latency", type=float, default=0.2)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp, FakeAPI() as api:
        rejected = {"n": 0}

        def limited(req):
            if api.in_flight > args.limit:
                rejected["n"] += 1
                return Reply(status=429, headers={"retry-after": "1"}, text="rate limited")
            return Reply(text=f"Sure: answer {req.last_user_text()[-8:]}", delay=args.latency)

        api.respond(limited)
        suite = Path(tmp) / "suite.jsonl"
        suite.write_text("".join(json.dumps({"id": f"r{i}", "category": "capability.math", "prompt": f"What is {i} + 1?",
                                             "expect": "answer", "answer": {"number": i + 1}}) + "\n" for i in range(args.calls)))
        env = {**os.environ, "OPENAI_BASE_URL": api.base_url + "/v1", "OPENAI_API_KEY": "bench",
               "TAXCHECK_CACHE_DIR": str(Path(tmp) / "cache"), "NO_COLOR": "1"}
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "taxcheck", "run", "-m", "openai:bench", "-s", str(suite), "--no-cache",
                               "-j", str(args.j), "-o", str(Path(tmp) / "run.jsonl"), "-f", "json"],
                              capture_output=True, text=True, env=env)
        wall = time.perf_counter() - start
        if done.returncode not in (0, 3):
            print(done.stderr)
            return 1
        doc = json.loads(done.stdout)
        ideal = args.calls * args.latency / args.limit
        print(f"calls {args.calls} at -j {args.j}; server allows {args.limit} in flight, latency {args.latency:g} s")
        print(f"429s sent by the server:       {rejected['n']}")
        print(f"failed calls:                  {doc['failures']['openai:bench']}")
        print(f"successful responses (server): {api.successes}")
        print(f"peak in flight at the server:  {api.peak_in_flight}")
        print(f"wall time (whole command):     {wall:.2f} s")
        print(f"ideal at concurrency {args.limit}:        {ideal:.2f} s")
        print(f"ratio:                         {wall / ideal:.2f} (target <= 1.5)")
        return 0


if __name__ == "__main__":
    sys.exit(main())
