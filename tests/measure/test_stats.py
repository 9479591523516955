"""Tests for taxcheck.measure.stats: references, independent re-derivations, one decision, coverage.

Reference values come from published tables (Wilson: Newcombe 1998, "Two-sided confidence
intervals for the single proportion", Table I) or from re-deriving each quantity here by a
different route (root-finding the score equation instead of the closed form, maximising
the constrained likelihood numerically instead of Tango's closed-form root, exact binomial
sums), so that a shared mistake is unlikely. scipy/statsmodels were compared outside the
test suite (``python benchmarks/coverage.py --references`` in a venv that has them).
"""

from __future__ import annotations

import math
import random
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from taxcheck.measure import stats
from taxcheck.measure.stats import (
    ALPHA,
    CORRECTION,
    LOW_N,
    PRIOR_ITEMS,
    Z95,
    Paired,
    Rate,
    above_allowance,
    cohen_kappa,
    paired_counts,
    paired_difference,
    rate,
    rate_counts,
    score_statistic,
    wilson,
)

Z = 1.959963984540054


# --------------------------------------------------------------------------- helpers


def score_interval_by_bisection(x: float, n: int, gamma: float, z: float = Z) -> tuple[float, float]:
    """Roots of (|x − nπ| − γ)⁺ = z·√(nπ(1 − π)) on each side of x/n, by bisection."""
    p_hat = x / n

    def excess(pi: float) -> float:  # > 0 outside the interval
        return max(0.0, abs(x - n * pi) - gamma) - z * math.sqrt(n * pi * (1 - pi))

    def root(inside: float, outside: float) -> float:
        for _ in range(200):
            mid = (inside + outside) / 2
            if excess(mid) > 0:
                outside = mid
            else:
                inside = mid
        return inside

    low = 0.0 if x <= gamma else root(p_hat, 0.0)
    high = 1.0 if x >= n - gamma else root(p_hat, 1.0)
    return low, high


def tango_by_likelihood(b: float, c: float, n: int, delta: float, gamma: float) -> float:
    """Tango's statistic with the nuisance parameter found by maximising the constrained
    multinomial log-likelihood numerically (golden section), not by the closed-form root.

    Under H0 the cells are P(b) = q + Δ, P(c) = q, P(concordant) = 1 − 2q − Δ.
    """
    a = n - b - c
    lo, hi = max(0.0, -delta), (1.0 - delta) / 2.0

    def loglik(q: float) -> float:
        out = 0.0
        for count, prob in ((b, q + delta), (c, q), (a, 1.0 - 2 * q - delta)):
            if count > 0:
                out += count * math.log(max(prob, 1e-300))
        return out

    g = (math.sqrt(5) - 1) / 2
    x1, x2 = hi - g * (hi - lo), lo + g * (hi - lo)
    for _ in range(200):
        if loglik(x1) < loglik(x2):
            lo = x1
        else:
            hi = x2
        x1, x2 = hi - g * (hi - lo), lo + g * (hi - lo)
    q = (lo + hi) / 2
    num = b - c - n * delta
    num = math.copysign(max(0.0, abs(num) - gamma), num)
    return num / math.sqrt(n * (2 * q + delta * (1 - delta)))


def all_tables(n: int) -> list[tuple[int, int]]:
    return [(b, c) for b in range(n + 1) for c in range(n + 1 - b)]


def table_to_vectors(a: int, b: int, c: int, d: int) -> tuple[list[int], list[int]]:
    """Paired 0/1 vectors: a = (1,1), b = (1,0), c = (0,1), d = (0,0) as (candidate, baseline)."""
    cand = [1] * a + [1] * b + [0] * c + [0] * d
    base = [1] * a + [0] * b + [1] * c + [0] * d
    return cand, base


def assert_one_decision(p: Paired) -> None:
    """Colour, gate at 0 and p-value are one decision; the interval holds the estimate."""
    confident = p.p_value < ALPHA
    assert (p.ci_low > 0) == (confident and p.value > 0), p
    assert (p.ci_high < 0) == (confident and p.value < 0), p
    assert -1.0 <= p.ci_low <= p.value <= p.ci_high <= 1.0, p
    assert p.ci_low < p.ci_high, p  # never zero width from finite data


# --------------------------------------------------------------------------- wilson


