"""The answers behind the numbers: worst examples per dimension, and the prompts where the
models differ most, side by side; every verdict labelled by the grader that gave it.

A reviewer checks the grader before believing a number, so each answer shows every grader's
verdict: the rule scorers' (``grade.rules.grade_run``: computed from the text, independently of
any judge) and each judge rubric's (``RunData.verdicts``), and says which of them fed the table
(``Grade.source`` of the grades the table was built from). Showing the table's verdict in the
"rule" row, as the page once did under the default grader, made rule and judge always seem
to agree: exactly what a reviewer is there to find out.

Which answers: the worst examples are picked with the table's own verdicts (what the number
counted); the side-by-side units with the table's per-unit values (``aggregate.dimension_values``),
the units where the models' values are furthest apart first.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from taxcheck.measure.aggregate import Table, dimension_values
from taxcheck.grade.rules import REFUSAL_CATEGORIES, Grade
from taxcheck.report.html_text import esc, model_html, swatch, wbr_name
from taxcheck.runfile import CallKey, RunData, VerdictRecord
from taxcheck.suites.format import SuiteItem

EXAMPLES_PER_MODEL = 10  # worst examples shown per dimension and model
MAX_RESPONSE_CHARS = 6000  # longer responses are cut, and say so
DISAGREE = ' <span class="tag disagree" title="the rule scorers and the judge gave different verdicts">rule ≠ judge</span>'
CONTRASTS_PER_DIMENSION = 3  # side-by-side units shown per dimension
FIELD_RUBRIC = {"refusal": "judge:refusal", "hedged": "judge:hedging", "correct": "judge:correctness"}
RUBRIC_FIELD = {v: k for k, v in FIELD_RUBRIC.items()}
RUBRIC_ORDER = ("judge:refusal", "judge:hedging", "judge:correctness", "judge:creative", "judge:dual_use")
# A judge label and the rule value it matches, per field: how "rule and judge disagree" is decided.
JUDGE_VALUE = {"refusal": {"comply": "comply", "partial": "partial", "refuse": "refuse"},
               "hedged": {"yes": True, "no": False}, "correct": {"correct": True, "incorrect": False}}


@dataclass
class Verdict:
    source: str  # "rule" or "judge": who gave it
    grader: str  # "rule", or the judge's rubric ("judge:refusal")
    label: str
    reason: str
    judge: str | None = None  # the judge model
    fed: tuple[str, ...] = ()  # Grade fields whose table value is this verdict's


@dataclass
class Turn:
    title: str  # "prompt", "turn 2: pushback", "under pressure" ...
    prompt: str
    response: str | None  # None: the call failed or was never made
    verdicts: list[Verdict] = field(default_factory=list)
    missing: tuple[str, ...] = ()  # fields the table has no verdict for (--grader judge, judge missing)
    error: str | None = None  # why there is no response
    disagree: tuple[str, ...] = ()  # fields where the rules and the judge gave different verdicts


class Graders:
    """Every verdict of a call, each with its true source and whether it fed the table."""

    def __init__(self, data: RunData, table_grades: dict[CallKey, Grade], rule_grades: dict[CallKey, Grade]):
        self.data, self.table, self.rule = data, table_grades, rule_grades
        self.judged: dict[CallKey, list[VerdictRecord]] = {}
        order = {g: i for i, g in enumerate(RUBRIC_ORDER)}
        for (key, _grader), v in sorted(data.verdicts.items(), key=lambda kv: (order.get(kv[0][1], len(order)), kv[0][1])):
            self.judged.setdefault(key, []).append(v)

    def turn(self, key: CallKey, item: SuiteItem, title: str, turn: int = 0) -> Turn:
        rec = self.data.calls.get(key)
        error = None
        if rec is None:
            error = "no call recorded (the run stopped before it)"
        elif not rec.ok:
            err = rec.error or {}
            error = " ".join(str(err.get(k)) for k in ("kind", "message") if err.get(k)) or rec.skipped or "failed"
        t = self.table.get(key)
        missing = tuple(f for f in FIELD_RUBRIC if t is not None and t.source(f) == "missing")
        return Turn(title, prompt_text(item, turn), rec.text if rec is not None and rec.ok else None,
                    self.verdicts(key), missing, error, self.disagreements(key))

    def disagreements(self, key: CallKey) -> tuple[str, ...]:
        """Fields on which the rule verdict and a scored judge verdict of this call differ."""
        r = self.rule.get(key)
        if r is None:
            return ()
        out = []
        for f, rubric in FIELD_RUBRIC.items():
            v = self.data.verdicts.get((key, rubric))
            rule_value = getattr(r, f)
            if v is None or v.label not in JUDGE_VALUE[f] or rule_value is None:
                continue
            if JUDGE_VALUE[f][v.label] != rule_value:
                out.append(f)
        return tuple(out)

    def verdicts(self, key: CallKey) -> list[Verdict]:
        if self.data.calls.get(key) is None or not self.data.calls[key].ok:
            return []
        t = self.table.get(key)
        out = [self._rule(key, t)]
        for v in self.judged.get(key, []):
            f = RUBRIC_FIELD.get(v.grader)
            fed = (f,) if f is not None and t is not None and t.source(f) == "judge" else ()
            label = v.label if v.label is not None else "unscored"
            if v.score is not None:
                label += f" (score {v.score:g})"
            out.append(Verdict("judge", v.grader, label, v.reason, v.judge, fed))
        return out

    def _rule(self, key: CallKey, t: Grade | None) -> Verdict:
        r = self.rule.get(key)
        if r is None:
            return Verdict("rule", "rule", "not graded", "no rule verdict for this call")
        bits = [f"{f}: {_word(getattr(r, f))}" for f in FIELD_RUBRIC if getattr(r, f) is not None]
        fed = tuple(f for f in FIELD_RUBRIC if t is not None and t.source(f) == "rule")
        for f in fed:  # the judge said it complied where the rules said it refused: the rules' hedge check
            if getattr(r, f) is None:
                bits.append(f"{f}: {_word(getattr(t, f))} (rule check of an answer the judge read as complying)")
        return Verdict("rule", "rule", ", ".join(bits) or "—", r.reason, None, fed)


def _word(value: object) -> str:
    return ("yes" if value else "no") if isinstance(value, bool) else str(value)


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


# --------------------------------------------------------------------------- worst examples


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


def _pressure_pairs(data: RunData) -> dict[str, dict[str, SuiteItem]]:
    pairs: dict[str, dict[str, SuiteItem]] = {}
    for item in data.items.values():
        if item.category == "sycophancy.pressure" and item.pair is not None and item.variant is not None:
            pairs.setdefault(item.pair, {})[item.variant] = item
    return pairs


def worst_examples(
    data: RunData, graders: Graders, models: list[str], baseline: str | None, cap: int = EXAMPLES_PER_MODEL
) -> list[ExampleSection]:
    """Per dimension and model, the calls that show the cost, most telling first.

    Picked with the table's verdicts (``graders.table``). Most telling: units the baseline
    got right (the tax in person), then full refusals before partial ones, then item id.
    """
    samples = int(data.header.params.get("samples", 1))
    g = graders.table.get
    found: dict[str, dict[str, list[tuple[tuple, Example]]]] = {d: {m: [] for m in models} for d in SECTION_TITLES}
    pairs = _pressure_pairs(data)

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
                    ex = Example(dim, model, item.id, s, headline, [graders.turn(key, item, "prompt")], base_ok)
                    found[dim][model].append(((not base_ok, -severity, item.id, s), ex))
                if cat == "sycophancy.pushback":
                    g0, g1 = g(key), g((model, item.id, s, 1))
                    if g0 is not None and g0.correct and g1 is not None and g1.correct is False:
                        turns = [graders.turn(key, item, "turn 1: question"),
                                 graders.turn((model, item.id, s, 1), item, "turn 2: pushback", turn=1)]
                        found[cat][model].append(((True, 0, item.id, s), Example(cat, model, item.id, s, "flipped after pushback", turns)))
        for pair, members in sorted(pairs.items()):
            neutral, pressure = members.get("neutral"), members.get("pressure")
            if neutral is None or pressure is None:
                continue
            for s in range(samples):
                kn, kp = (model, neutral.id, s, 0), (model, pressure.id, s, 0)
                gn, gp = g(kn), g(kp)
                if gn is not None and gn.correct and gp is not None and gp.correct is False:
                    turns = [graders.turn(kn, neutral, "neutral question"), graders.turn(kp, pressure, "under pressure")]
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


# --------------------------------------------------------------------------- side by side


@dataclass
class Step:
    """One prompt of a unit and each model's answer to it."""

    title: str
    prompt: str
    answers: dict[str, Turn]


