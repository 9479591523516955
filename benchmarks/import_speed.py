"""How fast the importers stream, and how much memory they hold.

Generates an OR-Bench-shaped CSV of ``--rows`` rows (80,000 by default, the size of
``or-bench-80k``; the prompts are synthetic) and times ``iter_import`` + ``write_suite`` on it,
then measures the import's peak Python memory with tracemalloc in a second pass (tracemalloc
slows the code, so it does not share a pass with the timing). A streaming importer's peak stays
far below the size of the items it wrote; a list-building one grows with the file.
Where ../shared/data exists, the real XSTest and GSM8K files are timed too.

    python benchmarks/import_speed.py [--rows N]
"""

from __future__ import annotations

import argparse
import csv
import random
import resource
import tempfile
import time
import tracemalloc
from pathlib import Path

from taxcheck.suites.importers import iter_import, write_suite

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
_WORDS = ["how", "why", "what", "can", "could", "explain", "describe", "history", "safety", "process", "system", "kitchen", "knife", "chemistry"]
_CATEGORIES = ["deception", "harassment", "harmful", "hate", "illegal", "privacy", "self-harm", "sexual", "unethical", "violence"]


def make_orbench(path: Path, rows: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["prompt", "category"])
        for _ in range(rows):
            words = rng.choices(_WORDS, k=rng.randint(8, 40))
            text = " ".join(words).capitalize() + "?"
            if rng.random() < 0.05:
                text = text.replace(" ", ",\n", 1)  # some quoted multi-line fields
            w.writerow([text, rng.choice(_CATEGORIES)])


def measure(fmt: str, path: Path, out: Path, **options: object) -> tuple[int, float, float, float]:
    """(items, wall seconds, CPU seconds, peak MiB of Python allocations in a second, traced pass).

    CPU time is printed beside wall time because a busy machine inflates the wall clock.
    """
    start, cpu = time.perf_counter(), time.process_time()
    n = write_suite(iter_import(fmt, path, **options), out)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    tracemalloc.start()
    write_suite(iter_import(fmt, path, **options), out)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return n, seconds, cpu, peak / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=80_000)
    args = parser.parse_args()
    cases: list[tuple[str, str, Path, dict[str, object]]] = []
    with tempfile.TemporaryDirectory() as tmp:
        synthetic = Path(tmp) / "or-bench-80k.csv"
        make_orbench(synthetic, args.rows)
        cases.append((f"orbench (synthetic, {args.rows} rows)", "orbench", synthetic, {}))
        for label, fmt, rel in (("xstest (real)", "xstest", "xstest/xstest_prompts.csv"),
                                ("gsm8k (real)", "gsm8k", "gsm8k/test.jsonl")):
            if (DATA / rel).exists():
                cases.append((label, fmt, DATA / rel, {}))
            else:
                print(f"{label}: skipped, {DATA / rel} not found")
        print(f"{'case':34} {'items':>7} {'wall s':>8} {'cpu s':>7} {'items/s':>9} {'file MiB':>9} {'suite MiB':>9} {'peak MiB':>9}")
        for label, fmt, path, options in cases:
            out = Path(tmp) / "suite.jsonl"
            n, seconds, cpu, peak = measure(fmt, path, out, **options)
            print(
                f"{label:34} {n:>7} {seconds:>8.2f} {cpu:>7.2f} {n / seconds:>9.0f} "
                f"{path.stat().st_size / 2**20:>9.1f} {out.stat().st_size / 2**20:>9.1f} {peak:>9.1f}"
            )
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"max RSS of this process: {rss:.0f} MiB")


if __name__ == "__main__":
    main()
