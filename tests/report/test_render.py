"""Rendering: layouts that fit the console and never cut a number; displays that cannot mislead.

Tables are built from real statistics over seeded answers (``stats.rate`` and
``stats.paired_difference``), rendered to fixed widths, and every number of the table is
looked for *whole* in the output. The expected strings are formatted here, independently of
``report.table.score_text``/``tax_text``, so a change of format cannot pass unnoticed.
"""

from __future__ import annotations

import csv
import io
import json
import math
import random
import re

import pytest
from rich.console import Console

from taxcheck.measure import stats
from taxcheck.measure.aggregate import DIMENSIONS, Cell, Row, Table, TaxCell
from taxcheck.report.table import (
    ReportMeta,
    csv_text,
    empty_reasons,
    print_table,
    render_csv,
    render_json,
    render_markdown,
    score_text,
    why_empty,
)

WIDTHS = (60, 80, 100, 120, 160)
LONG = "openai:ft:gpt-4o-mini:acme:triage:9xYz"


def _score(rng: random.Random, n: int, p: float) -> list[float]:
    return [1.0 if rng.random() < p else 0.0 for _ in range(n)]


def make_table(
    candidates: int,
    *,
    baseline: bool = True,
    long_names: bool = False,
    seed: int = 0,
    empty: dict[str, set[str]] | None = None,
    failures: dict[str, int] | None = None,
) -> Table:
    """Every dimension, with n from 3 to 2,000 and rates from 0 % to 100 % (both ends occur).

    ``empty[dimension]`` names the models with no value there.
    """
    rng = random.Random(seed)
    names = ["openai:gpt-4o-2024-08-06"] + [f"anthropic:claude-{i}" for i in range(candidates)]
    if long_names:
        names = [LONG] + [f"{LONG}-v{i}" for i in range(candidates)]
    base = names[0] if baseline else None
    rows = []
    for k, dim in enumerate(DIMENSIONS):
        n = (3, 12, 30, 150, 2000)[k % 5]
        p_base = (0.0, 1.0, 0.05, 0.5, 0.97)[k % 5]
        values = {}
        for j, m in enumerate(names):
            if m in (empty or {}).get(dim.name, set()):
                values[m] = []
            else:
                p = p_base if j == 0 else min(1.0, max(0.0, p_base + rng.choice((-0.9, -0.3, 0.0, 0.2, 1.0))))
                values[m] = _score(rng, n, p)
        scores = {}
        for m, vs in values.items():
            r = stats.rate(vs)
            scores[m] = Cell(r.value, r.n, r.ci_low, r.ci_high)
        tax = {}
        if base:
            for m in names[1:]:
                c, b = values[m], values[base]
                if not c or not b:
                    c, b = [], []
                d = stats.paired_difference(c, b) if dim.direction == "lower" else stats.paired_difference(b, c)
                tax[m] = TaxCell(d.value, d.n, d.ci_low, d.ci_high, d.p_value)
        rows.append(Row(dim, scores, tax))
    return Table(names, base, rows, failures or {m: 0 for m in names})


def meta(table: Table) -> ReportMeta:
    usage = {m: {"requests": 10, "cached": 0, "input_tokens": 100, "output_tokens": 50, "cost_usd": 0.0123} for m in table.models}
    return ReportMeta(run_id="r1", results_file="runs/r1.jsonl", usage=usage)


def render(table: Table, width: int) -> str:
    buf = io.StringIO()
    print_table(table, meta(table), Console(file=buf, width=width, no_color=True, emoji=False, highlight=False))
    return buf.getvalue()


def expected_numbers(table: Table) -> list[str]:
    """Each score and tax of the table as it must appear, formatted independently."""
    out = []
    for row in table.rows:
        for c in row.scores.values():
            if c.n:
                out.append(f"{c.value * 100:.1f}% [{c.ci_low * 100:.1f}, {c.ci_high * 100:.1f}] ({c.n})")
        for t in row.tax.values():
            if t.n:
                out.append(f"{t.value * 100:+.1f} [{t.ci_low * 100:+.1f}, {t.ci_high * 100:+.1f}]")
    return out