@pytest.mark.parametrize(
    ("x", "n", "gamma", "low", "high"),
    [
        # Newcombe (1998) Table I, method 3 (Wilson score without continuity correction)
        (81, 263, 0.0, 0.2553, 0.3662),
        (15, 148, 0.0, 0.0624, 0.1605),
        (0, 20, 0.0, 0.0, 0.1611),
        (1, 29, 0.0, 0.0061, 0.1718),
        # Newcombe (1998) Table I, method 4 (Wilson score with continuity correction ½)
        (81, 263, 0.5, 0.2535, 0.3682),
        (15, 148, 0.5, 0.0598, 0.1644),
        (0, 20, 0.5, 0.0, 0.2005),
        (1, 29, 0.5, 0.0018, 0.1963),
    ],
)
def test_wilson_matches_newcombe_table(x: int, n: int, gamma: float, low: float, high: float) -> None:
    got_low, got_high = wilson(x, n, correction=gamma)
    assert got_low == pytest.approx(low, abs=5e-5)
    assert got_high == pytest.approx(high, abs=5e-5)


@pytest.mark.parametrize("gamma", [0.0, CORRECTION, 0.5])
@pytest.mark.parametrize(("x", "n"), [(0, 1), (3, 7), (2.5, 6), (0.2, 6), (49, 50), (123, 1000), (1000, 1000)])
def test_wilson_equals_roots_of_the_score_equation(x: float, n: int, gamma: float) -> None:
    assert wilson(x, n, correction=gamma) == pytest.approx(score_interval_by_bisection(x, n, gamma), abs=1e-10)


def test_wilson_exact_bounds_and_empty() -> None:
    assert wilson(0, 7)[0] == 0.0
    assert wilson(7, 7)[1] == 1.0
    assert wilson(0.2, 7, correction=0.25)[0] == 0.0  # x <= γ: the lower end is exactly 0
    assert all(math.isnan(v) for v in wilson(0, 0))


@pytest.mark.parametrize(("x", "n"), [(-1, 5), (6, 5), (0, -1)])
def test_wilson_rejects_impossible_counts(x: int, n: int) -> None:
    with pytest.raises(ValueError):
        wilson(x, n)


# --------------------------------------------------------------------------- rate


def reference_rate_interval(values: list[float]) -> tuple[float, float]:
    """The rate interval rebuilt from its definition: the design factor from explicit
    deviations (spread of the values against n·v̄(1 − v̄), the spread of 0/1 values with the
    same mean, both plus PRIOR_ITEMS), then the score equation solved on effective counts."""
    n = len(values)
    mean = sum(values) / n
    spread = sum((v - mean) ** 2 for v in values)
    phi = min(1.0, (spread + PRIOR_ITEMS) / (n * mean * (1 - mean) + PRIOR_ITEMS))
    return score_interval_by_bisection(sum(values) / phi, n / phi, CORRECTION)


def test_rate_of_one_sample_per_item_is_the_corrected_wilson_interval() -> None:
    values = [1, 0, 0, 1, 0, 0, 0, 0, 0, 1]
    assert rate(values) == Rate(0.3, 10, *wilson(3, 10, correction=CORRECTION))
    assert rate(values).dispersion == 1.0  # 0/1 values are at the bound, whatever PRIOR_ITEMS
    assert rate(values) == rate_counts(3, 10)


@pytest.mark.parametrize(
    "values",
    [[0.5, 0.25, 0, 1, 0.75], [0.4] * 12, [0.5], [0.1] + [0.0] * 19, [k / 10 for k in range(11)] * 3, [1 / 3, 2 / 3] * 40],
)
def test_rate_of_item_means_matches_its_definition(values: list[float]) -> None:
    got = rate(values)
    low, high = reference_rate_interval(values)
    assert got.ci_low == pytest.approx(min(low, got.value), abs=1e-9)
    assert got.ci_high == pytest.approx(max(high, got.value), abs=1e-9)
    assert got == rate_counts(math.fsum(values), len(values), math.fsum(v * v for v in values))
    assert 0.0 < got.dispersion <= 1.0


def test_alike_items_asked_often_narrow_the_rate_and_all_or_nothing_items_do_not() -> None:
    alike = [0.3] * 100  # every item refused 3 times in 10: samples carry the variance
    all_or_nothing = [1.0] * 30 + [0.0] * 70  # the items carry it
    assert rate(alike).ci_high - rate(alike).ci_low < 0.5 * (rate(all_or_nothing).ci_high - rate(all_or_nothing).ci_low)
    assert rate(all_or_nothing) == rate_counts(30, 100)


