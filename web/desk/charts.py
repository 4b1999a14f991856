"""Charts as inline SVG, drawn on the server: they print, need no CDN and no JavaScript.

Pure: numbers and labels in, markup out. Presentation attributes only (fill, stroke, font-size)
— the desk's Content-Security-Policy forbids inline style. Every chart has a <title> and an
aria-label; the page shows the same numbers as a table next to it.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence

from markupsafe import Markup, escape

BAR = "#2f6690"
SECOND = "#d98324"
GRID = "#c8ced6"
INK = "#1d2733"
FONT = 'font-family="sans-serif"'


def _width(text: str, size: float) -> float:
    """Rough rendered width: CJK characters are square, Latin ones about half."""
    return sum(size if unicodedata.east_asian_width(ch) in "WF" else size * 0.55 for ch in text)


def _clip(text: str, size: float, room: float) -> str:
    if _width(text, size) <= room:
        return text
    while text and _width(text + "…", size) > room:
        text = text[:-1]
    return text + "…"


def _nice_max(value: float) -> float:
    """A round top for the axis whose quarters are whole numbers (counts are integers)."""
    if value <= 0:
        return 4
    if value <= 20:
        return 4 * -(-value // 4)
    for step in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10000):
        if value <= step * 5:
            return step * -(-value // step)
    return value


def bar_chart(
    items: Sequence[tuple[str, float]],
    *,
    title: str,
    width: int = 520,
    unit: str = "",
    maximum: float | None = None,
    percent: bool = False,
) -> Markup:
    """Horizontal bars, one row per item, the value at the end of each bar."""
    size, row = 12, 24
    label_room = min(width * 0.38, max([_width(label, size) for label, _ in items] or [40]) + 10)
    height = max(1, len(items)) * row + 30
    top = max([v for _, v in items] or [0])
    scale_max = maximum if maximum is not None else _nice_max(top)
    plot = width - label_room - 56
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'aria-label="{escape(title)}"><title>{escape(title)}</title>'
    ]
    for tick in range(5):
        x = label_room + plot * tick / 4
        parts.append(
            f'<line x1="{x:.1f}" y1="4" x2="{x:.1f}" y2="{height - 22}" stroke="{GRID}" '
            'stroke-width="1"/>'
        )
        value = scale_max * tick / 4
        shown = f"{value:.0%}" if percent else f"{value:g}"
        parts.append(
            f'<text x="{x:.1f}" y="{height - 8}" font-size="10" text-anchor="middle" '
            f'fill="{INK}" {FONT}>{shown}</text>'
        )
    if not items:
        parts.append(
            f'<text x="{width / 2}" y="20" font-size="{size}" text-anchor="middle" '
            f'fill="{INK}" {FONT}>—</text>'
        )
    for index, (label, value) in enumerate(items):
        y = 6 + index * row
        length = plot * (value / scale_max) if scale_max else 0
        shown = f"{value:.0%}" if percent else f"{value:g}{unit}"
        parts.append(
            f'<text x="{label_room - 6:.1f}" y="{y + 13}" font-size="{size}" text-anchor="end" '
            f'fill="{INK}" {FONT}>{escape(_clip(label, size, label_room - 8))}</text>'
            f'<rect x="{label_room:.1f}" y="{y}" width="{max(length, 1):.1f}" height="{row - 8}" '
            f'fill="{BAR}"><title>{escape(label)}: {shown}</title></rect>'
            f'<text x="{label_room + length + 4:.1f}" y="{y + 13}" font-size="{size}" '
            f'fill="{INK}" {FONT}>{shown}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def line_chart(
    labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[float]]],
    *,
    title: str,
    width: int = 640,
    height: int = 240,
) -> Markup:
    """Lines over months (or any ordered labels), one per series, with a legend."""
    colours = (BAR, SECOND, "#5a9367", "#8e5572")
    left, right, top, bottom = 36, 12, 28, 34
    plot_w, plot_h = width - left - right, height - top - bottom
    highest = _nice_max(max([max(v, default=0) for _, v in series] or [0]))
    count = max(1, len(labels) - 1)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'aria-label="{escape(title)}"><title>{escape(title)}</title>'
    ]
    for tick in range(5):
        y = top + plot_h - plot_h * tick / 4
        parts.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" '
            f'stroke="{GRID}" stroke-width="1"/>'
            f'<text x="{left - 4}" y="{y + 4:.1f}" font-size="10" text-anchor="end" '
            f'fill="{INK}" {FONT}>{highest * tick / 4:g}</text>'
        )
    for index, label in enumerate(labels):
        x = left + plot_w * index / count
        parts.append(
            f'<text x="{x:.1f}" y="{height - bottom + 16}" font-size="10" text-anchor="middle" '
            f'fill="{INK}" {FONT}>{escape(label[-5:] if len(labels) > 6 else label)}</text>'
        )
    for number, (name, values) in enumerate(series):
        colour = colours[number % len(colours)]
        points = " ".join(
            f"{left + plot_w * i / count:.1f},{top + plot_h - plot_h * (v / highest):.1f}"
            for i, v in enumerate(values)
        )
        parts.append(
            f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="2"/>'
        )
        for i, v in enumerate(values):
            x, y = left + plot_w * i / count, top + plot_h - plot_h * (v / highest)
            parts.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}">'
                f"<title>{escape(labels[i])} {escape(name)}: {v:g}</title></circle>"
            )
        legend_x = left + number * 120
        parts.append(
            f'<rect x="{legend_x}" y="6" width="12" height="12" fill="{colour}"/>'
            f'<text x="{legend_x + 16}" y="16" font-size="12" fill="{INK}" {FONT}>'
            f"{escape(name)}</text>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))