CASES = [
    pytest.param(dict(candidates=c, baseline=b, long_names=long), id=f"{c}cand-{'base' if b else 'nobase'}{'-long' if long else ''}")
    for c in (1, 2, 3, 4)
    for b in (True, False)
    for long in (False, True)
]


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("kw", CASES)
def test_every_number_is_printed_whole_and_nothing_overflows(kw, width):
    table = make_table(**kw, seed=width)
    text = render(table, width)
    for number in expected_numbers(table):
        assert number in text, f"{number!r} cut at width {width}:\n{text}"
    assert "…" not in text
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= width, "\n".join(line for line in lines if len(line) > width)


def test_the_widths_take_the_layout_that_fits():
    table = make_table(2)
    wide = render(table, 200)
    assert "┃ dimension" in wide and "tax anthropic:claude-1" in wide  # side by side
    narrow = render(table, 80)
    assert "┃" not in narrow and "over_refusal · lower is better" in narrow  # a block per dimension
    assert "score [95% CI] (n)" in narrow and "tax, pp [95% CI]" in narrow
    tight = render(table, 60)
    assert "    tax" in tight  # the tax on a line of its own


def test_long_model_names_fold_and_numbers_stay():
    table = make_table(3, long_names=True)
    for width in (60, 80):
        text = render(table, width)
        flat = "".join(text.split())
        assert LONG + "-v2" in flat  # folded across lines, never cut
        for number in expected_numbers(table):
            assert number in text


def test_narrower_than_any_layout_prints_plain_lines_whole():
    table = make_table(2, long_names=True)
    text = render(table, 30)
    for number in expected_numbers(table):
        assert number in text


def test_piped_output_is_fixed_and_whole(tmp_path):
    from taxcheck.console import stdout_console

    table = make_table(4, long_names=True)
    path = tmp_path / "out.txt"
    with open(path, "w", encoding="utf-8") as fh:
        print_table(table, meta(table), stdout_console(fh, color=False))
    text = path.read_text(encoding="utf-8")
    for number in expected_numbers(table):
        assert number in text


# --------------------------------------------------------------------------- display


@pytest.mark.parametrize(
    "value, low, high, n, text",
    [
        (0.05, 0.014, 0.165, 40, "5.0% [1.4, 16.5] (40)"),
        (0.0, 0.0, 0.114, 30, "0.0% [0.0, 11.4] (30)"),
        (1.0, 0.886, 1.0, 30, "100.0% [88.6, 100.0] (30)"),
        (math.nan, math.nan, math.nan, 0, "— (0)"),
    ],
)
def test_score_shows_both_ends_never_a_half_width(value, low, high, n, text):
    assert score_text(value, low, high, n) == text
    assert "±" not in score_text(value, low, high, n)


def test_markdown_shows_both_ends_and_reasons():
    table = make_table(1, empty={"hedging": {"anthropic:claude-0"}})
    md = render_markdown(table, meta(table))
    assert "±" not in md
    for number in expected_numbers(table):
        assert number in md
    hedging = next(line for line in md.splitlines() if line.startswith("| hedging"))
    assert "no benign answer complied, so no hedge can be measured" in hedging


@pytest.mark.parametrize(
    "dimension, n, failed, reason",
    [
        ("hedging", {"over_refusal": 30, "hedging": 0}, 0, "no benign answer complied, so no hedge can be measured"),
        ("sycophancy.pressure", {"over_refusal": 30, "sycophancy.pressure": 0}, 0, "no neutral answer was right, so no flip can be measured"),
        ("sycophancy.pushback", {"sycophancy.pushback": 0, "capability.math": 5}, 0, "no first answer was right, so no flip can be measured"),
        ("over_refusal", {"over_refusal": 0, "hedging": 0, "capability.math": 0}, 7, "every call failed (see failures)"),
        ("sycophancy.pressure", {"sycophancy.pressure": 0, "over_refusal": 0}, 3, "every call failed (see failures)"),
        ("capability.math", {"capability.math": 0, "over_refusal": 4}, 2, "every call failed (see failures)"),
        ("capability.math", {"capability.math": 0, "over_refusal": 4}, 0, "no answer was graded"),
        # hedging is measured on the refusal rows' answers: when those are empty, their reason holds
        ("hedging", {"over_refusal": 0, "creative": 0, "hedging": 0, "capability.math": 3}, 4, "every call failed (see failures)"),
        ("sycophancy.pressure", {"sycophancy.pressure": 0, "over_refusal": 9}, 2,
         "no neutral answer was right, so no flip can be measured (2 calls of this model failed: see failures)"),
        ("over_refusal", {"over_refusal": 0}, None, "no answer was graded"),
    ],
)
def test_why_empty(dimension, n, failed, reason):
    assert why_empty(dimension, n, failed) == reason


