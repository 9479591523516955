"""``taxcheck report RUN.jsonl -f html``: one self-contained page for the person who did not run it.

The page is forwarded to managers and reviewers. In reading order: a summary a manager reads
in ten seconds (``html_summary``), a contents list, the tax table as in the terminal, the
refusal trade-off plot and one chart per dimension (``html_charts``), the prompts where the
models differ most with their answers side by side, the breakdown by item type, the worst
examples per dimension (``html_examples``; every verdict labelled by the grader that gave it),
and the run's metadata. Long parts are ``<details>`` (no script), so the page stays short.

Readable from 900 to 1,600 px without sideways scrolling: the table wraps its numbers inside
their cells and, below the width its columns need (computed from their count), turns into a
block per dimension; charts scale to their box; long ids break anywhere. It prints too (a
print stylesheet: no contents list, no cut rows or figures, colours kept).

Self-contained and offline: CSS is inline, charts are inline SVG, there is no script, and a
content-security policy forbids every fetch (a stray external reference stays inert). Prompts,
responses, model ids, reasons and server messages are untrusted: every string goes through
:func:`esc` (``html_text``); the only markup not built here is matplotlib's SVG, whose text
matplotlib escapes and which holds no prompt or response.
"""

from __future__ import annotations

import math
import shlex
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from taxcheck import __version__
from taxcheck.measure.aggregate import Table, TaxCell
from taxcheck.grade.rules import Grade
from taxcheck.report.html_charts import CHARTS_HINT, Chart, dimension_chart, has_value, load_figure, tradeoff_chart
from taxcheck.report.html_examples import EXAMPLES_PER_MODEL, Graders, contrasts, examples_html, side_by_side_html, worst_examples
from taxcheck.report.html_summary import summarize, summary_html
from taxcheck.report.html_text import esc, model_html, swatch, wbr_name
from taxcheck.report.table import empty_reasons, footer_lines, score_text, tax_text
from taxcheck.runfile import CallKey, CallRecord, RunData

if TYPE_CHECKING:
    from taxcheck.report.pipeline import Report

__all__ = ["CHARTS_HINT", "EXAMPLES_PER_MODEL", "esc", "render_html", "served_models", "stack_width_em", "worst_examples"]

# The tax table's columns, in the table's own em (its font is 0.9 of the page's): the first
# column holds "sycophancy.pressure" on one line, "better" holds "↑ higher", a number column
# "100.0% [87.2, 100.0] (30)" on one line at its full width, and at its narrowest on two
# ("100.0%" over "[87.2, 100.0] (30)"): past that, a block per dimension reads better than
# numbers broken in three. Measured in DejaVu Sans, the widest common face, with margin.
DIM_EM, BETTER_EM, NUM_FULL_EM, NUM_MIN_EM = 13.0, 6.4, 16.0, 11.0
TABLE_FONT = 0.9  # table font / page font
PAGE_PADDING_EM = 3.2  # main's side padding (2 × 24 px) and borders, in the page's em
PRINT_TABLE_PX = 10.8  # the table's font size in print (9 pt body × 0.9), in CSS px

