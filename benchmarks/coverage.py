"""Coverage of every interval taxcheck prints (DESIGN §2: coverage is a tested property).

For each point of the grid, how often does the 95 % interval taxcheck prints contain the
truth, and how often is a true tax of 0 called a confident cost or bonus?

Grid: true baseline rates 0.01-0.99 (``RATES``), n = 20 / 50 / 200 items, K = 1 / 3 / 10
samples per item, item heterogeneity h = 0 / 0.3 / 0.9 (the intra-item correlation of the
two-type item model in ``taxcheck.measure.power``: h = 0 every item alike and the two models
independent, h = 0.9 items nearly always-or-never and the models strongly correlated,
because they find the same prompts hard), and a true tax of 0 or 10 points (towards the
middle of the scale). Intervals: the baseline's rate interval, and the paired tax interval
with its colour.

K = 1 is **exact**: every table of outcomes is enumerated and weighted by its probability
(no Monte-Carlo error). K > 1 is simulated: ``--reps`` replications per point drawn from
the exact per-item distribution of the item model; the printed Monte-Carlo error is two
standard errors at the printed figure's level. Intervals are computed by taxcheck's own
functions on the sufficient statistics (``stats.rate_counts`` and ``stats.paired_counts``
with sums, and sums of squares, of the item values, which ``rate`` and
``paired_difference`` reduce to; the unit tests pin that equality).

    python benchmarks/coverage.py [--reps 2000] [--jobs 2] [--csv FILE]
    python benchmarks/coverage.py --references   # needs scipy and statsmodels (scratch venv)

Targets: coverage >= 93 % at every grid point; false "confident" <= 5 %.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from taxcheck.measure import stats  # noqa: E402
from taxcheck.measure.power import ItemModel  # noqa: E402

RATES = (0.01, 0.05, 0.1, 0.3, 0.5, 0.7, 0.9, 0.95, 0.99)
NS = (20, 50, 200)
KS = (1, 3, 10)
HS = (0.0, 0.3, 0.9)
TAX = 0.1
TARGET_COVERAGE = 0.93
TARGET_FALSE_CONFIDENT = 0.05


@dataclass(frozen=True)
class Point:
    p: float
    tax: float
    n: int
    k: int
    h: float


@dataclass
class Result:
    point: Point
    rate_cov: float  # baseline rate interval contains p
    tax_cov: float  # tax interval contains the true tax
    confident: float  # share called a confident cost or bonus
    reps: int  # 0: exact


def tax_for(p: float) -> float:
    return TAX if p <= 0.5 else -TAX


def grid() -> list[Point]:
    return [Point(p, t, n, k, h) for k in KS for n in NS for h in HS for p in RATES for t in (0.0, tax_for(p))]


# --------------------------------------------------------------------------- K = 1, exact


def _log_binom(n: int, k: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def _xlogy(k: int, p: float) -> float:
    if k == 0:
        return 0.0
    return k * math.log(p) if p > 0 else -math.inf


_TABLES: dict[int, list[tuple[int, int, stats.Paired]]] = {}
_RATES: dict[int, list[stats.Rate]] = {}


def exact(point: Point) -> Result:
    n, p = point.n, point.p
    if n not in _TABLES:
        _TABLES[n] = [(b, c, stats.paired_counts(b, c, n)) for b in range(n + 1) for c in range(n + 1 - b)]
        _RATES[n] = [stats.rate_counts(x, n) for x in range(n + 1)]
    rate_cov = 0.0
    for x, r in enumerate(_RATES[n]):
        if r.ci_low <= p <= r.ci_high:
            rate_cov += math.exp(_log_binom(n, x) + _xlogy(x, p) + _xlogy(n - x, 1 - p))
    model = ItemModel(p, point.tax, point.h, 1)
    pb = sum(w * rc * (1 - rb) for w, rb, rc in model.types())
    pc = sum(w * rb * (1 - rc) for w, rb, rc in model.types())
    pa = 1.0 - pb - pc
    truth = pb - pc
    tax_cov = confident = 0.0
    for b, c, res in _TABLES[n]:
        log = _log_binom(n, b) + _log_binom(n - b, c) + _xlogy(b, pb) + _xlogy(c, pc) + _xlogy(n - b - c, pa)
        if log == -math.inf:
            continue
        prob = math.exp(log)
        if res.ci_low <= truth <= res.ci_high:
            tax_cov += prob
        if res.ci_low > 0 or res.ci_high < 0:
            confident += prob
    return Result(point, rate_cov, tax_cov, confident, 0)


# --------------------------------------------------------------------------- K > 1, simulated


def simulate(args: tuple[Point, int, int]) -> Result:
    point, reps, seed = args
    model = ItemModel(point.p, point.tax, point.h, point.k)
    dist = model.unit_distribution()
    cum, acc = [], 0.0
    for pr, _, _ in dist:
        acc += pr
        cum.append(acc)
    base = [b for _, b, _ in dist]
    base_sq = [b * b for _, b, _ in dist]
    plus = [max(0.0, c - b) for _, b, c in dist]
    minus = [max(0.0, b - c) for _, b, c in dist]
    diff_sq = [(c - b) ** 2 for _, b, c in dist]
    idx = range(len(dist))
    truth = point.tax
    rng = random.Random(seed)
    n = point.n
    rate_cov = tax_cov = confident = 0
    for _ in range(reps):
        draws = rng.choices(idx, cum_weights=cum, k=n)
        def total(values: list[float]) -> float:
            return math.fsum(map(values.__getitem__, draws))

        r = stats.rate_counts(total(base), n, total(base_sq))
        t = stats.paired_counts(total(plus), total(minus), n, total(diff_sq))
        rate_cov += r.ci_low <= point.p <= r.ci_high
        tax_cov += t.ci_low <= truth <= t.ci_high
        confident += t.ci_low > 0 or t.ci_high < 0
    return Result(point, rate_cov / reps, tax_cov / reps, confident / reps, reps)


def evaluate(task: tuple[Point, int, int]) -> Result:
    return exact(task[0]) if task[0].k == 1 else simulate(task)


# --------------------------------------------------------------------------- report


def mc_error(level: float, reps: int) -> float:
    return 0.0 if reps == 0 else 2 * math.sqrt(level * (1 - level) / reps)


def summarise(results: list[Result], reps: int) -> list[str]:
    lines = [
        "coverage of taxcheck's 95 % intervals, in % (K = 1 exact; K > 1 simulated,"
        f" {reps} replications a point, Monte-Carlo error ±{mc_error(0.95, reps) * 100:.1f} at 95 %,"
        f" ±{mc_error(0.05, reps) * 100:.1f} at 5 %)",
        "rate: the baseline's rate interval over the 9 true rates; tax: the paired tax interval over"
        " 9 rates × tax 0 and ±10 points;",
        "false conf.: a true tax of 0 called a confident cost or bonus (red or green), worst over the 9 rates",
        "",
        f"{'n':>4} {'K':>3} {'h':>4} | {'rate min (at p)':>17} {'mean':>5} | {'tax min (at p, tax)':>22} {'mean':>5} |"
        f" {'false conf. max (at p)':>22}",
    ]
    for k in KS:
        for n in NS:
            for h in HS:
                rs = [r for r in results if (r.point.n, r.point.k, r.point.h) == (n, k, h)]
                rate_rs = [r for r in rs if r.point.tax == 0.0]
                rmin = min(rate_rs, key=lambda r: r.rate_cov)
                tmin = min(rs, key=lambda r: r.tax_cov)
                fmax = max(rate_rs, key=lambda r: r.confident)
                rmean = sum(r.rate_cov for r in rate_rs) / len(rate_rs)
                tmean = sum(r.tax_cov for r in rs) / len(rs)
                lines.append(
                    f"{n:>4} {k:>3} {h:>4.1f} | {rmin.rate_cov * 100:>8.1f} ({rmin.point.p:<4}) {rmean * 100:>7.1f} |"
                    f" {tmin.tax_cov * 100:>8.1f} ({tmin.point.p:<4}, {tmin.point.tax * 100:+4.0f}) {tmean * 100:>7.1f} |"
                    f" {fmax.confident * 100:>13.1f} ({fmax.point.p:<4})"
                )
    worst_rate = min((r for r in results if r.point.tax == 0.0), key=lambda r: r.rate_cov)
    worst_tax = min(results, key=lambda r: r.tax_cov)
    worst_fc = max((r for r in results if r.point.tax == 0.0), key=lambda r: r.confident)
    ok = (
        worst_rate.rate_cov >= TARGET_COVERAGE
        and worst_tax.tax_cov >= TARGET_COVERAGE
        and worst_fc.confident <= TARGET_FALSE_CONFIDENT
    )

    def where(r: Result) -> str:
        pt = r.point
        return f"p={pt.p}, tax={pt.tax:+.2f}, n={pt.n}, K={pt.k}, h={pt.h}"

    lines += [
        "",
        f"worst rate coverage {worst_rate.rate_cov * 100:.1f} % ({where(worst_rate)})",
        f"worst tax coverage {worst_tax.tax_cov * 100:.1f} % ({where(worst_tax)})",
        f"worst false-confident rate {worst_fc.confident * 100:.1f} % ({where(worst_fc)})",
        f"targets (coverage >= {TARGET_COVERAGE * 100:.0f} %, false confident <= {TARGET_FALSE_CONFIDENT * 100:.0f} %):"
        f" {'met' if ok else 'NOT MET'}",
    ]
    return lines


def run(reps: int, jobs: int, csv_path: Path | None) -> bool:
    points = grid()
    start = time.perf_counter()
    tasks = [(pt, reps, 1000 + i) for i, pt in enumerate(points)]
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        results = list(pool.map(evaluate, tasks, chunksize=6))
    total_s = time.perf_counter() - start
    lines = summarise(results, reps)
    print("\n".join(lines))
    print(f"\n{len(points)} grid points ({sum(pt.k == 1 for pt in points)} exact), {total_s:.1f} s on {jobs} processes")
    if csv_path is not None:
        with open(csv_path, "w", encoding="utf-8") as fh:
            fh.write("p,tax,n,k,h,rate_coverage,tax_coverage,confident,reps\n")
            for r in results:
                pt = r.point
                fh.write(f"{pt.p},{pt.tax},{pt.n},{pt.k},{pt.h},{r.rate_cov:.6f},{r.tax_cov:.6f},{r.confident:.6f},{r.reps}\n")
    return lines[-1].endswith("met") and "NOT" not in lines[-1]


# --------------------------------------------------------------------------- references


def references() -> None:
    """Compare taxcheck's formulas with scipy / statsmodels where they implement the same."""
    import numpy as np
    from scipy import optimize
    from scipy.stats import binomtest
    from statsmodels.stats.contingency_tables import mcnemar
    from statsmodels.stats.proportion import proportion_confint

    def worst(pairs):
        return max(abs(a - b) for a, b in pairs)

    for n in NS:
        plain = [(v, r) for x in range(n + 1) for v, r in zip(stats.wilson(x, n), proportion_confint(x, n, method="wilson"))]
        cc = [
            (v, r)
            for x in range(n + 1)
            for v, r in zip(stats.wilson(x, n, correction=0.5), binomtest(x, n).proportion_ci(method="wilsoncc"))
        ]
        print(f"n={n}: Wilson vs statsmodels proportion_confint(wilson): max |diff| {worst(plain):.1e};"
              f" Wilson cc 1/2 vs scipy binomtest(...).proportion_ci(wilsoncc): {worst(cc):.1e}")
    for n in (20, 50):
        rows = []
        for b in range(n + 1):
            for c in range(n + 1 - b):
                if b + c == 0:
                    continue
                table = np.array([[n - b - c, b], [c, 0]])
                for gamma, corrected in ((0.0, False), (1.0, True)):
                    if abs(b - c) < gamma:
                        continue  # statsmodels squares |b − c| − 1 < 0 back up; the score test floors it at 0
                    t = stats.score_statistic(b, c, n, 0.0, gamma)
                    ours = 1.0 if t == 0 else math.erfc(abs(t) / math.sqrt(2))
                    rows.append((ours, mcnemar(table, exact=False, correction=corrected).pvalue))
        print(f"n={n}: score test at 0 (γ = 0 and 1) vs statsmodels mcnemar(exact=False, correction=False/True),"
              f" every table ({len(rows)} comparisons): max |p diff| {worst(rows):.1e}")
    rng = random.Random(7)
    rows = []
    for _ in range(300):
        n = rng.randint(5, 200)
        b = rng.randint(0, n)
        c = rng.randint(0, n - b)
        delta = rng.uniform(-0.95, 0.95)
        lo, hi = max(0.0, -delta), (1.0 - delta) / 2.0
        if hi - lo < 1e-6:
            continue

        def nll(q: float, b=b, c=c, n=n, delta=delta) -> float:
            cells = ((b, q + delta), (c, q), (n - b - c, 1 - 2 * q - delta))
            return -sum(k * math.log(max(pr, 1e-300)) for k, pr in cells if k > 0)

        q = optimize.minimize_scalar(nll, bounds=(lo, hi), method="bounded", options={"xatol": 1e-12}).x
        ref = (b - c - n * delta) / math.sqrt(n * (2 * q + delta * (1 - delta)))
        rows.append((stats.score_statistic(b, c, n, delta, 0.0), ref))
    print(f"Tango statistic (closed-form restricted MLE) vs scipy.optimize constrained MLE, 300 random"
          f" tables and Δ: max |diff| {worst(rows):.1e}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=2000, help="replications per simulated grid point")
    ap.add_argument("--jobs", type=int, default=2, help="processes for the simulated part")
    ap.add_argument("--csv", type=Path, help="also write every grid point to this CSV file")
    ap.add_argument("--references", action="store_true", help="compare with scipy/statsmodels instead")
    args = ap.parse_args()
    if args.references:
        references()
        return 0
    return 0 if run(args.reps, args.jobs, args.csv) else 1


if __name__ == "__main__":
    raise SystemExit(main())
