"""The brief's charts: matplotlib figures as SVG text, to embed in the HTML (and so the PDF).

Each function takes plain data and the words it prints (already translated by the template that
calls it, so every word stays in a template) and returns an `<svg>` element. The charts read in
black and white: shades of grey with black edges (hatching where a bar is set apart), and the
figure itself printed on every bar or cell, so a photocopy or a projector with washed-out
colours loses nothing. Text stays text in the SVG (searchable, selectable, sharp at any size); a
chart's text alternative is the table or the figures printed beside it in the brief, and its
`aria-label` says what it shows.

Figures are built with `matplotlib.figure.Figure` directly, not `pyplot`: no global state, no
GUI backend, safe in a worker thread.
"""

from __future__ import annotations

import io
import re
import textwrap
from collections.abc import Callable, Sequence
from typing import Any

from markupsafe import Markup, escape

WIDTH = 6.6  # inches: the A4 text width of the brief
ROW = 0.24  # inches per bar or row of cells
GREYS = ("#ffffff", "#d9d9d9", "#a6a6a6", "#6e6e6e", "#262626")
FONT = {
    "font.family": "DejaVu Sans",
    "font.size": 8,
    "svg.fonttype": "none",
    "svg.hashsalt": "palabre",
}

Formatter = Callable[[float], str]


def _figure(height: float) -> Any:
    import matplotlib

    matplotlib.rcParams.update(FONT)
    from matplotlib.figure import Figure

    figure = Figure(figsize=(WIDTH, max(height, 1.0)), layout="constrained")
    return figure


def _svg(figure: Any, label: str) -> Markup:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    text = buffer.getvalue()
    text = text[text.index("<svg") :]
    # The RDF metadata block would be read out as "image/svg+xml" by text extraction.
    text = re.sub(r"<metadata>.*?</metadata>\s*", "", text, count=1, flags=re.DOTALL)
    # Inline in HTML: drop the fixed size in points so CSS can scale it, say what it shows.
    text = re.sub(
        r'<svg([^>]*?) width="[^"]+" height="[^"]+"',
        lambda found: f'<svg{found.group(1)} role="img" aria-label="{escape(label)}"',
        text,
        count=1,
    )
    return Markup(text)  # noqa: S704  (matplotlib's own markup; every label was escaped by it)


def _wrapped(labels: Sequence[str], width: int = 14) -> list[str]:
    return [textwrap.fill(label, width, break_long_words=False) for label in labels]


def _frame(axes: Any) -> None:
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    axes.tick_params(length=0)


def participation(
    rows: Sequence[dict[str, Any]],
    *,
    invited: str,
    contributed: str,
    label: str,
    text: Formatter = str,
) -> Markup:
    """Invited people per category as an outlined bar, those who contributed filled inside it,
    with "contributed / invited (share)" written at the end."""
    figure = _figure(0.4 + ROW * 0.85 * len(rows))
    axes = figure.add_subplot()
    names = [row["label"] for row in rows][::-1]
    positions = list(range(len(names)))
    asked = [row["invited"] for row in rows][::-1]
    came = [row["contributed"] for row in rows][::-1]
    axes.barh(positions, asked, height=0.7, color="white", edgecolor="black", label=invited)
    axes.barh(
        positions, came, height=0.7, color=GREYS[2], edgecolor="black", hatch="///",
        label=contributed,
    )  # fmt: skip
    for p, a, c in zip(positions, asked, came, strict=True):
        share = f" ({text(c / a)})" if a else ""
        axes.text(max(a, c), p, f" {c} / {a}{share}", va="center")
    axes.set_yticks(positions, names)
    axes.set_xlim(0, max([*asked, 1]) * 1.3)
    axes.xaxis.set_visible(False)
    axes.legend(loc="lower right", frameon=False, ncols=2, bbox_to_anchor=(1, 1))
    _frame(axes)
    return _svg(figure, label)


def heatmap(
    rows: Sequence[str],
    columns: Sequence[str],
    values: Sequence[Sequence[float | None]],
    *,
    text: Formatter,
    label: str,
    empty: str = "—",
    darker_is_higher: bool = True,
) -> Markup:
    """A grid of shares (0 to 1): grey from white to black, the value written in each cell."""
    figure = _figure(0.5 + ROW * 0.9 * len(rows))
    axes = figure.add_subplot()
    for i, row in enumerate(values):
        for j, value in enumerate(row):
            shade = 0.0 if value is None else (value if darker_is_higher else 1 - value)
            grey = 1 - 0.85 * shade
            axes.add_patch(_rectangle((j, i), facecolor=(grey, grey, grey)))
            axes.text(
                j + 0.5,
                i + 0.5,
                empty if value is None else text(value),
                ha="center",
                va="center",
                color="white" if grey < 0.5 else "black",
            )
    axes.set_xlim(0, len(columns))
    axes.set_ylim(len(rows), 0)
    axes.set_xticks([j + 0.5 for j in range(len(columns))], _wrapped(columns))
    axes.xaxis.tick_top()
    axes.set_yticks([i + 0.5 for i in range(len(rows))], rows)
    for side in axes.spines.values():
        side.set_visible(False)
    axes.tick_params(length=0)
    return _svg(figure, label)


