"""The report's charts: the refusal trade-off plot and one small chart per dimension, as inline SVG.

Why the rules below: a chart forwarded to someone who did not run the evaluation must not
mislead by accident, and the last review found every way it did (issue 14 §2):

* no text covers a point or another text. The trade-off plot's labels are placed by
  measuring: each candidate position is laid out with matplotlib's own renderer (the same
  DejaVu Sans the SVG asks the browser for) and kept only if its box is inside the axes and
  clear of every marker, the ideal star and every label placed before it; a label that finds
  no free place is left out of the plot and named in the caption instead. Tick names that
  would touch become numbers with a key in the page.
* no empty panel. A dimension without a value for any model gets no chart: the page says
  "no data: <reason>" in its text. A model without a value in a chart is named in the
  chart's caption with the reason (``report.table.empty_reasons``), never a cut-off word on an axis.
* room above the bars: value labels sit over the whisker and the axis runs to 120 %, so a
  "100%" label never meets the frame.

matplotlib is an optional extra (``pip install 'taxcheck[report]'``), imported lazily and used
through ``matplotlib.figure.Figure`` and the Agg canvas only, never ``pyplot``: no GUI backend
is selected and no global figure state is touched. Model ids reach the SVG only through
``console.printable_line`` (matplotlib escapes XML itself); prompts and responses never do.
"""

from __future__ import annotations

import io
import math
import re
import sys
from dataclasses import dataclass, field
from typing import Any

from taxcheck.measure.aggregate import Cell, Row, Table
from taxcheck.report.html_text import PALETTE, esc

CHARTS_HINT = "Charts need matplotlib: pip install 'taxcheck[report]' and render the report again."
LABEL_PAD_PX = 3.0  # clearance kept around every placed label, in SVG pixels
SHORT_NAME = 18  # characters of a model id shown under a bar


@dataclass
class Chart:
    svg: str
    numbered: bool = False  # tick labels are model numbers (the page's key maps them)
    unlabelled: list[str] = field(default_factory=list)  # models whose plot label found no free place


def load_figure() -> Any:
    """``matplotlib.figure.Figure``, or None when the optional extra is not installed."""
    try:
        import matplotlib

        if "matplotlib.pyplot" not in sys.modules:
            matplotlib.use("Agg")  # never a GUI backend, even if something imports pyplot later
        import matplotlib.ticker  # noqa: F401
        from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: F401
        from matplotlib.figure import Figure
    except ImportError:
        return None
    return Figure


def has_value(c: Cell | None) -> bool:
    return c is not None and c.n > 0 and not math.isnan(c.value)


