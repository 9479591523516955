"""``taxcheck report RUN.jsonl -f html``: one self-contained page to forward (issue 6 §1).

The people vetting vendors look at a plot and then want the actual responses behind a
number before they believe it. So the page holds the tax table as in the terminal, the
refusal trade-off plot, per-dimension bar charts, the worst examples of every dimension
with every grader's verdict, and the run's metadata.

Self-contained and offline: CSS is inline, charts are inline SVG, there is no script and
no font, image or style sheet fetched from anywhere. Prompts and responses are untrusted
text (a model may well answer with ``<script>``), so every string that reaches the page
goes through :func:`esc`; the only markup not built here is matplotlib's SVG, whose text
matplotlib escapes itself (and which never contains prompts or responses).

Charts need matplotlib, an optional extra (``pip install 'taxcheck[report]'``): it is
imported lazily and used through ``matplotlib.figure.Figure`` only, never ``pyplot``, so no
GUI backend is ever selected and no global figure state is touched. Without it the page
still renders, with tables in place of the charts and a note saying how to get them.
"""

from __future__ import annotations

import html
import io
import math
import re
import shlex
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from taxcheck import __version__
from taxcheck.aggregate import Cell, Table, TaxCell
from taxcheck.grading import REFUSAL_CATEGORIES, Grade
from taxcheck.render import footer_lines, score_text, tax_text
from taxcheck.runfile import CallKey, CallRecord, RunData, VerdictRecord
from taxcheck.suite import SuiteItem

if TYPE_CHECKING:
    from taxcheck.pipeline import Report

EXAMPLES_PER_MODEL = 10  # worst examples shown per dimension and model
MAX_RESPONSE_CHARS = 6000  # longer responses are cut, and say so
CHARTS_HINT = "Charts need matplotlib: pip install 'taxcheck[report]' and render the report again."
# A fixed palette so that a model keeps its color across every chart of the page.
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")


def esc(text: Any) -> str:
    """Escape for element text and quoted attribute values alike."""
    return html.escape("" if text is None else str(text), quote=True)


# --------------------------------------------------------------------------- examples


@dataclass
class Verdict:
    grader: str  # "rule" or the judge's grader name, e.g. "judge:refusal"
    label: str
    reason: str
    judge: str | None = None


@dataclass
class Turn:
    title: str  # "prompt", "turn 2 (pushback)", "pressure" ...
    prompt: str
    response: str | None
    verdicts: list[Verdict] = field(default_factory=list)


@dataclass
class Example:
    dimension: str
    model: str
    unit: str  # item id, or pair id for paired dimensions
    sample: int
    headline: str  # what went wrong, e.g. "refused (partial)"
    turns: list[Turn]
    baseline_ok: bool = False  # the baseline got this unit right: the tax in person


@dataclass
class ExampleSection:
    dimension: str
    title: str
    per_model: dict[str, tuple[list[Example], int]]  # model -> (shown, total found)


SECTION_TITLES = {
    "over_refusal": "benign prompts refused",
    "harmful_refusal": "harmful prompts answered",
    "creative": "dark-theme fiction refused",
    "dual_use": "legitimate dual-use questions refused",
    "hedging": "answers with needless hedges",
    "capability.knowledge": "knowledge misses",
    "capability.math": "math misses",
    "capability.code": "code misses",
    "sycophancy.pressure": "flips under an asserted wrong answer (neutral, then pressure)",
    "sycophancy.pushback": "answers abandoned after pushback (both turns)",
}


def prompt_text(item: SuiteItem, turn: int = 0) -> str:
    """The user-visible request of one turn, system prompt and roles included."""
    parts = []
    if item.system:
        parts.append(f"[system] {item.system}")
    if item.turns is not None:
        parts.append(item.turns[turn])
    elif isinstance(item.prompt, str):
        parts.append(item.prompt)
    else:
        parts.extend(f"[{m.role}] {m.content}" for m in item.prompt or [])
    return "\n".join(parts)


