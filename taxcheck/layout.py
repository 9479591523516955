"""Tables that fit the console: column widths chosen by measuring, numbers never cut.

Rich shrinks a table that is too wide by cutting cells with an ellipsis, whatever they
hold: at 80 columns the tax table printed ``0.…`` for a score and ``+40.0 [+20…`` for a tax.
Here a table is first described as a ``Grid`` (columns, and cells that are either *whole*:
a number or an interval that must stay on one line, or *wrapping*: a name or a sentence
that may fold), then given explicit widths: every column at least as wide as its widest
whole cell, names and headers folded only as far as needed to fit. A grid that cannot fit
that way is not printed at all; callers offer layouts from the widest to the narrowest and
the first that fits wins (``print_first_fit``). When none fits, the last one is printed as
plain lines that the terminal wraps, which cuts nothing either.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from rich import box as rich_box
from rich.box import Box
from rich.cells import cell_len
from rich.console import Console, Group
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

FOLD_FLOOR = 10  # the narrowest a column of names or sentences is folded to


@dataclass(frozen=True)
class Cell:
    """One table cell: ``whole`` cells (numbers) are never wrapped, the others may fold."""

    text: Text
    whole: bool = True


def whole(text: str | Text = "", style: str = "") -> Cell:
    """A cell printed on one line at full width: a score, an interval, a count."""
    return Cell(text if isinstance(text, Text) else Text(text, style=style), True)


def wrapping(text: str | Text = "", style: str = "") -> Cell:
    """A cell that may wrap at spaces or fold: a model name, a reason, a header row."""
    return Cell(text if isinstance(text, Text) else Text(text, style=style), False)


EMPTY = whole("")


@dataclass
class Column:
    header: str | Text = ""
    justify: Literal["left", "right"] = "left"
    floor: int = FOLD_FLOOR  # how narrow wrapping cells and the header may be folded


@dataclass
class Grid:
    """A table before its widths are chosen.

    A row is a list of cells, or a ``Text`` *span*: a line across the whole width (a
    dimension's heading in the compact layouts), printed between table segments that share
    the same column widths, so the columns still line up. ``after`` lines print under it.
    """

    columns: list[Column]
    rows: list[list[Cell] | Text] = field(default_factory=list)
    title: str | Text | None = None  # outside text in it must be escaped (console.printable_line)
    box: Box | None = rich_box.HEAVY_HEAD
    show_header: bool = True
    after: list[Text] = field(default_factory=list)

    def add(self, *cells: Cell) -> None:
        self.rows.append([*cells, *([EMPTY] * (len(self.columns) - len(cells)))])

    def span(self, text: Text) -> None:
        self.rows.append(text)

    def cell_rows(self) -> list[list[Cell]]:
        return [r for r in self.rows if not isinstance(r, Text)]


def text_width(text: Text | str) -> int:
    """Terminal cells taken by the widest line of ``text`` (wide characters count twice)."""
    plain = text.plain if isinstance(text, Text) else text
    return max((cell_len(line) for line in plain.split("\n")), default=0)


def _ranges(grid: Grid) -> list[tuple[int, int]]:
    """(floor, natural) width of every column's content, padding and borders excluded."""
    out = []
    for j, col in enumerate(grid.columns):
        whole_w = wrap_w = 0
        for row in grid.cell_rows():
            cell = row[j]
            w = text_width(cell.text)
            if cell.whole:
                whole_w = max(whole_w, w)
            else:
                wrap_w = max(wrap_w, w)
        head_w = text_width(col.header) if grid.show_header else 0
        natural = max(whole_w, wrap_w, head_w, 1)
        floor = max(whole_w, min(wrap_w, col.floor), min(head_w, col.floor), 1)
        out.append((floor, natural))
    return out


def _table(grid: Grid, widths: list[int], rows: list[list[Cell]], header: bool) -> Table:
    t = Table(box=grid.box, show_header=header, header_style="bold", pad_edge=grid.box is not None, padding=(0, 1))
    for col, w in zip(grid.columns, widths):
        head = col.header if isinstance(col.header, Text) else Text(col.header)
        t.add_column(head, justify=col.justify, width=w, overflow="fold")
    for row in rows:
        t.add_row(*(c.text for c in row))
    return t


def _title(grid: Grid) -> Text | None:
    if not grid.title:
        return None
    return grid.title if isinstance(grid.title, Text) else Text(grid.title, style="bold")


def _overhead(grid: Grid) -> int:
    """Borders and padding: the measured width of the table minus its columns' content."""
    probe = _table(grid, [1] * len(grid.columns), [], grid.show_header)
    console = Console(file=io.StringIO(), width=10_000)
    return Measurement.get(console, console.options, probe).maximum - len(grid.columns)


def _render(grid: Grid, widths: list[int]) -> Group:
    """Title, then table segments at ``widths`` between the span lines."""
    parts: list[Table | Text] = []
    title = _title(grid)
    if title is not None:
        parts.append(title)
    header = grid.show_header
    pending: list[list[Cell]] = []

    def flush() -> None:
        nonlocal header
        if pending or header:
            parts.append(_table(grid, widths, pending, header))
            pending.clear()
            header = False

    for row in grid.rows:
        if isinstance(row, Text):
            flush()
            parts.append(row)
        else:
            pending.append(row)
    flush()
    return Group(*parts)


def fit(grid: Grid, width: int) -> Group | None:
    """The grid rendered no wider than ``width`` with every whole cell whole, or None.

    Columns start at their natural width; while the table is too wide, the widest column
    that can still fold gives up one cell. Whole cells never shrink, so a grid whose whole
    cells alone are too wide does not fit.
    """
    ranges = _ranges(grid)
    widths = [natural for _floor, natural in ranges]
    excess = sum(widths) + _overhead(grid) - width
    while excess > 0:
        foldable = [j for j, (floor, _n) in enumerate(ranges) if widths[j] > floor]
        if not foldable:
            return None
        j = max(foldable, key=lambda i: widths[i])
        widths[j] -= 1
        excess -= 1
    return _render(grid, widths)


def print_first_fit(console: Console, grids: Sequence[Grid]) -> Grid:
    """Print the first grid that fits the console's width; return the one printed."""
    width = console.options.max_width
    for grid in grids:
        table = fit(grid, width)
        if table is not None:
            console.print(table)
            for line in grid.after:
                console.print(line)
            return grid
    grid = grids[-1]
    print_plain(console, grid)
    return grid


def print_plain(console: Console, grid: Grid) -> None:
    """Every row as one line of its cells; the terminal wraps long lines, nothing is cut."""
    title = _title(grid)
    if title is not None:
        console.print(title, soft_wrap=True)
    if grid.show_header:
        heads = [c.header if isinstance(c.header, Text) else Text(c.header) for c in grid.columns]
        console.print(Text("  ", style="bold").join(h for h in heads if h.plain), soft_wrap=True)
    for row in grid.rows:
        line = row if isinstance(row, Text) else Text("  ").join(c.text for c in row if c.text.plain)
        console.print(line, soft_wrap=True)
    for line in grid.after:
        console.print(line, soft_wrap=True)


def stacked(grid: Grid) -> Grid:
    """The narrow form of any grid: a heading per row (its first cell), then a line per other
    column, ``header  value``; for tables with no hand-made compact layout."""
    out = Grid([Column("", floor=8), Column("", "right")], title=grid.title, box=None, show_header=False, after=grid.after)
    for row in grid.rows:
        if isinstance(row, Text):
            out.span(row)
            continue
        head = row[0].text.copy()
        head.stylize("bold")
        out.span(head)
        for col, cell in zip(grid.columns[1:], row[1:]):
            label = col.header.copy() if isinstance(col.header, Text) else Text(col.header)
            label.stylize("dim")
            out.add(wrapping(Text("  ") + label), cell)
    return out
