"""Tests for taxcheck.stats: reference values, independent re-derivations, edge cases, coverage.

Reference values come from published tables (Wilson: Newcombe 1998, "Two-sided confidence
intervals for the single proportion", Table I) or from re-deriving each quantity here by a
different route (root-finding the score equation instead of the closed form, exact
fractions instead of floats, explicit binomial sums), so that a shared mistake is unlikely.
"""

from __future__ import annotations

import math
import random
import statistics
import time
from fractions import Fraction

import pytest

from taxcheck import stats
from taxcheck.stats import (
    LOW_N,
    Paired,
    Rate,
    cohen_kappa,
    mcnemar_exact,
    paired_difference,
    rate,
    wilson,
)

Z = 1.959963984540054


# --------------------------------------------------------------------------- helpers


def wilson_by_bisection(x: float, n: int, z: float = Z) -> tuple[float, float]:
    """Wilson limits as the two roots of (p̂ − π)² = z² π(1 − π) / n, found by bisection."""
    p_hat = x / n

    def excess(pi: float) -> float:  # > 0 outside the interval, < 0 inside
        return (p_hat - pi) ** 2 - z * z * pi * (1 - pi) / n

    def root(lo: float, hi: float) -> float:
        f_lo = excess(lo)
        for _ in range(200):
            mid = (lo + hi) / 2
            if (excess(mid) > 0) == (f_lo > 0):
                lo, f_lo = mid, excess(mid)
            else:
                hi = mid
        return (lo + hi) / 2

    low = 0.0 if x == 0 else root(0.0, p_hat)
    high = 1.0 if x == n else root(p_hat, 1.0)
    return low, high


def table_to_vectors(a: int, b: int, c: int, d: int) -> tuple[list[int], list[int]]:
    """Paired 0/1 vectors: a = (1,1), b = (1,0), c = (0,1), d = (0,0) as (candidate, baseline)."""
    cand = [1] * a + [1] * b + [0] * c + [0] * d
    base = [1] * a + [0] * b + [1] * c + [0] * d
    return cand, base


def newcombe_reference(a: int, b: int, c: int, d: int) -> tuple[float, float]:
    """Newcombe method 10 rebuilt from parts: bisection Wilson limits, phi as the Pearson
    correlation of the two 0/1 vectors, Newcombe's shrinkage of a positive phi written as a
    factor, and the square-and-add combination."""
    n = a + b + c + d
    cand, base = table_to_vectors(a, b, c, d)
    p1, p2 = sum(cand) / n, sum(base) / n
    l1, u1 = wilson_by_bisection(sum(cand), n)
    l2, u2 = wilson_by_bisection(sum(base), n)
    if len(set(cand)) < 2 or len(set(base)) < 2:
        phi = 0.0
    else:
        phi = statistics.correlation([float(v) for v in cand], [float(v) for v in base])
        cross = a * d - b * c
        if cross > 0:
            phi *= max(0.0, 1 - (n / 2) / cross)
    lower = (p1 - p2) - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2))
    upper = (p1 - p2) + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2))
    return lower, upper


def lower_tail_count(k: int, m: int) -> int:
    """Σ_{i ≤ k} C(m, i) exactly, walking *down* from math.comb(m, k) (the module walks up)."""
    term = math.comb(m, k)
    total = term
    for i in range(k, 0, -1):
        term = term * i // (m - i + 1)
        total += term
    return total


def binomial_two_sided_exact(b: int, c: int) -> Fraction:
    """Two-sided exact binomial test (p = 1/2) as an exact fraction, by explicit sum."""
    m = b + c
    if m == 0:
        return Fraction(1)
    return min(Fraction(1), Fraction(2 * lower_tail_count(min(b, c), m), 2**m))


# --------------------------------------------------------------------------- wilson


@pytest.mark.parametrize(
    ("x", "n", "low", "high"),
    [
        # Newcombe (1998) Table I, method 3 (Wilson score without continuity correction)
        (81, 263, 0.2553, 0.3662),
        (15, 148, 0.0624, 0.1605),
        (0, 20, 0.0, 0.1611),
        (1, 29, 0.0061, 0.1718),
        # hand-computed from the closed form
        (0, 10, 0.0, 0.2775),
        (5, 10, 0.2366, 0.7634),
        (10, 10, 0.7225, 1.0),
        (1, 1, 0.2065, 1.0),
    ],
)
def test_wilson_matches_published_and_hand_values(x: int, n: int, low: float, high: float) -> None:
    got_low, got_high = wilson(x, n)
    assert got_low == pytest.approx(low, abs=5e-5)
    assert got_high == pytest.approx(high, abs=5e-5)