@pytest.mark.parametrize(
    ("values", "value", "low", "high"),
    [
        # anchors from score_interval_by_bisection (an independent route to the same roots)
        ([0] * 10, 0.0, 0.0, 0.3122),
        ([1] * 10, 1.0, 0.6878, 1.0),
    ],
)
def test_rate_edge_cases(values: list[float], value: float, low: float, high: float) -> None:
    r = rate(values)
    assert r.n == len(values)
    assert r.value == pytest.approx(value)
    assert r.ci_low == pytest.approx(low, abs=5e-5)
    assert r.ci_high == pytest.approx(high, abs=5e-5)


def test_rate_empty_is_nan() -> None:
    r = rate([])
    assert r.n == 0
    assert math.isnan(r.value) and math.isnan(r.ci_low) and math.isnan(r.ci_high)


@pytest.mark.parametrize("bad", [[1.5], [-0.1], [math.nan], [0.2, 2], [0.5, math.nan], [math.nan, 0.5]])
def test_rate_rejects_values_outside_unit_interval(bad: list[float]) -> None:
    with pytest.raises(ValueError):
        rate(bad)


def test_rate_tolerates_float_noise_at_the_edges() -> None:
    r = rate([1 + 1e-12, -1e-12, 0.5])
    assert 0.0 <= r.ci_low <= r.value <= r.ci_high <= 1.0


def test_rate_monotone_near_zero_at_twenty_items_of_ten_samples() -> None:
    """Adding positive samples one at a time never lowers the upper end (it used to fall
    from 0.161 at zero positives to 0.015 at one), and K never narrows below the items."""
    uppers = []
    for positives in range(0, 31):
        values = [0.0] * 20
        for k in range(positives):  # spread over items, ten samples each
            values[k % 20] += 0.1
        uppers.append(rate(values).ci_high)
    assert all(later > earlier for earlier, later in zip(uppers, uppers[1:]))
    assert uppers[1] > wilson(1, 200)[1]  # never narrower than 200 independent answers
    assert uppers[0] == pytest.approx(wilson(0, 20, correction=CORRECTION)[1])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 10), min_size=1, max_size=40), st.integers(0, 39))
def test_rate_upper_end_never_falls_when_a_sample_turns_positive(counts: list[int], which: int) -> None:
    values = [k / 10 for k in counts]
    i = which % len(values)
    if counts[i] == 10:
        return
    raised = [*values]
    raised[i] = (counts[i] + 1) / 10
    before, after = rate(values), rate(raised)
    assert after.ci_high >= before.ci_high and after.ci_low >= before.ci_low
    assert before.ci_low < before.ci_high


def test_rate_is_order_free_and_uses_no_random_state() -> None:
    rng = random.Random(3)
    values = [rng.randint(0, 4) / 4 for _ in range(60)]
    random.seed(999)
    state = random.getstate()
    assert rate(values) == rate(list(reversed(values)))
    assert random.getstate() == state


# --------------------------------------------------------------------------- score statistic


@pytest.mark.parametrize(
    ("b", "c", "n", "delta"),
    [(12, 2, 50, 0.1), (3, 9, 40, -0.3), (0, 0, 20, 0.15), (0, 0, 20, -0.4), (5, 0, 50, 0.02),
     (2.5, 1.25, 30, 0.2), (0.4, 0, 4, 0.5), (20, 1, 21, 0.95), (7, 7, 60, -0.05)],
)
@pytest.mark.parametrize("gamma", [0.0, CORRECTION])
def test_score_statistic_matches_constrained_maximum_likelihood(b: float, c: float, n: int, delta: float, gamma: float) -> None:
    assert score_statistic(b, c, n, delta, gamma) == pytest.approx(tango_by_likelihood(b, c, n, delta, gamma), rel=1e-6, abs=1e-9)


@pytest.mark.parametrize(("b", "c"), [(5, 0), (4, 0), (12, 3), (0, 9), (30, 29), (0, 0)])
def test_score_statistic_at_zero_is_corrected_mcnemar(b: int, c: int) -> None:
    expected = 0.0 if b == c else math.copysign(max(0.0, abs(b - c) - CORRECTION) / math.sqrt(b + c), b - c)
    assert score_statistic(b, c, 60, 0.0) == pytest.approx(expected)


