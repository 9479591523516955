"""The top of the HTML report: what a manager reads in ten seconds.

Why it exists: the page is forwarded to people who did not run the evaluation and will not
read a table of intervals. So before anything else it says, per candidate, the confident
costs and the confident bonuses against the baseline, one sentence each, with the interval
that makes them confident; then who graded (judge or rules, with counts), where model code
ran, and everything that makes the numbers partial: failed calls with their causes and
fixes, gates that tripped or could not be measured, work the run never finished (a budget
stop, an interruption, a refused key), verdicts the judge did not give, models sampled at
a provider's default temperature. A run where every call failed says so first, with the
reasons, and the page then shows no empty charts.

Facts are computed here from the report (``pipeline.Report``) and the run file, and only
turned into HTML at the end (:func:`summary_html`), so tests read the facts directly.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from taxcheck.measure.aggregate import Cell, Table, TaxCell
from taxcheck.dimensions import Dimension
from taxcheck.report.html_text import esc, model_html, pct, swatch
from taxcheck.report.table import empty_reasons, gate_lines, sandbox_lines, score_text, tax_text, unmeasured_gate_lines
from taxcheck.runfile import RunData

FIELDS = ("refusal", "hedged", "correct")


@dataclass
class Finding:
    """A confident tax of one candidate on one dimension."""

    dimension: Dimension
    tax: TaxCell
    candidate: Cell
    baseline: Cell
    low_n: bool

    def text(self) -> str:
        kind = "cost" if self.tax.significance == "cost" else "bonus"
        low = ", low n" if self.low_n else ""
        return (f"{self.dimension.name} {tax_text(self.tax)} pp, confident {kind}{low} "
                f"({self.dimension.label}: {pct(self.candidate.value)} against {pct(self.baseline.value)})")


@dataclass
class CandidateSummary:
    model: str
    costs: list[Finding] = field(default_factory=list)
    bonuses: list[Finding] = field(default_factory=list)
    unclear: list[str] = field(default_factory=list)  # measured, not distinguishable from 0
    unmeasured: dict[str, str] = field(default_factory=dict)  # dimension -> why there is no tax
    nothing: str | None = None  # why the candidate has no value at all (then no other sentence)

    def costs_sentence(self) -> str:
        if self.nothing:
            return f"Nothing measured: {self.nothing}; no cost or bonus can be told."
        if not self.costs:
            return "No confident cost."
        return "Costs: " + "; ".join(f.text() for f in self.costs) + "."

    def bonuses_sentence(self) -> str:
        if self.nothing:
            return ""
        if not self.bonuses:
            return "No confident bonus."
        return "Bonuses: " + "; ".join(f.text() for f in self.bonuses) + "."

    def elsewhere_sentence(self) -> str:
        if self.nothing:
            return ""
        parts = []
        if self.unclear:
            lead = "No confident change elsewhere" if self.costs or self.bonuses else "No confident change"
            parts.append(f"{lead} ({', '.join(self.unclear)}).")
        by_reason: dict[str, list[str]] = {}
        for d, why in self.unmeasured.items():
            by_reason.setdefault(why, []).append(d)
        if by_reason:
            parts.append("Not measured: " + "; ".join(f"{', '.join(ds)} ({why})" for why, ds in by_reason.items()) + ".")
        return " ".join(parts)


@dataclass
class Notice:
    """Something partial or failed about the run, most serious first."""

    level: str  # "error" (numbers missing or a gate failed), "warning", "info", "ok"
    text: str
    fix: str | None = None


@dataclass
class Summary:
    baseline: str | None
    nothing_measured: bool
    candidates: list[CandidateSummary]
    scores_only: list[str]  # without a baseline: a sentence per model
    grading: str
    sandbox: list[tuple[str, str]]  # (level, text)
    notices: list[Notice]


LEVELS = {"error": 0, "warning": 1, "info": 2, "ok": 3}
STYLE_LEVEL = {"bold red": "error", "red": "error", "bold yellow": "warning", "yellow": "warning", "green": "ok", "dim": "info"}


def summarize(data: RunData, table: Table, meta: Any, grades: dict, warnings: list[str]) -> Summary:
    """The summary's facts, from the report's table, meta, grades and warnings."""
    nothing = not any(c.n for row in table.rows for c in row.scores.values())
    reasons = empty_reasons(table)
    candidates = []
    if table.baseline is not None:
        for m in table.models:
            if m != table.baseline:
                candidates.append(_candidate(table, m, reasons))
    scores_only = [] if table.baseline is not None or nothing else [_scores_sentence(table, m) for m in table.models]
    notices = _notices(data, table, meta, warnings)
    notices.sort(key=lambda n: LEVELS[n.level])
    sandbox = [(STYLE_LEVEL.get(style, "info"), text) for style, text in sandbox_lines(meta.sandbox)]
    return Summary(table.baseline, nothing, candidates, scores_only, grading_sentence(data, meta, grades), sandbox, notices)


def _candidate(table: Table, model: str, reasons: dict[tuple[str, str, str], str]) -> CandidateSummary:
    out = CandidateSummary(model)
    if table.rows and not any(row.scores[model].n for row in table.rows):
        out.nothing = reasons.get((table.rows[0].dimension.name, model, "score"), "no answer was graded")
        return out
    for row in table.rows:
        t = row.tax[model]
        name = row.dimension.name
        if not t.n:
            out.unmeasured[name] = reasons.get((name, model, "tax"), "no paired items")
            continue
        if t.significance == "unclear":
            out.unclear.append(name)
            continue
        finding = Finding(row.dimension, t, row.scores[model], row.scores[table.baseline], row.low_n)
        (out.costs if t.significance == "cost" else out.bonuses).append(finding)
    out.costs.sort(key=lambda f: -f.tax.value)
    out.bonuses.sort(key=lambda f: f.tax.value)
    return out


def _scores_sentence(table: Table, model: str) -> str:
    """Without a baseline: the model's refusal rates, the first thing a reader asks for."""
    parts = []
    for name in ("over_refusal", "harmful_refusal"):
        row = table.row(name)
        if row is not None and row.scores[model].n:
            c = row.scores[model]
            parts.append(f"{row.dimension.label}: {score_text(c.value, c.ci_low, c.ci_high, c.n)}")
    measured = sum(1 for row in table.rows if row.scores[model].n)
    parts.append(f"{measured} of {len(table.rows)} dimensions measured")
    return "; ".join(parts) + "."


