"""How small a tax can a run call confident? (issue 15 §2: ``--dry-run`` and ``suites show``)

A run of 30 items cannot see a 5-point tax, and it is better to learn that before paying
for it. These pure functions give, per dimension, the smallest tax a run would call a
confident cost with a given power, using **the same test the table uses**
(``stats.score_test``: the table's colour, gates and p-value), under a stated model of
the items.

**The item model** (also the model ``benchmarks/coverage.py`` checks coverage under).
Items differ in how often a model "scores" on them (refuses, hedges, gets it wrong): with
*heterogeneity* h in [0, 1], a share p of the items are "hard" with rate h' + (1 − h')p and
the rest "easy" with rate (1 − h')p, where h' = √h; so the mean rate is p and h is the
intra-item correlation of answers (h = 0: every item alike, answers independent; h = 1:
each item always or never). The candidate (mean p + Δ) has the same structure and finds
hard every item the baseline finds hard, plus a share Δ of the others: the tax is as
heterogeneous as the scores (h = 1: Δ of the items flip to always; h = 0: every item's
rate rises by Δ). The two models' answers to one item are independent given the item's
rates. Heterogeneity is what makes the two models agree: with no tax, single answers of
the two models differ on a share ψ = 2p(1 − p)(1 − h) of the items, the **discordance** a
user may know from an earlier run and can give instead of h.

**How much K helps.** The table's procedure (``taxcheck.measure.stats``) is clustered by item: K
samples narrow a tax only as far as answers vary *within* items (its dispersion factor).
With h near 1 (the same prompt is refused at every temperature, as in most evaluations)
K buys almost nothing: at n = 200, p = 0.2, h = 0.98 the detectable tax is 4.0 points at
K = 1 and 3.6 at K = 10; with h = 0 it falls from 12.4 to 4.3. The figures for K = 1 are
exact (every discordance table summed) up to a few thousand discordant items; beyond that,
and for K > 1, they use a normal approximation of the two discordant sums (delta method,
the dispersion factor at its expected value), checked against simulation in the tests.

**Conditional dimensions** (``expected_units``): hedging counts only answers that
complied, sycophancy flips only pairs whose first answer was right, so their n depends on
an assumed first-answer rate (``COMPLY_RATE``, ``CORRECT_RATE``), stated with the figure.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from taxcheck.measure import stats
from taxcheck.dimensions import DIMENSIONS, Dimension

if TYPE_CHECKING:
    from taxcheck.suites.format import SuiteItem

__all__ = [
    "ASSUMED_BASELINE",
    "COMPLY_RATE",
    "CORRECT_RATE",
    "DEFAULT_HETEROGENEITY",
    "DimensionPower",
    "ItemModel",
    "detectable_tax",
    "dimension_power",
    "expected_units",
    "heterogeneity_for",
    "power_of",
    "Assumptions",
    "parse_assumptions",
    "power_lines",
]

DEFAULT_HETEROGENEITY = 0.7  # most of the variance is between items (see the docstring)
COMPLY_RATE = 0.9  # assumed share of benign answers that comply (hedging's units)
CORRECT_RATE = 0.8  # assumed share of first answers that are right (sycophancy's units)
# A baseline rate per dimension when the user states none: what a capable, aligned
# model scores on the built-in suites; each figure is printed with the rate it assumed.
ASSUMED_BASELINE: dict[str, float] = {
    "over_refusal": 0.05,
    "harmful_refusal": 0.90,
    "pair_accuracy": 0.85,
    "creative": 0.05,
    "dual_use": 0.05,
    "hedging": 0.20,
    "capability.knowledge": 0.70,
    "capability.math": 0.70,
    "capability.code": 0.60,
    "sycophancy.pressure": 0.10,
    "sycophancy.pushback": 0.10,
}
_RESOLUTION = 0.001  # detectable taxes are found to a tenth of a point
# Past this variance of the discordant count (sd 50) the exact sum costs more than it is
# worth: the normal approximation is then within a few tenths of a power point of it.
_EXACT_MAX_VARIANCE = 2500.0


# --------------------------------------------------------------------------- the model


@dataclass(frozen=True)
class ItemModel:
    """Two models answering ``samples`` times each item of a heterogeneous population.

    ``baseline_rate`` p and ``tax`` Δ are in "bad-rate" terms (the candidate's rate is
    p + Δ); ``heterogeneity`` h is the intra-item correlation (module docstring).
    """

    baseline_rate: float
    tax: float = 0.0
    heterogeneity: float = DEFAULT_HETEROGENEITY
    samples: int = 1

    def __post_init__(self) -> None:
        p, d = self.baseline_rate, self.tax
        if not 0.0 < p < 1.0:
            raise ValueError(f"baseline rate {p} must lie strictly between 0 and 1")
        if not 0.0 <= p + d <= 1.0:
            raise ValueError(f"a tax of {d} takes the rate {p} outside [0, 1]")
        if not 0.0 <= self.heterogeneity <= 1.0:
            raise ValueError(f"heterogeneity {self.heterogeneity} must lie in [0, 1]")
        if self.samples < 1:
            raise ValueError(f"samples must be at least 1, got {self.samples}")

    def types(self) -> list[tuple[float, float, float]]:
        """(share of items, baseline rate, candidate rate) of the item types.

        An item is "hard" (rate h' + (1 − h')·mean) or "easy" ((1 − h')·mean) for each model,
        h' = √h; the candidate finds hard every item the baseline does, plus a share Δ of
        the rest (for Δ < 0, the baseline's hard items less a share |Δ|), so the tax has
        the same heterogeneity as the scores.
        """
        p, d = self.baseline_rate, self.tax
        q = p + d
        lam = math.sqrt(self.heterogeneity)

        def rate(hard: bool, mean: float) -> float:
            return lam * hard + (1 - lam) * mean

        shares = ((min(p, q), True, True), (max(0.0, d), False, True), (max(0.0, -d), True, False), (1 - max(p, q), False, False))
        return [(w, rate(hb, p), rate(hc, q)) for w, hb, hc in shares if w > 0.0]

    def discordance(self) -> float:
        """Share of items on which one answer of each model differs (K = 1)."""
        return sum(w * (rc * (1 - rb) + rb * (1 - rc)) for w, rb, rc in self.types())

    def unit_distribution(self) -> list[tuple[float, float, float]]:
        """(probability, baseline item mean, candidate item mean) over every outcome.

        The exact distribution of what one item contributes to the table: each model's
        mean over its K answers.
        """
        k = self.samples
        probs: dict[tuple[int, int], float] = {}
        for share, rb, rc in self.types():
            pb, pc = _binomial_pmf(k, rb), _binomial_pmf(k, rc)
            for yb in range(k + 1):
                for yc in range(k + 1):
                    probs[(yb, yc)] = probs.get((yb, yc), 0.0) + share * pb[yb] * pc[yc]
        return [(pr, yb / k, yc / k) for (yb, yc), pr in sorted(probs.items()) if pr > 0.0]


def heterogeneity_for(baseline_rate: float, discordance: float) -> float:
    """The heterogeneity at which the models disagree on ``discordance`` of the items."""
    most = 2 * baseline_rate * (1 - baseline_rate)
    if not 0.0 <= discordance <= most:
        raise ValueError(
            f"discordance {discordance} is impossible at a baseline rate of {baseline_rate}: "
            f"between 0 and {most:.3f} (models that agree only by chance)"
        )
    return 1.0 - discordance / most


# --------------------------------------------------------------------------- power


def power_of(model: ItemModel, n_units: int, alpha: float = stats.ALPHA) -> float:
    """Probability that a run of ``n_units`` items calls ``model.tax`` a confident cost."""
    if n_units <= 0:
        return 0.0
    if model.samples == 1:
        pb = sum(w * rc * (1 - rb) for w, rb, rc in model.types())
        pc = sum(w * rb * (1 - rc) for w, rb, rc in model.types())
        psi = pb + pc
        if n_units * psi * (1 - psi) <= _EXACT_MAX_VARIANCE:
            return _binary_power(n_units, pb, pc, alpha)
    return _normal_power(model, n_units, alpha)


def detectable_tax(
    n_units: int,
    baseline_rate: float,
    *,
    discordance: float | None = None,
    samples: int = 1,
    power: float = 0.8,
    alpha: float = stats.ALPHA,
    heterogeneity: float = DEFAULT_HETEROGENEITY,
    direction: str = "lower",
) -> float | None:
    """The smallest tax (a fraction: 0.09 = 9 points) called a confident cost with ``power``.

    ``baseline_rate`` is the baseline's score on the dimension (its refusal rate, or its
    accuracy for ``direction="higher"``); ``discordance``, when given, replaces the
    ``heterogeneity`` assumption (module docstring). None when no tax the scale allows
    reaches that power (too few units), 0 < result otherwise, to a tenth of a point.
    """
    if direction not in ("lower", "higher"):
        raise ValueError(f"direction must be 'lower' or 'higher', not {direction!r}")
    p = baseline_rate if direction == "lower" else 1.0 - baseline_rate
    if not 0.0 < p < 1.0:
        raise ValueError(f"baseline rate {baseline_rate} must lie strictly between 0 and 1")
    h = heterogeneity if discordance is None else heterogeneity_for(p, discordance)

    def reaches(tax: float) -> bool:
        return power_of(ItemModel(p, tax, h, samples), n_units, alpha) >= power

    top = 1.0 - p
    if n_units <= 0 or not reaches(top):
        return None
    lo, hi = 0.0, top  # power(lo) < target <= power(hi)
    while hi - lo > _RESOLUTION / 2:
        mid = (lo + hi) / 2
        if reaches(mid):
            hi = mid
        else:
            lo = mid
    return round(math.ceil(hi / _RESOLUTION - 1e-9) * _RESOLUTION, 3)


def _binary_power(n: int, pb: float, pc: float, alpha: float) -> float:
    """Exact: Σ over the number m of discordant items of P(m) · P(cost called | m).

    Given m, the b items where the candidate alone scores are Binomial(m, pb/(pb + pc));
    the test calls a cost from the smallest b at which ``stats.score_test`` says so.
    """
    psi = pb + pc
    if psi <= 0.0:
        return 0.0
    theta = pb / psi
    mean, sd = n * psi, math.sqrt(n * psi * (1 - psi))
    m_lo, m_hi = max(1, int(mean - 12 * sd) - 5), min(n, int(mean + 12 * sd) + 5)
    total = 0.0
    for m in range(m_lo, m_hi + 1):
        b_min = _cost_threshold(m, n, alpha)
        if b_min is None:
            continue
        total += _binomial_term(n, m, psi) * _binomial_sf(b_min, m, theta)
    return min(1.0, total)


def _cost_threshold(m: int, n: int, alpha: float) -> int | None:
    """Smallest b out of m discordant items at which the table calls a confident cost."""
    from statistics import NormalDist  # here: ``statistics`` costs start-up time

    def cost(b: int) -> bool:
        t, p_value = stats.score_test(b, m - b, n)
        return t > 0 and p_value < alpha

    z = NormalDist().inv_cdf(1 - alpha / 2)
    b = min(m, max(0, math.ceil((m + stats.CORRECTION + z * math.sqrt(m)) / 2)))
    while b > 0 and cost(b - 1):
        b -= 1
    while b <= m and not cost(b):
        b += 1
    return b if b <= m else None


def _normal_power(model: ItemModel, n: int, alpha: float) -> float:
    """Normal approximation of the table's test calling a cost over n items.

    ``stats.paired_counts`` rejects when B − C − γφ > z·√(φ(B + C)), B and C the sums of
    the positive and negative parts of the item differences and φ the dispersion factor;
    φ is taken at its expected value and B − C − z√(φ(B + C)) linearised (delta method).
    """
    from statistics import NormalDist

    z = NormalDist().inv_cdf(1 - alpha / 2)
    e_d = e_a = e_d2 = e_da = 0.0
    for pr, base, cand in model.unit_distribution():
        d = cand - base
        e_d += pr * d
        e_a += pr * abs(d)
        e_d2 += pr * d * d
        e_da += pr * d * abs(d)
    if e_a <= 0.0:
        return 0.0
    var_d, var_a, cov = e_d2 - e_d**2, e_d2 - e_a**2, e_da - e_d * e_a
    phi = stats.dispersion(n * var_d, n * (e_a - e_d**2))
    mu_u = n * e_a
    root_phi = math.sqrt(phi)
    mean = n * e_d - stats.CORRECTION * phi - z * root_phi * (math.sqrt(mu_u) - n * var_a / (8 * mu_u**1.5))
    var = n * var_d + phi * z * z * var_a / (4 * e_a) - z * root_phi * math.sqrt(n) * cov / math.sqrt(e_a)
    if var <= 0.0:
        return 1.0 if mean > 0 else 0.0
    return NormalDist().cdf(mean / math.sqrt(var))


# --------------------------------------------------------------------------- binomials


def _binomial_pmf(k: int, p: float) -> list[float]:
    return [math.comb(k, y) * p**y * (1 - p) ** (k - y) for y in range(k + 1)]


def _binomial_term(n: int, m: int, p: float) -> float:
    if p >= 1.0:
        return 1.0 if m == n else 0.0
    log = math.lgamma(n + 1) - math.lgamma(m + 1) - math.lgamma(n - m + 1) + m * math.log(p) + (n - m) * math.log1p(-p)
    return math.exp(log)


def _binomial_sf(k: int, m: int, p: float) -> float:
    """P(X ≥ k) for X ~ Binomial(m, p): the regularised incomplete beta I_p(k, m − k + 1)."""
    if k <= 0:
        return 1.0
    if k > m or p <= 0.0:
        return 0.0
    if p >= 1.0:
        return 1.0
    return _betainc(k, m - k + 1, p)


def _betainc(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta by its continued fraction (modified Lentz), to ~1e-13."""
    if x > (a + 1) / (a + b + 2):
        return 1.0 - _betainc(b, a, 1.0 - x)
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    tiny = 1e-300
    f, c, d = 1.0, 1.0, 0.0
    for i in range(400):
        m = i // 2
        if i == 0:
            num = 1.0
        elif i % 2 == 0:
            num = m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m))
        else:
            num = -((a + m) * (a + b + m) * x) / ((a + 2 * m) * (a + 2 * m + 1))
        d = 1.0 + num * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + num / c
        c = c if abs(c) > tiny else tiny
        f *= c * d
        if abs(1.0 - c * d) < 1e-14:
            break
    return math.exp(log_front) * (f - 1.0) / a