def test_score_statistic_is_antisymmetric_and_decreasing() -> None:
    deltas = [i / 50 - 1 for i in range(1, 100)]
    for b, c in all_tables(12):
        ts = [score_statistic(b, c, 12, d) for d in deltas]
        assert all(x >= y - 1e-12 for x, y in zip(ts, ts[1:])), (b, c)
        for d, t in zip(deltas, ts):
            # ~1e-8: where the restricted MLE is a double root, sqrt magnifies rounding
            assert t == pytest.approx(-score_statistic(c, b, 12, -d), abs=1e-6)


# --------------------------------------------------------------------------- one decision


@pytest.mark.parametrize("n", [20, 50])
def test_every_two_by_two_table_gives_one_decision(n: int) -> None:
    """All 231 (n = 20) and 1,326 (n = 50) discordance tables: colour, p and interval agree,
    and the interval is exactly the set of differences the test does not reject."""
    grid = [i / 200 - 1 for i in range(1, 400)]
    for b, c in all_tables(n):
        p = paired_counts(b, c, n)
        assert_one_decision(p)
        assert p.p_value == pytest.approx(math.erfc(abs(score_statistic(b, c, n, 0.0)) / math.sqrt(2)) if b != c else 1.0)
        for d in grid:
            if abs(d - p.ci_low) < 1e-9 or abs(d - p.ci_high) < 1e-9:
                continue
            accepted = abs(score_statistic(b, c, n, d)) <= Z95
            assert accepted == (p.ci_low <= d <= p.ci_high), (b, c, d, p)


def test_all_1771_tables_at_twenty_pairs_through_the_list_api() -> None:
    """Every (a, b, c, d) with a + b + c + d = 20, as 0/1 vectors: one decision each (the
    old Newcombe interval and exact McNemar p disagreed on 136 of these)."""
    count = 0
    for a in range(21):
        for b in range(21 - a):
            for c in range(21 - a - b):
                p = paired_difference(*table_to_vectors(a, b, c, 20 - a - b - c))
                assert_one_decision(p)
                count += 1
    assert count == 1771


def test_the_list_api_reduces_to_the_table() -> None:
    for a, b, c, d in [(36, 12, 2, 0), (14, 5, 0, 22), (59, 6, 16, 80), (1, 1, 7, 12), (0, 0, 0, 9)]:
        cand, base = table_to_vectors(a, b, c, d)
        assert paired_difference(cand, base) == paired_counts(b, c, a + b + c + d)


def test_five_of_fifty_all_one_way() -> None:
    """The review's case: the old interval said 'cost' while the printed p was 0.0625."""
    cand, base = table_to_vectors(0, 5, 0, 45)
    p = paired_difference(cand, base)
    assert p.p_value == pytest.approx(math.erfc((5 - CORRECTION) / math.sqrt(5) / math.sqrt(2)))
    assert p.p_value < ALPHA and p.ci_low > 0
    assert p.ci_low == pytest.approx(0.0125, abs=5e-4)


def test_four_items_at_one_in_ten_are_not_a_confident_cost() -> None:
    p = paired_difference([0.1] * 4, [0.0] * 4)
    assert p.value == pytest.approx(0.1)
    assert p.p_value > 0.5 and p.ci_low < 0 < p.ci_high
    binary = paired_difference([1] * 4, [0] * 4)  # even four of four discordant, one way
    assert binary.p_value > ALPHA and binary.ci_low < 0


def test_identical_heterogeneous_answers_keep_a_nonzero_interval() -> None:
    items = [0.0, 0.1, 0.5, 0.9, 1.0, 0.3] * 5
    p = paired_difference(items, items)
    assert p.value == 0.0 and p.p_value == 1.0
    assert p.ci_low == pytest.approx(-p.ci_high) and p.ci_high > 0.05
    assert p.ci_high == pytest.approx(rate([0.0] * 30).ci_high)  # the zero-discordance bound