def grading_sentence(data: RunData, meta: Any, grades: dict) -> str:
    """Who gave the verdicts the table counts: judge and rule counts, per dimension where mixed."""
    judges = sorted({v.judge for v in data.verdicts.values()})
    sources: Counter[str] = Counter()
    for g in grades.values():
        for f in FIELDS:
            s = g.source(f)
            if s is not None:
                sources[s] += 1
    if not sources:
        return "No verdicts: no call was answered."
    if not judges:
        return f"Graded by the rule scorers only ({sources['rule']} verdicts); the run has no judge verdicts."
    by_dim = meta.graded_by or {}
    judge_dims = [d for d, c in by_dim.items() if c.get("judge") and not c.get("rule") and not c.get("missing")]
    rule_dims = [d for d, c in by_dim.items() if c.get("rule") and not c.get("judge") and not c.get("missing")]
    mixed = [f"{d} ({c['judge']} judge, {c['rule']} rule" + (f", {c['missing']} missing" if c.get("missing") else "") + ")"
             for d, c in by_dim.items() if d not in judge_dims and d not in rule_dims and sum(c.values())]
    who = ", ".join(judges)
    if meta.grader == "rule":
        head = f"Graded by the rule scorers (--grader rule, {sources['rule']} verdicts); the judge {who}'s verdicts are shown beside them, not counted."
    else:
        head = (f"Graded by the judge {who} ({sources['judge']} verdicts) and the rule scorers ({sources['rule']})"
                + (f", {sources['missing']} verdicts missing" if sources["missing"] else "") + f"; --grader {meta.grader}.")
    parts = [head]
    if meta.grader != "rule":
        if judge_dims:
            parts.append(f"Judge: {', '.join(judge_dims)}.")
        if rule_dims:
            parts.append(f"Rules: {', '.join(rule_dims)}.")
        if mixed:
            parts.append(f"Both: {'; '.join(mixed)}.")
    weak = [f"{d} (agree {a['agreement'] * 100:.0f}%, κ {a['kappa']:.2f})" for d, a in (meta.agreement or {}).items()
            if a.get("kappa") is not None and a.get("agreement") is not None and a["kappa"] < 0.6]
    if weak:
        parts.append("Rules and judge often disagree on " + "; ".join(weak) + ": check the side-by-side verdicts.")
    return " ".join(parts)