def test_empty_rows_say_why_in_every_layout():
    cand = "anthropic:claude-0"
    table = make_table(
        1,
        empty={"hedging": {cand}, "sycophancy.pressure": {"openai:gpt-4o-2024-08-06", cand}},
    )
    reasons = empty_reasons(table)
    assert reasons[("hedging", cand, "score")] == "no benign answer complied, so no hedge can be measured"
    assert reasons[("hedging", cand, "tax")] == reasons[("hedging", cand, "score")]
    for width in (200, 80, 60):
        text = " ".join(render(table, width).split())  # a reason may wrap
        assert "no benign answer complied, so no hedge can be measured" in text, width
        assert "no neutral answer was right, so no flip can be measured" in text, width
    wide = render(table, 200)
    assert "— (0) note a" in wide and "note a) hedging, anthropic:claude-0: no benign answer" in wide
    assert "sycophancy.pressure, every model: no neutral answer was right" in wide


def test_no_common_unit_is_named():
    table = make_table(1)
    row = table.row("hedging")
    row.tax["anthropic:claude-0"] = TaxCell(math.nan, 0, math.nan, math.nan, math.nan)
    assert empty_reasons(table)[("hedging", "anthropic:claude-0", "tax")] == "no item both models have a value for"
    assert "no item both models have a value for" in " ".join(render(table, 80).split())


def test_low_n_uses_the_paired_n_when_smaller():
    dim = next(d for d in DIMENSIONS if d.name == "hedging")
    scores = {"a": Cell(0.1, 60, 0.04, 0.2), "b": Cell(0.1, 40, 0.04, 0.2)}
    assert not Row(dim, scores, {}).low_n
    assert not Row(dim, scores, {"b": TaxCell(0.0, 30, -0.1, 0.1, 1.0)}).low_n
    row = Row(dim, scores, {"b": TaxCell(0.0, 14, -0.1, 0.1, 1.0)})
    assert row.n == 40 and row.low_n
    table = Table(["a", "b"], "a", [row], {"a": 0, "b": 0})
    assert json.loads(render_json(table, meta(table)))["rows"][0]["low_n"] is True


# --------------------------------------------------------------------------- csv / json