CSS = """
*{box-sizing:border-box}
body{font-family:"DejaVu Sans",system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;margin:0;color:#1a1a1a;background:#fff;line-height:1.4;overflow-wrap:break-word}
main{max-width:1200px;margin:0 auto;padding:20px 24px 40px}
h1{font-size:1.55em;margin:0 0 4px}h2{font-size:1.25em;margin:28px 0 8px;border-bottom:2px solid #eee;padding-bottom:4px}
h3{font-size:1.05em;margin:16px 0 6px}h4{font-size:.95em;margin:12px 0 6px}
.sub,.quiet{color:#555}.sub{font-size:.9em}
code{font-size:.9em;background:#f3f3f3;padding:0 3px;border-radius:2px;overflow-wrap:anywhere}
bdi,pre,.reason,.why{unicode-bidi:isolate}
table{border-collapse:collapse;margin:8px 0;font-size:.9em}
th,td{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f5f5f5}
.brk,.id{overflow-wrap:anywhere}td.id{min-width:9em}
td.num{text-align:right;font-variant-numeric:tabular-nums}td.int{text-align:right;white-space:nowrap}
td .why{display:block;font-size:.8em;color:#666;text-align:left}
.sig-cost{background:#ffebee;color:#b71c1c;font-weight:bold}
.sig-bonus{background:#e8f5e9;color:#1b5e20;font-weight:bold}
.sig-unclear{background:#fffde7;color:#6d5600}
.sig-none{color:#888}
.sig-cost-text{color:#b71c1c}.sig-bonus-text{color:#1b5e20}
.lown{display:block;font-size:.8em;color:#6d5600;font-style:italic}
ul.footer{list-style:none;padding:0;font-size:.85em}
.f-dim{color:#555}.f-yellow,.f-bold-yellow{color:#6d5600}.f-red,.f-bold-red{color:#b71c1c;font-weight:bold}.f-green{color:#1b5e20}
.note{background:#fff8e1;border-left:4px solid #ffb300;padding:8px 12px;margin:8px 0}
.alert{border-radius:6px;padding:10px 14px;margin:8px 0}.alert.error{background:#ffebee;border:1px solid #e57373}
.summary .cand{border:1px solid #ddd;border-radius:6px;padding:6px 14px;margin:8px 0;background:#fcfcfc}
.summary .cand h3{margin:6px 0}.summary p{margin:4px 0}
ul.facts,ul.notices{padding-left:0;list-style:none;margin:6px 0}ul.facts li,ul.notices li{margin:3px 0}
.fact{display:inline-block;min-width:5.5em;font-size:.8em;text-transform:uppercase;letter-spacing:.04em;color:#555}
.fix{color:#333;font-style:italic}
.badge,.tag{display:inline-block;font-size:.78em;border-radius:3px;padding:0 6px;font-weight:normal;white-space:nowrap}
.b-error{background:#b71c1c;color:#fff}.b-warning{background:#ffe082;color:#4e3b00}.b-info{background:#eceff1;color:#37474f}.b-ok{background:#2e7d32;color:#fff}
.lvl-ok{color:#1b5e20}
.tag{background:#eceff1;color:#37474f;margin-left:4px}.tag.base{background:#e3f2fd;color:#0d47a1}
.tag.bad{background:#ffebee;color:#b71c1c}.tag.good{background:#e8f5e9;color:#1b5e20}
.swatch{display:inline-block;width:.8em;height:.8em;border-radius:2px;margin-right:4px;vertical-align:baseline}
nav#contents ol{margin:4px 0;padding-left:1.4em;columns:2 16em}
nav#contents a{color:#0d47a1}
figure{margin:8px 0}svg.chart{display:block;width:100%;height:auto}
#tradeoff-plot{max-width:640px}
.key{margin:6px 0;font-size:.9em}.key span.item{margin-right:14px}
.dim-grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(min(100%,300px),1fr));gap:10px 14px}
.dim-card{border:1px solid #eee;border-radius:6px;padding:6px 8px;margin:0;min-width:0}
.dim-card figcaption,.dim-card .head{font-size:.9em;margin-bottom:2px}.dim-card figcaption{min-height:2.9em}
.nodata{color:#666;font-size:.85em}
details{border:1px solid #e3e3e3;border-radius:6px;margin:6px 0;padding:4px 10px;background:#fff}
details>summary{cursor:pointer;padding:2px 0}
details[open]>summary{margin-bottom:6px;border-bottom:1px solid #eee}
.answers{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(100%,260px),1fr));gap:8px 12px;margin:4px 0 10px}
.answer{min-width:0}
.example{border:1px solid #ddd;border-radius:6px;margin:8px 0;padding:6px 10px;background:#fafafa}
.example .head{font-weight:bold}
pre{white-space:pre-wrap;overflow-wrap:anywhere;background:#fff;border:1px solid #e0e0e0;padding:6px 8px;margin:4px 0;font-size:.85em;max-height:24em;overflow:auto}
.label{font-size:.78em;color:#555;text-transform:uppercase;letter-spacing:.04em}
.who{font-size:.85em;color:#333;margin-top:2px}
.tag.disagree{background:#fff3e0;color:#8a3b00}
.verdict{font-size:.85em;margin:3px 0;padding:2px 6px;border-left:3px solid #cfd8dc}
.verdict.fed{border-left-color:#37474f;background:#f5f7f8}
.src{display:inline-block;font-size:.8em;border-radius:3px;padding:0 5px;margin-right:4px}
.src-rule{background:#e0f2f1;color:#004d40}.src-judge{background:#ede7f6;color:#311b92}
.used{font-size:.8em;color:#37474f;font-weight:bold;margin-left:4px}
.reason{color:#444}
@page{margin:14mm}
@media print{
 *{-webkit-print-color-adjust:exact;print-color-adjust:exact}
 body{font-size:9pt}main{max-width:none;padding:0}
 nav#contents{display:none}
 h2,h3{break-after:avoid}
 tr,figure,.cand,.example,.dim-card,.answer,li{break-inside:avoid}
 .dim-grid{grid-template-columns:repeat(3,minmax(0,1fr))}
 pre{max-height:none;overflow:visible}
 details{border:none;padding:0}
 a{color:inherit;text-decoration:none}
}
"""


