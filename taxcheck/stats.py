"""Intervals, paired differences and tests (DESIGN §2: every number carries its uncertainty).

Standard library only: this module is imported on every ``taxcheck`` start, and numpy or
scipy would cost more start-up time than all the statistics here ever take.

**One procedure for every K.** Each item contributes one value in [0, 1] (a rate: the mean
of its K samples) or in [-1, 1] (a paired difference of two such means). Every interval
and test below is a *score* procedure on those item values, with a quarter-unit
continuity correction (``CORRECTION``):

* a rate is the Wilson score interval on S = Σ mᵢ "successes" out of n items;
* a paired tax is Tango's (1998) score interval for a difference of paired proportions on
  B = Σ max(dᵢ, 0) and C = Σ max(-dᵢ, 0) (the discordant pairs, fractional when K > 1),
  and its p-value is the same score statistic evaluated at a tax of 0 (which is McNemar's
  statistic, (|B - C| - γ) / √(B + C)). The interval is the set of taxes the test does not
  reject, so "the interval excludes 0" and "p < 0.05" are one decision, and a gate "the
  lower end is above PP points" is that test rejecting a tax of PP. The code computes the
  decision at 0 first and then searches for each end only on its side of 0, so the two
  cannot disagree even by rounding.

**Why item values and a binomial variance, for K > 1.** The items, not the samples, were
drawn from the population of prompts, so the item is the unit (DESIGN §2: K never fakes
precision). A value mᵢ in [0, 1] with mean p has variance at most p(1 − p) (reached when
every item is always or never refused), and a difference dᵢ in [-1, 1] has
Var(d) ≤ E|d| − Δ², which is exactly the variance the two binary formulas use. So applied
to item means they are the binary procedures, valid whatever the item heterogeneity: never
narrower than the data allow, never of zero width from finite data (the variance comes
from the score equation, not from the spread of the observed values, so identical answers
still leave uncertainty), and monotone near 0 (an interval depends on the data only
through S, or B and C, and moves the same way they do). The price: K narrows a rate not at
all and a tax only through fewer discordant items, so with homogeneous items the
intervals are conservative. In model evaluations the items dominate the variance (the
same prompt is refused at every temperature), which is where this costs least.

Rejected alternatives, measured (``benchmarks/coverage.py`` and the exploration behind
it): the percentile bootstrap over items that this module used before collapsed near 0
(20 items × 10 samples, one positive: upper end 0.015, narrower than Wilson on 1/200),
gave zero width on identical heterogeneous items and covered 83.5 % at small n; a
t-interval on item means has zero width whenever the item values are equal; a
design-effect (Rao-Scott / Korn-Graubard) Wilson estimates the within-item correlation
from the data, which near 0 is noise, and is then non-monotone (zero positives must fall
back to n, one positive at 1/10 suggests an effective n near n·K).

**Why the quarter correction.** Exact coverage over the benchmark's grid at K = 1 (true
rates 0.01-0.99, n 20/50/200, correlated models, every table enumerated): plain Wilson
covers only 91.1 % (n = 50, p = 0.01) and 92.4 % (n = 20, p = 0.95); plain Tango/McNemar
calls a true tax of 0 confident up to 5.4 % of the time (n = 50) and covers down to 93.2 %.
With γ = 1/4 the minima are 94.0 % (rates) and 94.7 % (taxes) and the false-confident rate
stays under 4.9 %; γ = 1/2 (Yates-like, the classic "with continuity correction") buys
little more coverage (95.5 %) at the cost of power (its size falls to 2.5 % at n = 20).
The exact McNemar test that the table printed before is more conservative still (size
2.3 % at n = 20) and has no interval for the difference that inverts it.

Everything is pure and deterministic: no random numbers, and results depend only on the
multiset of item values, not on their order.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

__all__ = [
    "ALPHA",
    "CORRECTION",
    "LOW_N",
    "METHOD_PAIRED",
    "METHOD_RATE",
    "Z95",
    "Paired",
    "Rate",
    "above_allowance",
    "cohen_kappa",
    "paired_counts",
    "paired_difference",
    "rate",
    "rate_counts",
    "score_statistic",
    "score_test",
    "wilson",
]

Z95 = 1.959963984540054  # two-sided 95 % standard normal quantile
ALPHA = 0.05  # the level the table's colours and gates decide at (1 - 0.95)
LOW_N = 30  # a dimension with n < LOW_N is flagged "low n" (DESIGN §2)
CORRECTION = 0.25  # continuity correction in item units; see the module docstring
METHOD_RATE = "wilson-cc0.25 on item means"
METHOD_PAIRED = "tango-score-cc0.25 on item differences"

# Values this close outside [0, 1] are float noise from averaging, not bad input.
_TOLERANCE = 1e-9
# Bisection steps for an interval end: 2^-60 of the bracket, below float resolution.
_STEPS = 60
# JSON prints fractions to 6 decimals; a gate decides on the number the user can read.
_GATE_DECIMALS = 6

_NAN = math.nan


@dataclass(frozen=True)
class Rate:
    """A share with its uncertainty: mean of per-item values and a 95 % interval."""

    value: float  # mean of per-item values
    n: int  # number of items
    ci_low: float
    ci_high: float
    method: str = METHOD_RATE


@dataclass(frozen=True)
class Paired:
    """A paired difference (candidate − baseline) over the items both models answered.

    ``ci_low > 0`` (a confident cost), ``ci_high < 0`` (a confident bonus) and
    ``p_value < ALPHA`` are one decision of one test.
    """

    value: float  # mean of per-item differences (candidate - baseline)
    n: int  # items both answered
    ci_low: float
    ci_high: float
    p_value: float  # two-sided, of the score test of "no difference"
    method: str = METHOD_PAIRED
    statistic: float = _NAN  # the score statistic at a difference of 0 (signed)


# --------------------------------------------------------------------------- helpers


def _clean(values: Sequence[float], name: str) -> list[float]:
    """Return ``values`` as floats in [0, 1]; reject NaN and anything clearly outside.

    Raises ``ValueError``: a value outside [0, 1] means the caller aggregated wrongly, and
    a silently clipped bad score would bias the tax.
    """
    out = [float(v) for v in values]
    # min/max skip NaN (every comparison with it is false), hence the separate NaN scan
    if out and (min(out) < 0.0 or max(out) > 1.0 or any(v != v for v in out)):
        for i, v in enumerate(out):
            if math.isnan(v) or v < -_TOLERANCE or v > 1.0 + _TOLERANCE:
                raise ValueError(f"{name}[{i}] = {values[i]!r} is not a share in [0, 1]")
        out = [min(1.0, max(0.0, v)) for v in out]
    return out


def _normal_sf2(t: float) -> float:
    """Two-sided standard normal tail P(|Z| ≥ |t|)."""
    return math.erfc(abs(t) / math.sqrt(2.0))


# --------------------------------------------------------------------------- rates


def wilson(
    successes: float, n: float, z: float = Z95, correction: float = 0.0
) -> tuple[float, float]:
    """Wilson score interval for ``successes`` out of ``n``; ``(nan, nan)`` when n == 0.

    The set of π with (|x − nπ| − γ)⁺ ≤ z·√(nπ(1 − π)), γ = ``correction``: γ = 0 is
    Wilson (1927), γ = ½ Newcombe's (1998) method 4. Wilson rather than the textbook
    Wald interval because Wald collapses to zero width at 0 % and 100 %, exactly the rates
    a well-behaved model shows on benign prompts. ``successes`` may be fractional.
    """
    if n < 0 or successes < 0 or successes > n:
        raise ValueError(f"need 0 <= successes <= n, got {successes}/{n}")
    if n == 0:
        return _NAN, _NAN
    # The exact limits at x <= γ and x >= n - γ are 0 and 1; do not let rounding move them.
    low = 0.0 if successes <= correction else _wilson_end(successes - correction, n, z, -1.0)
    high = 1.0 if successes >= n - correction else _wilson_end(successes + correction, n, z, 1.0)
    return low, high


def _wilson_end(x: float, n: float, z: float, sign: float) -> float:
    p = x / n
    z2 = z * z
    denom = 1.0 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = (z / denom) * math.sqrt(max(0.0, p * (1.0 - p) / n + z2 / (4 * n * n)))
    return min(1.0, max(0.0, centre + sign * half))


def rate_counts(total: float, n: int) -> Rate:
    """The rate of ``n`` items whose values sum to ``total`` (its sufficient statistic)."""
    if n == 0:
        return Rate(_NAN, 0, _NAN, _NAN)
    total = min(float(n), max(0.0, total))
    value = total / n
    low, high = wilson(total, n, correction=CORRECTION)
    return Rate(value, n, min(low, value), max(high, value))


def rate(values: Sequence[float]) -> Rate:
    """Mean of per-item values with a 95 % interval (score interval on the item means).

    ``values`` holds one number in [0, 1] per item, already averaged over that item's
    samples; the same formula serves one sample per item and K (module docstring).
    """
    data = _clean(values, "values")
    return rate_counts(math.fsum(data), len(data))  # fsum: exact, so order never matters


# --------------------------------------------------------------------------- paired


def score_statistic(b: float, c: float, n: int, delta: float, correction: float = CORRECTION) -> float:
    """Tango's score statistic for H0: Δ = ``delta``, continuity corrected by ``correction``.

    ``b`` counts items where the candidate scored and the baseline did not, ``c`` the
    reverse (fractional for item means), ``n`` all items; Δ = (b − c)/n estimates
    P(candidate) − P(baseline). The nuisance parameter (the share of one discordant
    kind) is its maximum-likelihood estimate under H0 (Tango 1998, eq. 3; Fagerland,
    Lydersen & Laake 2014, "Recommended tests and confidence intervals for paired binomial
    proportions", §3.4), which keeps the variance positive for every Δ inside (−1, 1) even
    when b = c = 0. Positive means the data lie above ``delta``. At Δ = 0 it is McNemar's
    statistic (|b − c| − γ)⁺ / √(b + c), signed.
    """
    num = b - c - n * delta
    if abs(num) <= correction:
        return 0.0
    num = num - correction if num > 0 else num + correction
    a2 = 2.0 * n
    bq = -b - c + (2.0 * n - b + c) * delta
    cq = -c * delta * (1.0 - delta)
    root = math.sqrt(max(0.0, bq * bq - 4.0 * a2 * cq))
    # the larger root of a2·q² + bq·q + cq = 0, in the form that does not cancel
    q = (root - bq) / (2.0 * a2) if bq <= 0 else -2.0 * cq / (root + bq)
    var = n * (2.0 * q + delta * (1.0 - delta))
    if var <= 0.0:
        return math.copysign(math.inf, num)
    return num / math.sqrt(var)


def score_test(b: float, c: float, n: int) -> tuple[float, float]:
    """The signed statistic and two-sided p-value of "no difference" (Δ = 0).

    The one test behind the colour, the gates and the printed p (``paired_counts``), and
    behind the power figures (``taxcheck.power``).
    """
    t0 = score_statistic(b, c, n, 0.0)
    return t0, (1.0 if t0 == 0.0 else _normal_sf2(t0))


def _bisect(b: float, c: float, n: int, inside: float, outside: float, z: float) -> float:
    """The interval end between ``inside`` (not rejected) and ``outside`` (rejected).

    The statistic falls as Δ rises, so one crossing of ±z lies between them; the answer
    is always on the ``inside`` side of the bracket, never beyond ``outside``.
    """
    upper_end = outside > inside
    for _ in range(_STEPS):
        mid = (inside + outside) / 2.0
        if mid == inside or mid == outside:
            break
        t = score_statistic(b, c, n, mid)
        rejected = t < -z if upper_end else t > z
        if rejected:
            outside = mid
        else:
            inside = mid
    return inside


def paired_counts(b: float, c: float, n: int, z: float = Z95) -> Paired:
    """The paired difference from its sufficient statistics (see ``score_statistic``).

    The p-value decides first; each interval end is then searched for only on its side of
    0, so a confident interval and p < ALPHA are one fact, not two computations that
    usually agree.
    """
    if n == 0:
        return Paired(_NAN, 0, _NAN, _NAN, _NAN, statistic=_NAN)
    if b < 0 or c < 0 or b + c > n * (1 + _TOLERANCE):
        raise ValueError(f"need b, c >= 0 and b + c <= n, got b={b}, c={c}, n={n}")
    value = (b - c) / n
    t0, p_value = score_test(b, c, n)
    if p_value < ALPHA:  # 0 is rejected: both ends lie on the estimate's side of it
        toward_zero = 0.0
        low_inside = high_inside = value
    else:  # 0 is inside the interval
        toward_zero = math.nan
        low_inside, high_inside = min(0.0, value), max(0.0, value)
    low_outside = toward_zero if value > 0 and toward_zero == 0.0 else -1.0
    high_outside = toward_zero if value < 0 and toward_zero == 0.0 else 1.0
    low = _bisect(b, c, n, inside=low_inside, outside=low_outside, z=z)
    high = _bisect(b, c, n, inside=high_inside, outside=high_outside, z=z)
    return Paired(value, n, low, high, p_value, statistic=t0)


def paired_difference(candidate: Sequence[float], baseline: Sequence[float]) -> Paired:
    """Mean of per-item differences (candidate − baseline) with interval and p-value.

    Both sequences are aligned by item (the caller keeps only items both models
    answered), each value a mean over that item's samples. Tango's score procedure with
    continuity correction (module docstring) on the positive and negative parts of the
    differences, the same for one sample per item (then it is the textbook binary
    procedure) as for K.
    """
    if len(candidate) != len(baseline):
        raise ValueError(
            f"candidate and baseline must be aligned by item: {len(candidate)} != {len(baseline)}"
        )
    cand = _clean(candidate, "candidate")
    base = _clean(baseline, "baseline")
    n = len(cand)
    if n == 0:
        return Paired(_NAN, 0, _NAN, _NAN, _NAN, statistic=_NAN)
    diffs = [x - y for x, y in zip(cand, base, strict=True)]
    b = math.fsum(d for d in diffs if d > 0)
    c = -math.fsum(d for d in diffs if d < 0)
    return paired_counts(b, c, n)


def above_allowance(ci_low: float, allowance_pp: float) -> bool:
    """Is a tax's lower end above a gate's allowance (in percentage points)?

    Decided exactly on the lower end as ``-f json`` prints it (6 decimals of a fraction)
    against the allowance as typed, in rational arithmetic: a lower end of
    0.14000000000000004 is 14 points, which does not exceed an allowance of 14, and float
    noise in ``ci_low * 100`` cannot trip a gate. NaN (no paired items) is never above.
    """
    if math.isnan(ci_low):
        return False
    shown = Fraction(round(ci_low, _GATE_DECIMALS)).limit_denominator(10**_GATE_DECIMALS)
    return shown * 100 > Fraction(repr(float(allowance_pp)))


# --------------------------------------------------------------------------- agreement


def cohen_kappa(a: Sequence[str], b: Sequence[str]) -> float:
    """Cohen's kappa between two labelings of the same items (rule vs judge, DESIGN §4).

    kappa = (p_o − p_e) / (1 − p_e). Returns nan when it is undefined: no items, or both
    raters used one and the same label throughout (p_e = 1), where agreement is total but
    carries no information beyond chance.
    """
    if len(a) != len(b):
        raise ValueError(f"label sequences must be aligned by item: {len(a)} != {len(b)}")
    n = len(a)
    if n == 0:
        return _NAN
    observed = sum(1 for x, y in zip(a, b) if x == y) / n
    count_a, count_b = Counter(a), Counter(b)
    expected = sum(count_a[label] * count_b[label] for label in count_a) / (n * n)
    if expected >= 1.0:
        return _NAN
    return (observed - expected) / (1.0 - expected)
