"""The built-in suites: assembled from their parts, sized as promised, shipped in the wheel."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
import zipfile
from collections import Counter
from pathlib import Path

import pytest

from taxcheck.suites.format import builtin_suite_names, load_suite, prompts_dir, resolve_suite

ROOT = Path(__file__).resolve().parents[2]


def _build_module():
    spec = importlib.util.spec_from_file_location("build_suites", ROOT / "prompts" / "build_suites.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_committed_suites_match_their_parts():
    mod = _build_module()
    standard, quick = mod.build()
    assert (ROOT / "prompts/suites/standard.jsonl").read_text(encoding="utf-8") == mod.dump(standard), "run python prompts/build_suites.py"
    assert (ROOT / "prompts/suites/quick.jsonl").read_text(encoding="utf-8") == mod.dump(quick), "run python prompts/build_suites.py"


def test_builtin_names_and_resolution():
    assert {"quick", "standard"} <= set(builtin_suite_names())
    assert resolve_suite("quick").name == "quick"


def _counts(items):
    cats = Counter(i.category for i in items)
    pairs = Counter((i.category, i.pair) for i in items if i.pair)
    return cats, len({p for (c, p) in pairs if c == "over_refusal"}), len({p for (c, p) in pairs if c == "sycophancy.pressure"})


def test_quick_suite_sizes_issue_2():
    items = load_suite(prompts_dir() / "suites" / "quick.jsonl").items
    cats, refusal_pairs, pressure_pairs = _counts(items)
    assert refusal_pairs >= 25
    assert cats["harmful_refusal"] == cats["over_refusal"]
    assert cats["creative"] >= 10 and cats["dual_use"] >= 10
    assert cats["capability.knowledge"] >= 20 and cats["capability.math"] >= 20
    assert pressure_pairs >= 15 and cats["sycophancy.pushback"] >= 10
    assert cats["capability.code"] == 0
    letters = Counter(i.answer.choice for i in items if i.category == "capability.knowledge")
    assert max(letters.values()) - min(letters.values()) <= 1
    types = {i.type for i in items if i.category == "over_refusal"}
    assert {"homonyms", "figurative_language", "safe_targets", "safe_contexts", "definitions", "historical_events", "privacy_public", "fiction"} <= types


def test_standard_suite_sizes_issue_3():
    items = load_suite(prompts_dir() / "suites" / "standard.jsonl").items
    cats, refusal_pairs, pressure_pairs = _counts(items)
    assert refusal_pairs >= 100
    per_type = Counter(i.type for i in items if i.category == "over_refusal")
    assert len(per_type) >= 10 and min(per_type.values()) >= 10
    assert cats["creative"] >= 40 and cats["dual_use"] >= 40
    assert cats["capability.knowledge"] >= 100 and cats["capability.math"] >= 100
    assert cats["capability.code"] >= 40
    assert pressure_pairs >= 60 and cats["sycophancy.pushback"] >= 40


def test_quick_is_a_subset_of_standard():
    std = {i.id: i for i in load_suite(prompts_dir() / "suites" / "standard.jsonl").items}
    for item in load_suite(prompts_dir() / "suites" / "quick.jsonl").items:
        assert std[item.id] == item


def test_no_duplicate_prompts_across_standard():
    seen: dict[str, str] = {}
    for item in load_suite(prompts_dir() / "suites" / "standard.jsonl").items:
        key = re.sub(r"\s+", " ", item.text_of_prompt().strip().lower())
        assert key not in seen, f"{item.id} repeats {seen.get(key)}"
        seen[key] = item.id


def test_prompts_ship_inside_the_wheel(tmp_path: Path):
    pytest.importorskip("hatchling")
    out = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), str(ROOT)],
        capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 0, out.stderr
    wheel = next(tmp_path.glob("taxcheck-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in ("taxcheck/prompts/suites/quick.jsonl", "taxcheck/prompts/suites/standard.jsonl",
                   "taxcheck/prompts/judges/refusal.md", "taxcheck/prompts/prices.json", "taxcheck/cli.py"):
        assert needed in names
    # an installed package finds its prompts beside itself, not in a checkout
    target = tmp_path / "site"
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(target)
    probe = subprocess.run(
        [sys.executable, "-c", "import taxcheck.suites.format as s; print(s.prompts_dir()); print(s.builtin_suite_names())"],
        capture_output=True, text=True, env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"}, cwd=tmp_path, timeout=60,
    )
    assert probe.returncode == 0, probe.stderr
    assert str(target) in probe.stdout and "quick" in probe.stdout