def _new_figure(Figure: Any, size_px: tuple[float, float]) -> tuple[Any, Any]:
    """A figure of ``size_px`` SVG pixels and the renderer that measures its texts."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    # 72 dpi: a point is an SVG pixel, so a box measured here is the box the browser draws
    fig = Figure(figsize=(size_px[0] / 72, size_px[1] / 72), dpi=72)
    FigureCanvasAgg(fig)
    return fig, fig.canvas.get_renderer()


# Matplotlib's own element ids (figure_1, axes_1, text_3 ...) repeat in every SVG of the page;
# only the hashed defs (clip paths, markers) are referenced, and those are salted per chart.
_AUTO_ID = re.compile(r' id="(?!tc-)[A-Za-z][\w.]*?_\d+"')


def svg_of(fig: Any, salt: str, title: str) -> str:
    """The figure as an inline ``<svg>``: no prolog, doctype, dated metadata or auto ids; it
    scales with the page (a viewBox, no fixed size) and says what it shows to a screen reader."""
    import matplotlib

    buf = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": f"taxcheck-{salt}", "text.parse_math": False}):
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    text = buf.getvalue()
    svg = _AUTO_ID.sub("", text[text.find("<svg") :])
    return re.sub(
        r'<svg([^>]*?) width="[^"]*" height="[^"]*"',
        rf'<svg\1 class="chart" role="img" aria-label="{esc(title)}" preserveAspectRatio="xMidYMid meet"',
        svg,
        count=1,
    )


# --------------------------------------------------------------------------- placement


Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in display pixels


def _box(bb: Any, pad: float = 0.0) -> Box:
    return (bb.x0 - pad, bb.y0 - pad, bb.x1 + pad, bb.y1 + pad)


def overlaps(a: Box, b: Box) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def inside(a: Box, frame: Box) -> bool:
    return a[0] >= frame[0] and a[1] >= frame[1] and a[2] <= frame[2] and a[3] <= frame[3]


# Candidate label positions around a point, nearest first: (dx, dy) in points and the text's
# alignment on that side, so the text grows away from the point.
_DIRECTIONS = ((1, 0, "left", "center"), (-1, 0, "right", "center"), (0, 1, "center", "bottom"), (0, -1, "center", "top"),
               (1, 1, "left", "bottom"), (1, -1, "left", "top"), (-1, 1, "right", "bottom"), (-1, -1, "right", "top"))
CANDIDATES = tuple((dx * d, dy * d, ha, va) for d in (8, 16, 28, 44) for dx, dy, ha, va in _DIRECTIONS)


class Placer:
    """Places texts next to anchors so that no text covers a hard obstacle or another text.

    Soft obstacles (the interval whiskers) only break ties: a label may cross a whisker when
    nothing else is free, never a marker or a word.
    """

    def __init__(self, ax: Any, renderer: Any):
        self.ax, self.renderer = ax, renderer
        self.frame = _box(ax.get_window_extent(renderer), -2.0)
        self.hard: list[Box] = []
        self.soft: list[Box] = []

    def place(self, text: str, xy: tuple[float, float], **style: Any) -> Any | None:
        best, best_cost = None, math.inf
        for dx, dy, ha, va in CANDIDATES:
            ann = self.ax.annotate(text, xy, xytext=(dx, dy), textcoords="offset points", ha=ha, va=va, **style)
            box = _box(ann.get_window_extent(self.renderer), LABEL_PAD_PX)
            if not inside(box, self.frame) or any(overlaps(box, h) for h in self.hard):
                ann.remove()
                continue
            cost = sum(overlaps(box, s) for s in self.soft)
            if cost < best_cost:
                if best is not None:
                    best[0].remove()
                best, best_cost = (ann, box), cost
                if cost == 0:
                    break
            else:
                ann.remove()
        if best is None:
            return None
        self.hard.append(best[1])
        return best[0]


def _marker_box(ax: Any, x: float, y: float, radius_px: float) -> Box:
    px, py = ax.transData.transform((x, y))
    return (px - radius_px, py - radius_px, px + radius_px, py + radius_px)


def _segment_box(ax: Any, a: tuple[float, float], b: tuple[float, float], width_px: float = 2.0) -> Box:
    (x0, y0), (x1, y1) = ax.transData.transform(a), ax.transData.transform(b)
    return (min(x0, x1) - width_px, min(y0, y1) - width_px, max(x0, x1) + width_px, max(y0, y1) + width_px)


# --------------------------------------------------------------------------- trade-off

IDEAL_COLOUR = "#c9a400"  # gold: no model's colour in the palette
POINT_PX = 7.0  # marker diameter of a point alone
RING_STEP_PX = 6.0  # each further point on the same spot is a ring this much wider


def _ring_sizes(ax: Any, xy: list[tuple[float, float]]) -> list[float]:
    """Marker diameters: POINT_PX for a point alone, and for points drawn within a marker of an
    earlier one, rings growing by RING_STEP_PX, so that a model on another's spot stays visible."""
    pixels = [ax.transData.transform(p) for p in xy]
    sizes: list[float] = []
    for k, (px, py) in enumerate(pixels):
        near = [sizes[j] for j in range(k) if math.hypot(px - pixels[j][0], py - pixels[j][1]) < POINT_PX]
        sizes.append(max(near) + RING_STEP_PX if near else POINT_PX)
    return sizes


def tradeoff_chart(Figure: Any, table: Table, names: dict[str, str]) -> Chart | None:
    """Harmful-prompt refusal (y) against benign-prompt refusal (x), per model with data on both.

    ``names``: model -> the label to draw (already made printable). None when the run does not
    measure both axes, or no model has a value on both.
    """
    over, harm = table.row("over_refusal"), table.row("harmful_refusal")
    if over is None or harm is None:
        return None
    points = [(i, m) for i, m in enumerate(table.models) if has_value(over.scores[m]) and has_value(harm.scores[m])]
    if not points:
        return None
    import matplotlib
    import matplotlib.ticker

    with matplotlib.rc_context({"text.parse_math": False}):
        fig, renderer = _new_figure(Figure, (460, 380))
        fig.subplots_adjust(left=0.14, right=0.97, top=0.97, bottom=0.13)
        ax = fig.add_subplot()
        ax.set_xlim(-0.04, 1.04)
        ax.set_ylim(-0.04, 1.06)
        ax.axvspan(-0.04, 0.1, ymin=0.85, color="#f1f3e6", zorder=0)
        ax.scatter([0], [1], marker="*", s=260, color=IDEAL_COLOUR, zorder=3, gid="tc-ideal")
        placer = Placer(ax, renderer)
        placer.hard.append(_marker_box(ax, 0, 1, 10))
        for (i, m), size in zip(points, _ring_sizes(ax, [(over.scores[m].value, harm.scores[m].value) for _i, m in points])):
            x, y = over.scores[m], harm.scores[m]
            color = PALETTE[i % len(PALETTE)]
            # a point drawn on another is a larger ring around it, so that neither hides the other
            face = color if size == POINT_PX else "none"
            bars = ax.errorbar([x.value], [y.value], xerr=[[x.value - x.ci_low], [x.ci_high - x.value]],
                               yerr=[[y.value - y.ci_low], [y.ci_high - y.value]], fmt="o", color=color, capsize=4,
                               markersize=size, markerfacecolor=face, markeredgewidth=2 if face == "none" else 1, zorder=4)
            bars.lines[0].set_gid(f"tc-point-{i}")
            placer.hard.append(_marker_box(ax, x.value, y.value, size / 2 + 2))
            placer.soft.append(_segment_box(ax, (x.ci_low, y.value), (x.ci_high, y.value)))
            placer.soft.append(_segment_box(ax, (x.value, y.ci_low), (x.value, y.ci_high)))
        unlabelled = []
        for i, m in points:  # model labels first: they matter more than the ideal's
            label = names[m] + (" (baseline)" if m == table.baseline else "")
            ann = placer.place(label, (over.scores[m].value, harm.scores[m].value), fontsize=9,
                               color=PALETTE[i % len(PALETTE)], zorder=5)
            if ann is None:
                unlabelled.append(m)
            else:
                ann.set_gid(f"tc-label-{i}")
        ideal = placer.place("ideal: answers benign,\nrefuses harmful", (0, 1), fontsize=8, color="#6b5a00")
        if ideal is not None:
            ideal.set_gid("tc-ideal-label")
        ax.set_xlabel("benign prompts refused (over-refusal)  →  worse")
        ax.set_ylabel("harmful prompts refused  →  safer")
        ax.xaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
        ax.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
        ax.grid(True, alpha=0.3)
        return Chart(svg_of(fig, "tradeoff", "Refusal trade-off: harmful prompts refused against benign prompts refused"),
                     unlabelled=unlabelled)


