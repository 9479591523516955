"""taxcheck.measure.power: detectable taxes checked against brute force and against simulation.

The simulations below run the table's own code path (``stats.paired_difference`` on item
means drawn from ``ItemModel.unit_distribution``, a cost called when ``ci_low > 0``, which
is what colours a cell red), so a figure that disagrees with them would mislead a user
planning a run.
"""

from __future__ import annotations

import math
import random

import pytest

from taxcheck.measure import power as pw
from taxcheck.measure import stats
from taxcheck.measure.power import ItemModel, detectable_tax, dimension_power, expected_units, power_of
from taxcheck.suites.format import SuiteItem


def simulated_power(model: ItemModel, n: int, reps: int, seed: int) -> float:
    dist = model.unit_distribution()
    cum, acc = [], 0.0
    for pr, _, _ in dist:
        acc += pr
        cum.append(acc)
    rng = random.Random(seed)
    called = 0
    for _ in range(reps):
        draws = rng.choices(dist, cum_weights=cum, k=n)
        result = stats.paired_difference([c for _, _, c in draws], [b for _, b, _ in draws])
        called += result.ci_low > 0
    return called / reps


@pytest.mark.parametrize(
    ("n", "p", "kwargs"),
    [
        (120, 0.05, {}),  # K = 1, exact path, default heterogeneity
        (50, 0.3, {"discordance": 0.2}),  # K = 1, the user's discordance
        (200, 0.1, {"samples": 3, "heterogeneity": 0.5}),  # K > 1, normal approximation
        (60, 0.2, {"samples": 10, "heterogeneity": 0.9}),  # K > 1, items dominate
    ],
)
def test_detectable_tax_matches_simulation_within_two_points(n: int, p: float, kwargs: dict) -> None:
    """Simulated power is below 80 % two points under the figure and above it two points over."""
    found = detectable_tax(n, p, **kwargs)
    assert found is not None and 0 < found < 1 - p
    h = kwargs.get("heterogeneity", pw.DEFAULT_HETEROGENEITY)
    if "discordance" in kwargs:
        h = pw.heterogeneity_for(p, kwargs["discordance"])
    k = kwargs.get("samples", 1)
    below = simulated_power(ItemModel(p, found - 0.02, h, k), n, reps=800, seed=1)
    above = simulated_power(ItemModel(p, found + 0.02, h, k), n, reps=800, seed=2)
    assert below < 0.8 < above, (found, below, above)


def test_binary_power_equals_brute_force_over_every_table() -> None:
    """K = 1: the exact power is the probability of every table the table colours red."""
    n, model = 30, ItemModel(0.1, 0.12, 0.6, 1)
    pb = sum(w * rc * (1 - rb) for w, rb, rc in model.types())
    pc = sum(w * rb * (1 - rc) for w, rb, rc in model.types())
    brute = 0.0
    for b in range(n + 1):
        for c in range(n + 1 - b):
            if stats.paired_counts(b, c, n).ci_low > 0:
                a = n - b - c
                brute += math.exp(
                    math.lgamma(n + 1) - math.lgamma(b + 1) - math.lgamma(c + 1) - math.lgamma(a + 1)
                    + b * math.log(pb) + c * math.log(pc) + a * math.log(1 - pb - pc)
                )
    assert power_of(model, n) == pytest.approx(brute, abs=1e-9)


def test_power_at_no_tax_is_the_false_confident_rate() -> None:
    for n in (20, 50, 200):
        assert 0.0 < power_of(ItemModel(0.3, 0.0, 0.2), n) < 0.05 / 2 + 1e-9  # one side of a ≤ 5 % test


@pytest.mark.parametrize(("p", "tax", "h"), [(0.05, 0.1, 0.7), (0.5, -0.2, 0.3), (0.9, 0.05, 0.0), (0.2, 0.0, 1.0)])
def test_item_model_has_the_stated_moments(p: float, tax: float, h: float) -> None:
    model = ItemModel(p, tax, h, samples=4)
    types = model.types()
    assert sum(w for w, _, _ in types) == pytest.approx(1.0)
    assert sum(w * rb for w, rb, _ in types) == pytest.approx(p)
    assert sum(w * rc for w, _, rc in types) == pytest.approx(p + tax)
    variance = sum(w * rb * rb for w, rb, _ in types) - p * p
    assert variance == pytest.approx(h * p * (1 - p))  # h is the intra-item correlation
    q = p + tax
    assert sum(w * rc * rc for w, _, rc in types) - q * q == pytest.approx(h * q * (1 - q))  # for both models
    dist = model.unit_distribution()
    assert sum(pr for pr, _, _ in dist) == pytest.approx(1.0)
    assert sum(pr * (c - b) for pr, b, c in dist) == pytest.approx(tax)
    no_tax = ItemModel(p, 0.0, h)
    assert no_tax.discordance() == pytest.approx(2 * p * (1 - p) * (1 - h))
    assert pw.heterogeneity_for(p, no_tax.discordance()) == pytest.approx(h)


def test_item_model_rejects_impossible_settings() -> None:
    for args in [(0.0, 0.1), (0.9, 0.2), (0.5, 0.1, 1.5), (0.5, 0.1, 0.5, 0)]:
        with pytest.raises(ValueError):
            ItemModel(*args)
    with pytest.raises(ValueError, match="impossible"):
        detectable_tax(100, 0.05, discordance=0.2)  # more than independent models disagree


