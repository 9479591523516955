"""Intervals, paired differences and tests (DESIGN §2: every number carries its uncertainty).

Standard library only: this module is imported on every ``taxcheck`` start, and numpy or
scipy would cost more start-up time than all the statistics here ever take.

Two shapes of data reach this module, and they need different statistics:

* **Binary** (one sample per item, each value 0 or 1). Rates get a Wilson score interval;
  paired differences get Newcombe's square-and-add interval for paired proportions
  (Newcombe 1998, method 10) and an exact McNemar p-value. These are closed-form, behave
  well at 0 % and 100 % and at small n, and need no random numbers.
* **Clustered** (``--samples K`` with K > 1, so each item's value is a mean over K
  samples). Treating the K·n samples as independent would shrink the interval by roughly
  √K for no reason, because the items, not the samples, are the unit that was drawn from
  the population of prompts. So the interval comes from a percentile bootstrap *over
  items* (seeded, hence reproducible), and the paired p-value from an exact sign test over
  items. The bootstrap was preferred to a t-interval because a rate near 0 or 1 has a
  skewed sampling distribution that a symmetric t-interval misrepresents (and then has to
  be clipped), while the bootstrap stays inside [0, 1] by construction.

Everything is pure and deterministic: the bootstrap uses its own ``random.Random(SEED)``
and sorts its input first, so the result depends neither on global random state nor on
the order in which items arrive.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "BOOTSTRAP_REPS",
    "LOW_N",
    "SEED",
    "Z95",
    "Paired",
    "Rate",
    "cohen_kappa",
    "mcnemar_exact",
    "paired_difference",
    "rate",
    "wilson",
]

Z95 = 1.959963984540054  # two-sided 95 % standard normal quantile
LOW_N = 30  # a dimension with n < LOW_N is flagged "low n" (DESIGN §2)
SEED = 20241128  # fixed so that a report re-rendered from the same run file is identical
BOOTSTRAP_REPS = 2000  # enough for stable 2.5 %/97.5 % percentiles (50 draws beyond each)

# Values this close outside [0, 1] are float noise from averaging, not bad input.
_TOLERANCE = 1e-9
# A per-item difference smaller than this counts as a tie in the sign test.
_TIE = 1e-12

_NAN = math.nan
# Above this many discordant pairs the exact big-integer binomial sum gets slow (~0.2 s at
# 20 000); beyond it a log-space float sum is used, accurate to ~1e-12 relative.
_EXACT_MAX = 5_000


@dataclass(frozen=True)
class Rate:
    """A share with its uncertainty: mean of per-item values and a 95 % interval."""

    value: float  # mean of per-item values
    n: int  # number of items
    ci_low: float
    ci_high: float


@dataclass(frozen=True)
class Paired:
    """A paired difference (candidate − baseline) over the items both models answered."""

    value: float  # mean of per-item differences (candidate - baseline)
    n: int  # items both answered
    ci_low: float
    ci_high: float
    p_value: float  # two-sided


# --------------------------------------------------------------------------- helpers


def _clean(values: Sequence[float], name: str) -> list[float]:
    """Return ``values`` as floats in [0, 1]; reject NaN and anything clearly outside.

    Raises ``ValueError``: a value outside [0, 1] means the caller aggregated wrongly, and
    a silently clipped bad score would bias the tax.
    """
    out: list[float] = []
    for i, raw in enumerate(values):
        v = float(raw)
        if math.isnan(v) or v < -_TOLERANCE or v > 1.0 + _TOLERANCE:
            raise ValueError(f"{name}[{i}] = {raw!r} is not a share in [0, 1]")
        out.append(min(1.0, max(0.0, v)))
    return out


def _is_binary(values: Sequence[float]) -> bool:
    return all(v == 0.0 or v == 1.0 for v in values)


def _contain(value: float, low: float, high: float, lo: float, hi: float) -> tuple[float, float]:
    """Clip ``(low, high)`` to ``[lo, hi]`` and widen it to contain ``value``.

    Rounding (or a skewed bootstrap) can leave the estimate a hair outside its interval;
    a table that prints a value outside its own interval would look like a bug.
    """
    low = max(lo, min(low, value))
    high = min(hi, max(high, value))
    return low, high


def _quantile(sorted_values: Sequence[float], q: float) -> float:
    """Linear-interpolation quantile of already sorted data (R type 7, numpy default)."""
    pos = q * (len(sorted_values) - 1)
    i = math.floor(pos)
    frac = pos - i
    if i + 1 >= len(sorted_values):
        return sorted_values[-1]
    return sorted_values[i] + frac * (sorted_values[i + 1] - sorted_values[i])


def _bootstrap_mean_interval(
    values: Sequence[float], reps: int = BOOTSTRAP_REPS
) -> tuple[float, float]:
    """95 % percentile bootstrap interval of the mean, resampling whole items.

    Input is sorted first so that the interval does not depend on item order, and the
    generator is private and seeded so that it does not depend on (or disturb) global
    random state. Resampling indices and summing is the fastest pure-Python form.
    """
    data = sorted(values)
    n = len(data)
    rng = random.Random(SEED)
    choices = rng.choices
    means = sorted(sum(choices(data, k=n)) / n for _ in range(reps))
    return _quantile(means, 0.025), _quantile(means, 0.975)


# --------------------------------------------------------------------------- rates


def wilson(successes: float, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for ``successes`` out of ``n``; ``(nan, nan)`` when n == 0.

    Wilson rather than the textbook Wald interval because Wald collapses to zero width at
    0 % and 100 %, exactly the rates a well-behaved model shows on benign prompts.
    ``successes`` may be fractional (it is only used through p = successes / n).
    """
    if n < 0 or successes < 0 or successes > n:
        raise ValueError(f"need 0 <= successes <= n, got {successes}/{n}")
    if n == 0:
        return _NAN, _NAN
    p = successes / n
    z2 = z * z
    denom = 1.0 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = (z / denom) * math.sqrt(p * (1.0 - p) / n + z2 / (4 * n * n))
    # The exact limits at p = 0 and p = 1 are 0 and 1; do not let rounding move them.
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return low, high