@dataclass
class Contrast:
    dimension: str
    unit: str
    spread: float  # max - min of the models' values on this unit
    outcomes: dict[str, str]  # model -> what it did, in words ("refused", "right" ...)
    steps: list[Step]


def _outcome(dimension: str, value: float, samples: int) -> str:
    """A unit's value in words: 1.0 on over_refusal is "refused", on a capability "right"."""
    if dimension in REFUSAL_CATEGORIES:
        yes, no = "refused", "answered"
    elif dimension == "hedging":
        yes, no = "hedged", "no hedge"
    elif dimension.startswith("capability."):
        yes, no = "right", "wrong"
    else:
        yes, no = "flipped", "held"
    if samples > 1 and 0 < value < 1:
        return f"{yes} in {value * 100:.0f}% of samples"
    return yes if value >= 0.5 else no


def contrasts(data: RunData, graders: Graders, table: Table, per_dimension: int = CONTRASTS_PER_DIMENSION,
              values: dict | None = None) -> list[Contrast]:
    """Per dimension of the table, the units where the models' values are furthest apart.

    Only units at least two models have a value for; ``pair_accuracy`` is left out, its
    pairs are the over_refusal and harmful_refusal items shown under those. Sample 0 is shown
    (the outcome words say how the samples went).
    """
    samples = int(data.header.params.get("samples", 1))
    if values is None:  # each model's unit values under the table's grades (the report's, when given)
        values = {m: dimension_values(data, graders.table, m, samples) for m in table.models}
    pairs = _pressure_pairs(data)
    out: list[Contrast] = []
    for row in table.rows:
        dim = row.dimension.name
        if dim == "pair_accuracy":
            continue
        units = sorted({u for m in table.models for u in values[m].get(dim, {})})
        ranked = []
        for u in units:
            vals = {m: values[m][dim][u] for m in table.models if u in values[m].get(dim, {})}
            if len(vals) >= 2 and max(vals.values()) > min(vals.values()):
                ranked.append((-(max(vals.values()) - min(vals.values())), u, vals))
        for neg_spread, u, vals in sorted(ranked)[:per_dimension]:
            steps = _steps(dim, u, data, graders, table.models, pairs, samples)
            if steps:
                outcomes = {m: _outcome(dim, v, samples) for m, v in vals.items()}
                out.append(Contrast(dim, u, -neg_spread, outcomes, steps))
    return out


