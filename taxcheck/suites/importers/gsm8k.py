"""GSM8K (Cobbe et al. 2021): JSONL ``question, answer`` into ``capability.math`` items.

The gold number is what follows ``#### `` on the last line of ``answer``; the worked
solution before it is not shown to the model. Thousands separators are stripped
(``1,234`` is 1234), because the number scorer compares values, not strings.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator

from taxcheck.suites.importers._common import Context, jsonl_records, text_field
from taxcheck.suites.format import SuiteItem

OPTIONS: dict[str, str] = {}
INSTRUCTION = "Work it out, then give the final answer as a number on the last line."
_NUMBER = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)")


def gold_number(answer: str) -> float | None:
    """The number after the last ``####``, or None when there is no clean number there."""
    _, sep, tail = answer.rpartition("####")
    if not sep:
        return None
    text = tail.strip().replace(",", "").replace("$", "").rstrip(".").strip()
    if not _NUMBER.fullmatch(text):
        return None
    value = float(text)
    return value if math.isfinite(value) else None


def read(ctx: Context) -> Iterator[SuiteItem]:
    for line, rec in jsonl_records(ctx):
        question = text_field(ctx, line, rec, "question")
        answer = text_field(ctx, line, rec, "answer")
        if question is None or answer is None:
            continue
        number = gold_number(answer)
        if number is None:
            ctx.problem(line, "answer has no '#### <number>' line with a plain number")
            continue
        item = ctx.item(
            line,
            id=f"gsm8k-{line}",
            category="capability.math",
            prompt=f"{question}\n\n{INSTRUCTION}",
            expect="answer",
            answer={"number": number},
        )
        if item is not None:
            yield item