def table_widths_em(numeric_columns: int) -> tuple[float, float]:
    """(full, narrowest) width of a tax table with this many number columns, in its own em.

    At full width every number is on one line; below it the numbers wrap inside their cells;
    below the narrowest, a token would overflow its cell, so the table becomes a block per
    dimension instead (``_table_css``).
    """
    fixed = DIM_EM + BETTER_EM
    return fixed + numeric_columns * NUM_FULL_EM, fixed + numeric_columns * NUM_MIN_EM


def stack_width_em(numeric_columns: int) -> float:
    """The viewport width, in the page's em, below which the tax tables are stacked."""
    return round(table_widths_em(numeric_columns)[1] * TABLE_FONT + PAGE_PADDING_EM, 2)


def _table_css(table: Table) -> str:
    """Column widths of the tax tables, and below the width they need (screen or paper) their
    narrow layout: a block per dimension, a line per model with its score and, beside it, its
    tax (the terminal's grouped layout), every value labelled."""
    cols = len(table.models) + (len(table.models) - 1 if table.baseline else 0)
    full, narrow = table_widths_em(cols)
    orders = "".join(f"table.taxt td.o{k}{{order:{k}}}" for k in range(2, 2 * len(table.models) + 2))
    grid = "minmax(0,1.3fr) minmax(0,1fr)" if table.baseline else "minmax(0,1fr)"
    stacked = (
        "table.taxt{width:100%}table.taxt colgroup,table.taxt thead,table.taxt td.better{display:none}"
        "table.taxt,table.taxt tbody{display:block}"
        f"table.taxt tr{{display:grid;grid-template-columns:{grid};border:1px solid #ddd;border-radius:4px;margin:0 0 8px;break-inside:avoid}}"
        "table.taxt td{display:flex;flex-wrap:wrap;justify-content:space-between;align-items:baseline;gap:0 1em;border:none;border-top:1px solid #eee;text-align:left}"
        "table.taxt td.dim{display:block;grid-column:1/-1;order:0;background:#f5f5f5;font-weight:bold;border-top:none}"
        "table.taxt td.dim .dir{display:inline;font-weight:normal;color:#555}table.taxt td.dim .lown{display:inline;margin-left:.6em}"
        "table.taxt td.basetax{display:block;color:#888;font-size:.85em}"
        "table.taxt td[data-label]::before{content:attr(data-label);font-size:.85em;font-weight:normal;color:#555;overflow-wrap:anywhere;min-width:0}"
        "table.taxt td .val{text-align:right;margin-left:auto}"
        + orders
    )
    return (
        f"table.taxt{{table-layout:fixed;width:min(100%,{full:g}em)}}"
        f"table.taxt col.c-dim{{width:{DIM_EM:g}em}}table.taxt col.c-better{{width:{BETTER_EM:g}em}}"
        "table.taxt td.basetax,table.taxt .dir{display:none}"
        f"@media screen and (max-width:{stack_width_em(cols):g}em){{{stacked}}}"
        f"@media print and (max-width:{math.ceil(narrow * PRINT_TABLE_PX)}px){{{stacked}}}"
    )


