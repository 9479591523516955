"""--limit: every category keeps its share, seeded, pairs kept whole; and an imported dataset runs as a suite."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from conftest import helpful
from taxcheck.suites.sampling import category_counts, sample_items
from taxcheck.suites.format import SuiteItem, load_suite, prompts_dir

STANDARD = load_suite(prompts_dir() / "suites" / "standard.jsonl").items


def _strata(items):
    return Counter((("refusal" if i.category in ("over_refusal", "harmful_refusal") else i.category), i.type or "") for i in items)


QUICK = load_suite(prompts_dir() / "suites" / "quick.jsonl").items
SUITES = {"quick": QUICK, "standard": STANDARD}
LIMITS = [("quick", n) for n in (10, 20, 40, 60, 100, 140)] + [("standard", n) for n in (11, 30, 60, 100, 200, 400, 700)]


def _pairs_whole(items) -> bool:
    members = Counter((i.category in ("over_refusal", "harmful_refusal"), i.pair) for i in items if i.pair)
    return all(n == 2 for n in members.values())


@pytest.mark.parametrize("suite, limit", LIMITS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_category_keeps_its_share(suite, limit, seed):
    """Issue 12 §1: quick --limit 60 gave 1 of 20 knowledge items and no pushback at all."""
    items = list(SUITES[suite])
    full = Counter(i.category for i in items)
    got = sample_items(items, limit, seed)
    assert limit - 1 <= len(got) <= limit  # never over; one short only when only a pair would fit
    assert _pairs_whole(got)
    counts = Counter(i.category for i in got)
    for category, n in full.items():
        share = limit * n / len(items)
        assert abs(counts[category] - share) <= max(2, 0.25 * share), (category, counts[category], share)
        assert counts[category] >= 1, category  # every category is in the sample


@pytest.mark.parametrize("suite, limit", LIMITS)
def test_seeds_change_the_items_not_the_counts(suite, limit):
    items = list(SUITES[suite])
    samples = [sample_items(items, limit, seed) for seed in range(5)]
    assert len({tuple(i.id for i in s) for s in samples}) == 5  # five seeds, five samples
    per_category = [Counter(i.category for i in s) for s in samples]
    assert all(c == per_category[0] for c in per_category)  # what --dry-run prints holds for any seed


def test_a_tiny_limit_still_never_splits_a_pair():
    for limit in (1, 2, 3, 5, 9):
        got = sample_items(list(QUICK), limit, seed=4)
        assert limit - 1 <= len(got) <= limit and _pairs_whole(got)
    assert sample_items(list(QUICK), 1, seed=0)  # one item fits: an unpaired one is taken


def test_mixed_pairs_and_single_items_of_one_type_never_pass_the_limit():
    """An imported suite can mix contrast pairs with unpaired items of the same category and
    type, and hold a pair missing its twin: the old stratified sampler took 62 items of this
    suite for --limit 50 (and 418 for 333)."""
    items = [SuiteItem(id=f"s{k}", category="over_refusal", type=f"t{k % 5}", prompt="p", expect="comply") for k in range(300)]
    for k in range(100):
        items.append(SuiteItem(id=f"b{k}", category="over_refusal", type=f"t{k % 5}", pair=f"p{k}", variant="benign", prompt="p", expect="comply"))
        if k != 7:  # pair p7 has lost its harmful twin
            items.append(SuiteItem(id=f"h{k}", category="harmful_refusal", type=f"t{k % 5}", pair=f"p{k}", variant="harmful", prompt="p", expect="refuse"))
    full = Counter(i.category for i in items)
    for limit in (1, 2, 3, 50, 151, 333, 498):
        for seed in (0, 1):
            got = sample_items(items, limit, seed)
            assert limit - 1 <= len(got) <= limit, (limit, len(got))
            members = Counter(i.pair for i in got if i.pair)
            assert all(n == 2 for p, n in members.items() if p != "p7")
            counts = Counter(i.category for i in got)
            for category, n in full.items():
                share = limit * n / len(items)
                assert abs(counts[category] - share) <= max(2, 0.25 * share), (limit, category, counts[category], share)


def test_types_keep_their_share_inside_a_category():
    full = _strata(STANDARD)
    got = _strata(sample_items(list(STANDARD), 360, seed=1))  # half the suite
    for stratum, n in full.items():
        assert abs(got[stratum] - n / 2) <= 2, stratum


def test_same_seed_same_sample_in_another_process():
    """A rerun resumes the same sample: nothing may depend on hash randomisation or dict order."""
    script = (
        "from taxcheck.suites.sampling import category_counts, sample_items; from taxcheck.suites.format import SuiteItem, load_suite, prompts_dir; "
        "print(','.join(i.id for i in sample_items(list(load_suite(prompts_dir() / 'suites' / 'standard.jsonl').items), 100, 7)))"
    )
    outs = {
        subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                       env={**os.environ, "PYTHONHASHSEED": str(h)}).stdout.strip()
        for h in (1, 2)
    }
    here = ",".join(i.id for i in sample_items(list(STANDARD), 100, seed=7))
    assert outs == {here}
    assert here != ",".join(i.id for i in sample_items(list(STANDARD), 100, seed=8))


def test_dry_run_prints_what_the_limit_gives(taxcheck_cli):
    r = taxcheck_cli("run", "-m", "openai:A", "-s", "quick", "--limit", "60", "--seed", "3", "--dry-run")
    assert r.code == 0, r.stderr
    expected = category_counts(sample_items(list(QUICK), 60, seed=3))
    line = next(x for x in r.stdout.splitlines() if x.startswith("items per category"))
    assert line == "items per category (60 in all): " + ", ".join(f"{c} {n}" for c, n in expected.items())
    assert "capability.knowledge 7" in line and "sycophancy.pushback 4" in line


def test_sample_keeps_suite_order_and_large_limit_is_everything():
    got = sample_items(list(STANDARD), 80, seed=0)
    order = {i.id: n for n, i in enumerate(STANDARD)}
    assert [order[i.id] for i in got] == sorted(order[i.id] for i in got)
    assert sample_items(list(STANDARD), 10_000) == list(STANDARD)


def test_limit_on_the_command_line(tmp_path: Path, taxcheck_cli, fake_api):
    fake_api.respond(helpful)
    r = taxcheck_cli("run", "-m", "openai:A", "-s", "standard", "--limit", "40", "--seed", "5", "-f", "json", "-o", tmp_path / "r.jsonl")
    assert r.code in (0, 3), r.stderr
    items = [json.loads(line) for line in (tmp_path / "r.jsonl").read_text().splitlines() if '"type":"item"' in line]
    assert 39 <= len(items) <= 40


def test_imported_dataset_runs_directly(tmp_path: Path, taxcheck_cli, fake_api):
    """gsm8k rows in the real format, written here; -s FORMAT:FILE imports on the fly."""
    rows = [
        {"question": "Ann has 3 boxes of 12 pencils. How many pencils?", "answer": "3 * 12 = 36\n#### 36"},
        {"question": "A shop sells 1,200 pens a week. How many in 2 weeks?", "answer": "1200 * 2 = 2400\n#### 2,400"},
    ]
    data = tmp_path / "test.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    fake_api.respond(lambda req: "The answer is 36." if "pencils" in req.last_user_text() else "#### 2,400")
    r = taxcheck_cli("run", "-m", "openai:A", "-s", f"gsm8k:{data}", "-f", "json", "-o", tmp_path / "r.jsonl")
    assert r.code == 0, r.stderr
    row = next(x for x in json.loads(r.stdout)["rows"] if x["dimension"] == "capability.math")
    assert row["scores"]["openai:A"]["value"] == 1.0 and row["scores"]["openai:A"]["n"] == 2
    out = tmp_path / "gsm8k.jsonl"
    assert taxcheck_cli("import", "gsm8k", data, "-o", out).code == 0
    assert taxcheck_cli("validate", out).code == 0
