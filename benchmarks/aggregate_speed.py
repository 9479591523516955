"""Aggregation speed: 80,000 items × 3 models at ``--samples 3`` (target: build_table < 10 s).

Builds a synthetic run in memory (no files, no server): 80,000 suite items in the mix of
the built-in suites (contrast pairs, creative, dual-use, knowledge, math, pressure pairs,
pushback), three models answering every item three times, two-turn items twice. Times:

* ``build_table``: per-unit values for every dimension, rates and paired taxes, from
  grades already made (what ``report`` pays after grading);
* ``build_report`` with ``--grade``: the same plus rule grading of every recorded text
  (short synthetic texts: a refusal sentence, a helpful answer, a number), so it measures
  the pipeline's own overhead around scorers on easy input, not the scorers' worst case.

Each figure is the median of ``--runs`` runs.

    python benchmarks/aggregate_speed.py [--items 80000] [--samples 3] [--runs 3] [--grade]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from taxcheck.measure.aggregate import build_table  # noqa: E402
from taxcheck.grade.rules import Grade  # noqa: E402
from taxcheck.runfile import CallRecord, RunData, RunHeader  # noqa: E402
from taxcheck.suites.format import SuiteItem  # noqa: E402

MODELS = ["openai:base", "openai:cand-a", "openai:cand-b"]
REFUSAL = "I'm sorry, but I can't help with that."
HELPFUL = "Sure. Here is a clear, practical explanation with the steps you need."


def make_items(total: int) -> list[SuiteItem]:
    """Items in roughly the built-in suites' proportions, pairs kept whole."""
    items: list[dict] = []
    i = 0
    while len(items) < total:
        slot = i % 10
        if slot in (0, 1, 2):  # a contrast pair: two items
            items.append({"id": f"b{i}", "category": "over_refusal", "pair": f"p{i}", "variant": "benign", "prompt": "x", "expect": "comply"})
            items.append({"id": f"h{i}", "category": "harmful_refusal", "pair": f"p{i}", "variant": "harmful", "prompt": "x", "expect": "refuse"})
        elif slot == 3:
            items.append({"id": f"c{i}", "category": "creative", "prompt": "x", "expect": "comply"})
        elif slot == 4:
            items.append({"id": f"d{i}", "category": "dual_use", "prompt": "x", "expect": "comply"})
        elif slot == 5:
            items.append({"id": f"k{i}", "category": "capability.knowledge", "prompt": "x", "expect": "answer", "answer": {"choice": "B"}})
        elif slot == 6:
            items.append({"id": f"m{i}", "category": "capability.math", "prompt": "x", "expect": "answer", "answer": {"number": 42}})
        elif slot == 7:  # a pressure pair
            for v in ("neutral", "pressure"):
                items.append({"id": f"s{i}{v[0]}", "category": "sycophancy.pressure", "pair": f"q{i}", "variant": v, "prompt": "x",
                              "expect": "answer", "answer": {"number": 42}})
        else:
            items.append({"id": f"u{i}", "category": "sycophancy.pushback", "turns": ["x", "y"], "expect": "answer", "answer": {"number": 42}})
        i += 1
    return [SuiteItem.model_validate(d) for d in items[:total]]


_GRADES = {
    "wrong": Grade(correct=False), "right": Grade(correct=True), "refuse": Grade(refusal="refuse"),
    "comply": Grade(refusal="comply", hedged=False), "hedge": Grade(refusal="comply", hedged=True),
    "comply-harmful": Grade(refusal="comply"),
}


def make_run(total: int, samples: int, seed: int = 7, with_calls: bool = True) -> tuple[RunData, dict]:
    """The run and its grades; each model has its own per-item tendencies, so taxes are real.

    ``with_calls=False`` leaves the call records out (``build_table`` reads grades only).
    """
    rng = random.Random(seed)
    items = make_items(total)
    header = RunHeader(
        taxcheck_version="0.1.0", run_id="speed", created="2024-11-28T10:00:00+00:00", command=["taxcheck", "run"],
        models=MODELS, baseline=MODELS[0], suites=[{"name": "synthetic", "path": "s.jsonl", "sha256": "a" * 64, "items": total}],
        params={"samples": samples, "temperature": 0.7, "max_tokens": 256},
    )
    calls: dict = {}
    grades: dict = {}
    for m_index, model in enumerate(MODELS):
        lean = 0.05 * m_index
        for item in items:
            difficulty = rng.random()
            for s in range(samples):
                bad = rng.random() < difficulty * 0.3 + lean
                turns = 2 if item.turns else 1
                for t in range(turns):
                    key = (model, item.id, s, t)
                    if item.expect == "answer":
                        text, grade = ("The answer is 41.", "wrong") if bad else ("The answer is 42.", "right")
                    elif bad:
                        text, grade = REFUSAL, "refuse"
                    else:
                        text = HELPFUL
                        grade = ("hedge" if rng.random() < 0.1 else "comply") if item.expect == "comply" else "comply-harmful"
                    if with_calls:
                        # model_construct: trusted input, and validation would dominate set-up
                        calls[key] = CallRecord.model_construct(model=model, item=item.id, sample=s, turn=t, text=text, served_model=model)
                    grades[key] = _GRADES[grade]
    data = RunData(header=header, items={it.id: it for it in items}, calls=calls)
    return data, grades


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", type=int, default=80_000)
    ap.add_argument("--samples", type=int, default=3)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--grade", action="store_true", help="also time build_report, rule grading included")
    args = ap.parse_args()

    t0 = time.perf_counter()
    data, grades = make_run(args.items, args.samples, with_calls=args.grade)
    print(f"synthetic run: {len(data.items):,} items × {len(MODELS)} models × K = {args.samples}: "
          f"{len(grades):,} graded calls, built in {time.perf_counter() - t0:.1f} s (not timed below)")
    failures = {m: 0 for m in MODELS}
    times, cpu = [], []
    for _ in range(args.runs):
        start, start_cpu = time.perf_counter(), time.process_time()
        table = build_table(data, grades, MODELS, MODELS[0], args.samples, failures)
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    print(f"build_table: median {statistics.median(times):.2f} s wall, {statistics.median(cpu):.2f} s CPU"
          f" (wall min {min(times):.2f}, max {max(times):.2f}) over {args.runs} runs; target < 10 s")
    print(f"  load average while measuring: {', '.join(f'{x:.1f}' for x in os.getloadavg())} (2 cores: CPU time is the fairer figure)")
    row = table.row("over_refusal")
    assert row is not None
    tax = row.tax[MODELS[1]]
    print(f"  e.g. over_refusal n={row.n}: tax {tax.value * 100:+.2f} [{tax.ci_low * 100:+.2f}, {tax.ci_high * 100:+.2f}], p={tax.p_value:.2g}")
    if args.grade:
        from taxcheck.report.pipeline import build_report

        times, cpu = [], []
        for _ in range(args.runs):
            start, start_cpu = time.perf_counter(), time.process_time()
            build_report(data, Path("speed.jsonl"))
            times.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
        print(f"build_report (rule grading of every text + build_table): median {statistics.median(times):.2f} s wall,"
              f" {statistics.median(cpu):.2f} s CPU (wall min {min(times):.2f}, max {max(times):.2f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
