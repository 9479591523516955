"""``taxcheck suites``: what the built-in suites hold and what a run of them costs in calls."""

from __future__ import annotations

import random
from collections import Counter

from taxcheck.console import stdout_console
from taxcheck.suite import Suite, builtin_suite_names, prompts_dir, resolve_suite


def calls_per_model(suite: Suite) -> int:
    return sum(item.n_turns for item in suite.items)


def print_suite_list(models: int = 1) -> None:
    from rich.table import Table

    from taxcheck.aggregate import DIMENSION_NAMES, fed_dimensions

    t = Table(title=f"built-in suites ({prompts_dir() / 'suites'})", title_justify="left")
    for col in ("suite", "items", "calls per model", f"calls for {models} model(s)", "dimensions fed"):
        t.add_column(col, justify="left" if col in ("suite", "dimensions fed") else "right")
    for name in builtin_suite_names():
        suite = resolve_suite(name)
        calls = calls_per_model(suite)
        fed = fed_dimensions(list(suite.items))
        t.add_row(name, str(len(suite.items)), str(calls), str(calls * models), f"{len(fed)}/{len(DIMENSION_NAMES)}")
    stdout_console(width=160).print(t)


def print_suite_detail(name: str, examples: int = 3) -> None:
    from rich.table import Table
    from rich.text import Text

    suite = resolve_suite(name)
    console = stdout_console(width=160)
    console.print(Text(f"{suite.name}: {len(suite.items)} items, {calls_per_model(suite)} calls per model, sha256 {suite.sha256[:12]}"))
    by_cat = Counter(i.category for i in suite.items)
    by_type = Counter((i.category, i.type or "-") for i in suite.items)
    t = Table(title_justify="left")
    t.add_column("category")
    t.add_column("type")
    t.add_column("items", justify="right")
    for cat, n in sorted(by_cat.items()):
        t.add_row(Text(cat, style="bold"), "(all)", str(n))
        for (c, typ), m in sorted(by_type.items()):
            if c == cat and typ != "-":
                t.add_row("", Text(typ), str(m))
    console.print(t)
    rng = random.Random(0)
    for item in rng.sample(list(suite.items), min(examples, len(suite.items))):
        text = item.text_of_prompt().replace("\n", " ")
        line = Text(item.id, style="dim")
        line.append(f" ({item.category}, expect {item.expect}): {text[:160]}{'…' if len(text) > 160 else ''}")
        console.print(line)