def render_html(
    data: RunData,
    report: Report,
    results_file: Path | str,
    grades: dict[CallKey, Grade] | None = None,
    examples_per_model: int = EXAMPLES_PER_MODEL,
    rule_grades: dict[CallKey, Grade] | None = None,
) -> str:
    """The whole report as one self-contained HTML document.

    ``report`` is ``pipeline.build_report``'s (table, meta, grades, warnings, breakdown).
    ``grades``: the verdicts the table was built from (default ``report.grades``);
    ``rule_grades``: the rule scorers' own (default ``report.rule_grades``, else ``grade.rules.grade_run(data)``, which runs no
    process: code verdicts are read from the run file). Both are needed to label each verdict
    shown by its true source.
    """
    from taxcheck.grade.rules import grade_run

    table: Table = report.table
    meta = report.meta
    if grades is None:
        grades = report.grades or grade_run(data)
    if rule_grades is None:
        rule_grades = report.rule_grades or (grades if not data.verdicts else grade_run(data))
    graders = Graders(data, grades, rule_grades)
    summary = summarize(data, table, meta, grades, report.warnings)
    measured = not summary.nothing_measured

    body: list[tuple[str, str, list[str]]] = []  # (id, contents title, html)
    body.append(("table", "Tax table", _table_section(table, meta)))
    if measured:
        body += _chart_sections(table)
        cs = contrasts(data, graders, table, values=report.values if grades is report.grades else None)
        body.append(("side-by-side", "Side by side: where the models differ most", side_by_side_html(cs, table)))
    if report.breakdown:
        body.append(("breakdown", "Breakdown by type", _breakdown(report.breakdown, table)))
    if measured:
        sections = worst_examples(data, graders, table.models, table.baseline, examples_per_model)
        body.append(("examples", "Worst examples", examples_html(sections, table, examples_per_model)))
    body.append(("metadata", "Run metadata", _metadata(data, meta)))

    header = data.header
    out: list[str] = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        # no network, ever: the policy makes a stray external reference inert too
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; "
        "img-src data:; base-uri 'none'; form-action 'none'\">",
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>taxcheck report {esc(header.run_id)}</title>",
        f"<style>{CSS}{_table_css(table)}</style></head><body><main>",
        "<h1>taxcheck: alignment tax</h1>",
        f'<p class="sub">run <code>{esc(header.run_id)}</code> · {esc(header.created)} · models: '
        + ", ".join(model_html(m, table.baseline) for m in table.models)
        + f" · run file <code>{esc(results_file)}</code></p>",
    ]
    out += summary_html(summary, table.models)
    out.append('<nav id="contents" aria-label="contents"><h2>Contents</h2><ol>')
    out += [f'<li><a href="#{sid}">{esc(title)}</a></li>' for sid, title, _html in body]
    out.append("</ol></nav>")
    for _sid, _title, html in body:
        out += html
    out.append(f'<p class="sub">rendered by taxcheck {esc(__version__)}</p>')
    out.append("</main></body></html>")
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- tables


