"""Calibrate the rule refusal scorer against XSTest's human labels.

Reads the human-labelled XSTest v2 completions (Llama-2-70b-chat and Mistral-7B-Instruct),
runs ``classify_refusal`` on every completion and prints how far the rules agree with the
humans: binary agreement and Cohen's kappa (refusal = full or partial), precision and recall
of "refusal", three-class agreement with a confusion matrix, and per model the refusal rate
on safe and on unsafe prompts, human vs scorer.

The data is not part of the repository (see ``../shared/data/README.md``); without it the
script says so and exits 0, or 1 with ``--require-data``.

    python benchmarks/calibrate_refusal.py [--data DIR] [--require-data] [--show N]
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from taxcheck.scorers.refusal import classify_refusal

FILES = {
    "llama2new": "xstest_v2_completions_llama2new.csv",
    "mistralinstruct": "xstest_v2_completions_mistralinstruct.csv",
}
HUMAN = {"1_full_compliance": "comply", "2_full_refusal": "refuse", "3_partial_refusal": "partial"}
LABELS = ("comply", "partial", "refuse")
DEFAULT_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "xstest"


@dataclass(frozen=True)
class Row:
    model: str
    id: str
    safe: bool
    human: str
    scored: str
    reason: str
    completion: str


def load(data: Path) -> list[Row]:
    rows: list[Row] = []
    for model, name in FILES.items():
        with open(data / name, newline="", encoding="utf-8") as fh:
            for rec in csv.DictReader(fh):
                verdict = classify_refusal(rec["completion"])
                rows.append(Row(model, rec["id"], not rec["type"].startswith("contrast_"),
                                HUMAN[rec["final_label"].strip()], verdict.label, verdict.reason,
                                rec["completion"]))
    return rows


def kappa(pairs: list[tuple[bool, bool]]) -> float:
    n = len(pairs)
    po = sum(a == b for a, b in pairs) / n
    pa, pb = sum(a for a, _ in pairs) / n, sum(b for _, b in pairs) / n
    pe = pa * pb + (1 - pa) * (1 - pb)
    return 1.0 if pe == 1 else (po - pe) / (1 - pe)


def report(rows: list[Row], show: int) -> None:
    n = len(rows)
    binary = [(r.human != "comply", r.scored != "comply") for r in rows]
    tp = sum(h and s for h, s in binary)
    fp = sum(s and not h for h, s in binary)
    fn = sum(h and not s for h, s in binary)
    print(f"completions: {n}")
    print(f"binary agreement (refusal = full or partial): {sum(h == s for h, s in binary) / n:.3f}")
    print(f"Cohen's kappa (binary):                       {kappa(binary):.3f}")
    print(f"precision of 'refusal':                       {tp / max(tp + fp, 1):.3f}")
    print(f"recall of 'refusal':                          {tp / max(tp + fn, 1):.3f}")
    print(f"three-class agreement:                        {sum(r.human == r.scored for r in rows) / n:.3f}")
    confusion = Counter((r.human, r.scored) for r in rows)
    print("\nconfusion (rows human, columns scorer):")
    print(f"{'':>10}" + "".join(f"{lab:>10}" for lab in LABELS))
    for h in LABELS:
        print(f"{h:>10}" + "".join(f"{confusion[(h, s)]:>10}" for s in LABELS))
    print("\nrefusal rate (full or partial)   human   scorer")
    for model in FILES:
        for safe in (True, False):
            sub = [r for r in rows if r.model == model and r.safe == safe]
            if not sub:
                continue
            hr = sum(r.human != "comply" for r in sub) / len(sub)
            sr = sum(r.scored != "comply" for r in sub) / len(sub)
            print(f"{model:>16} {'safe' if safe else 'unsafe':>6} n={len(sub):<4} {hr:6.1%}  {sr:6.1%}")
    if show:
        wrong = [r for r in rows if r.human != r.scored]
        print(f"\n{len(wrong)} three-class disagreements; first {min(show, len(wrong))}:")
        for r in wrong[:show]:
            text = " ".join(r.completion.split())[:300]
            print(f"- [{r.model} {r.id} {'safe' if r.safe else 'unsafe'}] human={r.human} "
                  f"scorer={r.scored} ({r.reason})\n    {text}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder with the XSTest csv files")
    ap.add_argument("--require-data", action="store_true", help="exit 1 when the data is missing")
    ap.add_argument("--show", type=int, default=0, metavar="N", help="print N disagreements")
    args = ap.parse_args(argv)
    missing = [name for name in FILES.values() if not (args.data / name).is_file()]
    if missing:
        print(f"XSTest completions not found in {args.data} (missing: {', '.join(missing)}); "
              "nothing to calibrate. See ../shared/data/README.md or pass --data DIR.")
        return 1 if args.require_data else 0
    report(load(args.data), args.show)
    return 0


if __name__ == "__main__":
    sys.exit(main())
