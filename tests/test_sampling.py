"""--limit: seeded, stratified, pairs kept whole; and an imported dataset runs as a suite."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from conftest import helpful
from taxcheck.sampling import sample_items
from taxcheck.suite import load_suite, prompts_dir

STANDARD = load_suite(prompts_dir() / "suites" / "standard.jsonl").items


def _strata(items):
    return Counter((("refusal" if i.category in ("over_refusal", "harmful_refusal") else i.category), i.type or "") for i in items)


@pytest.mark.parametrize("limit", [10, 50, 101, 200, 500])
def test_pairs_never_split_and_size_respected(limit):
    got = sample_items(list(STANDARD), limit, seed=3)
    assert limit - 1 <= len(got) <= limit  # one short when only a pair would fit
    pairs = Counter((i.category in ("over_refusal", "harmful_refusal"), i.pair) for i in got if i.pair)
    assert all(n == 2 for n in pairs.values())


def test_every_stratum_keeps_its_share():
    full = _strata(STANDARD)
    got = _strata(sample_items(list(STANDARD), 360, seed=1))  # half the suite
    for stratum, n in full.items():
        assert abs(got[stratum] - n / 2) <= 2, stratum


def test_same_seed_same_sample_other_seed_other_sample():
    a = [i.id for i in sample_items(list(STANDARD), 100, seed=7)]
    b = [i.id for i in sample_items(list(STANDARD), 100, seed=7)]
    c = [i.id for i in sample_items(list(STANDARD), 100, seed=8)]
    assert a == b and a != c


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
