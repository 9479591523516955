"""Prices per million tokens, so that usage can say what a run cost.

A model with no known price shows its cost as unknown (``None``), never as 0: a free
local model and a model we know nothing about must not look alike.
"""

from __future__ import annotations

import fnmatch
import json
from functools import lru_cache
from pathlib import Path

from taxcheck.suite import prompts_dir


@lru_cache(maxsize=1)
def _table() -> tuple[list[tuple[str, float, float]], str]:
    path = prompts_dir() / "prices.json"
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return [], ""
    rows = [(r["pattern"], float(r["input"]), float(r["output"])) for r in data.get("prices", [])]
    return rows, str(data.get("read_on", ""))


def price_for(spec: str) -> tuple[float, float] | None:
    """(input, output) USD per million tokens for a ``provider:model`` spec, first match wins."""
    rows, _ = _table()
    for pattern, inp, out in rows:
        if fnmatch.fnmatchcase(spec, pattern):
            return inp, out
    return None


def cost_usd(spec: str, input_tokens: int, output_tokens: int) -> float | None:
    price = price_for(spec)
    if price is None:
        return None
    return round((input_tokens * price[0] + output_tokens * price[1]) / 1_000_000, 6)