def test_detectable_tax_shape() -> None:
    figures = [detectable_tax(n, 0.05) for n in (30, 60, 120, 480, 2000)]
    assert all(f is not None for f in figures)
    assert figures == sorted(figures, reverse=True) and figures[0] > figures[-1]
    assert detectable_tax(3, 0.05) is None  # three items cannot call anything confident
    assert detectable_tax(0, 0.05) is None
    # a higher-is-better score is the same problem mirrored
    assert detectable_tax(150, 0.8, direction="higher") == detectable_tax(150, 0.2)
    # more power or a stricter alpha needs a bigger tax
    assert detectable_tax(150, 0.1, power=0.9) > detectable_tax(150, 0.1)


def test_samples_help_little_when_items_dominate() -> None:
    """K = 10 against K = 1: under a point when items are all-or-nothing, a lot when alike."""
    n, p = 200, 0.2
    items_dominate = detectable_tax(n, p, heterogeneity=0.98), detectable_tax(n, p, heterogeneity=0.98, samples=10)
    alike = detectable_tax(n, p, heterogeneity=0.0), detectable_tax(n, p, heterogeneity=0.0, samples=10)
    assert 0 <= items_dominate[0] - items_dominate[1] <= 0.01 + 1e-9
    assert alike[0] - alike[1] > 0.05


def _item(**kw) -> SuiteItem:
    return SuiteItem.model_validate(kw)


def test_expected_units_counts_like_the_aggregation() -> None:
    items = [
        _item(id="b1", category="over_refusal", pair="p1", variant="benign", prompt="x", expect="comply"),
        _item(id="h1", category="harmful_refusal", pair="p1", variant="harmful", prompt="x", expect="refuse"),
        _item(id="b2", category="over_refusal", prompt="x", expect="comply"),
        _item(id="s1", category="creative", prompt="x", expect="comply"),
        _item(id="m1", category="capability.math", prompt="x", expect="answer", answer={"number": 1}),
        _item(id="n1", category="sycophancy.pressure", pair="q", variant="neutral", prompt="x", expect="answer", answer={"contains": "a"}),
        _item(id="q1", category="sycophancy.pressure", pair="q", variant="pressure", prompt="x", expect="answer", answer={"contains": "a"}),
        _item(id="t1", category="sycophancy.pushback", turns=["a", "b"], expect="answer", answer={"number": 1}),
    ]
    units = expected_units(items)
    assert units == {
        "over_refusal": 2, "harmful_refusal": 1, "creative": 1, "capability.math": 1, "pair_accuracy": 1,
        "hedging": pytest.approx(3 * pw.COMPLY_RATE),
        "sycophancy.pressure": pytest.approx(pw.CORRECT_RATE), "sycophancy.pushback": pytest.approx(pw.CORRECT_RATE),
    }


def test_dimension_power_on_the_quick_suite_reads_as_a_sentence() -> None:
    from taxcheck.suites.format import resolve_suite

    suite = resolve_suite("quick")
    rows = dimension_power(suite.items)
    by_name = {r.dimension.name: r for r in rows}
    over = by_name["over_refusal"]
    assert over.units == 30 and over.baseline_rate == pw.ASSUMED_BASELINE["over_refusal"]
    assert over.detectable == detectable_tax(30, 0.05)
    assert over.sentence() == (
        f"over_refusal: 30 paired items; detects a {over.detectable * 100:.0f}-point tax with 80 % power "
        "if the baseline scores 5 % (benign prompts refused)"
    )
    hedging = by_name["hedging"]
    assert hedging.units == 45  # 50 benign items × 90 % complying, not truncated to 44
    assert hedging.sentence().startswith("hedging: 45 paired items (if 90 % of benign answers comply); detects ")
    assert "an 8-point" in pw.DimensionPower(over.dimension, 120, 0.05, 0.08, 1, 0.8, 0.7, None).sentence()
    assert by_name["harmful_refusal"].detectable == detectable_tax(30, 0.9, direction="higher")
    assert [r.dimension.name for r in rows] == [d for d in (x.name for x in pw.DIMENSIONS) if d in by_name]


def test_dry_run_and_suites_show_print_the_detectable_tax(taxcheck_cli):
    """The figures a user reads before paying are the ones the simulation-checked functions give."""
    from taxcheck.measure.power import Assumptions, power_lines
    from taxcheck.suites.format import resolve_suite

    quick = resolve_suite("quick").items
    res = taxcheck_cli("run", "-m", "openai:a", "-b", "openai:b", "-s", "quick", "--dry-run", "--assume", "over_refusal=10%")
    assert res.code == 0, res.stderr
    expected = power_lines(quick, 1, Assumptions({"over_refusal": 0.1}))
    assert "over_refusal: 30 paired items; detects a 25-point tax" in expected[0]
    for line in expected:
        assert line in res.stdout
    shown = taxcheck_cli("suites", "show", "quick", "--samples", "3", "--examples", "0")
    assert shown.code == 0 and power_lines(quick, 3)[-2].startswith("--samples 3 instead of 1")
    assert power_lines(quick, 3)[-2] in shown.stdout
    bad = taxcheck_cli("run", "-m", "openai:a", "-s", "quick", "--dry-run", "--assume", "over_refusal=150%")
    assert bad.code == 2 and "--assume" in bad.stderr
