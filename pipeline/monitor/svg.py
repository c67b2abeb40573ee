"""Line charts as SVG text, drawn by the server: no chart library, no CDN, works offline.

A pure function of its inputs (lines of (time, value) points, markers, a time
window), so the drawing is unit-tested without a browser. The page fetches the
SVG about once a second and puts it in place; every series is a ``<g
class="series">`` with ``data-`` attributes naming it (and its worker and core)
and one ``<polyline>`` per unbroken run of points, so a browser test can count
the points a series drew. Text comes from workers (their names): every string
is escaped here, and the page parses the SVG as XML, never as HTML.

Colours follow the page's theme through ``currentColor`` for text and grid;
series take Tableau's 10-colour palette, then repeat it dashed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from xml.sax.saxutils import escape, quoteattr

PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f",
           "#bab0ac")  # fmt: skip
MARKER_COLOURS = {"joined": "#59a14f", "left": "#e15759"}
MINUS = "\u2212"  # a typographic minus sign, as in "minus 5 min"
GAP_S = 3.0  # points further apart than this are not joined by a line (Flower or the worker was away)
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 30, 26
LEGEND_ROW, LEGEND_COLUMN = 18, 190


@dataclass(frozen=True)
class Line:
    key: str  # stable identity, e.g. "core:worker1@host:0"
    label: str
    points: Sequence[tuple[float, float]]
    data: Mapping[str, str] = field(default_factory=dict)  # extra data-* attributes
    bold: bool = False


@dataclass(frozen=True)
class Mark:
    at: float
    label: str
    kind: str  # "joined" | "left"


def nice_ceiling(value: float) -> tuple[float, float]:
    """(top of the y axis, tick step) for values up to ``value``: 1, 2 or 5 times a power of ten."""
    value = max(value, 1.0)
    raw = value / 4
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    return step * math.ceil(value / step - 1e-9), step


def time_step(span_s: float) -> float:
    """Seconds between time ticks: at most eight ticks over the window."""
    return next((s for s in (1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600) if span_s / s <= 8), 7200)


def relative(seconds_ago: float) -> str:
    if seconds_ago < 0.5:
        return "now"
    if seconds_ago < 60:
        return f"{MINUS}{seconds_ago:.0f} s"
    return f"{MINUS}{seconds_ago / 60:g} min"


def elapsed(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 60 else f"{seconds / 60:g} min"


def ticks(start: float, end: float, origin: float | None = None) -> list[tuple[float, str]]:
    """Time ticks and their labels: back from ``end``, or whole steps since ``origin``."""
    span = max(end - start, 1.0)
    step = time_step(span)
    if origin is None:
        return [(end - k * step, relative(k * step)) for k in range(int(span // step) + 1)]
    first = max(0, math.ceil((start - origin) / step - 1e-9))  # nothing before the origin
    out = []
    while origin + first * step <= end + 1e-9:
        out.append((origin + first * step, elapsed(first * step)))
        first += 1
    return out


def _fmt(value: float) -> str:
    return f"{value:g}" if value < 10000 else f"{value / 1000:g}k"


def runs(points: Sequence[tuple[float, float]], gap_s: float = GAP_S) -> list[list[tuple[float, float]]]:
    """Consecutive points split wherever time jumps by more than ``gap_s``."""
    out: list[list[tuple[float, float]]] = []
    for point in points:
        if not out or point[0] - out[-1][-1][0] > gap_s:
            out.append([])
        out[-1].append(point)
    return out


def line_chart(
    lines: Sequence[Line],
    marks: Sequence[Mark] = (),
    *,
    start: float,
    end: float,
    title: str,
    unit: str = "items/s",
    width: int = 960,
    height: int = 240,
    empty: str = "No data yet",
    origin: float | None = None,
) -> str:
    """The whole ``<svg>`` element: axes, grid, one coloured line per series, markers, legend.

    Time ticks count back from ``end`` ("now", "-5 min"), or, given an
    ``origin``, the time since it (a job's own clock: "0 s", "30 s").
    """
    span = max(end - start, 1.0)
    plot_w, plot_h = width - LEFT - RIGHT, height - TOP - BOTTOM
    top, y_step = nice_ceiling(max((v for line in lines for _, v in line.points), default=0.0))
    per_row = max(1, (width - LEFT) // LEGEND_COLUMN)
    legend_h = LEGEND_ROW * math.ceil(len(lines) / per_row) if lines else 0
    total_h = height + legend_h + (6 if lines else 0)

    def x(at: float) -> float:
        return LEFT + plot_w * (min(max(at, start), end) - start) / span

    def y(value: float) -> float:
        return TOP + plot_h * (1 - value / top)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="pipeline-chart" viewBox="0 0 {width} {total_h}" '
        f'width="100%" role="img" aria-label={quoteattr(title)} data-start="{start:.3f}" data-end="{end:.3f}">',
        f"<title>{escape(title)}</title>",
        "<style>.pipeline-chart text{fill:currentColor;font:12px system-ui,sans-serif}"
        ".pipeline-chart .grid{stroke:currentColor;stroke-opacity:.15}"
        ".pipeline-chart .axis{stroke:currentColor;stroke-opacity:.5}"
        ".pipeline-chart .series polyline{fill:none;stroke-width:1.6;stroke-linejoin:round}"
        ".pipeline-chart .series.bold polyline{stroke-width:3}"
        ".pipeline-chart .muted{fill-opacity:.65}</style>",
        f'<text x="{LEFT}" y="16" font-weight="600">{escape(title)}</text>',
        f'<text x="{width - RIGHT}" y="16" text-anchor="end" class="muted">{escape(unit)}</text>',
    ]
    value = 0.0
    while value <= top + 1e-9:  # horizontal grid with y labels
        out.append(f'<line class="grid" x1="{LEFT}" x2="{width - RIGHT}" y1="{y(value):.1f}" y2="{y(value):.1f}"/>')
        out.append(f'<text x="{LEFT - 6}" y="{y(value) + 4:.1f}" text-anchor="end">{_fmt(round(value, 6))}</text>')
        value += y_step
    for at, label in ticks(start, end, origin):
        anchor = "end" if at >= end - 1e-6 else "start" if at <= start + 1e-6 else "middle"
        out.append(f'<line class="grid" x1="{x(at):.1f}" x2="{x(at):.1f}" y1="{TOP}" y2="{TOP + plot_h}"/>')
        out.append(f'<text x="{x(at):.1f}" y="{height - 8}" text-anchor="{anchor}">{label}</text>')
    out.append(f'<line class="axis" x1="{LEFT}" x2="{LEFT}" y1="{TOP}" y2="{TOP + plot_h}"/>')
    out.append(f'<line class="axis" x1="{LEFT}" x2="{width - RIGHT}" y1="{TOP + plot_h}" y2="{TOP + plot_h}"/>')
    for mark in marks:
        if not start <= mark.at <= end:
            continue
        colour = MARKER_COLOURS.get(mark.kind, "#888")
        sign = "+" if mark.kind == "joined" else MINUS
        label = mark.label if len(mark.label) <= 28 else mark.label[:27] + "…"
        out.append(
            f'<g class="marker" data-kind={quoteattr(mark.kind)} data-worker={quoteattr(mark.label)}>'
            f"<title>{escape(mark.label)} {escape(mark.kind)}</title>"
            f'<line x1="{x(mark.at):.1f}" x2="{x(mark.at):.1f}" y1="{TOP}" y2="{TOP + plot_h}" stroke="{colour}" '
            f'stroke-width="1.5" stroke-dasharray="4 3"/>'
            f'<text x="{x(mark.at) + 3:.1f}" y="{TOP + 11}" style="fill:{colour}">{sign}{escape(label)}</text></g>'
        )
    for index, line in enumerate(lines):
        colour = PALETTE[index % len(PALETTE)]
        dash = ' stroke-dasharray="6 3"' if (index // len(PALETTE)) % 2 else ""
        data = "".join(f" data-{name}={quoteattr(value)}" for name, value in sorted(line.data.items()))
        cls = "series bold" if line.bold else "series"
        out.append(f'<g class="{cls}" data-series={quoteattr(line.key)}{data} data-points="{len(line.points)}" '
                   f'stroke="{colour}"{dash}><title>{escape(line.label)}</title>')  # fmt: skip
        for run in runs(line.points):
            coords = " ".join(f"{x(at):.1f},{y(v):.1f}" for at, v in run)
            out.append(f'<polyline points="{coords}"/>')
        if line.points:  # the latest value as a dot: visible even with one point
            at, v = line.points[-1]
            out.append(f'<circle cx="{x(at):.1f}" cy="{y(v):.1f}" r="2.5" fill="{colour}" stroke="none"/>')
        out.append("</g>")
        column, row = index % per_row, index // per_row
        lx, ly = LEFT + column * LEGEND_COLUMN, height + 10 + row * LEGEND_ROW
        text = line.label if len(line.label) <= 26 else line.label[:25] + "…"
        out.append(f'<g class="legend"><rect x="{lx}" y="{ly}" width="14" height="4" fill="{colour}"/>'
                   f'<text x="{lx + 20}" y="{ly + 6}">{escape(text)}</text></g>')  # fmt: skip
    if not any(line.points for line in lines):
        out.append(f'<text x="{LEFT + plot_w / 2:.1f}" y="{TOP + plot_h / 2:.1f}" text-anchor="middle" '
                   f'class="muted">{escape(empty)}</text>')  # fmt: skip
    out.append("</svg>")
    return "\n".join(out)
