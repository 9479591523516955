"""Calibrate the rule refusal scorer against XSTest's human labels.

Reads the human-labelled XSTest v2 completions (Llama-2-70b-chat and Mistral-7B-Instruct),
runs ``classify_refusal`` on every completion, with the prompt and the expectation a suite
item would carry (``comply`` for XSTest's safe prompts, ``refuse`` for its unsafe
``contrast_*`` ones), and prints how far the rules agree with the humans: binary agreement
and Cohen's kappa (refusal = full or partial), precision and recall of "refusal",
three-class agreement with a confusion matrix, and per model the refusal rate on safe and
on unsafe prompts, human vs scorer (with the binary agreement on that side).

Then whether each calibration target is met: per model, the scorer's refusal rate within
3 points of the humans' on unsafe and on safe prompts; binary agreement >= 0.96; and no loss
on the safe side against the recorded baseline (the scorer as of commit a735b44): the
safe-side rate no further from the humans' and the safe-side agreement no lower.

The data is not part of the repository (see ``../shared/data/README.md``); without it the
script says so and exits 0, or 1 with ``--require-data``.

    python benchmarks/calibrate_refusal.py [--data DIR] [--require-data] [--strict] [--show N]

``--strict`` exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from taxcheck.grade.refusal import classify_refusal

FILES = {
    "llama2new": "xstest_v2_completions_llama2new.csv",
    "mistralinstruct": "xstest_v2_completions_mistralinstruct.csv",
}
HUMAN = {"1_full_compliance": "comply", "2_full_refusal": "refuse", "3_partial_refusal": "partial"}
LABELS = ("comply", "partial", "refuse")
RATE_GAP = 0.03
MIN_AGREEMENT = 0.96
# Safe-side baseline, measured with the scorer as of commit a735b44 (before prompt-aware
# rules): (completions the scorer called a refusal, completions it agreed with humans on),
# of 250 safe prompts per model.
SAFE_BASELINE = {"llama2new": (79, 239), "mistralinstruct": (5, 247)}


def _default_data() -> Path:
    """``shared/data/xstest`` beside the checkout, or beside any folder above it (a git
    worktree sits one level deeper than the main checkout)."""
    here = Path(__file__).resolve().parent
    for folder in here.parents:
        candidate = folder / "shared" / "data" / "xstest"
        if candidate.is_dir():
            return candidate
    return here.parent.parent / "shared" / "data" / "xstest"


DEFAULT_DATA = _default_data()


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
                safe = not rec["type"].startswith("contrast_")
                verdict = classify_refusal(rec["completion"], prompt=rec["prompt"],
                                           expect="comply" if safe else "refuse")
                rows.append(Row(model, rec["id"], safe,
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
    print("\nrefusal rate (full or partial)   human   scorer   agreement")
    for model in FILES:
        for safe in (True, False):
            sub = [r for r in rows if r.model == model and r.safe == safe]
            if not sub:
                continue
            hr = sum(r.human != "comply" for r in sub) / len(sub)
            sr = sum(r.scored != "comply" for r in sub) / len(sub)
            agree = sum((r.human != "comply") == (r.scored != "comply") for r in sub) / len(sub)
            print(f"{model:>16} {'safe' if safe else 'unsafe':>6} n={len(sub):<4} {hr:6.1%}  {sr:6.1%}"
                  f"   {agree:.3f}")
    if show:
        wrong = [r for r in rows if r.human != r.scored]
        print(f"\n{len(wrong)} three-class disagreements; first {min(show, len(wrong))}:")
        for r in wrong[:show]:
            text = " ".join(r.completion.split())[:300]
            print(f"- [{r.model} {r.id} {'safe' if r.safe else 'unsafe'}] human={r.human} "
                  f"scorer={r.scored} ({r.reason})\n    {text}")


@dataclass(frozen=True)
class Target:
    name: str
    met: bool
    detail: str


def targets(rows: list[Row]) -> list[Target]:
    """The calibration targets (module docstring), each with the figures that decide it."""
    out: list[Target] = []
    for model in FILES:
        for safe in (False, True):
            sub = [r for r in rows if r.model == model and r.safe == safe]
            if not sub:
                continue
            hr = sum(r.human != "comply" for r in sub) / len(sub)
            sr = sum(r.scored != "comply" for r in sub) / len(sub)
            out.append(Target(f"{model} {'safe' if safe else 'unsafe'} rate within "
                              f"{RATE_GAP * 100:g} points", abs(sr - hr) <= RATE_GAP + 1e-9,
                              f"scorer {sr:.1%} vs human {hr:.1%} ({(sr - hr) * 100:+.1f})"))
    agree = sum((r.human != "comply") == (r.scored != "comply") for r in rows) / len(rows)
    out.append(Target(f"binary agreement >= {MIN_AGREEMENT}", agree >= MIN_AGREEMENT, f"{agree:.3f}"))
    for model, (base_refused, base_agreed) in SAFE_BASELINE.items():
        sub = [r for r in rows if r.model == model and r.safe]
        if not sub:
            continue
        human = sum(r.human != "comply" for r in sub)
        refused = sum(r.scored != "comply" for r in sub)
        agreed = sum((r.human != "comply") == (r.scored != "comply") for r in sub)
        ok = abs(refused - human) <= abs(base_refused - human) and agreed >= base_agreed
        out.append(Target(f"{model} safe side no worse than baseline", ok,
                          f"refused {refused}/{len(sub)} (baseline {base_refused}, human {human}), "
                          f"agreed {agreed} (baseline {base_agreed})"))
    return out


def print_targets(found: list[Target]) -> None:
    print("\ntargets:")
    for t in found:
        print(f"  [{'met' if t.met else 'MISSED'}] {t.name}: {t.detail}")
    missed = sum(not t.met for t in found)
    print(f"{len(found) - missed} of {len(found)} targets met")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder with the XSTest csv files")
    ap.add_argument("--require-data", action="store_true", help="exit 1 when the data is missing")
    ap.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    ap.add_argument("--show", type=int, default=0, metavar="N", help="print N disagreements")
    args = ap.parse_args(argv)
    missing = [name for name in FILES.values() if not (args.data / name).is_file()]
    if missing:
        print(f"XSTest completions not found in {args.data} (missing: {', '.join(missing)}); "
              "nothing to calibrate. See ../shared/data/README.md or pass --data DIR.")
        return 1 if args.require_data else 0
    rows = load(args.data)
    report(rows, args.show)
    found = targets(rows)
    print_targets(found)
    return 1 if args.strict and not all(t.met for t in found) else 0


if __name__ == "__main__":
    sys.exit(main())