def rule_verdict(grade: Grade | None) -> Verdict:
    if grade is None:
        return Verdict("rule", "not graded", "the call failed or has no grade")
    bits = []
    if grade.refusal is not None:
        bits.append(f"refusal: {grade.refusal}")
    if grade.hedged is not None:
        bits.append(f"hedged: {'yes' if grade.hedged else 'no'}")
    if grade.correct is not None:
        bits.append(f"correct: {'yes' if grade.correct else 'no'}")
    return Verdict("rule", ", ".join(bits) or "—", grade.reason)


def judge_verdicts(data: RunData, key: CallKey) -> list[Verdict]:
    out = []
    for (k, grader), v in sorted(data.verdicts.items(), key=lambda kv: kv[0][1]):
        if k == key:
            out.append(_judge_verdict(v))
    return out


def _judge_verdict(v: VerdictRecord) -> Verdict:
    label = v.label if v.label is not None else "unscored"
    if v.score is not None:
        label += f" (score {v.score:g})"
    return Verdict(v.grader, label, v.reason, judge=v.judge)


def _turn(data: RunData, grades: dict[CallKey, Grade], key: CallKey, item: SuiteItem, title: str, turn: int = 0) -> Turn:
    rec = data.calls.get(key)
    return Turn(title, prompt_text(item, turn), rec.text if rec is not None else None, [rule_verdict(grades.get(key)), *judge_verdicts(data, key)])


def _bad(dimension: str, g: Grade | None) -> tuple[bool, int, str]:
    """Whether one call is a bad example of ``dimension``, its severity and a headline."""
    if g is None:
        return False, 0, ""
    if dimension in ("over_refusal", "creative", "dual_use"):
        return bool(g.refused), 2 if g.refusal == "refuse" else 1, f"refused ({g.refusal})"
    if dimension == "harmful_refusal":
        return g.refused is False, 1, "answered"
    if dimension == "hedging":
        return bool(g.hedged), 1, "hedged"
    if dimension.startswith("capability."):
        return g.correct is False, 1, "wrong"
    return False, 0, ""


def worst_examples(
    data: RunData, grades: dict[CallKey, Grade], models: list[str], baseline: str | None, cap: int = EXAMPLES_PER_MODEL
) -> list[ExampleSection]:
    """Per dimension and model, the calls that show the cost, most telling first.

    Most telling: units the baseline got right (the tax in person), then full refusals
    before partial ones, then item id for a stable order.
    """
    samples = int(data.header.params.get("samples", 1))
    g = grades.get
    found: dict[str, dict[str, list[tuple[tuple, Example]]]] = {d: {m: [] for m in models} for d in SECTION_TITLES}
    pairs: dict[str, dict[str, SuiteItem]] = {}
    for item in data.items.values():
        if item.category == "sycophancy.pressure" and item.pair is not None and item.variant is not None:
            pairs.setdefault(item.pair, {})[item.variant] = item

    def baseline_bad(dimension: str, item_id: str) -> bool | None:
        if baseline is None:
            return None
        verdicts = [_bad(dimension, g((baseline, item_id, s, 0)))[0] for s in range(samples) if g((baseline, item_id, s, 0))]
        return any(verdicts) if verdicts else None

    for model in models:
        for item in data.items.values():
            cat = item.category
            dims = [cat] + (["hedging"] if cat in REFUSAL_CATEGORIES else []) if not cat.startswith("sycophancy.") else []
            for s in range(samples):
                key = (model, item.id, s, 0)
                for dim in dims:
                    bad, severity, headline = _bad(dim, g(key))
                    if not bad:
                        continue
                    base_ok = model != baseline and baseline_bad(dim, item.id) is False
                    ex = Example(dim, model, item.id, s, headline, [_turn(data, grades, key, item, "prompt")], base_ok)
                    found[dim][model].append(((not base_ok, -severity, item.id, s), ex))
                if cat == "sycophancy.pushback":
                    g0, g1 = g(key), g((model, item.id, s, 1))
                    if g0 is not None and g0.correct and g1 is not None and g1.correct is False:
                        turns = [
                            _turn(data, grades, key, item, "turn 1: question"),
                            _turn(data, grades, (model, item.id, s, 1), item, "turn 2: pushback", turn=1),
                        ]
                        ex = Example(cat, model, item.id, s, "flipped after pushback", turns)
                        found[cat][model].append(((True, 0, item.id, s), ex))
        for pair, members in sorted(pairs.items()):
            neutral, pressure = members.get("neutral"), members.get("pressure")
            if neutral is None or pressure is None:
                continue
            for s in range(samples):
                kn, kp = (model, neutral.id, s, 0), (model, pressure.id, s, 0)
                gn, gp = g(kn), g(kp)
                if gn is not None and gn.correct and gp is not None and gp.correct is False:
                    turns = [_turn(data, grades, kn, neutral, "neutral question"), _turn(data, grades, kp, pressure, "under pressure")]
                    ex = Example("sycophancy.pressure", model, pair, s, "flipped under pressure", turns)
                    found["sycophancy.pressure"][model].append(((True, 0, pair, s), ex))

    sections = []
    for dim, title in SECTION_TITLES.items():
        per_model = {}
        for m in models:
            ranked = [ex for _k, ex in sorted(found[dim][m], key=lambda kv: kv[0])]
            per_model[m] = (ranked[:cap], len(ranked))
        if any(total for _shown, total in per_model.values()) or any(i.category == dim for i in data.items.values()):
            sections.append(ExampleSection(dim, title, per_model))
    return sections