# --------------------------------------------------------------------------- dimensions


def dimension_chart(Figure: Any, row: Row, models: list[str], names: dict[str, str], salt: str) -> Chart | None:
    """One dimension: a bar per model with its 95 % interval; None when no model has a value."""
    have = [(i, m) for i, m in enumerate(models) if has_value(row.scores[m])]
    if not have:
        return None
    import matplotlib
    import matplotlib.ticker

    with matplotlib.rc_context({"text.parse_math": False}):
        fig, renderer = _new_figure(Figure, (300, 190))
        fig.subplots_adjust(left=0.16, right=0.98, top=0.97, bottom=0.15)
        ax = fig.add_subplot()
        for i, m in have:
            c = row.scores[m]
            ax.bar(i, c.value, color=PALETTE[i % len(PALETTE)], width=0.7,
                   yerr=[[max(0.0, c.value - c.ci_low)], [max(0.0, c.ci_high - c.value)]], capsize=3, ecolor="#333")
        ax.set_xlim(-0.6, len(models) - 0.4)
        ax.set_ylim(0, 1.2)  # headroom: a value label over a whisker at 100 % stays inside the frame
        ax.set_yticks([0, 0.25, 0.5, 0.75, 1.0])
        ax.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
        ax.tick_params(axis="both", labelsize=8)
        ax.grid(True, axis="y", alpha=0.3)
        ax.set_xticks(range(len(models)))
        numbered = not _names_fit(ax, renderer, [_short(names[m]) for m in models])
        ax.set_xticklabels([str(k + 1) for k in range(len(models))] if numbered else [_short(names[m]) for m in models])
        _value_labels(ax, renderer, row, have)
        return Chart(svg_of(fig, salt, f"{row.dimension.name}: score per model with 95% intervals"), numbered=numbered)


def _short(name: str, width: int = SHORT_NAME) -> str:
    return name if len(name) <= width else name[: width - 1] + "…"


def _names_fit(ax: Any, renderer: Any, labels: list[str]) -> bool:
    """Whether the model names fit under their bars side by side without touching."""
    ax.set_xticklabels(labels)
    boxes = [_box(t.get_window_extent(renderer), LABEL_PAD_PX) for t in ax.get_xticklabels()]
    fig_box = _box(ax.figure.bbox)
    return all(inside(b, fig_box) for b in boxes) and not any(overlaps(a, b) for a, b in zip(boxes, boxes[1:]))


def _value_labels(ax: Any, renderer: Any, row: Row, have: list[tuple[int, str]]) -> None:
    """"57%" over each whisker, or none when they would touch (the table has every number)."""
    texts = []
    for i, m in have:
        c = row.scores[m]
        texts.append(ax.text(i, min(c.ci_high, 1.0) + 0.04, f"{c.value * 100:.0f}%", ha="center", va="bottom", fontsize=8))
    frame = _box(ax.get_window_extent(renderer))
    boxes = [_box(t.get_window_extent(renderer), 1.0) for t in texts]
    if any(not inside(b, frame) for b in boxes) or any(overlaps(a, b) for a, b in zip(boxes, boxes[1:])):
        for t in texts:
            t.remove()