# --------------------------------------------------------------------------- partial work


def unfinished_calls(data: RunData) -> dict[str, int]:
    """Per model, first-turn calls of the run's items that have no record at all: never sent.

    A run stopped by ``--max-cost``, interrupted, or cut short by a refused key leaves them;
    a rerun of the same command sends exactly these.
    """
    samples = int(data.header.params.get("samples", 1))
    expected = len(data.items) * samples
    recorded = Counter(k[0] for k in data.calls if k[3] == 0 and k[1] in data.items)
    return {m: expected - recorded.get(m, 0) for m in data.header.models if expected - recorded.get(m, 0) > 0}


def _budget_in(command: list[str]) -> bool:
    return any(a == "--max-cost" or a.startswith("--max-cost=") for a in command)


def _notices(data: RunData, table: Table, meta: Any, warnings: list[str]) -> list[Notice]:
    out: list[Notice] = []
    for g in meta.gates:  # tripped and unmeasured gates fail the run: errors; passed gates: ok
        for style, text in (gate_lines([g]) if g.tripped_by or not g.unmeasured else []) + unmeasured_gate_lines([g]):
            out.append(Notice(STYLE_LEVEL.get(style, "info"), text))
    empty = {m for m in table.models if table.rows and not any(row.scores[m].n for row in table.rows)}
    for m in table.models:
        causes = meta.failure_causes.get(m, [])
        failed = table.failures.get(m, 0)
        lead = f"{m}: nothing measured, " if m in empty else f"{m}: "
        if failed:
            parts = [f"{c['calls']} × {c['kind']}: {c['message']}" for c in causes[:3]]
            rest = failed - sum(c["calls"] for c in causes[:3])
            if rest > 0:
                parts.append(f"{rest} for other reasons")
            fixes = "; ".join(dict.fromkeys(c["fix"] for c in causes[:3] if c.get("fix")))
            noun = "call" if failed == 1 else "calls"
            what = f"every call failed ({failed})" if m in empty else f"{failed} {noun} failed after retries, excluded from n"
            out.append(Notice("error", f"{lead}{what}: " + "; ".join(parts) + ".", fixes or None))
        elif m in empty:
            out.append(Notice("error", f"{lead}no answer could be graded."))
    unsent = unfinished_calls(data)
    for m, n in unsent.items():
        if any(c["kind"] == "auth" for c in meta.failure_causes.get(m, [])):
            why = "its key was refused, so the rest was never sent"
        elif _budget_in(data.header.command):
            why = "the --max-cost budget stopped the run (or it was interrupted)"
        else:
            why = "the run was interrupted"
        out.append(Notice("warning", f"{m}: {n} prompts never sent: {why}.", "rerun the same command to send only these"))
    cut = {m: u["cut_off"] for m, u in meta.usage.items() if u.get("cut_off")}
    for m, n in cut.items():
        noun, kept = ("answer was", "it is") if n == 1 else ("answers were", "they are")
        out.append(Notice("warning", f"{m}: {n} {noun} cut off at the token limit and graded as {kept}.",
                          "raise --max-tokens (or the variant's max_tokens)"))
    if data.dropped_torn_line:
        out.append(Notice("warning", "the run file's last line was torn (the run was killed mid-write) and is left out.",
                          "rerun the same command: it sends that call again"))
    pending = [b for b in data.batches.values() if b.state == "submitted"]
    if pending:
        out.append(Notice("warning", f"{len(pending)} provider batches still pending: their answers are not in this report.",
                          "rerun the same command to collect them"))
    for dim, why in meta.incomplete.items():
        out.append(Notice("warning", f"{dim} is incomplete: {why}."))
    judge_warnings = [Notice("warning", w) for w in warnings]
    out += judge_warnings
    out += _sampling_notices(meta.sampling)
    for note in meta.notes:
        # pipeline's note on missing judge verdicts restates the warning, and ends with the fix
        head, sep, fix = note.partition(" `taxcheck regrade ")
        if "judge verdicts are missing" in head and judge_warnings:
            judge_warnings[0].fix = f"`taxcheck regrade {fix}" if sep else judge_warnings[0].fix
            continue
        out.append(Notice("warning", note))
    low = [r.dimension.name for r in table.rows if r.low_n and r.n]
    if low:
        out.append(Notice("info", f"low n (under 30 items or paired items, so wide intervals): {', '.join(low)}."))
    return out


