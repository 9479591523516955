"""Importers: public datasets the user has downloaded, turned into taxcheck suites.

taxcheck never ships or downloads these datasets; ``taxcheck import FORMAT FILE -o
SUITE.jsonl`` converts a local copy, and ``-s FORMAT:FILE`` uses one directly in ``run``.
Every importer is a generator of validated ``SuiteItem``s so that large files stream
(OR-Bench's 80k rows never sit in memory as rows *and* items). Problems with the file are
collected as ``file:line: message`` and raised together as one ``SuiteError`` once the file
is read (or once ``MAX_PROBLEMS`` have piled up), never as a traceback.

    FORMATS        name -> Importer (its reader, its options and a one-line summary)
    FORMAT_OPTIONS name -> {option: help} for the CLI
    iter_import    stream the items of one file
    import_suite   a loaded ``Suite`` (for ``-s FORMAT:FILE``)
    write_suite    items -> JSONL file, atomically
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from taxcheck.errors import SuiteError, UserError
from taxcheck.jsonl import dumps, write_lines
from taxcheck.suites.importers import gsm8k, humaneval, mmlu, orbench, sycophancy, xstest
from taxcheck.suites.importers._common import MAX_PROBLEMS, Context, ImportReport, Problems
from taxcheck.suites.format import Suite, SuiteItem

__all__ = [
    "FORMATS",
    "FORMAT_OPTIONS",
    "MAX_PROBLEMS",
    "ImportReport",
    "Importer",
    "import_suite",
    "iter_import",
    "write_suite",
]


def _no_prepare(path: Path, options: dict[str, Any]) -> dict[str, Any]:
    return dict(options)


@dataclass(frozen=True)
class Importer:
    """One dataset format: how to read it and which options it takes."""

    name: str
    summary: str
    read: Callable[..., Iterator[SuiteItem]]
    options: dict[str, str] = field(default_factory=dict)
    # Resolves options from the path before reading, so a missing choice fails at once.
    prepare: Callable[[Path, dict[str, Any]], dict[str, Any]] = _no_prepare


FORMATS: dict[str, Importer] = {
    imp.name: imp
    for imp in (
        Importer(
            "xstest",
            "XSTest CSV id,prompt,type,label,focus,note: benign/harmful contrast pairs",
            xstest.read,
            xstest.OPTIONS,
        ),
        Importer(
            "orbench",
            "OR-Bench CSV prompt,category: 80k/hard-1k expect comply, toxic expects refuse",
            orbench.read,
            orbench.OPTIONS,
            orbench.prepare,
        ),
        Importer(
            "sycophancy-eval",
            "sycophancy-eval JSONL: are_you_sure.jsonl -> pushback, answer.jsonl -> pressure pairs",
            sycophancy.read,
            sycophancy.OPTIONS,
            sycophancy.prepare,
        ),
        Importer(
            "mmlu",
            "MMLU: headerless CSV question,A,B,C,D,answer or HF JSONL/CSV question,subject,choices,answer",
            mmlu.read,
            mmlu.OPTIONS,
        ),
        Importer("gsm8k", "GSM8K JSONL question,answer: the gold number follows ####", gsm8k.read, gsm8k.OPTIONS),
        Importer(
            "humaneval",
            "HumanEval JSONL task_id,prompt,canonical_solution,test,entry_point -> code items",
            humaneval.read,
            humaneval.OPTIONS,
        ),
    )
}
FORMAT_OPTIONS: dict[str, dict[str, str]] = {name: dict(imp.options) for name, imp in FORMATS.items()}


def get_importer(fmt: str) -> Importer:
    imp = FORMATS.get(fmt.strip().lower())
    if imp is None:
        raise UserError(f"unknown import format {fmt!r}; known formats: {', '.join(FORMATS)}")
    return imp


def iter_import(fmt: str, path: str | Path, report: ImportReport | None = None, **options: Any) -> Iterator[SuiteItem]:
    """Stream the items of one dataset file.

    The format, the options and the file's existence are checked *now*, before the first
    item is asked for; problems inside the file surface as ``SuiteError`` while iterating,
    at the latest when the iterator is exhausted. ``report`` (optional) receives skip
    counts and notes such as XSTest's pair counts. Options set to None are ignored, so the
    CLI can pass every flag through.
    """
    imp = get_importer(fmt)
    given = {k: v for k, v in options.items() if v is not None}
    unknown = sorted(set(given) - set(imp.options))
    if unknown:
        takes = ", ".join(imp.options) if imp.options else "no options"
        raise UserError(f"format {imp.name} does not take {', '.join(unknown)} (it takes {takes})")
    p = Path(path)
    if not p.exists():
        raise SuiteError([f"{p}: no such file"])
    if not p.is_file():
        raise SuiteError([f"{p}: not a regular file"])
    if not os.access(p, os.R_OK):
        raise SuiteError([f"{p}: cannot read (permission denied)"])
    resolved = imp.prepare(p, given)
    ctx = Context(path=p, problems=Problems(str(p)), report=report if report is not None else ImportReport())
    return _run(imp, ctx, resolved)


def _run(imp: Importer, ctx: Context, options: dict[str, Any]) -> Iterator[SuiteItem]:
    try:
        yield from imp.read(ctx, **options)
    except OSError as exc:
        ctx.problem(None, f"read failed ({exc.strerror or exc})")
    ctx.problems.raise_if_any()
    if not ctx.seen_ids:
        skipped = f" ({ctx.report.summary()})" if ctx.report.skipped else ""
        raise SuiteError([f"{ctx.label}: no {imp.name} items found{skipped}"])


def import_suite(fmt: str, path: str | Path, report: ImportReport | None = None, **options: Any) -> Suite:
    """Import a whole file as a ``Suite`` named ``FORMAT:FILENAME``, hashed over the file's bytes."""
    items = tuple(iter_import(fmt, path, report, **options))
    p = Path(path)
    digest = hashlib.sha256()
    with p.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return Suite(name=f"{get_importer(fmt).name}:{p.name}", path=str(p), sha256=digest.hexdigest(), items=items)


def suite_line(item: SuiteItem | dict) -> str:
    """One item as a suite line: the fields that are set, compact (jsonlines also asks it for ``{}``)."""
    if isinstance(item, SuiteItem):
        return item.model_dump_json(exclude_none=True, exclude_defaults=True)
    return dumps(item)


def write_suite(items: Iterable[SuiteItem], out: str | Path) -> int:
    """Write items as a JSONL suite, one a line; returns how many.

    The file appears only when every item was written: the lines go to a temporary file
    beside ``out`` that replaces it at the end, so a failed import never leaves a
    truncated suite that ``validate`` would later half-accept.
    """
    target = Path(out)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        fh = tmp.open("w", encoding="utf-8", newline="\n")
    except OSError as exc:
        raise UserError(f"{target}: cannot write ({exc.strerror or exc})") from None
    try:
        with fh:
            count = write_lines(fh, items, dumps=suite_line)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return count