@settings(max_examples=300, deadline=None)
@given(
    st.integers(2, 10).flatmap(
        lambda k: st.lists(st.tuples(st.integers(0, k), st.integers(0, k)), min_size=1, max_size=60).map(
            lambda pairs: (k, pairs)
        )
    )
)
def test_clustered_values_give_one_decision(data: tuple[int, list[tuple[int, int]]]) -> None:
    k, pairs = data
    cand = [x / k for x, _ in pairs]
    base = [y / k for _, y in pairs]
    p = paired_difference(cand, base)
    assert_one_decision(p)
    assert p == paired_difference(cand[::-1], base[::-1])
    b = math.fsum(max(0.0, x - y) for x, y in zip(cand, base))
    c = math.fsum(max(0.0, y - x) for x, y in zip(cand, base))
    assert p == paired_counts(b, c, len(pairs), math.fsum((x - y) ** 2 for x, y in zip(cand, base)))
    flipped = paired_difference(base, cand)  # swapping the models mirrors everything
    assert flipped.p_value == pytest.approx(p.p_value)
    assert flipped.ci_low == pytest.approx(-p.ci_high, abs=1e-9)


@pytest.mark.parametrize(
    ("cand", "base"),
    [
        ([2 / 3, 1, 1 / 3, 1, 2 / 3, 1, 0.5, 0.5, 0, 1] * 3, [1 / 3, 2 / 3, 0, 0, 1 / 3, 0, 0.5, 0.5, 0, 1] * 3),
        ([0.3] * 40, [0.1] * 40),  # alike items: the samples carry the variance
        ([0.1, 0.2, 0.0, 0.4] * 10, [0.0, 0.2, 0.1, 0.1] * 10),
    ],
)
def test_paired_item_means_match_their_definition(cand: list[float], base: list[float]) -> None:
    """Ends are roots of the likelihood-derived statistic on effective counts, with the
    design factor rebuilt from explicit deviations; p is that statistic's normal tail."""
    d = [x - y for x, y in zip(cand, base)]
    n = len(d)
    mean = sum(d) / n
    spread = sum((v - mean) ** 2 for v in d)
    bound = n * (sum(abs(v) for v in d) / n - mean * mean)
    phi = min(1.0, (spread + PRIOR_ITEMS) / (bound + PRIOR_ITEMS))
    b = sum(v for v in d if v > 0) / phi
    c = -sum(v for v in d if v < 0) / phi
    got = paired_difference(cand, base)
    assert got.dispersion == pytest.approx(phi)
    assert tango_by_likelihood(b, c, n / phi, got.ci_low, CORRECTION) == pytest.approx(Z95, abs=1e-5)
    assert tango_by_likelihood(b, c, n / phi, got.ci_high, CORRECTION) == pytest.approx(-Z95, abs=1e-5)
    t0 = tango_by_likelihood(b, c, n / phi, 0.0, CORRECTION)
    assert got.p_value == pytest.approx(math.erfc(abs(t0) / math.sqrt(2)), rel=1e-6)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 60), st.integers(0, 60), st.integers(1, 60), st.floats(-0.5, 0.5))
def test_gate_is_the_test_at_the_allowance(b: int, c: int, extra: int, allowance: float) -> None:
    """Lower end above an allowance A ⟺ the score test rejects Δ = A (one-sided)."""
    n = b + c + extra
    p = paired_counts(b, c, n)
    t = score_statistic(b, c, n, allowance)
    if abs(p.ci_low - allowance) > 1e-9 and allowance <= p.value:
        assert (p.ci_low > allowance) == (t > Z95)


def test_paired_empty_and_misaligned() -> None:
    got = paired_difference([], [])
    assert got.n == 0
    assert all(math.isnan(v) for v in (got.value, got.ci_low, got.ci_high, got.p_value))
    with pytest.raises(ValueError):
        paired_difference([1, 0], [1])
    with pytest.raises(ValueError):
        paired_difference([1.2], [1])
    with pytest.raises(ValueError):
        paired_counts(5, 6, 10)


def test_results_are_frozen() -> None:
    got = paired_difference([1, 0], [0, 0])
    assert isinstance(got, Paired)
    with pytest.raises(AttributeError):
        got.value = 0.0  # type: ignore[misc]


# --------------------------------------------------------------------------- gates


@pytest.mark.parametrize(
    ("ci_low", "allowance", "above"),
    [
        (0.14000000000000004, 14, False),  # float noise: 14 points is not above 14
        (0.14, 14, False),
        (0.07 + 0.07, 14.0, False),
        (0.140001, 14, True),
        (0.1400004, 14, False),  # prints as 0.14 in JSON: a gate decides on what is shown
        (0.05, 5, False),
        (0.0500006, 5, True),
        (0.001, 0, True),
        (0.0, 0, False),
        (-0.2, -25, True),
        (math.nan, 0, False),
    ],
)
def test_above_allowance_is_exact(ci_low: float, allowance: float, above: bool) -> None:
    assert above_allowance(ci_low, allowance) is above


