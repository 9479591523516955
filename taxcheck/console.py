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


def stdout_console(file: IO[str] | None = None, width: int = 200, color: bool = True) -> Console:
    out = file or sys.stdout
    tty = out.isatty() if hasattr(out, "isatty") else False
    return Console(file=out, width=None if tty else width, emoji=False, highlight=False, no_color=not color or None)


def stderr_console() -> Console:
    return Console(stderr=True, emoji=False, highlight=False)


def say(console: Console, label: str, style: str, message: str) -> None:
    """``label: message`` with the label styled and the message printed verbatim."""
    line = Text(f"{label}: ", style=style)
    line.append(message)
    console.print(line, soft_wrap=True)