def _table_section(table: Table, meta: Any) -> list[str]:
    out = ['<section id="table"><h2>Tax table</h2>']
    out += tax_table(table, "tax-table")
    out.append('<ul class="footer" id="footer">')
    for style, text in footer_lines(table, meta):
        out.append(f'<li class="f-{esc(style.replace(" ", "-"))}">{esc(text)}</li>')
    out.append("</ul></section>")
    return out


def tax_table(table: Table, table_id: str, first: str = "dimension",
              reasons: dict[tuple[str, str, str], str] | None = None) -> list[str]:
    """The tax table (or a breakdown's, ``first="type"``): scores with intervals, taxes coloured
    by significance, each empty cell with its reason (default ``report.table.empty_reasons``).

    Every cell carries what the narrow layout needs (``_table_css``): its label, and an order
    that puts each candidate's tax beside its score, as the terminal's grouped layout does.
    """
    candidates = [m for m in table.models if m != table.baseline] if table.baseline else []
    reasons = empty_reasons(table) if reasons is None else reasons
    cols = '<col class="c-dim"><col class="c-better">' + '<col class="c-num">' * (len(table.models) + len(candidates))
    out = [f'<table class="taxt" id="{esc(table_id)}"><colgroup>{cols}</colgroup><thead><tr><th>{esc(first)}</th><th>better</th>']
    out += [f"<th>{model_html(m, table.baseline, code=False)}</th>" for m in table.models]
    out += [f'<th>tax <bdi class="id">{esc(m)}</bdi></th>' for m in candidates]
    out.append("</tr></thead><tbody>")
    for row in table.rows:
        d = row.dimension.name
        words = "lower" if row.dimension.direction == "lower" else "higher"
        cells = [
            f'<tr data-dimension="{esc(d)}"><td class="dim" title="{esc(row.dimension.label)}">{wbr_name(d)}'
            + f'<span class="dir"> · {"↓" if words == "lower" else "↑"} {words} is better</span>'
            + ('<span class="lown">low n</span>' if row.low_n else "")
            + f'</td><td class="better">{"↓" if words == "lower" else "↑"} {words}</td>'
        ]
        for k, m in enumerate(table.models):
            c = row.scores[m]
            label = m + (" (baseline)" if m == table.baseline else "")
            why = reasons.get((d, m, "score"))
            text = esc(score_text(c.value, c.ci_low, c.ci_high, c.n)) + (f'<span class="why">{esc(why)}</span>' if why else "")
            cells.append(f'<td class="num o{2 * k + 2}" data-model="{esc(m)}" data-label="{esc(label)}"><span class="val">{text}</span></td>')
            if m == table.baseline and candidates:  # the baseline's own tax slot, shown in the narrow layout only
                cells.append(f'<td class="basetax o{2 * k + 3}">baseline</td>')
        for m in candidates:
            k = table.models.index(m)
            t: TaxCell = row.tax[m]
            cls = f"sig-{t.significance}" if t.n else "sig-none"
            title = f"p = {t.p_value:.3g}" if t.n and not math.isnan(t.p_value) else "no paired items"
            why = reasons.get((d, m, "tax")) if (d, m, "score") not in reasons else None
            text = esc(tax_text(t)) + (f'<span class="why">{esc(why)}</span>' if why else "")
            cells.append(f'<td class="num tax {cls} o{2 * k + 3}" data-model="{esc(m)}" data-significance="{esc(t.significance)}" '
                         f'data-label="tax" title="{esc(title)}"><span class="val">{text}</span></td>')
        out.append("".join(cells) + "</tr>")
    out.append("</tbody></table>")
    return out


