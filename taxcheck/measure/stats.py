"""Intervals, paired differences and tests (DESIGN §2: every number carries its uncertainty).

Standard library only: this module is imported on every ``taxcheck`` start, and numpy or
scipy would cost more start-up time than all the statistics here ever take.

**One procedure for every K.** Each item contributes one value: in [0, 1] for a rate (the
mean of its K samples) or in [-1, 1] for a paired difference of two such means. Every
interval and test is a *score* procedure on effective counts built from those values, with
a quarter-unit continuity correction (``CORRECTION``):

* a rate is the Wilson score interval on S/φ "successes" out of n/φ, S = Σ mᵢ;
* a paired tax is Tango's (1998) score interval for a difference of paired proportions on
  B/φ and C/φ out of n/φ, B = Σ max(dᵢ, 0) and C = Σ max(-dᵢ, 0) (the discordant items,
  fractional when K > 1); its p-value is the same statistic at a tax of 0, McNemar's
  (|B − C| − γ)/√(B + C) on the effective counts. The interval is the set of taxes the
  test does not reject, so "the interval excludes 0" and "p < 0.05" are one decision, and a
  gate "the lower end is above PP points" is that test rejecting a tax of PP. The decision
  at 0 is made first and each end is then searched for only on its side of 0, so the two
  cannot disagree even by rounding.

With one sample per item φ = 1 and these are the textbook binary procedures.

**Clustered by item (K > 1).** The items, not the samples, were drawn from the population
of prompts, so the item is the unit (DESIGN §2: K never fakes precision). A value mᵢ in
[0, 1] with mean p varies at most p(1 − p) (every item always or never refused), and a
difference dᵢ in [-1, 1] at most E|d| − Δ²: exactly the variances of the binary formulas,
so applied to item means they are valid whatever the heterogeneity. φ (``dispersion``, a
Rao & Scott 1992 design factor) is how much less the item values actually vary than that
bound, shrunk towards 1 by ``PRIOR_ITEMS`` pseudo-items: all-or-nothing items give φ = 1
(K buys nothing, rightly), alike items asked K times give φ near 1/K once there is enough
discordant mass to show it. The shrinkage keeps φ at 1 near 0, which makes the intervals
monotone there (a first refusal at 1/10 never narrows the upper end, as it did under the
old bootstrap) and keeps coverage at small n; the variance comes from the score equation
on counts, never from the spread of the observed values alone, so finite data never give
zero width (identical answers from both models still leave a ±18-point interval at
n = 20).

Rejected alternatives, measured: the percentile bootstrap over items that this module
used before collapsed near 0 (20 items × 10 samples, one positive: upper end 0.015,
narrower than Wilson on 1/200), gave zero width on identical heterogeneous items, covered
83.5 % at small n and took minutes on 80,000 items; a t-interval on item means has zero
width whenever the item values are equal; an unshrunk design factor (Korn-Graubard) is
noise near 0 and non-monotone; the bound alone (φ = 1 always) meets every target but
covers 99-100 % at K > 1, wasting the samples (tax intervals 1.1-1.8× as wide
over the K > 1 grid).

**Why the quarter correction.** Exact coverage at K = 1, every table enumerated, over a
finer exploration grid than the benchmark's (true rates 0.01, 0.02, 0.05, 0.1 … 0.99;
n 20-500; phi correlation 0-0.95 between the models): plain Wilson covers only 91.1 %
(n = 50, p = 0.01) and 92.4 % (n = 20, p = 0.95); plain Tango/McNemar calls a true tax of
0 confident up to 5.4 % of the time (n = 50) and covers down to 93.2 %. With γ = 1/4 the
minima are 94.0 % (rates) and 94.7 % (taxes) and the false-confident rate stays under
4.9 %; γ = 1/2 (the classic "with continuity correction") buys a little more coverage
(95.4 %) at a cost in power (its size falls to 2.5 % at n = 20). The exact McNemar test
the table printed before is as conservative (2.3 % at n = 20) and has no interval for the
difference that inverts it: it disagreed with the Newcombe interval in 136 of the 1,771
tables at n = 20. ``benchmarks/coverage.py`` prints the coverage on the stated grid.

Everything is pure and deterministic: no random numbers, and results depend only on the
multiset of item values, not on their order.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "ALPHA",
    "CORRECTION",
    "PRIOR_ITEMS",
    "LOW_N",
    "METHOD_PAIRED",
    "METHOD_RATE",
    "Z95",
    "Paired",
    "Rate",
    "above_allowance",
    "cohen_kappa",
    "dispersion",
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
PRIOR_ITEMS = 5.0  # pseudo-items shrinking the dispersion towards 1; see ``dispersion``
METHOD_RATE = "wilson score, cc 1/4, on item means (Rao-Scott effective counts)"
METHOD_PAIRED = "tango score, cc 1/4, on item differences (Rao-Scott effective counts)"

# Values this close outside [0, 1] are float noise from averaging, not bad input.
_TOLERANCE = 1e-9
# An interval end is found to within this (a millionth of a percentage point) ...
_END_TOL = 1e-12
# ... in at most this many root-finding steps (about 12 in practice; a safety cap).
_STEPS = 200
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
    dispersion: float = 1.0  # Rao-Scott factor the interval used (1: binary; see ``dispersion``)


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
    dispersion: float = 1.0  # Rao-Scott factor the interval used (1: binary; see ``dispersion``)


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


def dispersion(spread: float, bound: float) -> float:
    """How much less the item values vary than the binary bound allows, shrunk towards 1.

    ``spread`` is Σ(vᵢ − v̄)² of the item values, ``bound`` the same sum had every value
    been 0 or ±1 with the same mean (Σ|vᵢ| − n·v̄², never smaller). Their ratio is the
    Rao-Scott design factor: 1 for one sample per item or all-or-nothing items, about
    1/K for alike items asked K times. ``PRIOR_ITEMS`` pseudo-items at ratio 1 are added
    to both, so little discordant mass cannot argue the factor down: near 0 it stays at
    1 (monotone, and no zero width), and only a run with real within-item variation earns
    a narrower interval from its K samples.
    """
    return min(1.0, (max(0.0, spread) + PRIOR_ITEMS) / (max(0.0, bound) + PRIOR_ITEMS))


def rate_counts(total: float, n: int, squares: float | None = None) -> Rate:
    """The rate of ``n`` items whose values sum to ``total`` and their squares to ``squares``.

    These are its sufficient statistics; ``squares=None`` means one sample per item
    (values 0 or 1, squares = total). The Wilson interval is taken on the effective counts
    total/φ out of n/φ, φ = ``dispersion`` (Rao & Scott 1992).
    """
    if n == 0:
        return Rate(_NAN, 0, _NAN, _NAN)
    total = min(float(n), max(0.0, total))
    value = total / n
    phi = 1.0 if squares is None else dispersion(squares - n * value * value, total - n * value * value)
    low, high = wilson(total / phi, n / phi, correction=CORRECTION)
    return Rate(value, n, min(low, value), max(high, value), dispersion=phi)


def rate(values: Sequence[float]) -> Rate:
    """Mean of per-item values with a 95 % interval (score interval on the item means).

    ``values`` holds one number in [0, 1] per item, already averaged over that item's
    samples; the same formula serves one sample per item and K (module docstring).
    """
    data = _clean(values, "values")
    # fsum: exact, so the result never depends on the order of the items
    return rate_counts(math.fsum(data), len(data), math.fsum(v * v for v in data))


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
    behind the power figures (``taxcheck.measure.power``).
    """
    t0 = score_statistic(b, c, n, 0.0)
    return t0, (1.0 if t0 == 0.0 else _normal_sf2(t0))