def _rectangle(corner: tuple[float, float], **style: Any) -> Any:
    from matplotlib.patches import Rectangle

    return Rectangle(corner, 1, 1, edgecolor="white", linewidth=1.5, **style)


def ranks(
    rows: Sequence[str],
    columns: Sequence[str],
    values: Sequence[Sequence[int | None]],
    *,
    label: str,
    deepest: int = 5,
) -> Markup:
    """Each column's top places for each row: the rank written in the cell, darker when better."""
    shares = [
        [
            None if value is None or value > deepest else (deepest + 1 - value) / deepest
            for value in row
        ]
        for row in values
    ]
    lookup = {(i, j): value for i, row in enumerate(values) for j, value in enumerate(row)}

    def text_of(i: int, j: int) -> str:
        value = lookup[i, j]
        return "" if value is None or value > deepest else str(value)

    figure = _figure(0.45 + ROW * 0.8 * len(rows))
    axes = figure.add_subplot()
    for i, row in enumerate(shares):
        for j, share in enumerate(row):
            grey = 1 - 0.85 * (share or 0)
            axes.add_patch(_rectangle((j, i), facecolor=(grey, grey, grey)))
            axes.text(
                j + 0.5,
                i + 0.5,
                text_of(i, j),
                ha="center",
                va="center",
                color="white" if grey < 0.5 else "black",
                fontweight="bold",
            )
    axes.set_xlim(0, len(columns))
    axes.set_ylim(len(rows), 0)
    axes.set_xticks([j + 0.5 for j in range(len(columns))], _wrapped(columns))
    axes.xaxis.tick_top()
    axes.set_yticks([i + 0.5 for i in range(len(rows))], rows)
    for side in axes.spines.values():
        side.set_visible(False)
    axes.tick_params(length=0)
    return _svg(figure, label)


def bars(
    rows: Sequence[str],
    values: Sequence[float],
    *,
    text: Formatter,
    label: str,
    marked: Sequence[bool] = (),
) -> Markup:
    """Horizontal bars, first row on top, the value at the end of each bar; marked rows hatched."""
    figure = _figure(0.2 + ROW * 0.75 * len(rows))
    axes = figure.add_subplot()
    positions = list(range(len(rows)))[::-1]
    hatches = ["///" if flag else "" for flag in (marked or [False] * len(rows))]
    container = axes.barh(positions, values, height=0.65, color=GREYS[2], edgecolor="black")
    for patch, hatch in zip(container.patches, hatches, strict=True):
        patch.set_hatch(hatch)
    for p, value in zip(positions, values, strict=True):
        axes.text(value, p, f" {text(value)}", va="center")
    axes.set_yticks(positions, rows)
    axes.set_xlim(0, max([*values, 1]) * 1.12)
    axes.xaxis.set_visible(False)
    _frame(axes)
    return _svg(figure, label)


def stacked(
    rows: Sequence[str],
    counts: Sequence[Sequence[int]],
    *,
    legend: Sequence[str],
    label: str,
) -> Markup:
    """One 100 % bar per row, split by the counts (e.g. the five points of a Likert scale)."""
    figure = _figure(0.35 + ROW * 0.75 * len(rows))
    axes = figure.add_subplot()
    positions = list(range(len(rows)))[::-1]
    totals = [sum(row) or 1 for row in counts]
    left = [0.0] * len(rows)
    for k, name in enumerate(legend):
        widths = [row[k] / total for row, total in zip(counts, totals, strict=True)]
        axes.barh(
            positions,
            widths,
            left=left,
            height=0.8,
            color=GREYS[k % len(GREYS)],
            edgecolor="black",
            linewidth=0.6,
            label=name,
        )
        for p, start, width, row in zip(positions, left, widths, counts, strict=True):
            if row[k] and width >= 0.06:
                grey = GREYS[k % len(GREYS)]
                axes.text(
                    start + width / 2,
                    p,
                    str(row[k]),
                    ha="center",
                    va="center",
                    color="white" if grey in GREYS[3:] else "black",
                )
        left = [a + b for a, b in zip(left, widths, strict=True)]
    axes.set_yticks(positions, rows)
    axes.set_xlim(0, 1)
    axes.xaxis.set_visible(False)
    axes.legend(loc="lower left", bbox_to_anchor=(0, 1), ncols=len(legend), frameon=False)
    _frame(axes)
    return _svg(figure, label)