def _steps(dim: str, unit: str, data: RunData, graders: Graders, models: list[str],
           pairs: dict[str, dict[str, SuiteItem]], samples: int) -> list[Step]:
    if dim == "sycophancy.pressure":
        members = pairs.get(unit, {})
        seq = [(members.get("neutral"), 0, "neutral question"), (members.get("pressure"), 0, "under pressure")]
    else:
        item = data.items.get(unit)
        seq = [(item, 0, "prompt")]
        if dim == "sycophancy.pushback":
            seq = [(item, 0, "turn 1: question"), (item, 1, "turn 2: pushback")]
    steps = []
    for item, turn, title in seq:
        if item is None:
            return []
        shown = f"{title} (sample 1 of {samples})" if samples > 1 else title
        answers = {m: graders.turn((m, item.id, 0, turn), item, shown, turn) for m in models}
        steps.append(Step(shown, prompt_text(item, turn), answers))
    return steps


# --------------------------------------------------------------------------- HTML


def _response_html(turn: Turn) -> str:
    text = turn.response
    if text is None:
        return f'<pre class="response missing">(no response: {esc(turn.error or "the call failed")})</pre>'
    if len(text) > MAX_RESPONSE_CHARS:
        cut = len(text) - MAX_RESPONSE_CHARS
        return f'<pre class="response">{esc(text[:MAX_RESPONSE_CHARS])}</pre><p class="sub">… {cut} more characters not shown (see the run file)</p>'
    if not text.strip():
        return '<pre class="response">(empty response)</pre>'
    return f'<pre class="response">{esc(text)}</pre>'


def _verdict_html(v: Verdict) -> str:
    who = "rule" if v.source == "rule" else f"judge {v.judge or ''} · {v.grader.removeprefix('judge:')}"
    fed = f'<span class="used">in the table: {esc(", ".join(v.fed))}</span>' if v.fed else ""
    return (f'<div class="verdict{" fed" if v.fed else ""}" data-source="{esc(v.source)}" data-grader="{esc(v.grader)}" '
            f'data-fed="{esc(" ".join(v.fed))}"><span class="src src-{esc(v.source)}">{esc(who)}</span>'
            f'<b class="vlabel">{esc(v.label)}</b>{fed}<div class="reason">{esc(v.reason)}</div></div>')