# --------------------------------------------------------------------------- per dimension


def expected_units(
    items: Iterable[SuiteItem], *, comply_rate: float = COMPLY_RATE, correct_rate: float = CORRECT_RATE
) -> dict[str, float]:
    """Each fed dimension's expected paired n for a suite, as ``aggregate`` would count it.

    Refusal and capability dimensions count their items, ``pair_accuracy`` the complete
    benign/harmful pairs. Hedging counts benign items times ``comply_rate`` and the
    sycophancy dimensions their pairs (items) times ``correct_rate``: a unit needs a
    qualifying first answer from *both* models, assumed to come on the same items (the
    heterogeneity that makes models agree), so the rate enters once, not squared.
    """
    counts: dict[str, float] = {}
    pairs: dict[tuple[str, str], set[str]] = {}
    for item in items:
        cat = item.category
        if item.pair is not None and item.variant is not None:
            family = "sycophancy.pressure" if cat == "sycophancy.pressure" else "refusal"
            pairs.setdefault((family, item.pair), set()).add(item.variant)
        if cat in ("over_refusal", "harmful_refusal", "creative", "dual_use") or cat.startswith("capability."):
            counts[cat] = counts.get(cat, 0.0) + 1
        if item.expect == "comply":
            counts["hedging"] = counts.get("hedging", 0.0) + comply_rate
        if cat == "sycophancy.pushback":
            counts[cat] = counts.get(cat, 0.0) + correct_rate
    for (family, _), variants in pairs.items():
        if family == "refusal" and {"benign", "harmful"} <= variants:
            counts["pair_accuracy"] = counts.get("pair_accuracy", 0.0) + 1
        elif family == "sycophancy.pressure" and {"neutral", "pressure"} <= variants:
            counts[family] = counts.get(family, 0.0) + correct_rate
    return counts


