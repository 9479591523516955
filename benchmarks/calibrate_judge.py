"""Calibrate an LLM judge's refusal rubric against XSTest's human labels.

The same 900 human-labelled completions and the same figures as
``calibrate_refusal.py`` (binary agreement and kappa, precision and recall, three-class
agreement, confusion matrix, per-model refusal rates), with the judge's verdict in place
of the rule scorer's. Verdicts the judge would not give in the required form are counted
as unscored and left out of the figures, as in a real run.

It needs a reachable judge endpoint and its key, so it cannot run in CI (no LLM API is
reachable there); the test suite runs it against the loopback server on a tiny file.

    python benchmarks/calibrate_judge.py --judge openai:gpt-4o [--data DIR] [-j 16] [--limit N]
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from calibrate_refusal import DEFAULT_DATA, FILES, HUMAN, Row, report  # noqa: E402

from taxcheck.send.cache import Cache, default_cache_dir  # noqa: E402
from taxcheck.send.clients import EndpointClient  # noqa: E402
from taxcheck.errors import UserError  # noqa: E402
from taxcheck.grade.judge import RETRY_NUDGE, RUBRICS, Nonces, judge_messages, judge_params, parse_verdict  # noqa: E402
from taxcheck.send.limits import AdaptiveLimit  # noqa: E402
from taxcheck.send.sender import Sender  # noqa: E402
from taxcheck.send.specs import Registry  # noqa: E402
from taxcheck.suites.format import SuiteItem  # noqa: E402


def read(data: Path, limit: int | None) -> list[dict]:
    rows = []
    for model, name in FILES.items():
        with open(data / name, newline="", encoding="utf-8") as fh:
            for i, rec in enumerate(csv.DictReader(fh)):
                if limit is not None and i >= limit:
                    break
                rows.append({**rec, "model": model})
    return rows


async def grade_all(rows: list[dict], judge_spec: str, concurrency: int, timeout: float) -> list[tuple[str | None, str]]:
    judge = Registry.load().resolve(judge_spec)
    cache = Cache(default_cache_dir())
    sender = Sender(cache, judge_params(judge), retries=4)
    client = EndpointClient(judge.endpoint, timeout)
    limit = AdaptiveLimit(concurrency)
    rubric = RUBRICS["refusal"]
    nonces = Nonces.for_cache(cache)  # the same check codes on a rerun, so the cache answers
    sem = asyncio.Semaphore(concurrency)

    async def one(rec: dict) -> tuple[str | None, str]:
        safe = not rec["type"].startswith("contrast_")
        item = SuiteItem(id=f"xstest-{rec['id']}", category="over_refusal" if safe else "harmful_refusal",
                         prompt=rec["prompt"], expect="comply" if safe else "refuse")
        nonce = nonces.nonce(judge_spec, "refusal", (rec["model"], item.id, 0, 0))
        msgs = judge_messages("refusal", item, item.first_messages(), rec["completion"], nonce)
        async with sem:
            for attempt in range(2):
                result = await sender.send(judge, msgs, 0, client, limit)
                if result.completion is None:
                    msg = result.error.message if result.error else "auth failed"
                    return None, f"judge call failed: {msg}"
                parsed = parse_verdict(result.completion.text, rubric, nonce)
                if not isinstance(parsed, str):
                    return parsed[0], parsed[2]
                msgs = msgs + [{"role": "assistant", "content": result.completion.text},
                               {"role": "user", "content": RETRY_NUDGE.format(nonce=nonce)}]
            return None, f"unscored: {parsed}"

    try:
        return await asyncio.gather(*(one(r) for r in rows))
    finally:
        await client.aclose()
        cache.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--judge", required=True, help="model spec of the judge, e.g. openai:gpt-4o")
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--require-data", action="store_true")
    ap.add_argument("-j", "--concurrency", type=int, default=16)
    ap.add_argument("--timeout", type=float, default=60.0)
    ap.add_argument("--limit", type=int, default=None, help="first N completions of each model")
    ap.add_argument("--show", type=int, default=0)
    args = ap.parse_args(argv)
    missing = [name for name in FILES.values() if not (args.data / name).is_file()]
    if missing:
        print(f"XSTest completions not found in {args.data}; nothing to calibrate.")
        return 1 if args.require_data else 0
    rows = read(args.data, args.limit)
    try:
        verdicts = asyncio.run(grade_all(rows, args.judge, args.concurrency, args.timeout))
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    scored: list[Row] = []
    unscored = 0
    for rec, (label, reason) in zip(rows, verdicts):
        if label is None:
            unscored += 1
            continue
        scored.append(Row(rec["model"], rec["id"], not rec["type"].startswith("contrast_"),
                          HUMAN[rec["final_label"].strip()], label, reason, rec["completion"]))
    print(f"judge: {args.judge}; unscored verdicts (left out): {unscored}")
    if not scored:
        print("no scored verdicts; is the judge reachable?")
        return 1
    report(scored, args.show)
    return 0


if __name__ == "__main__":
    sys.exit(main())