def _sampling_notices(sampling: dict[str, dict[str, Any]]) -> list[Notice]:
    """Models that were not sampled alike: a paired comparison between them mixes two things."""
    out = []
    default = [m for m, s in sampling.items() if not s.get("temperature_sent", True)]
    sent = sorted({s.get("temperature") for s in sampling.values() if s.get("temperature_sent", True)}, key=str)
    if default:
        others = f"; the others at temperature {', '.join(str(t) for t in sent)}" if sent else ""
        out.append(Notice("warning", f"sampled at the provider's default temperature (none sent): {', '.join(default)}{others}."))
    for m, s in sampling.items():
        for adj in s.get("adjustments", []):
            out.append(Notice("info", f"{m}: {adj.get('message') or adj.get('param')} (requests adjusted: {adj.get('fix')})"))
    return out


# --------------------------------------------------------------------------- HTML


def summary_html(s: Summary, models: list[str]) -> list[str]:
    out = ['<section id="summary" class="summary"><h2>Summary</h2>']
    if s.nothing_measured:
        out.append('<div class="alert error" id="nothing-measured"><strong>Nothing was measured: no model has a single graded answer.</strong>')
        reasons = [n for n in s.notices if n.level == "error"]
        out.append('<ul class="notices">' + "".join(_notice(n) for n in reasons) + "</ul></div>")
    for c in s.candidates if not s.nothing_measured else []:
        out.append(f'<div class="cand" data-model="{esc(c.model)}"><h3>{swatch(models, c.model)}{model_html(c.model, None)}'
                   f' <span class="sub">against</span> {model_html(s.baseline or "", s.baseline)}</h3>')
        cls = "sig-cost-text" if c.costs or c.nothing else "quiet"
        out.append(f'<p class="costs {cls}" data-kind="costs">{_lead(c.costs_sentence())}</p>')
        cls = "sig-bonus-text" if c.bonuses else "quiet"
        if not c.nothing:
            out.append(f'<p class="bonuses {cls}" data-kind="bonuses">{_lead(c.bonuses_sentence())}</p>')
        rest = c.elsewhere_sentence()
        if rest:
            out.append(f'<p class="elsewhere quiet" data-kind="elsewhere">{esc(rest)}</p>')
        out.append("</div>")
    if s.baseline is None and s.scores_only:
        out.append('<p class="quiet">No baseline (-b), so no tax: each model\'s scores.</p><ul class="scores-only">')
        out += [f"<li>{swatch(models, m)}{model_html(m, None)}: {esc(text)}</li>" for m, text in zip(models, s.scores_only)]
        out.append("</ul>")
    out.append('<ul class="facts">')
    out.append(f'<li id="summary-grader"><span class="fact">grader</span> {esc(s.grading)}</li>')
    if s.sandbox:
        for level, text in s.sandbox:
            out.append(f'<li class="summary-sandbox lvl-{level}"><span class="fact">sandbox</span> {esc(text)}</li>')
    else:
        out.append('<li class="summary-sandbox"><span class="fact">sandbox</span> no code items: no model code was run.</li>')
    out.append("</ul>")
    shown = [n for n in s.notices if not (s.nothing_measured and n.level == "error")]
    if any(n.level in ("error", "warning") for n in shown):
        out.append('<h3 id="partial">Partial or failed work</h3>')
    elif not s.nothing_measured:
        out.append('<p id="complete" class="lvl-ok">Complete: every prompt answered, every verdict in.</p>')
    if shown:
        out.append('<ul class="notices" id="notices">' + "".join(_notice(n) for n in shown) + "</ul>")
    out.append("</section>")
    return out


def _lead(sentence: str) -> str:
    """"Costs: ..." with its first word in bold."""
    head, sep, rest = sentence.partition(": ")
    return f"<b>{esc(head)}:</b> {esc(rest)}" if sep else esc(sentence)


_BADGE = {"error": "problem", "warning": "partial", "info": "note", "ok": "ok"}


def _notice(n: Notice) -> str:
    fix = f' <span class="fix">fix: {esc(n.fix)}</span>' if n.fix else ""
    return f'<li class="lvl-{n.level}"><span class="badge b-{n.level}">{_BADGE[n.level]}</span> {esc(n.text)}{fix}</li>'
