"""The progress line of a run (stderr, terminals only): calls done of total, rate, money, ETA."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from taxcheck.cost.pricing import cost_usd
from taxcheck.runfile import CallRecord


class RunProgress:
    """A rich progress bar fed one finished call at a time; a no-op off a terminal."""

    def __init__(self, console, total: int, done: int, prices: Sequence[Sequence[Any]] = ()):
        self.prices = prices
        self.usd = 0.0
        self.unpriced = False
        self._bar = None
        if not console.is_terminal or total <= done:
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
        from rich.text import Text

        class Rate(ProgressColumn):
            def render(self, task) -> Text:
                return Text(f"{task.speed:5.1f} calls/s" if task.speed else "    – calls/s", style="cyan")

        self._bar = Progress(
            TextColumn("[bold]calls"), BarColumn(), MofNCompleteColumn(), Rate(), TextColumn("{task.fields[money]}"),
            TimeElapsedColumn(), TextColumn("left"), TimeRemainingColumn(), console=console, transient=True,
        )
        self._task = self._bar.add_task("calls", total=total, completed=done, money="$0.0000")

    def __enter__(self) -> "RunProgress":
        if self._bar is not None:
            self._bar.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.stop()

    def on_call(self, rec: CallRecord) -> None:
        if self._bar is None:
            return
        if rec.ok and not rec.cached:
            c = cost_usd(rec.model, rec.input_tokens or 0, rec.output_tokens or 0, self.prices, batch=rec.batch)
            if c is None:
                self.unpriced = True
            else:
                self.usd += c
        money = f"${self.usd:.4f}" + (" + unpriced" if self.unpriced else "")
        self._bar.update(self._task, advance=1, money=money)