# --------------------------------------------------------------------------- charts


@dataclass
class Charts:
    tradeoff: str | None  # inline <svg>, or None
    bars: str | None
    note: str | None  # why a chart is missing


def _load_matplotlib():
    """``matplotlib.figure.Figure``, or None when the optional extra is not installed."""
    try:
        import matplotlib

        if "matplotlib.pyplot" not in sys.modules:
            matplotlib.use("Agg")  # never a GUI backend, even if something imports pyplot later
        import matplotlib.ticker
        from matplotlib.figure import Figure
    except ImportError:
        return None
    return Figure


def _svg(fig) -> str:
    """The figure as an inline ``<svg>`` element: no XML prolog, doctype or dated metadata."""
    import matplotlib

    buf = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "taxcheck", "text.parse_math": False}):
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    text = buf.getvalue()
    start = text.find("<svg")
    svg = text[start:]
    # scale with the page instead of overflowing it
    return re.sub(r'<svg([^>]*?) width="[^"]*" height="[^"]*"', r'<svg\1 class="chart" preserveAspectRatio="xMidYMid meet"', svg, count=1)


def _err(c: Cell) -> tuple[float, float]:
    return max(0.0, c.value - c.ci_low), max(0.0, c.ci_high - c.value)


def _ok(c: Cell | None) -> bool:
    return c is not None and c.n > 0 and not math.isnan(c.value)


def tradeoff_svg(Figure, table: Table) -> str | None:
    """Harmful-prompt refusal (y) against benign-prompt refusal (x), per model."""
    over, harm = table.row("over_refusal"), table.row("harmful_refusal")
    if over is None or harm is None:
        return None
    import matplotlib

    with matplotlib.rc_context({"text.parse_math": False}):
        fig = Figure(figsize=(6.4, 5.2))
        fig.subplots_adjust(left=0.13, right=0.97, top=0.93, bottom=0.11)
        ax = fig.add_subplot()
        ax.set_xlim(-0.03, 1.03)
        ax.set_ylim(-0.03, 1.06)
        ax.axvspan(-0.03, 0.1, ymin=0.85, color="#e8f5e9", zorder=0)
        ax.scatter([0], [1], marker="*", s=260, color="#2e7d32", zorder=3)
        ax.annotate("ideal: answers benign,\nrefuses harmful", (0, 1), xytext=(0.06, 0.86), fontsize=8, color="#2e7d32")
        for i, m in enumerate(table.models):
            x, y = over.scores.get(m), harm.scores.get(m)
            if not (_ok(x) and _ok(y)):
                continue
            color = PALETTE[i % len(PALETTE)]
            xe, ye = _err(x), _err(y)
            label = m + (" (baseline)" if m == table.baseline else "")
            ax.errorbar([x.value], [y.value], xerr=[[xe[0]], [xe[1]]], yerr=[[ye[0]], [ye[1]]], fmt="o", color=color, capsize=4, markersize=7, label=label, zorder=4)
            ax.annotate(m, (x.value, y.value), xytext=(6, -12), textcoords="offset points", fontsize=8, color=color)
        ax.set_xlabel("benign prompts refused (over-refusal) →  worse")
        ax.set_ylabel("harmful prompts refused  →  safer")
        ax.xaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
        ax.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
        ax.grid(True, alpha=0.3)
        if ax.get_legend_handles_labels()[0]:  # no model with data on both axes: no legend
            ax.legend(loc="lower right", fontsize=8)
        ax.set_title("Refusal trade-off (95% intervals)", fontsize=10)
        return _svg(fig)


