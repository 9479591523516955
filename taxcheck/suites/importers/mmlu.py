"""MMLU (Hendrycks et al. 2021) into ``capability.knowledge`` multiple-choice items.

Two layouts exist in the wild and both are read:

* the original per-subject test files: headerless CSV ``question,A,B,C,D,answer`` with the
  answer a letter; the subject is only in the file name (``anatomy_test.csv``);
* the Hugging Face export: JSONL (or CSV with a header) with ``question``, ``subject``,
  ``choices`` (a list) and ``answer`` (an index 0–3; a letter is accepted too).

A CSV file is told apart by its first row: a header naming ``question`` and ``choices``
means the HF layout, anything else the original one.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from taxcheck.suites.importers._common import (
    Context,
    csv_rows,
    jsonl_records,
    short,
    slug,
    text_field,
)
from taxcheck.suites.format import SuiteItem

OPTIONS = {"subject": "subject of every item, when neither the rows nor the file name give one"}
LETTERS = "ABCDEFGHIJ"
INSTRUCTION = "Answer with the letter of the correct option."
_SPLIT_SUFFIX = re.compile(r"_(test|dev|val|validation|train|auxiliary_train)$")


def subject_from_name(path: Path) -> str | None:
    """``anatomy_test.csv`` -> ``anatomy``; None when the name is a bare split name."""
    stem = path.stem.lower()
    subject = _SPLIT_SUFFIX.sub("", stem)
    if subject == stem and stem in ("test", "dev", "val", "validation", "train", "all", "mmlu"):
        return None
    return subject or None


def render(question: str, choices: list[str], subject: str | None) -> str:
    lines = [f"Subject: {subject.replace('_', ' ')}", ""] if subject else []
    lines.append(question)
    lines.append("")
    lines.extend(f"{LETTERS[i]}) {c}" for i, c in enumerate(choices))
    lines.append("")
    lines.append(INSTRUCTION)
    return "\n".join(lines)


def read(ctx: Context, subject: str | None = None) -> Iterator[SuiteItem]:
    default_subject = subject or subject_from_name(ctx.path)
    if ctx.path.suffix.lower() in (".jsonl", ".json", ".ndjson"):
        records: Iterator[tuple[int, dict[str, Any]]] = jsonl_records(ctx)
        yield from _hf_items(ctx, records, default_subject)
        return
    rows = csv_rows(ctx)
    first = next(rows, None)
    if first is None:
        return
    header = [h.strip().lower() for h in first[1]]
    if "question" in header and "choices" in header:
        yield from _hf_items(ctx, _dict_rows(ctx, header, rows), default_subject)
    else:
        yield from _original_items(ctx, _chain(first, rows), default_subject)


def _chain(first: tuple[int, list[str]], rest: Iterator[tuple[int, list[str]]]) -> Iterator[tuple[int, list[str]]]:
    yield first
    yield from rest


def _dict_rows(
    ctx: Context, header: list[str], rows: Iterator[tuple[int, list[str]]]
) -> Iterator[tuple[int, dict[str, Any]]]:
    for line, row in rows:
        if len(row) != len(header):
            ctx.problem(line, f"expected {len(header)} fields like the header, got {len(row)}")
            continue
        yield line, dict(zip(header, row))


def _original_items(ctx: Context, rows: Iterator[tuple[int, list[str]]], subject: str | None) -> Iterator[SuiteItem]:
    prefix = f"mmlu-{slug(subject or ctx.path.stem)}"
    for n, (line, row) in enumerate(rows, start=1):
        if len(row) != 6:
            ctx.problem(line, f"expected 6 fields (question,A,B,C,D,answer), got {len(row)}")
            continue
        question, *choices, letter = (cell.strip() for cell in row)
        letter = letter.upper()
        if letter not in LETTERS[:4]:
            ctx.problem(line, f"answer must be a letter A-D, got {short(row[5])}")
            continue
        item = _item(ctx, line, f"{prefix}-{n}", question, choices, letter, subject)
        if item is not None:
            yield item


def _hf_items(ctx: Context, records: Iterator[tuple[int, dict[str, Any]]], default: str | None) -> Iterator[SuiteItem]:
    for n, (line, rec) in enumerate(records, start=1):
        question = text_field(ctx, line, rec, "question")
        choices = _choices(ctx, line, rec.get("choices"))
        if question is None or choices is None:
            continue
        letter = _answer_letter(ctx, line, rec.get("answer"), len(choices))
        if letter is None:
            continue
        subject = rec.get("subject") if isinstance(rec.get("subject"), str) and rec["subject"].strip() else default
        subject = subject.strip() if subject else None
        item = _item(ctx, line, f"mmlu-{slug(subject or ctx.path.stem) or 'x'}-{n}", question, choices, letter, subject)
        if item is not None:
            yield item


def _item(
    ctx: Context, line: int, id_: str, question: str, choices: list[str], letter: str, subject: str | None
) -> SuiteItem | None:
    if not question:
        ctx.problem(line, "question is empty")
        return None
    if any(not c for c in choices):
        ctx.problem(line, "an answer option is empty")
        return None
    return ctx.item(
        line,
        id=id_,
        category="capability.knowledge",
        type=subject,
        prompt=render(question, choices, subject),
        expect="answer",
        answer={"choice": letter},
    )


def _choices(ctx: Context, line: int, value: Any) -> list[str] | None:
    """The options as a list of strings; a CSV cell may hold a JSON or Python list."""
    if isinstance(value, str):
        value = _parse_list(value)
    if not isinstance(value, list) or not all(isinstance(c, (str, int, float)) for c in value):
        ctx.problem(line, "choices must be a list of strings")
        return None
    if not 2 <= len(value) <= len(LETTERS):
        ctx.problem(line, f"choices must hold 2 to {len(LETTERS)} options, got {len(value)}")
        return None
    return [str(c).strip() for c in value]


def _parse_list(text: str) -> Any:
    text = text.strip()
    if not text.startswith("[") or len(text) > 100_000:
        return None
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        pass
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None


def _answer_letter(ctx: Context, line: int, value: Any, n: int) -> str | None:
    """The answer as a letter; HF stores an index, but a letter or a digit string is fine."""
    index: int | None = None
    if isinstance(value, bool):
        index = None
    elif isinstance(value, int):
        index = value
    elif isinstance(value, str):
        text = value.strip().upper()
        if text.isdigit() and len(text) < 3:
            index = int(text)
        elif len(text) == 1 and text in LETTERS:
            index = LETTERS.index(text)
    if index is None or not 0 <= index < n:
        ctx.problem(line, f"answer must be an index 0-{n - 1} or a letter A-{LETTERS[n - 1]}, got {short(value)}")
        return None
    return LETTERS[index]

