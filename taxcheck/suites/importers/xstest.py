"""XSTest (Röttger et al. 2024): CSV ``id,prompt,type,label,focus,note`` into refusal pairs.

XSTest lists each contrast type's unsafe prompts in the same order as the safe prompts they
mirror, so the pairing is *by position within type*: the k-th ``homonyms`` row pairs with the
k-th ``contrast_homonyms`` row. Two safe types have no contrast twin (``privacy_public``,
``nons_group_real_discr``) and are imported unpaired; they still measure over-refusal.
The file is small (450 rows), so buffering rows until their twin arrives costs nothing.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from taxcheck.suites.importers._common import Context, csv_dicts, short, slug, text_field
from taxcheck.suites.format import SuiteItem

# contrast type -> the safe type it mirrors, where the names are not simply contrast_<safe>
CONTRAST_OF: dict[str, str] = {
    "contrast_privacy": "privacy_fictional",
    "contrast_discr": "real_group_nons_discr",
}
UNPAIRED_SAFE = frozenset({"privacy_public", "nons_group_real_discr"})
OPTIONS: dict[str, str] = {}


@dataclass(frozen=True)
class _Row:
    line: int
    id: str
    prompt: str
    type: str
    safe: bool
    meta: dict[str, Any]


def safe_type_of(contrast_type: str) -> str:
    """The safe type a ``contrast_*`` type mirrors."""
    return CONTRAST_OF.get(contrast_type, contrast_type.removeprefix("contrast_"))


def read(ctx: Context) -> Iterator[SuiteItem]:
    waiting_safe: dict[str, deque[_Row]] = defaultdict(deque)
    waiting_unsafe: dict[str, deque[_Row]] = defaultdict(deque)
    seen_safe: defaultdict[str, int] = defaultdict(int)
    seen_unsafe: defaultdict[str, int] = defaultdict(int)
    counts = {"pairs": 0, "safe": 0, "unsafe": 0}

    for row in _rows(ctx):
        if row.safe and row.type in UNPAIRED_SAFE:
            counts["safe"] += yield from _emit(ctx, row, pair=None)
            continue
        key = row.type if row.safe else safe_type_of(row.type)
        (seen_safe if row.safe else seen_unsafe)[key] += 1
        (waiting_safe if row.safe else waiting_unsafe)[key].append(row)
        if waiting_safe[key] and waiting_unsafe[key]:
            benign, harmful = waiting_safe[key].popleft(), waiting_unsafe[key].popleft()
            pair = f"xstest-{slug(key)}-{seen_safe[key] - len(waiting_safe[key])}"
            done = yield from _emit(ctx, benign, pair=pair)
            done += yield from _emit(ctx, harmful, pair=pair)
            counts["pairs"] += done == 2

    for key in sorted(set(waiting_safe) | set(waiting_unsafe)):
        left_safe, left_unsafe = waiting_safe[key], waiting_unsafe[key]
        if not left_safe and not left_unsafe:
            continue
        if seen_safe[key] and seen_unsafe[key]:
            # Both sides exist but in different numbers: position pairing is meaningless.
            first = (left_safe or left_unsafe)[0].line
            ctx.problem(
                first,
                f"type {key!r} has {seen_safe[key]} safe rows but {seen_unsafe[key]} contrast rows; "
                "XSTest pairs them by position, so the counts must match",
            )
            continue
        for row in (*left_safe, *left_unsafe):
            n = yield from _emit(ctx, row, pair=None)
            counts["safe" if row.safe else "unsafe"] += n
    ctx.report.notes.append(
        f"{counts['pairs']} pairs, {counts['safe']} unpaired safe items, {counts['unsafe']} unpaired unsafe items"
    )


def _emit(ctx: Context, row: _Row, pair: str | None) -> Iterator[SuiteItem]:
    """Yield the row's item; returns 1 if it was valid, else 0 (for the counts)."""
    item = ctx.item(
        row.line,
        id=f"xstest-{row.id}",
        category="over_refusal" if row.safe else "harmful_refusal",
        type=row.type,
        pair=pair,
        variant=None if pair is None else ("benign" if row.safe else "harmful"),
        prompt=row.prompt,
        expect="comply" if row.safe else "refuse",
        meta=row.meta,
    )
    if item is None:
        return 0
    yield item
    return 1


def _rows(ctx: Context) -> Iterator[_Row]:
    for line, rec in csv_dicts(ctx, ("id", "prompt", "type", "label"), ("focus", "note")):
        rid = slug(rec["id"])
        prompt = text_field(ctx, line, rec, "prompt")
        typ = rec["type"].strip()
        label = rec["label"].strip().lower()
        if not rid:
            ctx.problem(line, "field 'id' is empty")
            continue
        if prompt is None:
            continue
        if not typ:
            ctx.problem(line, "field 'type' is empty")
            continue
        if label not in ("safe", "unsafe"):
            ctx.problem(line, f"label must be safe or unsafe, got {short(rec['label'])}")
            continue
        if label == "safe" and typ.startswith("contrast_"):
            ctx.problem(line, f"a contrast type ({short(typ)}) must be labelled unsafe")
            continue
        if label == "unsafe" and not typ.startswith("contrast_"):
            ctx.problem(line, f"an unsafe row needs a contrast_ type, got {short(typ)}")
            continue
        meta = {k: rec[k].strip() for k in ("focus", "note") if rec.get(k, "").strip()}
        yield _Row(line, rid, prompt, typ, label == "safe", meta)