def bars_svg(Figure, table: Table) -> str | None:
    """One small panel per dimension: a bar per model with its 95 % interval."""
    rows = table.rows
    if not rows:
        return None
    import matplotlib

    cols = 3
    nrows = math.ceil(len(rows) / cols)
    with matplotlib.rc_context({"text.parse_math": False}):
        fig = Figure(figsize=(11, 2.9 * nrows))
        for idx, row in enumerate(rows):
            ax = fig.add_subplot(nrows, cols, idx + 1)
            xs = list(range(len(table.models)))
            for i, m in enumerate(table.models):
                c = row.scores[m]
                color = PALETTE[i % len(PALETTE)]
                if not _ok(c):
                    ax.text(i, 0.02, "no data", ha="center", fontsize=7, color="#777")
                    continue
                lo, hi = _err(c)
                ax.bar(i, c.value, color=color, width=0.7, yerr=[[lo], [hi]], capsize=3, ecolor="#333")
                ax.text(i, min(c.ci_high + 0.03, 0.97), f"{c.value * 100:.0f}%", ha="center", fontsize=7)
            arrow = "↓ better" if row.dimension.direction == "lower" else "↑ better"
            ax.set_title(f"{row.dimension.name} ({arrow})" + (" low n" if row.low_n else ""), fontsize=9)
            ax.set_ylim(0, 1.05)
            ax.set_yticks([0, 0.25, 0.5, 0.75, 1.0])
            ax.set_xticks(xs)
            ax.set_xticklabels([_short(m) for m in table.models], fontsize=7, rotation=20 if len(xs) > 2 else 0)
            ax.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
            ax.tick_params(axis="y", labelsize=7)
            ax.grid(True, axis="y", alpha=0.3)
        # fixed margins: tight_layout would lay every tick label out once more (slow)
        fig.subplots_adjust(left=0.06, right=0.99, top=1 - 0.35 / nrows, bottom=0.3 / nrows + 0.01, wspace=0.25, hspace=0.55)
        return _svg(fig)


def _short(model: str, width: int = 22) -> str:
    return model if len(model) <= width else model[: width - 1] + "…"


def make_charts(table: Table) -> Charts:
    Figure = _load_matplotlib()
    if Figure is None:
        return Charts(None, None, CHARTS_HINT)
    tradeoff = tradeoff_svg(Figure, table)
    note = None if tradeoff else "No trade-off plot: the run needs both over_refusal and harmful_refusal items."
    return Charts(tradeoff, bars_svg(Figure, table), note)


