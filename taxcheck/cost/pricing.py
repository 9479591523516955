"""Prices per million tokens, so that usage can say what a run cost.

A model with no known price shows its cost as unknown (``None``), never as 0: a free
local model and a model we know nothing about must not look alike.

The built-in table is ``prompts/prices.json``. A user's own prices (``--prices FILE`` in
the same format, or ``[prices."PATTERN"]`` tables in ``taxcheck.toml``) are consulted
first and are recorded in the run file's header, so that ``report`` prices a run the way
``run`` did.
"""

from __future__ import annotations

import fnmatch
import json
import tomllib
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from taxcheck.errors import UserError
from taxcheck.paths import prompts_dir

PriceRow = tuple[str, float, float]  # pattern, USD per million input tokens, per million output tokens


def _rows(data: Any, where: str) -> list[PriceRow]:
    rows = data.get("prices") if isinstance(data, dict) else None
    if not isinstance(rows, list):
        raise UserError(f"{where}: expected {{\"prices\": [{{\"pattern\": \"openai:gpt-5.4*\", \"input\": 2.5, \"output\": 15}}]}}")
    out: list[PriceRow] = []
    for i, r in enumerate(rows, start=1):
        try:
            pattern, inp, outp = r["pattern"], float(r["input"]), float(r["output"])
        except (KeyError, TypeError, ValueError):
            raise UserError(f"{where}: price {i} needs pattern, input and output (USD per million tokens)") from None
        if not isinstance(pattern, str) or inp < 0 or outp < 0:
            raise UserError(f"{where}: price {i} has a bad pattern or a negative price")
        out.append((pattern, inp, outp))
    return out


@lru_cache(maxsize=1)
def builtin_table() -> tuple[tuple[PriceRow, ...], str, float]:
    """(rows, the date the prices were read, batch discount factor)."""
    try:
        data = json.loads((prompts_dir() / "prices.json").read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return (), "", 1.0
    return tuple(_rows(data, "prices.json")), str(data.get("read_on", "")), float(data.get("batch_discount", 1.0))


def load_price_file(path: Path) -> list[PriceRow]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"--prices {path}: no such file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"--prices {path}: not valid JSON ({exc})") from None
    return _rows(data, str(path))


def config_prices(path: Path | None) -> list[PriceRow]:
    """``[prices."PATTERN"] input = … output = …`` tables of taxcheck.toml."""
    p = path or Path("taxcheck.toml")
    if not p.exists():
        return []
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError):
        return []  # specs.Registry reports a broken config with its own message
    table = data.get("prices", {})
    if not isinstance(table, dict):
        raise UserError(f"{p}: [prices.\"PATTERN\"] tables need input and output")
    return _rows({"prices": [{"pattern": k, **v} if isinstance(v, dict) else {} for k, v in table.items()]}, f"{p} [prices]")


def price_for(spec: str, overrides: Sequence[Sequence[Any]] = ()) -> tuple[float, float] | None:
    """(input, output) USD per million tokens for a ``provider:model`` spec; first match wins."""
    for pattern, inp, out in list(overrides) + list(builtin_table()[0]):
        if fnmatch.fnmatchcase(spec, pattern):
            return float(inp), float(out)
    return None


def cost_usd(spec: str, input_tokens: int, output_tokens: int, overrides: Sequence[Sequence[Any]] = (), batch: bool = False) -> float | None:
    price = price_for(spec, overrides)
    if price is None:
        return None
    factor = builtin_table()[2] if batch else 1.0
    return round((input_tokens * price[0] + output_tokens * price[1]) * factor / 1_000_000, 6)