def rate(values: Sequence[float]) -> Rate:
    """Mean of per-item values with a 95 % interval (Wilson, or item bootstrap if K > 1).

    ``values`` holds one number in [0, 1] per item, already averaged over that item's
    samples. All-binary input means one sample per item and gets the Wilson interval.
    Anything else is clustered by item and gets the percentile bootstrap over items; with
    a single such item there is no between-item spread to learn from, so the interval is
    the whole of [0, 1] rather than a falsely exact point.
    """
    data = _clean(values, "values")
    n = len(data)
    if n == 0:
        return Rate(_NAN, 0, _NAN, _NAN)
    value = math.fsum(data) / n  # fsum: exact, so the value does not depend on item order
    if _is_binary(data):
        low, high = wilson(sum(data), n)
    elif n == 1:
        low, high = 0.0, 1.0
    else:
        low, high = _bootstrap_mean_interval(data)
    low, high = _contain(value, low, high, 0.0, 1.0)
    return Rate(value, n, low, high)


# --------------------------------------------------------------------------- paired


def mcnemar_exact(b: int, c: int) -> float:
    """Exact two-sided McNemar p-value: binomial test of b vs c discordant pairs, p = ½.

    p = min(1, 2 · P(X ≤ min(b, c))) with X ~ Binomial(b + c, ½); 1.0 when b + c == 0.
    Computed in exact integer arithmetic (Python's int / int division rounds correctly),
    so there is no underflow for large counts and no approximation for small ones.
    """
    if b < 0 or c < 0 or int(b) != b or int(c) != c:
        raise ValueError(f"discordant counts must be non-negative integers, got b={b}, c={c}")
    b, c = int(b), int(c)
    m = b + c
    if m == 0 or b == c:
        return 1.0  # with b == c the lower tail alone already holds half the mass
    k = min(b, c)
    if m > _EXACT_MAX:
        return min(1.0, 2.0 * _binomial_half_tail_float(k, m))
    term = 1  # C(m, 0)
    tail = 1
    for i in range(1, k + 1):
        term = term * (m - i + 1) // i
        tail += term
    return min(1.0, 2 * tail / (1 << m))


def _binomial_half_tail_float(k: int, m: int) -> float:
    """P(X <= k) for X ~ Binomial(m, 1/2) in floating point, for m too big for big ints.

    Starts at the largest term, P(X = k), from log-gamma, and walks down the tail with the
    ratio P(X = i - 1) / P(X = i) = i / (m - i + 1) until the terms stop mattering.
    Relative error ~1e-12; a tail below ~1e-308 underflows to 0.0.
    """
    log_term = math.lgamma(m + 1) - math.lgamma(k + 1) - math.lgamma(m - k + 1) - m * math.log(2)
    term = math.exp(log_term)
    tail = term
    i = k
    while i > 0 and term > tail * 1e-17:
        term *= i / (m - i + 1)
        tail += term
        i -= 1
    return tail