@dataclass(frozen=True)
class DimensionPower:
    """One dimension's detectable tax, with every assumption it was computed under."""

    dimension: Dimension
    units: int
    baseline_rate: float
    detectable: float | None  # fraction; None: no tax this n can detect with the power
    samples: int
    power: float
    heterogeneity: float
    discordance: float | None
    assumption: str | None = None  # how a conditional dimension's units were counted

    def sentence(self) -> str:
        """"over_refusal: 120 pairs; detects an 8-point tax with 80 % power if the baseline scores 5 % (...)"."""
        noun = "pairs" if self.dimension.name in ("pair_accuracy", "sycophancy.pressure") else "paired items"
        what = f"{self.dimension.name}: {self.units} {noun}"
        if self.assumption:
            what += f" ({self.assumption})"
        scored = f"the baseline scores {self.baseline_rate * 100:.0f} % ({self.dimension.label})"
        if self.detectable is None:
            return f"{what}; too few to detect any tax with {self.power * 100:.0f} % power if {scored}"
        points = round(self.detectable * 100)
        return f"{what}; detects {_article(points)} {points}-point tax with {self.power * 100:.0f} % power if {scored}"


def _article(number: int) -> str:
    """"an" before numbers spoken with a vowel first (8, 11, 18, 80-89), else "a"."""
    return "an" if number in (8, 11, 18) or 80 <= number <= 89 else "a"


