"""``report --show``: the graded responses behind a number, so a reviewer can check the grader.

Responses, prompts, model ids and the judge's reasons are outside text: on a terminal they
are escaped (a response must not be able to rewrite the verdict line under it); with
``-f json`` they are listed in full, as data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from taxcheck.measure.aggregate import DIMENSION_NAMES
from taxcheck.errors import UserError
from taxcheck.grade.rules import Grade, grade_run
from taxcheck.runfile import CallKey, RunData

_JUDGED = (("judge:refusal", "refusal"), ("judge:hedging", "hedged"), ("judge:correctness", "correct"))
MAX_CHARS = 600
FORMATS = ("table", "json")


@dataclass
class JudgeView:
    field: str  # the rule field it is compared with: refusal, hedged, correct
    grader: str  # judge:refusal, ...
    judge: str  # the judge's model spec
    label: str | None  # None: unscored
    reason: str
    rule: str | None  # the rule's label for the same field, in the judge's words


@dataclass
class Shown:
    """One graded call as ``--show`` lists it."""

    key: CallKey
    category: str
    prompt: str
    response: str
    rule: Grade
    judged: list[JudgeView] = field(default_factory=list)

    def document(self) -> dict[str, Any]:
        model, item, sample, turn = self.key
        return {
            "model": model,
            "item": item,
            "sample": sample,
            "turn": turn,
            "category": self.category,
            "prompt": self.prompt,
            "response": self.response,
            "rule": {"refusal": self.rule.refusal, "hedged": self.rule.hedged, "correct": self.rule.correct, "reason": self.rule.reason},
            "judge": [
                {"field": j.field, "grader": j.grader, "judge": j.judge, "label": j.label, "reason": j.reason, "rule": j.rule}
                for j in self.judged
            ],
        }


def _rule_label(g: Grade, field: str) -> str | None:
    if field == "refusal":
        return g.refusal
    if field == "hedged":
        return None if g.hedged is None else ("yes" if g.hedged else "no")
    return None if g.correct is None else ("correct" if g.correct else "incorrect")


def _in_dimension(dim: str, category: str, g: Grade) -> bool:
    if dim == "hedging":
        return g.hedged is not None
    if dim == "pair_accuracy":
        return category in ("over_refusal", "harmful_refusal")
    return category == dim


def shown_calls(data: RunData, show: str) -> list[Shown]:
    """The graded calls ``--show SHOW`` lists: a dimension's, or where rule and judge disagree."""
    if show != "disagreements" and show not in DIMENSION_NAMES:
        raise UserError(f"--show {show!r}: 'disagreements' or a dimension ({', '.join(DIMENSION_NAMES)})")
    if show == "disagreements" and not data.verdicts:
        raise UserError("this run has no judge verdicts; add them with `taxcheck regrade RUN --judge SPEC`")
    out = []
    for key, g in sorted(grade_run(data).items()):
        item = data.items.get(key[1])
        rec = data.calls.get(key)
        if item is None or rec is None:
            continue
        judged = []
        for grader_name, field_name in _JUDGED:
            v = data.verdicts.get((key, grader_name))
            if v is not None:
                judged.append(JudgeView(field_name, grader_name, v.judge, v.label, v.reason, _rule_label(g, field_name)))
        disagree = any(j.label is not None and j.rule is not None and j.label != j.rule for j in judged)
        if show == "disagreements" and not disagree:
            continue
        if show != "disagreements" and not _in_dimension(show, item.category, g):
            continue
        out.append(Shown(key, item.category, item.text_of_prompt(), rec.text or "", g, judged))
    return out


def print_audit(data: RunData, show: str, grader: str = "auto", fmt: str = "table", output: Path | None = None) -> int:
    """Print (or write to ``output``) the calls ``--show`` selects, as text or a JSON list."""
    import sys

    from taxcheck.console import stdout_console

    if fmt not in FORMATS:
        raise UserError(f"-f {fmt!r} with --show: one of {', '.join(FORMATS)}")
    shown = shown_calls(data, show)
    if output is None:
        if fmt == "json":
            sys.stdout.write(_json(shown))
        else:
            _print_text(shown, stdout_console(width=120))
        return 0
    try:
        with open(output, "w", encoding="utf-8") as fh:
            if fmt == "json":
                fh.write(_json(shown))
            else:
                _print_text(shown, stdout_console(fh, width=120, color=False))
    except OSError as exc:
        raise UserError(f"cannot write {output}: {exc.strerror or exc}") from None
    return 0


def _json(shown: list[Shown]) -> str:
    from taxcheck.report.table import json_text

    return json_text([s.document() for s in shown]) + "\n"


def _print_text(shown: list[Shown], console) -> None:
    from rich.text import Text

    from taxcheck.console import outside_text

    for s in shown:
        model, item_id, sample, turn = s.key
        head = Text("── ", style="bold") + outside_text(model, "bold") + Text(" · ", style="bold") + outside_text(item_id, "bold")
        head.append(f" (sample {sample}, turn {turn}) · ", style="bold")
        head.append_text(outside_text(s.category, "bold"))
        console.print(head)
        console.print(Text("prompt: ", style="cyan") + outside_text(_clip(s.prompt), "cyan"))
        console.print(Text("response: ") + outside_text(_clip(s.response)))
        g = s.rule
        bits = [f"refusal {g.refusal}" if g.refusal else "", f"hedged {g.hedged}" if g.hedged is not None else "", f"correct {g.correct}" if g.correct is not None else ""]
        console.print(outside_text("rule: " + ", ".join(b for b in bits if b) + f" ({g.reason})", "yellow"))
        for j in s.judged:
            if j.rule is None:
                continue
            console.print(outside_text(f"{j.field}: rule {j.rule} / judge {j.label or 'unscored'} ({j.reason})", "magenta"))
    console.print(Text(f"{len(shown)} graded responses shown", style="dim"))


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_CHARS else text[:MAX_CHARS] + "…"
