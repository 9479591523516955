"""``taxcheck suites``: what the built-in suites hold and what a run of them costs in calls."""

from __future__ import annotations

import json
import random
from collections import Counter
from typing import TYPE_CHECKING

from taxcheck.console import stdout_console
from taxcheck.dimensions import DIMENSION_NAMES, fed_by
from taxcheck.paths import builtin_suite_names, prompts_dir

if TYPE_CHECKING:
    from taxcheck.suites.format import Suite


def calls_per_model(suite: Suite) -> int:
    return sum(item.n_turns for item in suite.items)


def builtin_summary(name: str) -> tuple[int, int, set[str]]:
    """(items, calls per model, dimensions fed) of a built-in suite, read without validation.

    The built-ins are validated by the test suite; listing them must stay instant, so this
    reads the JSON lines directly instead of building 900 pydantic models.
    """
    items = calls = 0
    cats: set[str] = set()
    paired = False
    with open(prompts_dir() / "suites" / f"{name}.jsonl", encoding="utf-8") as fh:
        for line in fh:
            if not line.strip() or line.lstrip().startswith("//"):
                continue
            row = json.loads(line)
            items += 1
            calls += 2 if row.get("turns") else 1
            cats.add(row["category"])
            paired |= row["category"] == "over_refusal" and row.get("pair") is not None
    return items, calls, fed_by(cats, paired)


def print_suite_list(models: int = 1) -> None:
    from taxcheck.console import printable_line
    from taxcheck.layout import Column, Grid, print_first_fit, whole, wrapping
    from taxcheck.layout import stacked as stacked_grid

    cols = [Column("suite"), Column("items", "right"), Column("calls per model", "right"),
            Column(f"calls for {models} model(s)", "right"), Column("dimensions fed", "right")]
    grid = Grid(cols, title=f"built-in suites ({printable_line(prompts_dir() / 'suites')})")
    for name in builtin_suite_names():
        n_items, calls, fed = builtin_summary(name)
        grid.add(wrapping(printable_line(name)), whole(str(n_items)), whole(str(calls)), whole(str(calls * models)), whole(f"{len(fed)}/{len(DIMENSION_NAMES)}"))
    print_first_fit(stdout_console(width=160), [grid, stacked_grid(grid)])


def print_suite_detail(suite: Suite, examples: int = 3, after=None) -> None:
    """Counts per category and type, then ``after(console)`` (the caller's lines: the
    detectable taxes), then a few sample items."""
    from taxcheck.console import outside_text
    from taxcheck.layout import Column, Grid, print_first_fit, whole, wrapping

    console = stdout_console(width=160)
    console.print(outside_text(f"{suite.name}: {len(suite.items)} items, {calls_per_model(suite)} calls per model, sha256 {suite.sha256[:12]}"))
    by_cat = Counter(i.category for i in suite.items)
    by_type = Counter((i.category, i.type or "-") for i in suite.items)
    grid = Grid([Column("category"), Column("type"), Column("items", "right")])
    for cat, n in sorted(by_cat.items()):
        grid.add(wrapping(outside_text(cat, "bold")), wrapping("(all)"), whole(str(n)))
        for (c, typ), m in sorted(by_type.items()):
            if c == cat and typ != "-":
                grid.add(wrapping(""), wrapping(outside_text(typ)), whole(str(m)))
    print_first_fit(console, [grid])
    if after is not None:
        after(console)
    rng = random.Random(0)
    for item in rng.sample(list(suite.items), min(examples, len(suite.items))):
        text = item.text_of_prompt().replace("\n", " ")
        line = outside_text(item.id, "dim")
        line.append_text(outside_text(f" ({item.category}, expect {item.expect}): {text[:160]}{'…' if len(text) > 160 else ''}"))
        console.print(line)