@pytest.mark.parametrize(
    ("x", "n"), [(0, 1), (3, 7), (2.5, 6), (49, 50), (123, 1000), (1000, 1000)]
)
def test_wilson_equals_roots_of_the_score_equation(x: float, n: int) -> None:
    assert wilson(x, n) == pytest.approx(wilson_by_bisection(x, n), abs=1e-10)


def test_wilson_exact_bounds_and_empty() -> None:
    assert wilson(0, 7)[0] == 0.0
    assert wilson(7, 7)[1] == 1.0
    assert all(math.isnan(v) for v in wilson(0, 0))


@pytest.mark.parametrize(("x", "n"), [(-1, 5), (6, 5), (0, -1)])
def test_wilson_rejects_impossible_counts(x: int, n: int) -> None:
    with pytest.raises(ValueError):
        wilson(x, n)


def test_wilson_exact_coverage_near_nominal() -> None:
    """Exact coverage at n = 50, p = 0.2 (sum of binomial probabilities of covering x)."""
    n, p = 50, 0.2
    coverage = sum(
        math.comb(n, x) * p**x * (1 - p) ** (n - x)
        for x in range(n + 1)
        if wilson(x, n)[0] <= p <= wilson(x, n)[1]
    )
    assert 0.93 <= coverage <= 0.97


def test_wilson_simulated_coverage_near_nominal() -> None:
    rng = random.Random(1)
    n, p, draws = 50, 0.2, 2000
    covered = 0
    for _ in range(draws):
        x = sum(rng.random() < p for _ in range(n))
        low, high = wilson(x, n)
        covered += low <= p <= high
    assert 0.93 <= covered / draws <= 0.97


# --------------------------------------------------------------------------- rate


def test_rate_binary_uses_wilson() -> None:
    r = rate([1, 0, 0, 1, 0, 0, 0, 0, 0, 1])
    assert r == Rate(0.3, 10, *wilson(3, 10))