def _interval_end(b: float, c: float, n: int, inside: float, outside: float, z: float) -> float:
    """The interval end between ``inside`` (not rejected) and ``outside`` (rejected).

    The statistic falls as Δ rises, so one crossing of ±z lies between them. Found by
    the Illinois variant of regula falsi (bisection while an end is infinite), which keeps
    the bracket: the answer is always on the ``inside`` side, never beyond ``outside``,
    and within ``_END_TOL`` of the exact end.
    """
    sign = -1.0 if outside > inside else 1.0  # rejected where sign·T(Δ) > z

    def excess(delta: float) -> float:
        return sign * score_statistic(b, c, n, delta) - z

    f_in, f_out = excess(inside), excess(outside)
    last = 0
    for _ in range(_STEPS):
        if abs(outside - inside) <= _END_TOL:
            break
        if math.isinf(f_out) or math.isinf(f_in) or f_out == f_in:
            mid = (inside + outside) / 2.0
        else:
            mid = inside + (outside - inside) * (-f_in) / (f_out - f_in)
            if not min(inside, outside) < mid < max(inside, outside):
                mid = (inside + outside) / 2.0
        f_mid = excess(mid)
        if f_mid > 0:
            outside, f_out = mid, f_mid
            if last == 1:
                f_in /= 2.0  # Illinois: stop one end from sticking
            last = 1
        else:
            inside, f_in = mid, f_mid
            if last == -1:
                f_out /= 2.0
            last = -1
            if f_mid == 0.0:
                break
    return inside