def _tradeoff_table(table: Table) -> list[str]:
    """The trade-off plot's numbers, for a page rendered without matplotlib."""
    over, harm = table.row("over_refusal"), table.row("harmful_refusal")
    out = ['<table id="tradeoff-table"><thead><tr><th>model</th><th>benign refused (x)</th><th>harmful refused (y)</th></tr></thead><tbody>']
    for m in table.models:
        x, y = over.scores[m], harm.scores[m]
        out.append(f'<tr><td>{model_html(m, table.baseline)}</td><td class="num">{esc(score_text(x.value, x.ci_low, x.ci_high, x.n))}</td>'
                   f'<td class="num">{esc(score_text(y.value, y.ci_low, y.ci_high, y.n))}</td></tr>')
    out.append("</tbody></table>")
    return out


# --------------------------------------------------------------------------- charts


def _key(table: Table) -> str:
    """The colour (and number) of every model, shared by all charts of the page."""
    items = [f'<span class="item">{swatch(table.models, m)}{k + 1} {model_html(m, table.baseline)}</span>' for k, m in enumerate(table.models)]
    return f'<p class="key" aria-label="chart key">{"".join(items)}</p>'


def _chart_sections(table: Table) -> list[tuple[str, str, list[str]]]:
    from taxcheck.console import printable_line

    Figure = load_figure()
    names = {m: printable_line(m) for m in table.models}
    reasons = empty_reasons(table)
    out: list[tuple[str, str, list[str]]] = []
    over, harm = table.row("over_refusal"), table.row("harmful_refusal")
    if over is not None and harm is not None:
        sec = ['<section id="plots"><h2>Refusal trade-off</h2>']
        if Figure is None:
            sec.append(f'<p class="note" id="charts-note">{esc(CHARTS_HINT)}</p>')
            sec += _tradeoff_table(table)
        else:
            chart = tradeoff_chart(Figure, table, names)
            sec += _tradeoff_figure(chart, table, reasons)
        sec.append("</section>")
        out.append(("plots", "Refusal trade-off", sec))
    sec = ['<section id="dimensions"><h2>Scores by dimension</h2>']
    if Figure is None:
        if over is None or harm is None:
            sec.append(f'<p class="note" id="charts-note">{esc(CHARTS_HINT)}</p>')
        sec.append('<p class="sub">Every score is in the tax table above.</p>')
    else:
        sec.append(_key(table))
        sec.append('<div class="dim-grid" id="dimension-charts">')
        for idx, row in enumerate(table.rows):
            sec += _dimension_card(Figure, row, table, names, reasons, idx)
        sec.append("</div>")
    sec.append("</section>")
    out.append(("dimensions", "Scores by dimension", sec))
    return out


def _tradeoff_figure(chart: Chart | None, table: Table, reasons: dict[tuple[str, str, str], str]) -> list[str]:
    missing = []
    for m in table.models:
        for dim in ("over_refusal", "harmful_refusal"):
            why = reasons.get((dim, m, "score"))
            if why:
                missing.append(f"{model_html(m, table.baseline)} is not plotted: no {dim} value ({esc(why)}).")
                break
    if chart is None:
        return [f'<p class="nodata" id="tradeoff-nodata">no data: {" ".join(missing) or "no model has both refusal rates"}</p>']
    notes = [f"{swatch(table.models, m)}{model_html(m, table.baseline)} has no label in the plot (no free space next to its point)."
             for m in chart.unlabelled]
    return [
        f'<figure id="tradeoff-plot">{chart.svg}<figcaption class="sub">Each model\'s harmful-prompt refusal against its '
        "benign-prompt refusal, with 95% intervals on both axes. Top left (★) is the ideal: it refuses what is harmful and "
        "answers what only sounds risky." + "".join(f" {n}" for n in notes + missing) + "</figcaption></figure>"
    ]


