"""Two hand-written SVG line plots for the HTML report: no plotting library to install.

* latency by percentile, on the HdrHistogram axis: x is ``log10(1 / (1 - p))``, so 90 %,
  99 %, 99.9 % ... are evenly spaced and the tail, where the interesting things are, gets
  room;
* answers per second over the run, with errors per second as a second line.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

W, H = 680, 320
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 28, 44
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b")


def _nice_step(span: float, ticks: int = 5) -> float:
    raw = span / ticks if span > 0 else 1.0
    mag = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * mag:
            return m * mag
    return 10 * mag


def _frame(title: str, xlabel: str, ylabel: str) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
        f'viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="11">',
        f'<rect width="{W}" height="{H}" fill="white"/>',
        f'<text x="{W / 2}" y="16" text-anchor="middle" font-size="13">{escape(title)}</text>',
        f'<text x="{(LEFT + W - RIGHT) / 2}" y="{H - 6}" text-anchor="middle">'
        f"{escape(xlabel)}</text>",
        f'<text x="14" y="{(TOP + H - BOTTOM) / 2}" text-anchor="middle" '
        f'transform="rotate(-90 14 {(TOP + H - BOTTOM) / 2})">{escape(ylabel)}</text>',
    ]


def _y_axis(parts: list[str], ymax: float, fmt: str) -> float:
    """Draw y grid lines and labels from 0 to ``ymax``; returns the axis top value."""
    step = _nice_step(ymax)
    top = step * math.ceil(ymax / step) if ymax > 0 else step
    v = 0.0
    while v <= top + step / 2:
        y = _sy(v, top)
        parts.append(
            f'<line x1="{LEFT}" y1="{y:.1f}" x2="{W - RIGHT}" y2="{y:.1f}" stroke="#ddd"/>'
        )
        parts.append(
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{format(v, fmt)}</text>'
        )
        v += step
    return top


def _sy(v: float, top: float) -> float:
    return H - BOTTOM - (v / top) * (H - TOP - BOTTOM)


def _sx(x: float, xmax: float) -> float:
    return LEFT + (x / xmax) * (W - LEFT - RIGHT) if xmax > 0 else LEFT


def _legend(parts: list[str], labels: Sequence[str]) -> None:
    for i, label in enumerate(labels):
        y = TOP + 6 + i * 15
        colour = COLOURS[i % len(COLOURS)]
        parts.append(
            f'<line x1="{LEFT + 10}" y1="{y}" x2="{LEFT + 28}" y2="{y}" '
            f'stroke="{colour}" stroke-width="2"/>'
        )
        parts.append(f'<text x="{LEFT + 32}" y="{y + 4}">{escape(label)}</text>')


def _polyline(points: Sequence[tuple[float, float]], colour: str) -> str:
    coords = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
    return f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{coords}"/>'


def percentile_plot(title: str, curves: Sequence[tuple[str, Sequence[tuple[float, int]]]]) -> str:
    """``curves``: (label, [(percentile, latency ns), ...]) as ``Histogram.percentile_curve``."""
    parts = _frame(title, "percentile", "latency (ms)")
    series = []
    for label, curve in curves:
        pts = []
        for p, ns in curve:
            tail = 1 - p / 100
            x = math.log10(1 / tail) if tail > 1e-9 else None
            pts.append((x, ns / 1e6))
        finite = [x for x, _ in pts if x is not None]
        last = (max(finite) if finite else 0) + 0.0
        series.append((label, [(x if x is not None else last, y) for x, y in pts]))
    xmax = max((x for _, pts in series for x, _ in pts), default=1.0) or 1.0
    xmax = math.ceil(xmax)
    ymax = max((y for _, pts in series for _, y in pts), default=1.0)
    top = _y_axis(parts, ymax * 1.05, ".3g")
    for d in range(int(xmax) + 1):
        x = _sx(d, xmax)
        label = "0%" if d == 0 else f"{100 - 100 / 10**d:.{max(0, d - 2)}f}%"
        parts.append(
            f'<line x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" y2="{H - BOTTOM}" stroke="#eee"/>'
        )
        parts.append(f'<text x="{x:.1f}" y="{H - BOTTOM + 14}" text-anchor="middle">{label}</text>')
    for i, (_, pts) in enumerate(series):
        parts.append(
            _polyline([(_sx(x, xmax), _sy(y, top)) for x, y in pts], COLOURS[i % len(COLOURS)])
        )
    _legend(parts, [label for label, _ in series])
    parts.append("</svg>")
    return "\n".join(parts)


def timeline_plot(title: str, lines: Sequence[tuple[str, Sequence[int]]]) -> str:
    """``lines``: (label, counts per second); each point is drawn at its second's middle."""
    parts = _frame(title, "seconds since start", "per second")
    seconds = max((len(v) for _, v in lines), default=1) or 1
    ymax = max((max(v) for _, v in lines if v), default=1)
    top = _y_axis(parts, ymax * 1.05, ",.0f")
    step = max(1, math.ceil(seconds / 10))
    for s in range(0, seconds + 1, step):
        x = _sx(s, seconds)
        parts.append(f'<text x="{x:.1f}" y="{H - BOTTOM + 14}" text-anchor="middle">{s}</text>')
    for i, (_, values) in enumerate(lines):
        pts = [(_sx(s + 0.5, seconds), _sy(v, top)) for s, v in enumerate(values)]
        if len(pts) == 1:
            pts = [(_sx(0, seconds), pts[0][1]), (_sx(1, seconds), pts[0][1])]
        if pts:
            parts.append(_polyline(pts, COLOURS[i % len(COLOURS)]))
    _legend(parts, [label for label, _ in lines])
    parts.append("</svg>")
    return "\n".join(parts)
