"""OR-Bench (Cui et al. 2024): CSV ``prompt,category`` into unpaired refusal items.

OR-Bench ships three files with the same columns: ``or-bench-80k`` and ``or-bench-hard-1k``
(seemingly toxic but benign prompts: a model should comply) and ``or-bench-toxic`` (really
harmful: a model should refuse). Only the file name tells them apart, so the name decides
unless the user says ``expect=comply|refuse``; a name that tells nothing is an error rather
than a guess, because guessing wrong would invert the whole dimension.

The 80k file is the largest any importer reads, so this one is a plain generator: one row
in memory at a time.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from taxcheck.errors import UserError
from taxcheck.suites.importers._common import Context, csv_dicts, slug, text_field
from taxcheck.suites.format import SuiteItem

OPTIONS = {"expect": "comply or refuse; needed when the file name has none of 80k, hard-1k, toxic"}
_EXPECTS = ("comply", "refuse")


def tag_of(path: Path) -> str | None:
    """Which OR-Bench file this is, from its name: ``80k``, ``hard-1k``, ``toxic`` or None."""
    name = path.name.lower().replace("_", "-")
    if "toxic" in name:
        return "toxic"
    if "hard-1k" in name:
        return "hard-1k"
    if "80k" in name:
        return "80k"
    return None


def prepare(path: Path, options: dict[str, Any]) -> dict[str, Any]:
    """Resolve ``expect`` before reading a row, so a missing choice fails at once."""
    expect = options.get("expect")
    if expect is not None:
        expect = str(expect).strip().lower()
        if expect not in _EXPECTS:
            raise UserError(f"orbench: expect must be comply or refuse, not {options['expect']!r}")
        return {"expect": expect}
    tag = tag_of(path)
    if tag is None:
        raise UserError(
            f"{path}: cannot tell from the file name whether these OR-Bench prompts are benign "
            "(or-bench-80k, or-bench-hard-1k) or toxic (or-bench-toxic); "
            "say which with `taxcheck import orbench FILE --expect comply` (or `--expect refuse`), "
            "or keep OR-Bench's file name"
        )
    return {"expect": "refuse" if tag == "toxic" else "comply"}


def read(ctx: Context, expect: str) -> Iterator[SuiteItem]:
    tag = tag_of(ctx.path) or slug(ctx.path.stem.lower()) or "file"
    benign = expect == "comply"
    for n, (line, rec) in enumerate(csv_dicts(ctx, ("prompt",), ("category",)), start=1):
        prompt = text_field(ctx, line, rec, "prompt")
        if prompt is None:
            continue
        item = ctx.item(
            line,
            id=f"orbench-{tag}-{n}",
            category="over_refusal" if benign else "harmful_refusal",
            type=rec.get("category", "").strip() or None,
            prompt=prompt,
            expect=expect,
        )
        if item is not None:
            yield item