# --------------------------------------------------------------------------- page

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;margin:0;color:#1a1a1a;background:#fff;line-height:1.4}
main{max-width:1200px;margin:0 auto;padding:24px}
h1{font-size:1.6em;margin:0 0 4px}h2{font-size:1.25em;margin:32px 0 8px;border-bottom:2px solid #eee;padding-bottom:4px}
h3{font-size:1.05em;margin:20px 0 6px}h4{font-size:.95em;margin:14px 0 6px}
.sub{color:#555}
table{border-collapse:collapse;margin:8px 0;font-size:.9em}
th,td{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f5f5f5}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.sig-cost{background:#ffebee;color:#b71c1c;font-weight:bold}
.sig-bonus{background:#e8f5e9;color:#1b5e20;font-weight:bold}
.sig-unclear{background:#fffde7;color:#8d6e00}
.sig-none{color:#999}
.lown{font-size:.8em;color:#8d6e00;font-style:italic;margin-left:6px}
ul.footer{list-style:none;padding:0;font-size:.85em}
.f-dim{color:#555}.f-yellow{color:#8d6e00}.f-red,.f-bold-red{color:#b71c1c;font-weight:bold}.f-green{color:#1b5e20}
.note{background:#fff8e1;border-left:4px solid #ffb300;padding:8px 12px;margin:8px 0}
figure{margin:8px 0}svg.chart{max-width:100%;height:auto}#tradeoff-plot svg.chart{max-width:680px}
.example{border:1px solid #ddd;border-radius:6px;margin:10px 0;padding:8px 12px;background:#fafafa}
.example .head{font-weight:bold}.example .tag{font-size:.8em;background:#eceff1;border-radius:3px;padding:1px 6px;margin-left:6px;font-weight:normal}
.example .tag.tax{background:#ffebee;color:#b71c1c}
pre{white-space:pre-wrap;word-wrap:break-word;background:#fff;border:1px solid #e0e0e0;padding:6px 8px;margin:4px 0;font-size:.85em;max-height:24em;overflow:auto}
.label{font-size:.8em;color:#555;text-transform:uppercase;letter-spacing:.04em}
.verdicts td{font-size:.85em}
code{font-size:.9em;background:#f5f5f5;padding:0 3px}
"""


def render_html(
    data: RunData,
    report: Report,
    results_file: Path | str,
    grades: dict[CallKey, Grade] | None = None,
    examples_per_model: int = EXAMPLES_PER_MODEL,
) -> str:
    """The whole report as one self-contained HTML document.

    ``report`` is ``pipeline.Report`` (table and meta). ``grades`` defaults to
    ``grading.grade_run(data)``; pass the grades ``build_report`` already computed to
    avoid grading twice (code items run in a sandbox).
    """
    if grades is None:
        from taxcheck.grading import grade_run

        grades = grade_run(data)
    table: Table = report.table
    meta = report.meta
    header = data.header
    charts = make_charts(table)
    sections = worst_examples(data, grades, table.models, table.baseline, examples_per_model)

    out: list[str] = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        # no network, ever: the policy makes a stray external reference inert too
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">",
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>taxcheck report {esc(header.run_id)}</title>",
        f"<style>{CSS}</style></head><body><main>",
        "<h1>taxcheck: alignment tax</h1>",
        f'<p class="sub">run <code>{esc(header.run_id)}</code> · {esc(header.created)} · models: '
        + ", ".join(f"<code>{esc(m)}</code>" + (" (baseline)" if m == table.baseline else "") for m in table.models)
        + f" · run file <code>{esc(results_file)}</code></p>",
    ]
    out += _tax_table(table)
    out.append('<ul class="footer" id="footer">')
    for style, text in footer_lines(table, meta):
        out.append(f'<li class="f-{esc(style.replace(" ", "-"))}">{esc(text)}</li>')
    out.append("</ul>")

    out.append('<h2 id="plots">Trade-off and dimensions</h2>')
    if charts.note:
        out.append(f'<p class="note" id="charts-note">{esc(charts.note)}</p>')
    if charts.tradeoff:
        out.append(f'<figure id="tradeoff-plot">{charts.tradeoff}<figcaption class="sub">Each model\'s harmful-prompt refusal against its benign-prompt refusal, with 95% intervals on both axes. Top left is the ideal: it refuses what is harmful and answers what only sounds risky.</figcaption></figure>')
    elif table.row("over_refusal") and table.row("harmful_refusal"):
        out += _tradeoff_table(table)
    if charts.bars:
        out.append(f'<figure id="dimension-bars">{charts.bars}<figcaption class="sub">Score per dimension and model, with 95% intervals.</figcaption></figure>')

    out.append('<h2 id="examples">Worst examples</h2>')
    out.append(
        f'<p class="sub">Up to {examples_per_model} per dimension and model; examples the baseline got right come first (marked <span class="tag tax">baseline ok</span>). '
        "Every grader's verdict is shown: the rule scorer always, judges where the run has them.</p>"
    )
    for sec in sections:
        out += _example_section(sec)
    out += _metadata(data, meta)
    out.append(f'<p class="sub">rendered by taxcheck {esc(__version__)}</p>')
    out.append("</main></body></html>")
    return "\n".join(out) + "\n"


def _tax_table(table: Table) -> list[str]:
    candidates = [m for m in table.models if m != table.baseline] if table.baseline else []
    out = ['<h2 id="table">Tax table</h2>', '<table id="tax-table"><thead><tr><th>dimension</th><th>better</th>']
    for m in table.models:
        out.append(f"<th>{esc(m)}{' (baseline)' if m == table.baseline else ''}</th>")
    for m in candidates:
        out.append(f"<th>tax {esc(m)}</th>")
    out.append("</tr></thead><tbody>")
    for row in table.rows:
        name = esc(row.dimension.name)
        cells = [
            f'<tr data-dimension="{name}"><td title="{esc(row.dimension.label)}">{name}'
            + ('<span class="lown">low n</span>' if row.low_n else "")
            + f"</td><td>{'↓ lower' if row.dimension.direction == 'lower' else '↑ higher'}</td>"
        ]
        for m in table.models:
            c = row.scores[m]
            cells.append(f'<td class="num" data-model="{esc(m)}">{esc(score_text(c.value, c.ci_low, c.ci_high, c.n))}</td>')
        for m in candidates:
            t: TaxCell = row.tax[m]
            cls = f"sig-{t.significance}" if t.n else "sig-none"
            title = f"p = {t.p_value:.3g}" if t.n and not math.isnan(t.p_value) else "no paired items"
            cells.append(f'<td class="num tax {cls}" data-model="{esc(m)}" data-significance="{esc(t.significance)}" title="{esc(title)}">{esc(tax_text(t))}</td>')
        out.append("".join(cells) + "</tr>")
    out.append("</tbody></table>")
    return out


def _tradeoff_table(table: Table) -> list[str]:
    """The trade-off plot's numbers, for a page rendered without matplotlib."""
    over, harm = table.row("over_refusal"), table.row("harmful_refusal")
    out = ['<table id="tradeoff-table"><thead><tr><th>model</th><th>benign refused (x)</th><th>harmful refused (y)</th></tr></thead><tbody>']
    for m in table.models:
        x, y = over.scores[m], harm.scores[m]
        out.append(f"<tr><td>{esc(m)}</td><td class=\"num\">{esc(score_text(x.value, x.ci_low, x.ci_high, x.n))}</td><td class=\"num\">{esc(score_text(y.value, y.ci_low, y.ci_high, y.n))}</td></tr>")
    out.append("</tbody></table>")
    return out


def _response_html(text: str | None) -> str:
    if text is None:
        return '<pre class="response missing">(no response: the call failed)</pre>'
    if len(text) > MAX_RESPONSE_CHARS:
        cut = len(text) - MAX_RESPONSE_CHARS
        return f'<pre class="response">{esc(text[:MAX_RESPONSE_CHARS])}</pre><p class="sub">… {cut} more characters not shown (see the run file)</p>'
    if not text.strip():
        return '<pre class="response">(empty response)</pre>'
    return f'<pre class="response">{esc(text)}</pre>'


def _example_section(sec: ExampleSection) -> list[str]:
    out = [f'<section class="examples" id="examples-{esc(sec.dimension)}" data-dimension="{esc(sec.dimension)}">', f"<h3>{esc(sec.dimension)}: {esc(sec.title)}</h3>"]
    for model, (shown, total) in sec.per_model.items():
        count = f"{len(shown)} of {total}" if total > len(shown) else str(total)
        out.append(f'<h4>{esc(model)} <span class="sub">({esc(count)})</span></h4>')
        if not shown:
            out.append('<p class="sub">none</p>')
        for ex in shown:
            sample = f" · sample {ex.sample}" if ex.sample else ""
            tag = '<span class="tag tax">baseline ok</span>' if ex.baseline_ok else ""
            out.append(f'<div class="example" data-model="{esc(model)}" data-unit="{esc(ex.unit)}">')
            out.append(f'<div class="head"><code>{esc(ex.unit)}</code>{esc(sample)} <span class="tag">{esc(ex.headline)}</span>{tag}</div>')
            for turn in ex.turns:
                out.append(f'<div class="label">{esc(turn.title)}</div><pre class="prompt">{esc(turn.prompt)}</pre>')
                out.append('<div class="label">response</div>' + _response_html(turn.response))
                out.append('<table class="verdicts"><thead><tr><th>grader</th><th>verdict</th><th>reason</th></tr></thead><tbody>')
                for v in turn.verdicts:
                    who = v.grader + (f" ({v.judge})" if v.judge else "")
                    out.append(f"<tr><td>{esc(who)}</td><td>{esc(v.label)}</td><td>{esc(v.reason)}</td></tr>")
                out.append("</tbody></table>")
            out.append("</div>")
    out.append("</section>")
    return out


def served_models(data: RunData) -> dict[str, Counter]:
    """Per model spec, the model ids its endpoint reported serving, with call counts."""
    served: dict[str, Counter] = {m: Counter() for m in data.header.models}
    for rec in data.calls.values():
        if rec.ok and rec.served_model:
            served.setdefault(rec.model, Counter())[rec.served_model] += 1
    return served


def _failed_calls(data: RunData, cap: int = 20) -> list[CallRecord]:
    return sorted((r for r in data.calls.values() if r.failed), key=lambda r: r.key)[:cap]


def _metadata(data: RunData, meta: Any) -> list[str]:
    h = data.header
    out = ['<h2 id="metadata">Run metadata</h2>', '<table id="run-meta"><tbody>']
    rows = [
        ("taxcheck version", h.taxcheck_version),
        ("run id", h.run_id),
        ("date", h.created),
        ("command", shlex.join(h.command)),
        ("baseline", h.baseline or "none"),
    ]
    rows += [(f"param {k}", "" if v is None else v) for k, v in sorted(h.params.items())]
    out += [f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in rows]
    out.append("</tbody></table>")

    out.append('<h3>Suites</h3><table id="suites"><thead><tr><th>suite</th><th>path</th><th>items</th><th>sha256</th></tr></thead><tbody>')
    for s in h.suites:
        out.append(f"<tr><td>{esc(s.name)}</td><td>{esc(s.path)}</td><td class=\"num\">{esc(s.items)}</td><td><code>{esc(s.sha256)}</code></td></tr>")
    out.append("</tbody></table>")

    served = served_models(data)
    out.append('<h3>Models and usage</h3><table id="usage"><thead><tr><th>model</th><th>endpoint</th><th>served model ids</th><th>requests</th><th>cached</th><th>input tokens</th><th>output tokens</th><th>cost</th><th>failed</th></tr></thead><tbody>')
    failures = Counter(r.model for r in data.calls.values() if r.failed)
    for m in h.models:
        u = meta.usage.get(m, {})
        ep = h.endpoints.get(m, {})
        ep_text = " · ".join(f"{k} {v}" for k, v in sorted(ep.items()))
        ids = ", ".join(f"{sid} ({n})" for sid, n in served.get(m, Counter()).most_common()) or "not reported"
        cost = u.get("cost_usd")
        cost_s = f"${cost:.4f}" if isinstance(cost, (int, float)) else "unknown (no price)"
        out.append(
            f"<tr><td>{esc(m)}</td><td>{esc(ep_text)}</td><td>{esc(ids)}</td>"
            + "".join(f'<td class="num">{esc(u.get(k, 0))}</td>' for k in ("requests", "cached", "input_tokens", "output_tokens"))
            + f'<td class="num">{esc(cost_s)}</td><td class="num">{esc(failures.get(m, 0))}</td></tr>'
        )
    out.append("</tbody></table>")

    if meta.agreement:
        out.append('<h3>Rule vs judge agreement</h3><pre id="agreement">')
        out.append(esc("\n".join(f"{k}: {v}" for k, v in meta.agreement.items())))
        out.append("</pre>")

    failed = _failed_calls(data)
    if failed:
        out.append('<h3>Failed calls</h3><table id="failed-calls"><thead><tr><th>model</th><th>item</th><th>sample/turn</th><th>error</th></tr></thead><tbody>')
        for r in failed:
            err = r.error or {}
            text = " ".join(str(err.get(k, "")) for k in ("kind", "message") if err.get(k)) or "no text"
            out.append(f"<tr><td>{esc(r.model)}</td><td>{esc(r.item)}</td><td>{esc(r.sample)}/{esc(r.turn)}</td><td>{esc(text)}</td></tr>")
        out.append("</tbody></table>")
    return out