def _newcombe_paired(a: int, b: int, c: int, d: int, z: float = Z95) -> tuple[float, float]:
    """Newcombe's (1998) method 10 interval for p1 − p2 from a paired 2×2 table.

    ``a`` both 1, ``b`` candidate 1 / baseline 0, ``c`` candidate 0 / baseline 1, ``d``
    both 0; p1 = (a + b)/n, p2 = (a + c)/n. The Wilson intervals of the two marginals are
    combined by "square and add", with the cross term weighted by the phi correlation of
    the table, which is what makes the interval paired rather than independent.

    Phi is Newcombe's adjusted estimate (as in Fagerland, Lydersen & Laake, *Statistical
    Analysis of Contingency Tables*, §8.5, and Newcombe's worked example in Altman et al.,
    *Statistics with Confidence*): 0 when a marginal is empty; when ad − bc > 0 it is
    shrunk by n/2 and floored at 0, which keeps a positive correlation from over-narrowing
    the interval in small tables.
    """
    n = a + b + c + d
    p1 = (a + b) / n
    p2 = (a + c) / n
    l1, u1 = wilson(a + b, n, z)
    l2, u2 = wilson(a + c, n, z)

    marginals = (a + b) * (c + d) * (a + c) * (b + d)
    if marginals == 0:
        phi = 0.0
    else:
        cross = a * d - b * c
        if cross > n / 2:
            phi = (cross - n / 2) / math.sqrt(marginals)
        elif cross >= 0:
            phi = 0.0
        else:
            phi = cross / math.sqrt(marginals)

    theta = p1 - p2
    dl1, du1 = p1 - l1, u1 - p1
    dl2, du2 = p2 - l2, u2 - p2
    # |phi| <= 1 keeps these non-negative mathematically; max() guards against rounding.
    delta = math.sqrt(max(0.0, dl1 * dl1 - 2 * phi * dl1 * du2 + du2 * du2))
    epsilon = math.sqrt(max(0.0, du1 * du1 - 2 * phi * du1 * dl2 + dl2 * dl2))
    return theta - delta, theta + epsilon


def paired_difference(candidate: Sequence[float], baseline: Sequence[float]) -> Paired:
    """Mean of per-item differences (candidate − baseline) with interval and p-value.

    Both sequences are aligned by item (the caller keeps only items both models
    answered). All-binary input: Newcombe method 10 interval, exact McNemar p-value on
    the discordant items. Otherwise (K > 1 samples): paired percentile bootstrap over
    items for the interval, and an exact two-sided sign test over the items whose
    difference is non-zero for the p-value (the sign test needs no assumption about the
    shape of the differences, which are lumpy when K is small).
    """
    if len(candidate) != len(baseline):
        raise ValueError(
            f"candidate and baseline must be aligned by item: {len(candidate)} != {len(baseline)}"
        )
    cand = _clean(candidate, "candidate")
    base = _clean(baseline, "baseline")
    n = len(cand)
    if n == 0:
        return Paired(_NAN, 0, _NAN, _NAN, _NAN)
    diffs = [x - y for x, y in zip(cand, base, strict=True)]
    value = math.fsum(diffs) / n

    if _is_binary(cand) and _is_binary(base):
        a = sum(1 for x, y in zip(cand, base, strict=True) if x == 1.0 and y == 1.0)
        b = sum(1 for x, y in zip(cand, base, strict=True) if x == 1.0 and y == 0.0)
        c = sum(1 for x, y in zip(cand, base, strict=True) if x == 0.0 and y == 1.0)
        d = n - a - b - c
        low, high = _newcombe_paired(a, b, c, d)
        p_value = mcnemar_exact(b, c)
    else:
        if n == 1:
            low, high = -1.0, 1.0
        else:
            low, high = _bootstrap_mean_interval(diffs)
        pos = sum(1 for x in diffs if x > _TIE)
        neg = sum(1 for x in diffs if x < -_TIE)
        p_value = mcnemar_exact(pos, neg)

    low, high = _contain(value, low, high, -1.0, 1.0)
    return Paired(value, n, low, high, p_value)


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