def _dimension_card(Figure: Any, row: Any, table: Table, names: dict[str, str], reasons: dict, idx: int) -> list[str]:
    d = row.dimension.name
    arrow = "↓ lower is better" if row.dimension.direction == "lower" else "↑ higher is better"
    head = (f'<span class="head"><b>{wbr_name(d)}</b> <span class="sub">{esc(row.dimension.label)} · {arrow}'
            + (" · low n" if row.low_n else "") + "</span></span>")
    chart = dimension_chart(Figure, row, table.models, names, f"dim{idx}")
    if chart is None:
        whys = sorted({reasons.get((d, m, "score"), "no answer was graded") for m in table.models})
        return [f'<div class="dim-card" data-dimension="{esc(d)}">{head}<p class="nodata">no data: {esc("; ".join(whys))}</p></div>']
    notes = [f'<p class="nodata">{model_html(m, table.baseline)}: no data: {esc(reasons[(d, m, "score")])}</p>'
             for m in table.models if not has_value(row.scores[m]) and (d, m, "score") in reasons]
    return [f'<figure class="dim-card" data-dimension="{esc(d)}"><figcaption>{head}</figcaption>{chart.svg}{"".join(notes)}</figure>']


def _breakdown(parts: list, table: Table) -> list[str]:
    out = ['<section id="breakdown"><h2>Breakdown by type</h2>',
           '<p class="sub">Each dimension by the items\' type, costliest type first, with the main table\'s statistics.</p>']
    for k, part in enumerate(parts):
        name = part.dimension.name
        first = part.table.rows[0] if part.table.rows else None
        lead = ""
        measured = [t for t in (first.tax.values() if first is not None else []) if t.n and not math.isnan(t.value)]
        if measured:
            lead = f" — costliest: {esc(first.dimension.name)} {esc(tax_text(max(measured, key=lambda t: t.value)))} pp"
        out.append(f'<details class="breakdown" data-dimension="{esc(name)}"{" open" if k == 0 else ""}>'
                   f"<summary><b>{wbr_name(name)}</b> by type ({len(part.table.rows)} types){lead}</summary>")
        out += tax_table(part.table, f"breakdown-{name}", first="type", reasons=_type_reasons(part.table, name))
        out.append("</details>")
    out.append("</section>")
    return out


def _type_reasons(types: Table, dimension: str) -> dict[tuple[str, str, str], str]:
    """Why a type's cell is empty, in the words of its dimension (``report.table.why_empty``): a type
    of hedging where a model never complied has no hedge to measure. Which calls failed is not
    known per type, so failures are not named here (the main table names them)."""
    from taxcheck.report.table import NO_COMMON, why_empty

    generic = why_empty("", {}, None)
    reason = why_empty(dimension, {dimension: 0}, None)
    if reason == generic:
        reason = "no answer of this type was graded"
    out: dict[tuple[str, str, str], str] = {}
    for row in types.rows:
        t = row.dimension.name
        for m, c in row.scores.items():
            if not c.n:
                out[(t, m, "score")] = reason
        for m, tax in row.tax.items():
            if not tax.n:
                base = out.get((t, types.baseline or "", "score"))
                out[(t, m, "tax")] = out.get((t, m, "score")) or (f"the baseline has no value: {base}" if base else NO_COMMON)
    return out


