"""``report --show``: the graded responses behind a number, so a reviewer can check the grader."""

from __future__ import annotations

from taxcheck.aggregate import DIMENSION_NAMES
from taxcheck.errors import UserError
from taxcheck.grading import Grade, grade_run
from taxcheck.runfile import RunData

_JUDGED = (("judge:refusal", "refusal"), ("judge:hedging", "hedged"), ("judge:correctness", "correct"))
MAX_CHARS = 600


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


def print_audit(data: RunData, show: str, grader: str = "auto") -> int:
    from rich.text import Text

    from taxcheck.console import stdout_console

    if show != "disagreements" and show not in DIMENSION_NAMES:
        raise UserError(f"--show {show!r}: 'disagreements' or a dimension ({', '.join(DIMENSION_NAMES)})")
    if show == "disagreements" and not data.verdicts:
        raise UserError("this run has no judge verdicts; add them with `taxcheck regrade RUN --judge SPEC`")
    console = stdout_console(width=120)
    rule = grade_run(data)
    shown = 0
    for key, g in sorted(rule.items()):
        item = data.items.get(key[1])
        rec = data.calls.get(key)
        if item is None or rec is None:
            continue
        verdicts = []
        disagree = False
        for grader_name, field in _JUDGED:
            v = data.verdicts.get((key, grader_name))
            r = _rule_label(g, field)
            if v is None or r is None:
                continue
            judge_label = v.label or "unscored"
            verdicts.append(f"{field}: rule {r} / judge {judge_label} ({v.reason})")
            disagree |= v.label is not None and v.label != r
        if show == "disagreements" and not disagree:
            continue
        if show != "disagreements" and not _in_dimension(show, item.category, g):
            continue
        shown += 1
        model, item_id, sample, turn = key
        console.print(Text(f"── {model} · {item_id} (sample {sample}, turn {turn}) · {item.category}", style="bold"))
        console.print(Text("prompt: " + _clip(item.text_of_prompt()), style="cyan"))
        console.print(Text("response: " + _clip(rec.text or "")))
        rule_bits = [f"refusal {g.refusal}" if g.refusal else "", f"hedged {g.hedged}" if g.hedged is not None else "", f"correct {g.correct}" if g.correct is not None else ""]
        console.print(Text("rule: " + ", ".join(b for b in rule_bits if b) + f" ({g.reason})", style="yellow"))
        for line in verdicts:
            console.print(Text(line, style="magenta"))
    console.print(Text(f"{shown} graded responses shown", style="dim"))
    return 0


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_CHARS else text[:MAX_CHARS] + "…"
