"""The consoles taxcheck prints to: one place that decides width, color and escaping.

Emoji codes are off (``openai:B:`` must not become a picture) and user-supplied text is
printed as ``Text``, never parsed as markup, because prompts, responses and model names
are data. Off a terminal the width is fixed and generous so tables do not wrap in logs;
rich itself honours ``NO_COLOR`` and drops color codes when output is not a terminal.
"""

from __future__ import annotations

import sys
from typing import IO

from rich.console import Console
from rich.text import Text

# C0 controls but newline and tab, DEL, and C1 controls (0x80-0x9f: CSI, OSC, ... as
# single bytes). ESC is in C0, so every escape sequence loses its introducer.
_CONTROL = {c: f"\\x{c:02x}" for c in (*range(0x00, 0x09), *range(0x0b, 0x20), 0x7f, *range(0x80, 0xa0))}
_CONTROL.update({0x2028: "\\u2028", 0x2029: "\\u2029"})


def printable(text: object) -> str:
    """``text`` with every control character shown as a visible escape (``\\x1b``).

    For any string that did not come from taxcheck itself (responses, prompts, model ids,
    server messages, file names) before it reaches a terminal: an OSC 52 sequence would
    write the user's clipboard, a cursor-up plus erase-line would let a response overwrite
    the verdict line. Newlines and tabs are kept; callers that need one line fold them.
    """
    return str(text).translate(_CONTROL)


def stdout_console(file: IO[str] | None = None, width: int = 200, color: bool = True) -> Console:
    out = file or sys.stdout
    tty = out.isatty() if hasattr(out, "isatty") else False
    return Console(file=out, width=None if tty else width, emoji=False, highlight=False, no_color=not color or None)


def stderr_console() -> Console:
    return Console(stderr=True, emoji=False, highlight=False)


def say(console: Console, label: str, style: str, message: str) -> None:
    """``label: message`` with the label styled and the message printed verbatim."""
    line = Text(f"{label}: ", style=style)
    line.append(printable(message))
    console.print(line, soft_wrap=True)