def paired_counts(b: float, c: float, n: int, squares: float | None = None, z: float = Z95) -> Paired:
    """The paired difference from its sufficient statistics (see ``score_statistic``).

    ``b`` = Σ max(dᵢ, 0), ``c`` = Σ max(−dᵢ, 0), ``squares`` = Σ dᵢ² of the item
    differences dᵢ (``None``: one sample per item, so squares = b + c). Tango's procedure
    runs on the effective counts b/φ, c/φ out of n/φ (φ = ``dispersion``). The p-value
    decides first; each interval end is then searched for only on its side of 0, so a
    confident interval and p < ALPHA are one fact, not two computations that usually agree.
    """
    if n == 0:
        return Paired(_NAN, 0, _NAN, _NAN, _NAN, statistic=_NAN)
    if b < 0 or c < 0 or b + c > n * (1 + _TOLERANCE):
        raise ValueError(f"need b, c >= 0 and b + c <= n, got b={b}, c={c}, n={n}")
    value = (b - c) / n
    phi = 1.0 if squares is None else dispersion(squares - n * value * value, b + c - n * value * value)
    b, c, m = b / phi, c / phi, n / phi
    t0, p_value = score_test(b, c, m)
    if p_value < ALPHA:  # 0 is rejected: both ends lie on the estimate's side of it
        low_inside = high_inside = value
        low_outside = 0.0 if value > 0 else -1.0
        high_outside = 0.0 if value < 0 else 1.0
    else:  # 0 is inside the interval
        low_inside, high_inside = min(0.0, value), max(0.0, value)
        low_outside, high_outside = -1.0, 1.0
    low = _interval_end(b, c, m, inside=low_inside, outside=low_outside, z=z)
    high = _interval_end(b, c, m, inside=high_inside, outside=high_outside, z=z)
    return Paired(value, n, low, high, p_value, statistic=t0, dispersion=phi)


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
    return paired_counts(b, c, n, math.fsum(d * d for d in diffs))


def above_allowance(ci_low: float, allowance_pp: float) -> bool:
    """Is a tax's lower end above a gate's allowance (in percentage points)?

    Decided exactly on the lower end as ``-f json`` prints it (6 decimals of a fraction)
    against the allowance as typed, in rational arithmetic: a lower end of
    0.14000000000000004 is 14 points, which does not exceed an allowance of 14, and float
    noise in ``ci_low * 100`` cannot trip a gate. NaN (no paired items) is never above.
    """
    from fractions import Fraction  # here, not at import: every start imports this module

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