@pytest.mark.parametrize(
    ("values", "value", "low", "high"),
    [
        ([0] * 10, 0.0, 0.0, 0.2775),
        ([1] * 10, 1.0, 0.7225, 1.0),
        ([1], 1.0, 0.2065, 1.0),
        (
            [0.5],
            0.5,
            0.0,
            1.0,
        ),  # one clustered item: no between-item spread, no information
        ([0.4] * 12, 0.4, 0.4, 0.4),  # identical clustered items: bootstrap cannot vary
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


@pytest.mark.parametrize("bad", [[1.5], [-0.1], [math.nan], [0.2, 2]])
def test_rate_rejects_values_outside_unit_interval(bad: list[float]) -> None:
    with pytest.raises(ValueError):
        rate(bad)


def test_rate_tolerates_float_noise_at_the_edges() -> None:
    r = rate([1 + 1e-12, -1e-12, 0.5])
    assert 0.0 <= r.ci_low <= r.value <= r.ci_high <= 1.0


def test_rate_clustered_bootstrap_is_deterministic_order_free_and_private() -> None:
    rng = random.Random(3)
    values = [rng.randint(0, 4) / 4 for _ in range(60)]
    first = rate(values)
    random.seed(999)  # global state must not matter ...
    state = random.getstate()
    again = rate(list(reversed(values)))  # ... nor item order
    assert random.getstate() == state  # ... and must not be consumed
    assert first == again
    assert 0.0 <= first.ci_low < first.value < first.ci_high <= 1.0


def test_rate_clustered_interval_matches_normal_theory_width() -> None:
    """For many items the bootstrap half-width ≈ 1.96 · sd / √n of the item means."""
    rng = random.Random(5)
    values = [rng.randint(0, 3) / 3 for _ in range(400)]
    r = rate(values)
    expected_half = Z * statistics.pstdev(values) / math.sqrt(len(values))
    assert (r.ci_high - r.ci_low) / 2 == pytest.approx(expected_half, rel=0.12)


def test_rate_clustered_coverage_beats_naive_sample_level_wilson() -> None:
    """With K samples per item and strongly item-dependent behaviour, treating the n·K
    samples as independent (naive Wilson) under-covers; the item bootstrap does not."""
    rng = random.Random(7)
    n_items, k, sims = 30, 5, 120
    truth = 0.7 * 0.05 + 0.3 * 0.8
    boot = naive = 0
    for _ in range(sims):
        successes = []
        for _ in range(n_items):
            p = 0.05 if rng.random() < 0.7 else 0.8
            successes.append(sum(rng.random() < p for _ in range(k)))
        r = rate([s / k for s in successes])
        boot += r.ci_low <= truth <= r.ci_high
        low, high = wilson(sum(successes), n_items * k)
        naive += low <= truth <= high
    assert boot / sims >= 0.88
    assert naive / sims <= boot / sims - 0.08


def test_bootstrap_of_500_items_is_fast() -> None:
    # Measured ~0.15 s on an idle core; the bound is loose so a busy CI box does not flake.
    rng = random.Random(11)
    cand = [rng.randint(0, 3) / 3 for _ in range(500)]
    base = [rng.randint(0, 3) / 3 for _ in range(500)]
    start = time.perf_counter()
    paired_difference(cand, base)
    assert time.perf_counter() - start < 1.5


# --------------------------------------------------------------------------- mcnemar


@pytest.mark.parametrize(
    ("b", "c", "p"),
    [
        (0, 0, 1.0),
        (3, 3, 1.0),
        (0, 5, 2 / 32),
        (5, 0, 2 / 32),
        (1, 9, 22 / 1024),  # 2·(C(10,0) + C(10,1)) / 2^10
        (2, 8, 2 * (1 + 10 + 45) / 1024),
        (4, 5, 1.0),
        (0, 1, 1.0),
    ],
)
def test_mcnemar_exact_small_hand_values(b: int, c: int, p: float) -> None:
    assert mcnemar_exact(b, c) == pytest.approx(p, rel=1e-12)


@pytest.mark.parametrize(
    ("b", "c"), [(7, 19), (30, 12), (100, 140), (0, 60), (2450, 2600), (2600, 2700)]
)
def test_mcnemar_exact_matches_exact_fractions(b: int, c: int) -> None:
    # (2600, 2700) exceeds the big-integer limit and exercises the log-space path
    assert mcnemar_exact(b, c) == pytest.approx(float(binomial_two_sided_exact(b, c)), rel=1e-9)


def test_mcnemar_float_path_agrees_with_integer_path_at_the_switch() -> None:
    k, m = 2480, stats._EXACT_MAX + 1
    exact = lower_tail_count(k, m) / 2**m
    assert stats._binomial_half_tail_float(k, m) == pytest.approx(exact, rel=1e-9)


def test_mcnemar_exact_is_a_valid_level_5_percent_test() -> None:
    """Under H0 (discordant pairs split 50/50) it rejects at most 5 % of the time."""
    for m in (10, 25, 60):
        size = sum(math.comb(m, b) / 2**m for b in range(m + 1) if mcnemar_exact(b, m - b) <= 0.05)
        assert 0.0 < size <= 0.05


def test_mcnemar_huge_counts_are_fast_and_sane() -> None:
    start = time.perf_counter()
    assert mcnemar_exact(50_000, 50_000) == 1.0
    assert 0.0 <= mcnemar_exact(50_000, 51_000) < 0.01
    assert mcnemar_exact(0, 1_000_000) == 0.0  # underflows, truly < 1e-300000
    assert time.perf_counter() - start < 0.5


@pytest.mark.parametrize(("b", "c"), [(-1, 2), (1.5, 2)])
def test_mcnemar_rejects_non_counts(b: float, c: float) -> None:
    with pytest.raises(ValueError):
        mcnemar_exact(b, c)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- paired binary


@pytest.mark.parametrize(
    "table",
    [
        (36, 12, 2, 0),  # Newcombe (1998) paired example (a)
        (14, 5, 0, 22),  # Altman et al., Statistics with Confidence, Table 6.2
        (
            59,
            6,
            16,
            80,
        ),  # Cavo et al. 2012 (Fagerland et al. ch. 8): negative difference
        (
            1,
            1,
            7,
            12,
        ),  # Bentur et al. 2009 (Fagerland et al. ch. 8): small, negative phi
        (20, 3, 1, 20),  # strong positive phi: exercises Newcombe's shrinkage
        (5, 2, 2, 5),  # ad − bc = 21 > n/2 = 7: shrunk but positive
        (3, 2, 2, 1),  # 0 <= ad − bc <= n/2: phi set to 0
        (0, 4, 3, 0),  # a marginal empty: phi = 0
    ],
)
def test_newcombe_matches_independent_reconstruction(
    table: tuple[int, int, int, int],
) -> None:
    cand, base = table_to_vectors(*table)
    got = paired_difference(cand, base)
    low, high = newcombe_reference(*table)
    assert got.n == sum(table)
    assert got.value == pytest.approx((table[1] - table[2]) / sum(table))
    assert got.ci_low == pytest.approx(max(-1.0, low), abs=1e-9)
    assert got.ci_high == pytest.approx(min(1.0, high), abs=1e-9)
    assert got.p_value == pytest.approx(float(binomial_two_sided_exact(table[1], table[2])))


def test_newcombe_hand_worked_case_with_zero_phi() -> None:
    """a=0, b=5, c=0, d=5: baseline never succeeds, so phi = 0 and the limits are
    0.5 − √((0.5 − 0.2366)² + 0.2775²) and 0.5 + (0.7634 − 0.5), from the Wilson table."""
    cand, base = table_to_vectors(0, 5, 0, 5)
    got = paired_difference(cand, base)
    assert got.value == 0.5
    assert got.ci_low == pytest.approx(0.5 - math.hypot(0.5 - 0.236593, 0.277533), abs=1e-5)
    assert got.ci_high == pytest.approx(0.763407, abs=1e-5)
    assert got.p_value == pytest.approx(1 / 16)


def test_newcombe_regression_anchors() -> None:
    """Four-decimal anchors (also cross-checked by the reconstruction above)."""
    cases = {(59, 6, 16, 80): (-0.1186, -0.0046), (14, 5, 0, 22): (0.0115, 0.2265)}
    for table, (low, high) in cases.items():
        got = paired_difference(*table_to_vectors(*table))
        assert (round(got.ci_low, 4), round(got.ci_high, 4)) == (low, high)


def test_pairing_narrows_the_interval_when_models_agree() -> None:
    """Strong positive correlation: the paired interval is narrower than the
    independent-samples (phi = 0) square-and-add interval for the same marginals."""
    cand, base = table_to_vectors(40, 6, 1, 40)
    paired = paired_difference(cand, base)
    n = 87
    p1, p2 = 46 / n, 41 / n
    l1, u1 = wilson(46, n)
    l2, u2 = wilson(41, n)
    independent_width = math.hypot(p1 - l1, u2 - p2) + math.hypot(u1 - p1, p2 - l2)
    assert paired.ci_high - paired.ci_low < independent_width


def _newcombe_exact_coverage(n: int, probs: tuple[float, float, float, float]) -> float:
    pa, pb, pc, pd = probs
    truth = pb - pc
    total = 0.0
    for a in range(n + 1):
        for b in range(n + 1 - a):
            for c in range(n + 1 - a - b):
                d = n - a - b - c
                prob = (
                    math.factorial(n)
                    / (
                        math.factorial(a)
                        * math.factorial(b)
                        * math.factorial(c)
                        * math.factorial(d)
                    )
                    * pa**a
                    * pb**b
                    * pc**c
                    * pd**d
                )
                low, high = stats._newcombe_paired(a, b, c, d)
                if low <= truth <= high:
                    total += prob
    return total


@pytest.mark.parametrize("probs", [(0.4, 0.1, 0.1, 0.4), (0.5, 0.2, 0.05, 0.25)])
def test_newcombe_exact_coverage_near_nominal(
    probs: tuple[float, float, float, float],
) -> None:
    """Exact coverage over every 2×2 table of n = 30 pairs (Newcombe reports ≈ 0.95)."""
    assert 0.93 <= _newcombe_exact_coverage(30, probs) <= 0.99


@pytest.mark.parametrize(
    ("cand", "base", "value", "p"),
    [
        ([1] * 8, [1] * 8, 0.0, 1.0),  # b = c = 0, all 1
        ([0] * 8, [0] * 8, 0.0, 1.0),  # b = c = 0, all 0
        ([1] * 8, [0] * 8, 1.0, 2 / 256),  # candidate always worse (or better)
        ([0] * 8, [1] * 8, -1.0, 2 / 256),
        ([1], [0], 1.0, 1.0),  # n = 1
        ([0], [0], 0.0, 1.0),
    ],
)
def test_paired_binary_edge_cases(cand: list[int], base: list[int], value: float, p: float) -> None:
    got = paired_difference(cand, base)
    assert got.value == value
    assert got.p_value == pytest.approx(p)
    assert -1.0 <= got.ci_low <= got.value <= got.ci_high <= 1.0
    assert got.ci_low < got.ci_high  # never a falsely exact zero-width interval


def test_paired_all_equal_interval_is_symmetric_around_zero() -> None:
    got = paired_difference([1] * 20, [1] * 20)
    assert got.ci_low == pytest.approx(-got.ci_high)
    assert got.ci_high == pytest.approx(1 - wilson(20, 20)[0])


# --------------------------------------------------------------------------- paired clustered


def test_paired_clustered_sign_test_and_bootstrap() -> None:
    # 6 items better, 0 worse, 4 ties: sign test p = 2 · (1/2)^6
    cand = [2 / 3, 1, 1 / 3, 1, 2 / 3, 1, 0.5, 0.5, 0, 1]
    base = [1 / 3, 2 / 3, 0, 0, 1 / 3, 0, 0.5, 0.5, 0, 1]
    got = paired_difference(cand, base)
    assert got.p_value == pytest.approx(2 / 64)
    diffs = [x - y for x, y in zip(cand, base, strict=True)]
    assert got.value == pytest.approx(sum(diffs) / 10)
    assert 0.0 <= got.ci_low < got.value < got.ci_high <= max(diffs)


def test_paired_clustered_is_deterministic_and_order_free() -> None:
    rng = random.Random(9)
    cand = [rng.randint(0, 5) / 5 for _ in range(80)]
    base = [rng.randint(0, 5) / 5 for _ in range(80)]
    first = paired_difference(cand, base)
    random.seed(12345)
    again = paired_difference(cand[::-1], base[::-1])
    assert first == again
    assert -1.0 <= first.ci_low <= first.value <= first.ci_high <= 1.0


def test_paired_clustered_sign_test_matches_mcnemar_of_signs() -> None:
    rng = random.Random(13)
    cand = [rng.randint(0, 4) / 4 for _ in range(50)]
    base = [rng.randint(0, 4) / 4 for _ in range(50)]
    pos = sum(x > y for x, y in zip(cand, base, strict=True))
    neg = sum(x < y for x, y in zip(cand, base, strict=True))
    assert paired_difference(cand, base).p_value == pytest.approx(
        float(binomial_two_sided_exact(pos, neg))
    )


@pytest.mark.parametrize(
    ("cand", "base", "low", "high"),
    [
        ([0.5], [0.0], -1.0, 1.0),  # one clustered item: nothing known about spread
        ([1.0] * 5, [0.5] * 5, 0.5, 0.5),  # constant difference
        ([1.0] * 6, [0.0, 0.5, 0.0, 0.5, 0.0, 0.0], 0.5, 1.0),  # bounded by [-1, 1]
    ],
)
def test_paired_clustered_edges(
    cand: list[float], base: list[float], low: float, high: float
) -> None:
    got = paired_difference(cand, base)
    assert got.ci_low >= low - 1e-12
    assert got.ci_high <= high + 1e-12
    assert got.ci_low <= got.value <= got.ci_high


def test_paired_mixed_binary_and_clustered_goes_to_bootstrap() -> None:
    """A baseline asked once and a candidate asked K times is clustered, not binary."""
    got = paired_difference([0.5, 1, 0, 1, 0.5, 1], [0, 1, 0, 0, 0, 1])
    assert got.p_value == pytest.approx(2 / 8)  # sign test: 3 better, 0 worse


def test_paired_empty_and_misaligned() -> None:
    got = paired_difference([], [])
    assert got.n == 0
    assert all(math.isnan(v) for v in (got.value, got.ci_low, got.ci_high, got.p_value))
    with pytest.raises(ValueError):
        paired_difference([1, 0], [1])
    with pytest.raises(ValueError):
        paired_difference([1.2], [1])


def test_results_are_frozen() -> None:
    got = paired_difference([1, 0], [0, 0])
    assert isinstance(got, Paired)
    with pytest.raises(AttributeError):
        got.value = 0.0  # type: ignore[misc]


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
    b = (
        ["comply", "comply", "comply", "partial"]
        + ["partial", "partial", "refuse"]
        + ["refuse", "refuse", "partial"]
    )
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
