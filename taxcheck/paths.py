"""Where the shipped prompts live. Free of heavy imports: start-up paths use it."""

from __future__ import annotations

from pathlib import Path


def prompts_dir() -> Path:
    """Where the shipped prompts live: inside the installed package, else the checkout."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "prompts", here.parent / "prompts"):
        if (candidate / "suites").is_dir():
            return candidate
    raise FileNotFoundError("taxcheck's prompts/ folder is missing from this installation")


def builtin_suite_names() -> list[str]:
    try:
        return sorted(p.stem for p in (prompts_dir() / "suites").glob("*.jsonl"))
    except FileNotFoundError:
        return []
