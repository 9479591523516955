"""The consoles taxcheck prints to: one place that decides width, color and escaping.

Emoji codes and markup are off (``openai:B:`` must not become a picture, ``[link=...]`` in
a model id must not become a hyperlink) and outside text is printed as escaped ``Text``
(``outside_text``), never parsed as markup, because prompts, responses and model names are
data; the renderers pass ``Text`` even to a console with markup on. Off a terminal the
width is fixed and generous so tables do not wrap in logs; on one it is the terminal's, and
the renderers choose a layout that fits it (``layout.py``). Rich itself honours ``NO_COLOR``
and drops color codes when output is not a terminal.
"""

from __future__ import annotations

import sys
from typing import IO

from rich.console import Console
from rich.text import Text

# C0 controls but newline and tab, DEL, and C1 controls (0x80-0x9f: CSI, OSC, ... as
# single bytes). ESC is in C0, so every escape sequence loses its introducer.
_CONTROL = {c: f"\\x{c:02x}" for c in (*range(0x00, 0x09), *range(0x0b, 0x20), 0x7f, *range(0x80, 0xa0))}
# Line and paragraph separators (some terminals break lines on them) and the bidi embedding,
# override and isolate controls, which make a terminal that implements bidi show text in
# another order than it was written ("Trojan Source").
_CONTROL.update({c: f"\\u{c:04x}" for c in (0x2028, 0x2029, *range(0x202A, 0x202F), *range(0x2066, 0x206A))})
# One-line places (table cells, footer lines) also show newline and tab as escapes, so that
# a model id holding "\ngate ok" cannot print a line of its own.
_LINE = {**_CONTROL, 0x0A: "\\n", 0x09: "\\t"}


def printable(text: object) -> str:
    """``text`` with every control character shown as a visible escape (``\\x1b``).

    For any string that did not come from taxcheck itself (responses, prompts, model ids,
    server messages, file names) before it reaches a terminal: an OSC 52 sequence would
    write the user's clipboard, a cursor-up plus erase-line would let a response overwrite
    the verdict line. Newlines and tabs are kept; callers that need one line fold them.
    """
    return str(text).translate(_CONTROL)


def printable_line(text: object) -> str:
    """``printable`` for a place that holds one line: newlines and tabs shown as ``\\n``, ``\\t``."""
    return str(text).translate(_LINE)


def outside_text(text: object, style: str = "", *, one_line: bool = True) -> Text:
    """Text that did not come from taxcheck, ready for a rich console.

    Escaped by ``printable_line`` (or ``printable`` when ``one_line`` is False) and wrapped in
    ``Text``, so that it is never parsed as rich markup: ``openai:x[/y]`` would raise a
    MarkupError after every request was paid for, and ``[link=...]`` would print a live
    hyperlink.
    """
    return Text(printable_line(text) if one_line else printable(text), style=style)


def stdout_console(file: IO[str] | None = None, width: int = 200, color: bool = True) -> Console:
    out = file or sys.stdout
    tty = out.isatty() if hasattr(out, "isatty") else False
    return Console(file=out, width=None if tty else width, emoji=False, highlight=False, markup=False, no_color=not color or None)


def stderr_console() -> Console:
    return Console(stderr=True, emoji=False, highlight=False, markup=False)


def say(console: Console, label: str, style: str, message: str) -> None:
    """``label: message`` on one line: the label styled, the message escaped (it may carry outside text)."""
    line = Text(f"{label}: ", style=style)
    line.append(printable_line(message))
    # folded at the terminal's width on a terminal; one line in a log, so grep finds it whole
    console.print(line, soft_wrap=not console.is_terminal)