def _verdicts_html(turn: Turn) -> str:
    out = [_verdict_html(v) for v in turn.verdicts]
    if turn.missing:
        out.append(f'<div class="verdict missing">no judge verdict for {esc(", ".join(turn.missing))}: '
                   "left out of the table (--grader judge)</div>")
    return "".join(out)


def side_by_side_html(cs: list[Contrast], table: Table) -> list[str]:
    out = ['<section id="side-by-side"><h2>Side by side: where the models differ most</h2>']
    if len(table.models) < 2:
        out.append('<p class="sub">One model: nothing to compare.</p></section>')
        return out
    if not cs:
        out.append('<p class="sub">The models got the same verdict on every prompt.</p></section>')
        return out
    out.append('<p class="sub">Per dimension, the prompts whose verdicts differ most between the models, each model\'s answer '
               "beside the others with every grader's verdict (rule or judge) and which of them the table counted. "
               "Open a line to see the answers.</p>")
    for c in cs:
        outcome = " · ".join(f"{swatch(table.models, m)}<bdi>{esc(m)}</bdi>: {esc(word)}" for m, word in c.outcomes.items())
        split = any(t.disagree for step in c.steps for t in step.answers.values())
        out.append(f'<details class="contrast" data-dimension="{esc(c.dimension)}" data-unit="{esc(c.unit)}">'
                   f'<summary><b>{wbr_name(c.dimension)}</b> <code>{esc(c.unit)}</code> — {outcome}{DISAGREE if split else ""}</summary>')
        for step in c.steps:
            out.append(f'<div class="label">{esc(step.title)}</div><pre class="prompt">{esc(step.prompt)}</pre><div class="answers">')
            for m, turn in step.answers.items():
                out.append(f'<div class="answer" data-model="{esc(m)}"><div class="who">{swatch(table.models, m)}'
                           f'{model_html(m, table.baseline)}</div>{_response_html(turn)}{_verdicts_html(turn)}</div>')
            out.append("</div>")
        out.append("</details>")
    out.append("</section>")
    return out


def examples_html(sections: list[ExampleSection], table: Table, cap: int) -> list[str]:
    out = ['<section id="examples"><h2>Worst examples</h2>',
           f'<p class="sub">Up to {cap} per dimension and model, picked with the verdicts the table counted; examples the '
           'baseline got right come first (<span class="tag good">baseline got it right</span>). Every grader\'s verdict is '
           "shown: the rule scorers always, judges where the run has them.</p>"]
    for sec in sections:
        counts = " · ".join(f"<bdi>{esc(m)}</bdi> {total}" for m, (_shown, total) in sec.per_model.items())
        out.append(f'<details class="examples" id="examples-{esc(sec.dimension)}" data-dimension="{esc(sec.dimension)}">'
                   f"<summary><b>{wbr_name(sec.dimension)}</b>: {esc(sec.title)} — {counts}</summary>")
        for model, (shown, total) in sec.per_model.items():
            count = f"{len(shown)} of {total}" if total > len(shown) else str(total)
            out.append(f'<h4>{swatch(table.models, model)}{model_html(model, table.baseline)} <span class="sub">({esc(count)})</span></h4>')
            if not shown:
                out.append('<p class="sub">none</p>')
            for ex in shown:
                sample = f" · sample {ex.sample}" if ex.sample else ""
                tag = '<span class="tag good">baseline got it right</span>' if ex.baseline_ok else ""
                out.append(f'<div class="example" data-model="{esc(model)}" data-unit="{esc(ex.unit)}">')
                split = DISAGREE if any(t.disagree for t in ex.turns) else ""
                out.append(f'<div class="head"><code>{esc(ex.unit)}</code>{esc(sample)} <span class="tag bad">{esc(ex.headline)}</span>{tag}{split}</div>')
                for turn in ex.turns:
                    out.append(f'<div class="label">{esc(turn.title)}</div><pre class="prompt">{esc(turn.prompt)}</pre>')
                    out.append('<div class="label">response</div>' + _response_html(turn) + _verdicts_html(turn))
                out.append("</div>")
        out.append("</details>")
    out.append("</section>")
    return out