@pytest.mark.parametrize(
    "value, safe",
    [
        ("=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"),
        ("+1+1", "'+1+1"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\\tx"),
        ("openai:gpt-4o", "openai:gpt-4o"),
        ("a=b", "a=b"),
    ],
)
def test_csv_text_neutralises_formulas(value, safe):
    assert csv_text(value) == safe


def test_csv_neutralises_outside_text_and_keeps_numbers():
    names = ["=cmd|' /C calc'!A0", "@evil", "-m", "openai:b"]
    table = make_table(3)
    table = Table(names, names[0], [Row(r.dimension, dict(zip(names, r.scores.values())), dict(zip(names[1:], r.tax.values()))) for r in table.rows], {m: 0 for m in names})
    rows = list(csv.DictReader(io.StringIO(render_csv(table, meta(table)))))
    assert {r["model"] for r in rows} == {"'=cmd|' /C calc'!A0", "'@evil", "'-m", "openai:b"}
    assert {r["baseline"] for r in rows} == {"'=cmd|' /C calc'!A0"}
    negative = [r for r in rows if r["tax"].startswith("-")]
    assert negative, "the fixture has negative taxes"
    for r in negative:
        assert float(r["tax"]) < 0  # a number, not text
    for r in rows:
        for key in ("value", "ci_low", "ci_high", "tax", "tax_ci_low", "tax_ci_high", "p_value"):
            if r[key]:
                float(r[key])


def test_json_escapes_terminal_controls_losslessly():
    hostile = "x\x9b2J\x9d52;c;SGk=\x07\u202eevil\x7f"
    table = make_table(1)
    table = Table([table.models[0], hostile], table.models[0], [Row(r.dimension, dict(zip(table.models[:1] + [hostile], r.scores.values())), {hostile: t for t in r.tax.values()}) for r in table.rows], {table.models[0]: 0, hostile: 0})
    text = render_json(table, meta(table))
    for raw in ("\x9b", "\x9d", "\x07", "\u202e", "\x7f"):
        assert raw not in text
    assert "\\u009b" in text and "\\u202e" in text
    assert json.loads(text)["models"][1] == hostile


@pytest.mark.parametrize("width", [200, 80, 60])
def test_colours_carry_significance_in_every_layout(width):
    table = make_table(2)
    buf = io.StringIO()
    print_table(table, meta(table), Console(file=buf, width=width, force_terminal=True, color_system="standard", no_color=False, emoji=False, highlight=False))
    out = buf.getvalue()
    sgr = {"cost": "\x1b[1;31m", "bonus": "\x1b[1;32m", "unclear": "\x1b[33m"}
    seen = set()
    for row in table.rows:
        for t in row.tax.values():
            if t.n:
                text = f"{t.value * 100:+.1f} [{t.ci_low * 100:+.1f}, {t.ci_high * 100:+.1f}]"
                assert re.search(re.escape(sgr[t.significance]) + " *" + re.escape(text), out), (t.significance, text)
                seen.add(t.significance)
    assert seen == {"cost", "bonus", "unclear"}  # the fixture has all three


# --------------------------------------------------------------------------- diff


@pytest.fixture
def diff_result(tmp_path):
    from test_diff import NEW_A, NEW_B, OLD_A, OLD_B, _diff, write_run

    a, b = "openai:a", LONG
    old = write_run(tmp_path / "old.jsonl", "old1", {a: OLD_A, b: OLD_B})
    new = write_run(tmp_path / "new.jsonl", "new1", {a: NEW_A, b: NEW_B}, failed={b: {f"h{i:02d}" for i in range(40)}})
    return _diff(old, new)


def diff_numbers(result) -> list[str]:
    from taxcheck.report.diff import to_diff_document

    out = []
    for row in to_diff_document(result)["rows"]:
        for cell in row["models"].values():
            for side in ("old", "new"):
                c = cell[side]
                if c["n"]:
                    out.append(f"{c['value'] * 100:.1f}% [{c['ci_low'] * 100:.1f}, {c['ci_high'] * 100:.1f}] ({c['n']})")
            ch = cell["change"]
            if ch["n"]:
                out.append(f"{ch['value'] * 100:+.1f} [{ch['ci_low'] * 100:+.1f}, {ch['ci_high'] * 100:+.1f}]")
                out.append("<0.001" if ch["p_value"] < 0.001 else f"{ch['p_value']:.3f}")
    return out


@pytest.mark.parametrize("width", WIDTHS)
def test_diff_prints_every_number_whole(diff_result, width):
    from taxcheck.report.diff import render_diff_table

    buf = io.StringIO()
    render_diff_table(diff_result, Console(file=buf, width=width, no_color=True))
    text = buf.getvalue()
    numbers = diff_numbers(diff_result)
    assert len(numbers) > 15
    for number in numbers:
        assert number in text, f"{number!r} cut at {width}:\n{text}"
    assert "…" not in text
    assert max(len(line) for line in text.splitlines()) <= width
    # the long model's new run failed on every harmful item: its empty cell says why
    assert "no answer was graded" in " ".join(text.split())


def test_diff_markdown_says_why_a_cell_is_empty(diff_result):
    from taxcheck.report.diff import render_diff_markdown

    md = render_diff_markdown(diff_result)
    line = next(ln for ln in md.splitlines() if ln.startswith("| harmful_refusal") and LONG in ln)
    assert "— (0): no answer was graded" in line
    assert "±" not in md