def dimension_power(
    items: Iterable[SuiteItem],
    *,
    samples: int = 1,
    baseline_rates: dict[str, float] | None = None,
    discordance: float | None = None,
    heterogeneity: float = DEFAULT_HETEROGENEITY,
    power: float = 0.8,
) -> list[DimensionPower]:
    """``detectable_tax`` for every dimension a suite feeds, in table order."""
    units = expected_units(items)
    rates = {**ASSUMED_BASELINE, **(baseline_rates or {})}
    out = []
    assumptions = {
        "hedging": f"if {COMPLY_RATE * 100:.0f} % of benign answers comply",
        "sycophancy.pressure": f"if {CORRECT_RATE * 100:.0f} % of neutral answers are right",
        "sycophancy.pushback": f"if {CORRECT_RATE * 100:.0f} % of first answers are right",
    }
    for dim in DIMENSIONS:
        if dim.name not in units:
            continue
        n = round(units[dim.name])
        p = rates[dim.name]
        found = detectable_tax(
            n, p, discordance=discordance, samples=samples, power=power,
            heterogeneity=heterogeneity, direction=dim.direction,
        )
        out.append(DimensionPower(dim, n, p, found, samples, power, heterogeneity, discordance, assumptions.get(dim.name)))
    return out


@dataclass(frozen=True)
class Assumptions:
    """What ``--assume`` can set: a baseline rate per dimension, the discordance, the heterogeneity."""

    baseline_rates: dict[str, float]
    discordance: float | None = None
    heterogeneity: float = DEFAULT_HETEROGENEITY


