"""Text for the HTML report: escaping, and the few phrasings every part of the page shares.

Everything a model, a server or a user wrote is untrusted (a response may well be
``<script>``, a model id may hold a bidi override that reorders the verdict beside it), so
every string that reaches the page goes through :func:`esc`: control characters and bidi
controls become visible escapes (``console.printable``, the same rule as on a terminal), then
HTML metacharacters become entities. Kept apart from the page so that the summary, charts
and examples modules escape with the one function the page uses (``report.html_text.esc``).
"""

from __future__ import annotations

import html
from typing import Any

from taxcheck.console import printable

# A fixed palette so that a model keeps its colour across every chart and key of the page.
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")


def esc(text: Any) -> str:
    """Escape for element text and quoted attribute values alike; controls shown, not obeyed."""
    return html.escape(printable("" if text is None else text), quote=True)


def colour_of(models: list[str], model: str) -> str:
    return PALETTE[models.index(model) % len(PALETTE)]


def swatch(models: list[str], model: str) -> str:
    """A small square in the model's chart colour (decorative: the name always follows)."""
    return f'<span class="swatch" style="background:{colour_of(models, model)}" aria-hidden="true"></span>'


def model_html(model: str, baseline: str | None, code: bool = True) -> str:
    """A model id as page text, isolated from the text around it (``<bdi>``), breakable when it
    is longer than its box, with its baseline tag; ``code=False`` in table headers."""
    tag = ' <span class="tag base">baseline</span>' if model == baseline else ""
    name = f"<code>{esc(model)}</code>" if code else esc(model)
    return f'<bdi class="id">{name}</bdi>{tag}'


def pct(value: float) -> str:
    return f"{value * 100:.1f}%"


def wbr_name(name: str) -> str:
    """A dimension or type name that may wrap after ``.`` and ``_`` (``capability.<wbr>knowledge``)."""
    out = esc(name)
    for ch in (".", "_"):
        out = out.replace(ch, ch + "<wbr>")
    return out
