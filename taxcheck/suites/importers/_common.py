"""Shared machinery of the importers: reading lines, CSV and JSONL records, and problems.

Why one module: every importer must report a malformed file the same way (``file:line:
message``, at most ``MAX_PROBLEMS`` of them, never a traceback) and must stream, so the
readers here are generators over the file's *binary* lines. Decoding each line on its own
lets a stray non-UTF-8 byte become one problem with its line number instead of an
exception from deep inside ``io``.
"""

from __future__ import annotations

import csv
import json
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from taxcheck.errors import SuiteError
from taxcheck.jsonl import read_lines
from taxcheck.suites.format import SuiteItem

MAX_PROBLEMS = 20
_ID_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass
class ImportReport:
    """What an import did besides yielding items: skipped rows by reason, and notes.

    The CLI prints it after ``taxcheck import``; a caller that does not care passes none.
    """

    items: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)

    def skip(self, reason: str, n: int = 1) -> None:
        self.skipped[reason] += n

    def summary(self) -> str:
        parts = [f"{self.items} items"]
        if self.skipped:
            detail = ", ".join(f"{reason}: {n}" for reason, n in sorted(self.skipped.items()))
            parts.append(f"skipped {sum(self.skipped.values())} rows ({detail})")
        parts.extend(self.notes)
        return "; ".join(parts)


class Problems:
    """Collects ``file:line: message`` problems; raises once ``MAX_PROBLEMS`` are in."""

    def __init__(self, label: str):
        self.label = label
        self.items: list[str] = []

    def add(self, line: int | None, message: str) -> None:
        where = f"{self.label}:{line}" if line is not None else self.label
        self.items.append(f"{where}: {message}")
        if len(self.items) >= MAX_PROBLEMS:
            raise SuiteError([*self.items, f"{self.label}: stopped after {MAX_PROBLEMS} problems"])

    def raise_if_any(self) -> None:
        if self.items:
            raise SuiteError(list(self.items))


@dataclass
class Context:
    """One import in progress: the file, its problems, its report and the ids seen so far."""

    path: Path
    problems: Problems
    report: ImportReport
    seen_ids: dict[str, int] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return str(self.path)

    def problem(self, line: int | None, message: str) -> None:
        self.problems.add(line, message)

    def item(self, line: int, **fields: Any) -> SuiteItem | None:
        """Validate one suite item built from the row at ``line``; a bad one is a problem."""
        data = {k: v for k, v in fields.items() if v is not None and v != {}}
        try:
            item = SuiteItem.model_validate(data)
        except ValidationError as exc:
            self.problem(line, _describe(exc))
            return None
        except (ValueError, TypeError, RecursionError) as exc:
            self.problem(line, f"invalid item ({type(exc).__name__})")
            return None
        first = self.seen_ids.get(item.id)
        if first is not None:
            self.problem(line, f"duplicate id {item.id!r} (first from line {first})")
            return None
        self.seen_ids[item.id] = line
        self.report.items += 1
        return item


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"] if not str(p).startswith("function-"))
        msg = str(err["msg"]).removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts)


def short(value: Any, limit: int = 60) -> str:
    """``repr`` of a value from the input, cut short: a problem line must stay one line."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def slug(text: str) -> str:
    """A fragment safe inside an item id: source ids like ``HumanEval/3`` become ``HumanEval-3``."""
    return _ID_UNSAFE.sub("-", text.strip()).strip("-")


# --------------------------------------------------------------------------- readers


def text_lines(ctx: Context) -> Iterator[tuple[int, str]]:
    """The file's lines, decoded one at a time, numbered from 1, line endings kept."""
    with ctx.path.open("rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            if lineno == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            try:
                yield lineno, raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                ctx.problem(lineno, f"not UTF-8 ({exc.reason} at byte {exc.start})")
                yield lineno, raw.decode("utf-8", errors="replace")


def jsonl_records(ctx: Context) -> Iterator[tuple[int, dict[str, Any]]]:
    """JSON objects, one a line; blank lines are skipped, anything else bad is a problem."""
    for line in read_lines(text for _lineno, text in text_lines(ctx)):
        if line.error is not None:
            ctx.problem(line.lineno, line.error if line.error != "nested too deeply" else "not valid JSON (RecursionError)")
            continue
        if not isinstance(line.value, dict):
            ctx.problem(line.lineno, f"expected a JSON object, got {type(line.value).__name__}")
            continue
        yield line.lineno, line.value


def csv_rows(ctx: Context) -> Iterator[tuple[int, list[str]]]:
    """CSV records with the line each *starts* on (quoted fields may span lines)."""
    lines = (text for _, text in text_lines(ctx))
    reader = csv.reader(lines)
    start = 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            ctx.problem(reader.line_num, f"unreadable CSV ({exc})")
            return
        if any(cell.strip() for cell in row):
            yield start, row
        start = reader.line_num + 1


def csv_dicts(
    ctx: Context, required: tuple[str, ...], optional: tuple[str, ...] = ()
) -> Iterator[tuple[int, dict[str, str]]]:
    """CSV records keyed by the header's (case-insensitive) column names.

    A row with fewer fields than the columns we need is a problem; extra columns are
    ignored so that a dataset growing a column does not break its importer.
    """
    rows = csv_rows(ctx)
    first = next(rows, None)
    if first is None:
        return
    line, header = first
    names = [h.strip().lower() for h in header]
    missing = [c for c in required if c not in names]
    if missing:
        ctx.problem(line, f"header lacks column(s) {', '.join(missing)} (expected {', '.join(required)})")
        return
    index = {c: names.index(c) for c in (*required, *optional) if c in names}
    need = max(index[c] for c in required) + 1
    for line, row in rows:
        if len(row) < need:
            ctx.problem(line, f"expected at least {need} fields, got {len(row)}")
            continue
        yield line, {c: (row[i] if i < len(row) else "") for c, i in index.items()}


def text_field(ctx: Context, line: int, row: dict[str, Any], name: str, *, required: bool = True) -> str | None:
    """A string field of a record, stripped; a missing/empty/non-string required one is a problem."""
    value = row.get(name)
    if isinstance(value, str) and value.strip():
        return value.strip()
    if required:
        if value is None:
            ctx.problem(line, f"field {name!r} is missing")
        elif not isinstance(value, str):
            ctx.problem(line, f"field {name!r} must be a string, got {type(value).__name__}")
        else:
            ctx.problem(line, f"field {name!r} is empty")
    return None