def parse_assumptions(specs: list[str]) -> Assumptions:
    """``--assume`` values: ``DIM=RATE`` (``over_refusal=0.05`` or ``=5%``), ``discordance=X``,
    ``heterogeneity=X``. Raises ``UserError`` with the problem (the CLI shows it as one line)."""
    from taxcheck.dimensions import DIMENSION_NAMES
    from taxcheck.errors import UserError

    rates: dict[str, float] = {}
    discordance: float | None = None
    heterogeneity = DEFAULT_HETEROGENEITY
    for spec in specs:
        key, sep, raw = spec.partition("=")
        key, raw = key.strip(), raw.strip()
        try:
            value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
        except ValueError:
            value = math.nan
        if not sep or not 0 <= value <= 1:
            raise UserError(f"--assume {spec!r}: expected NAME=VALUE with a value from 0 to 1 (or 0% to 100%)")
        if key == "discordance":
            discordance = value
        elif key == "heterogeneity":
            heterogeneity = value
        elif key in DIMENSION_NAMES:
            rates[key] = value
        else:
            raise UserError(f"--assume {spec!r}: {key!r} is not a dimension, discordance or heterogeneity")
    return Assumptions(rates, discordance, heterogeneity)


def power_lines(items: Iterable[SuiteItem], samples: int = 1, assume: Assumptions | None = None) -> list[str]:
    """The sentences ``--dry-run`` and ``suites show`` print, with K's effect when K > 1."""
    items = list(items)
    a = assume or Assumptions({})
    kwargs = dict(baseline_rates=a.baseline_rates, discordance=a.discordance, heterogeneity=a.heterogeneity)
    found = dimension_power(items, samples=samples, **kwargs)
    lines = [p.sentence() for p in found]
    if samples > 1:
        single = {p.dimension.name: p.detectable for p in dimension_power(items, samples=1, **kwargs)}
        gains = [(p.dimension.name, single[p.dimension.name], p.detectable) for p in found
                 if single.get(p.dimension.name) is not None and p.detectable is not None]
        if gains:
            shown = ", ".join(f"{d} {one * 100:.0f} → {k * 100:.0f}" for d, one, k in gains[:4])
            lines.append(f"--samples {samples} instead of 1: {shown} points; samples help little where items differ more "
                         f"than a model's answers to one item do (assumed within-item correlation {a.heterogeneity:g}; "
                         "more items help more)")
    basis = (f"discordance {a.discordance:g}" if a.discordance is not None else f"within-item correlation {a.heterogeneity:g}")
    lines.append(f"assumed: {basis}, baseline rates as stated; the table's own test at alpha 0.05; "
                 "change with --assume DIM=RATE, --assume discordance=X")
    return lines
