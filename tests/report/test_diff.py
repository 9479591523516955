"""``taxcheck diff``: two run files that differ in known ways give exactly the known change."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.console import Console

from taxcheck.measure import stats
from taxcheck.report.diff import (
    diff_gates,
    diff_runs,
    render_diff_json,
    render_diff_markdown,
    render_diff_table,
    verdict_words,
)
from taxcheck.errors import UserError
from taxcheck.grade.rules import Grade
from taxcheck.report.table import Gate
from taxcheck.runfile import RunData, RunWriter, read_run

# Response texts the fake grader below understands; the real scorers are tested elsewhere.
GRADE_OF_TEXT = {
    "REFUSE": Grade(refusal="refuse", reason="test: refuse"),
    "COMPLY": Grade(refusal="comply", hedged=False, reason="test: comply"),
    "RIGHT": Grade(correct=True, reason="test: right"),
    "WRONG": Grade(correct=False, reason="test: wrong"),
}

BENIGN = [f"b{i:02d}" for i in range(60)]
HARMFUL = [f"h{i:02d}" for i in range(40)]
MATH = [f"m{i:02d}" for i in range(30)]


def _items() -> list[dict]:
    items = [{"id": i, "category": "over_refusal", "prompt": f"benign {i}", "expect": "comply"} for i in BENIGN]
    items += [{"id": i, "category": "harmful_refusal", "prompt": f"harmful {i}", "expect": "refuse"} for i in HARMFUL]
    items += [{"id": i, "category": "capability.math", "prompt": f"math {i}", "expect": "answer", "answer": {"number": 1}} for i in MATH]
    return items


def write_run(path: Path, run_id: str, texts: dict[str, dict[str, str]], *, suite_sha: str = "a" * 64, failed: dict[str, set[str]] | None = None) -> RunData:
    """A run file: ``texts[model][item]`` is the response; ``failed[model]`` items error out."""
    w = RunWriter(path)
    w.open()
    w.write(
        {
            "type": "header",
            "taxcheck_version": "0.1.0",
            "run_id": run_id,
            "created": "2024-11-28T10:00:00+00:00",
            "command": ["taxcheck", "run"],
            "models": list(texts),
            "suites": [{"name": "quick", "path": "quick.jsonl", "sha256": suite_sha, "items": 130}],
            "params": {"temperature": 0.0, "max_tokens": 512, "samples": 1},
        }
    )
    for item in _items():
        w.write({"type": "item", "item": item})
    for model, per_item in texts.items():
        for item_id, text in per_item.items():
            if item_id in (failed or {}).get(model, set()):
                w.write({"type": "call", "model": model, "item": item_id, "error": {"kind": "timeout", "message": "timed out"}})
            else:
                w.write({"type": "call", "model": model, "item": item_id, "text": text, "served_model": model.split(":")[1]})
    w.close()
    return read_run(path)


def fake_grades(data: RunData) -> dict:
    return {k: GRADE_OF_TEXT[r.text] for k, r in data.calls.items() if r.ok}


def behaviour(benign_refused: set[int], harmful_answered: set[int] = frozenset(), math_wrong: set[int] = frozenset()) -> dict[str, str]:
    out = {b: ("REFUSE" if i in benign_refused else "COMPLY") for i, b in enumerate(BENIGN)}
    out |= {h: ("COMPLY" if i in harmful_answered else "REFUSE") for i, h in enumerate(HARMFUL)}
    out |= {m: ("WRONG" if i in math_wrong else "RIGHT") for i, m in enumerate(MATH)}
    return out


OLD_A = behaviour(benign_refused={0, 1, 2, 3, 4})
# 20 more benign refusals (b10..b29), one fewer (b04); 3 math items now wrong
NEW_A = behaviour(benign_refused={0, 1, 2, 3} | set(range(10, 30)), math_wrong={0, 1, 2})
OLD_B = behaviour(benign_refused=set())
NEW_B = behaviour(benign_refused={7, 8})  # slightly worse, not confidently


@pytest.fixture
def runs(tmp_path):
    old = write_run(tmp_path / "old.jsonl", "old1", {"openai:a": OLD_A, "openai:b": OLD_B})
    new = write_run(tmp_path / "new.jsonl", "new1", {"openai:a": NEW_A, "openai:b": NEW_B})
    return old, new


def _diff(old, new, **kw):
    return diff_runs(old, new, old_grades=fake_grades(old), new_grades=fake_grades(new), old_file="old.jsonl", new_file="new.jsonl", **kw)


def test_change_and_flips_are_exactly_as_constructed(runs):
    res = _diff(*runs)
    assert res.models == ["openai:a", "openai:b"]
    row = res.row("over_refusal")
    a = row.cells["openai:a"]
    assert (a.old.value, a.new.value) == (pytest.approx(5 / 60), pytest.approx(24 / 60))
    assert a.change.n == 60
    assert a.change.value == pytest.approx(19 / 60)
    assert a.change.significance == "cost"
    assert a.change.p_value < 0.001
    assert [f.unit for f in a.worse_flips] == [f"b{i}" for i in range(10, 30)]
    assert all((f.old, f.new) == ("answered", "refused") for f in a.worse_flips)
    assert [(f.unit, f.old, f.new, f.worse) for f in a.better_flips] == [("b04", "refused", "answered", False)]

    # higher-is-better: 3 fewer correct is a positive (worse) change
    m = res.row("capability.math").cells["openai:a"]
    assert m.change.value == pytest.approx(3 / 30)
    assert [(f.unit, f.old, f.new) for f in m.flips] == [("m00", "correct", "wrong"), ("m01", "correct", "wrong"), ("m02", "correct", "wrong")]
    assert all(f.worse for f in m.flips)

    h = res.row("harmful_refusal").cells["openai:a"]
    assert (h.change.value, h.change.significance, h.flips) == (0.0, "unclear", [])

    b = row.cells["openai:b"]
    assert b.change.value == pytest.approx(2 / 60)
    assert b.change.significance == "unclear"
    assert [f.unit for f in b.flips] == ["b07", "b08"]


def test_hedging_row_present_and_unchanged(runs):
    res = _diff(*runs)
    hedging = res.row("hedging").cells["openai:a"]
    # hedging is over complied benign answers only; units that became refusals leave it
    assert hedging.change.n == 60 - 4 - 21
    assert hedging.change.value == 0.0


@pytest.mark.parametrize(
    "spec, tripped",
    [
        (("over_refusal", 5.0), ["openai:a"]),  # +31.7 pp, interval well above 5
        (("over_refusal", 30.0), []),  # point estimate above 30 but the interval is not
        (("over_refusal", 0.0), ["openai:a"]),  # b: +3.3 pp, but its interval includes 0
        (("harmful_refusal", 0.0), []),
        (("sycophancy.pushback", 0.0), []),  # no such row: unmeasured, which fails closed (below)
    ],
)
def test_gates_trip_only_on_the_interval(runs, spec, tripped):
    res = _diff(*runs)
    gates = diff_gates(res, [Gate(*spec)])
    assert gates[0].tripped_by == tripped
    assert res.gates == gates
    row = res.row(spec[0])
    if row is not None:  # the rule itself, cross-checked against the intervals
        for model, cell in row.cells.items():
            assert (model in tripped) == stats.above_allowance(cell.change.ci_low, spec[1])
    doc = json.loads(render_diff_json(res))
    [gate] = doc["gates"]
    assert (gate["dimension"], gate["allowance_pp"], gate["tripped_by"]) == (spec[0], spec[1], tripped)
    if row is None:  # nothing to compare: never "ok"; the reason is given per model, as JSON keys are models
        assert gate["status"] == "unmeasured" and gate["tripped"] and gate["unmeasured"]
        assert sorted(gate["unmeasured"]) == sorted(res.models)
    else:
        assert gate["status"] == ("tripped" if tripped else "ok") and gate["tripped"] == bool(tripped)


def test_json_is_parseable_and_complete(runs):
    res = _diff(*runs)
    diff_gates(res, [Gate("over_refusal", 5.0)])
    doc = json.loads(render_diff_json(res))
    assert doc["old"]["run_id"] == "old1" and doc["new"]["results_file"] == "new.jsonl"
    rows = {r["dimension"]: r for r in doc["rows"]}
    assert set(rows) == {"over_refusal", "harmful_refusal", "hedging", "capability.math"}
    a = rows["over_refusal"]["models"]["openai:a"]
    assert a["change"]["significance"] == "cost"
    assert a["change"]["value"] == pytest.approx(19 / 60, abs=1e-6)
    assert len(a["flips"]) == 21
    assert a["flips"][0] == {"unit": "b10", "old": "answered", "new": "refused", "old_value": 0.0, "new_value": 1.0, "worse": True}


def test_markdown_and_table_show_changes_and_flips(runs):
    res = _diff(*runs)
    diff_gates(res, [Gate("over_refusal", 5.0)])
    md = render_diff_markdown(res)
    assert "| over_refusal | lower | openai:a |" in md
    assert "🔴 worse" in md
    assert "`b10` (answered -> refused)" in md
    assert "GATE TRIPPED over_refusal" in md
    buf = io.StringIO()
    render_diff_table(res, Console(file=buf, width=220, no_color=True))
    text = buf.getvalue()
    assert "+31.7" in text and "b29 (answered -> refused)" in text
    assert "21/0" not in text and "20/1" in text


def test_only_common_units_are_compared(tmp_path):
    old = write_run(tmp_path / "old.jsonl", "o", {"openai:a": OLD_A})
    # the new run failed on b10..b14: those units leave n instead of counting as changes
    new = write_run(tmp_path / "new.jsonl", "n", {"openai:a": NEW_A}, failed={"openai:a": {f"b{i}" for i in range(10, 15)}}, suite_sha="b" * 64)
    res = _diff(old, new)
    a = res.row("over_refusal").cells["openai:a"]
    assert a.change.n == 55
    assert a.change.value == pytest.approx((15 - 1) / 55)
    assert "b10" not in [f.unit for f in a.flips]
    assert any("suite quick changed" in n for n in res.notes)


def test_model_matching(tmp_path):
    old = write_run(tmp_path / "old.jsonl", "o", {"openai:a-0513": OLD_A, "openai:c": OLD_B})
    new = write_run(tmp_path / "new.jsonl", "n", {"openai:a-0806": NEW_A})
    with pytest.raises(UserError, match="no model in common"):
        _diff(old, new)
    res = _diff(old, new, model_pairs=[("openai:a-0513", "openai:a-0806")])
    assert res.models == ["openai:a-0513 -> openai:a-0806"]
    assert res.only_old == ["openai:c"]
    assert res.row("over_refusal").cells[res.models[0]].change.value == pytest.approx(19 / 60)
    with pytest.raises(UserError, match="not in the new run"):
        _diff(old, new, model_pairs=[("openai:a-0513", "openai:zzz")])


@pytest.mark.parametrize(
    "dim, value, words",
    [
        ("over_refusal", 1.0, "refused"),
        ("over_refusal", 0.0, "answered"),
        ("capability.code", 0.0, "wrong"),
        ("sycophancy.pushback", 1.0, "flipped"),
        ("hedging", 2 / 3, "hedged 67%"),
    ],
)
def test_verdict_words(dim, value, words):
    assert verdict_words(dim, value) == words


def test_default_grading_path(runs, monkeypatch):
    """Without explicit grades, each run is graded by grading.grade_run."""
    import taxcheck.report.diff as diff_mod

    seen = []
    monkeypatch.setattr(diff_mod, "grade_run", lambda data: seen.append(data.header.run_id) or fake_grades(data))
    res = diff_runs(*runs)
    assert seen == ["old1", "new1"]
    assert res.row("over_refusal").cells["openai:a"].change.value == pytest.approx(19 / 60)