# --------------------------------------------------------------------------- metadata


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
    out = ['<section id="metadata"><h2>Run metadata</h2>', '<table id="run-meta"><tbody>']
    rows = [
        ("taxcheck version", h.taxcheck_version),
        ("run id", h.run_id),
        ("date", h.created),
        ("command", shlex.join(h.command)),
        ("baseline", h.baseline or "none"),
    ]
    rows.append(("params", " · ".join(f"{k} {'none' if v is None else v}" for k, v in sorted(h.params.items()))))
    out += [f'<tr><th>{esc(k)}</th><td class="brk">{esc(v)}</td></tr>' for k, v in rows]
    out.append("</tbody></table>")

    out.append('<h3>Suites</h3><table id="suites"><thead><tr><th>suite</th><th>path</th><th>items</th><th>sha256</th></tr></thead><tbody>')
    for s in h.suites:
        out.append(f'<tr><td class="brk">{esc(s.name)}</td><td class="brk">{esc(s.path)}</td><td class="int">{esc(s.items)}</td><td><code>{esc(s.sha256)}</code></td></tr>')
    out.append("</tbody></table>")

    served = served_models(data)
    out.append('<h3>Models and usage</h3><table id="usage"><thead><tr><th>model</th><th>endpoint</th><th>served model ids</th>'
               "<th>requests</th><th>cached</th><th>input tokens</th><th>output tokens</th><th>cost</th><th>failed</th></tr></thead><tbody>")
    failures = Counter(r.model for r in data.calls.values() if r.failed)
    for m in h.models:
        u = meta.usage.get(m, {})
        ep = h.endpoints.get(m, {})
        ep_text = " · ".join(f"{k} {v}" for k, v in sorted(ep.items()))
        ids = ", ".join(f"{sid} ({n})" for sid, n in served.get(m, Counter()).most_common()) or "not reported"
        cost = u.get("cost_usd")
        cost_s = f"${cost:.4f}" if isinstance(cost, (int, float)) else "unknown (no price)"
        out.append(
            f'<tr><td class="id">{esc(m)}</td><td class="brk">{esc(ep_text)}</td><td class="brk">{esc(ids)}</td>'
            + "".join(f'<td class="int">{esc(u.get(k, 0))}</td>' for k in ("requests", "cached", "input_tokens", "output_tokens"))
            + f'<td class="num">{esc(cost_s)}</td><td class="int">{esc(failures.get(m, 0))}</td></tr>'
        )
    out.append("</tbody></table>")

    if meta.sampling:
        out.append('<h3>Sampling</h3><table id="sampling"><thead><tr><th>model</th><th>temperature</th><th>max tokens</th><th>adjusted</th></tr></thead><tbody>')
        for m, s in meta.sampling.items():
            temp = s.get("temperature") if s.get("temperature_sent", True) else "provider default (none sent)"
            adjusted = "; ".join(str(a.get("message") or a.get("param")) for a in s.get("adjustments", [])) or "no"
            out.append(f'<tr><td class="id">{esc(m)}</td><td>{esc(temp)}</td><td class="int">{esc(s.get("max_tokens"))}</td><td class="brk">{esc(adjusted)}</td></tr>')
        out.append("</tbody></table>")

    if meta.agreement:
        out.append('<h3>Rule vs judge agreement</h3><table id="agreement"><thead><tr><th>dimension</th><th>n</th><th>agreement</th>'
                   "<th>Cohen's κ</th><th>unscored</th></tr></thead><tbody>")
        for dim, a in meta.agreement.items():
            agree = "—" if a.get("agreement") is None else f"{a['agreement'] * 100:.0f}%"
            kappa = "—" if a.get("kappa") is None else f"{a['kappa']:.2f}"
            out.append(f'<tr><td>{wbr_name(dim)}</td><td class="int">{esc(a.get("n"))}</td><td class="int">{esc(agree)}</td>'
                       f'<td class="int">{esc(kappa)}</td><td class="int">{esc(a.get("unscored"))}</td></tr>')
        out.append("</tbody></table>")

    failed = _failed_calls(data)
    if failed:
        out.append('<h3>Failed calls</h3><table id="failed-calls"><thead><tr><th>model</th><th>item</th><th>sample/turn</th><th>error</th></tr></thead><tbody>')
        for r in failed:
            err = r.error or {}
            text = " ".join(str(err.get(k, "")) for k in ("kind", "message") if err.get(k)) or r.skipped or "no text"
            out.append(f'<tr><td class="id">{esc(r.model)}</td><td class="brk">{esc(r.item)}</td><td class="int">{esc(r.sample)}/{esc(r.turn)}</td><td class="brk">{esc(text)}</td></tr>')
        out.append("</tbody></table>")
    out.append("</section>")
    return out