# --------------------------------------------------------------------------- coverage


def _trinomial(n: int, b: int, c: int, pb: float, pc: float) -> float:
    a = n - b - c
    coef = math.lgamma(n + 1) - math.lgamma(b + 1) - math.lgamma(c + 1) - math.lgamma(a + 1)
    terms = [(b, pb), (c, pc), (a, 1 - pb - pc)]
    if any(k > 0 and p <= 0 for k, p in terms):
        return 0.0
    return math.exp(coef + sum(k * math.log(p) for k, p in terms if k > 0))


@pytest.mark.parametrize(
    ("pb", "pc", "most"), [(0.05, 0.05, 0.995), (0.15, 0.05, 0.995), (0.3, 0.2, 0.995), (0.02, 0.0, 1.0)]
)
def test_paired_exact_coverage_at_thirty_pairs(pb: float, pc: float, most: float) -> None:
    """Exact coverage (every table weighted by its probability); the table's target is 93 %."""
    n, truth = 30, pb - pc
    coverage = 0.0
    for b, c in all_tables(n):
        p = paired_counts(b, c, n)
        if p.ci_low <= truth <= p.ci_high:
            coverage += _trinomial(n, b, c, pb, pc)
    assert 0.93 <= coverage <= most  # one-way discordance near 0 is covered almost surely


@pytest.mark.parametrize(("n", "p"), [(50, 0.01), (20, 0.95), (50, 0.2), (200, 0.5)])
def test_rate_exact_coverage_where_plain_wilson_falls_short(n: int, p: float) -> None:
    coverage = sum(
        math.comb(n, x) * p**x * (1 - p) ** (n - x)
        for x in range(n + 1)
        if rate_counts(x, n).ci_low <= p <= rate_counts(x, n).ci_high
    )
    plain = sum(math.comb(n, x) * p**x * (1 - p) ** (n - x) for x in range(n + 1) if wilson(x, n)[0] <= p <= wilson(x, n)[1])
    assert coverage >= 0.93 and coverage >= plain


# --------------------------------------------------------------------------- kappa


def test_kappa_hand_computed_two_by_two() -> None:
    """Both yes 20, A-yes/B-no 5, A-no/B-yes 10, both no 15: p_o = 0.7,
    p_e = 0.5·0.6 + 0.5·0.4 = 0.5, kappa = 0.2 / 0.5 = 0.4."""
    a = ["yes"] * 20 + ["yes"] * 5 + ["no"] * 10 + ["no"] * 15
    b = ["yes"] * 20 + ["no"] * 5 + ["yes"] * 10 + ["no"] * 15
    assert cohen_kappa(a, b) == pytest.approx(0.4)


def test_kappa_three_labels_hand_computed() -> None:
    """3×3: p_o = 7/10; marginals A (4,3,3), B (3,4,3); p_e = (12+12+9)/100 = 0.33;
    kappa = 0.37 / 0.67."""
    a = ["comply"] * 4 + ["partial"] * 3 + ["refuse"] * 3
    b = ["comply", "comply", "comply", "partial"] + ["partial", "partial", "refuse"] + ["refuse", "refuse", "partial"]
    assert cohen_kappa(a, b) == pytest.approx(0.37 / 0.67)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (["x", "y", "x"], ["x", "y", "x"], 1.0),
        (["x", "y"], ["y", "x"], -1.0),
        (["x", "x", "y", "y"], ["x", "y", "x", "y"], 0.0),
    ],
)
def test_kappa_simple_values(a: list[str], b: list[str], expected: float) -> None:
    assert cohen_kappa(a, b) == pytest.approx(expected)


@pytest.mark.parametrize(("a", "b"), [([], []), (["refuse"] * 5, ["refuse"] * 5)])
def test_kappa_undefined_is_nan(a: list[str], b: list[str]) -> None:
    assert math.isnan(cohen_kappa(a, b))


def test_kappa_misaligned_raises() -> None:
    with pytest.raises(ValueError):
        cohen_kappa(["a"], ["a", "b"])


def test_low_n_threshold() -> None:
    assert LOW_N == 30
    assert Fraction(str(ALPHA)) == Fraction(1, 20)
