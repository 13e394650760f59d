"""Charts as inline SVG, drawn here (no chart library, nothing fetched by the browser).

Every function returns SVG markup built only from numbers and escaped text, safe to embed.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from html import escape

import numpy as np


def _fmt(x: float) -> str:
    return f"{x:.1f}"


def interval_bar(value: float, low: float | None, high: float | None, lo: float, hi: float,
                 *, width: int = 160, height: int = 18) -> str:
    """A score as a dot on a shared axis [lo, hi], with its 95% interval as a bar."""
    span = (hi - lo) or 1.0

    def x(v: float) -> float:
        return 4 + (width - 8) * (min(max(v, lo), hi) - lo) / span

    bar = ""
    if low is not None and high is not None:
        bar = (f'<line x1="{_fmt(x(low))}" x2="{_fmt(x(high))}" y1="{height / 2}" '
               f'y2="{height / 2}" class="ci"/>')
    title = f"{value:.2f}" + (f" (95% interval {low:.2f} to {high:.2f})"
                              if low is not None and high is not None else "")
    return (f'<svg class="interval" width="{width}" height="{height}" role="img" '
            f'aria-label="{escape(title)}"><title>{escape(title)}</title>'
            f'<line x1="4" x2="{width - 4}" y1="{height / 2}" y2="{height / 2}" class="axis"/>'
            f'{bar}<circle cx="{_fmt(x(value))}" cy="{height / 2}" r="4" class="dot"/></svg>')


def history_chart(times: Sequence[datetime], values: Sequence[float],
                  bests: Sequence[float], *, width: int = 640, height: int = 220) -> str:
    """Every scored submission over time (dots) and the best so far (a step line)."""
    if not times:
        return '<p class="muted">No scored submissions yet.</p>'
    pad = 36
    t = np.array([moment.timestamp() for moment in times])
    v = np.asarray(values, dtype=float)
    t0, t1 = float(t.min()), float(t.max())
    v0, v1 = float(min(v.min(), min(bests))), float(max(v.max(), max(bests)))
    if v1 - v0 < 1e-9:
        v0, v1 = v0 - 1, v1 + 1

    def px(ts: float) -> float:
        return pad + (width - 2 * pad) * ((ts - t0) / (t1 - t0) if t1 > t0 else 0.5)

    def py(val: float) -> float:
        return height - pad - (height - 2 * pad) * (val - v0) / (v1 - v0)

    steps = []
    for i, (ts, best) in enumerate(zip(t, bests, strict=True)):
        if i:
            steps.append(f"{_fmt(px(ts))},{_fmt(py(bests[i - 1]))}")
        steps.append(f"{_fmt(px(ts))},{_fmt(py(best))}")
    dots = "".join(f'<circle cx="{_fmt(px(ts))}" cy="{_fmt(py(val))}" r="3" class="dot">'
                   f"<title>{val:.2f}</title></circle>" for ts, val in zip(t, v, strict=True))
    first = datetime.fromtimestamp(t0).strftime("%Y-%m-%d %H:%M")
    last = datetime.fromtimestamp(t1).strftime("%Y-%m-%d %H:%M")
    return (f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
            f'aria-label="Scores over time and the best so far">'
            f'<line x1="{pad}" x2="{width - pad}" y1="{height - pad}" y2="{height - pad}" '
            f'class="axis"/><line x1="{pad}" x2="{pad}" y1="{pad}" y2="{height - pad}" '
            f'class="axis"/>'
            f'<text x="{pad}" y="{height - 8}" class="label">{first}</text>'
            f'<text x="{width - pad}" y="{height - 8}" class="label end">{last}</text>'
            f'<text x="{pad - 4}" y="{_fmt(py(v1))}" class="label end">{v1:.1f}</text>'
            f'<text x="{pad - 4}" y="{_fmt(py(v0))}" class="label end">{v0:.1f}</text>'
            f'<polyline points="{" ".join(steps)}" class="best"/>{dots}</svg>')


def _squares(xy: np.ndarray, size: float) -> str:
    """Many small squares as one path (far smaller than one element per point)."""
    half = size / 2
    return "".join(f"M{x - half:.1f} {y - half:.1f}h{size}v{size}h-{size}z" for x, y in xy)


def scatter(points: np.ndarray, selected: np.ndarray, labels: np.ndarray, *,
            width: int = 360, height: int = 300) -> str:
    """The pool on a 2-D projection (grey) with the selected rows coloured by their label."""
    pad = 10
    lo, hi = points.min(axis=0), points.max(axis=0)
    span = np.where(hi - lo > 0, hi - lo, 1.0)
    xy = pad + (points - lo) / span * np.array([width - 2 * pad, height - 2 * pad])
    picked = xy[selected]
    paths = [f'<path d="{_squares(xy[~selected], 1.6)}" class="pool"/>']
    paths += [f'<path d="{_squares(picked[labels == c], 3.2)}" class="pick{c}"/>'
              for c in (0, 1) if np.any(labels == c)]
    return (f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
            f'aria-label="Selected rows on a 2-D projection of the pool">{"".join(paths)}</svg>')


def bars(counts: Sequence[tuple[str, int]], *, width: int = 360) -> str:
    """Horizontal bars, e.g. the class balance of a selection."""
    total = max((c for _, c in counts), default=0) or 1
    rows = []
    for i, (name, count) in enumerate(counts):
        w = (width - 120) * count / total
        rows.append(f'<text x="0" y="{i * 24 + 15}" class="label">{escape(name)}</text>'
                    f'<rect x="70" y="{i * 24 + 4}" width="{_fmt(w)}" height="14" '
                    f'class="bar{i % 2}"/><text x="{_fmt(76 + w)}" y="{i * 24 + 15}" '
                    f'class="label">{count:,}</text>')
    return (f'<svg class="chart" viewBox="0 0 {width} {len(counts) * 24 + 4}" role="img" '
            f'aria-label="Counts">{"".join(rows)}</svg>')


def curves(series: Sequence[tuple[str, Sequence[float]]], *, width: int = 420,
           height: int = 240) -> str:
    """Lines over x in [0, 1] (e.g. test accuracy as a growing share of labels is fixed)."""
    pad = 34
    values = [v for _, ys in series for v in ys]
    if not values:
        return ""
    lo, hi = min(values), max(values)
    if hi - lo < 1e-9:
        lo, hi = lo - 0.01, hi + 0.01
    lines = []
    for i, (name, ys) in enumerate(series):
        n = max(len(ys) - 1, 1)
        points = " ".join(
            f"{pad + (width - 2 * pad) * k / n:.1f},"
            f"{height - pad - (height - 2 * pad) * (y - lo) / (hi - lo):.1f}"
            for k, y in enumerate(ys))
        lines.append(f'<polyline points="{points}" class="line{i}"><title>{escape(name)}'
                     f"</title></polyline>"
                     f'<text x="{width - pad}" y="{14 + 14 * i}" class="label end line{i}">'
                     f"{escape(name)}</text>")
    return (f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
            f'aria-label="Test accuracy as labels are fixed">'
            f'<line x1="{pad}" x2="{width - pad}" y1="{height - pad}" y2="{height - pad}" '
            f'class="axis"/><line x1="{pad}" x2="{pad}" y1="{pad}" y2="{height - pad}" '
            f'class="axis"/>'
            f'<text x="{pad}" y="{height - 10}" class="label">0% fixed</text>'
            f'<text x="{width - pad}" y="{height - 10}" class="label end">100%</text>'
            f'<text x="{pad - 4}" y="{pad}" class="label end">{hi:.2f}</text>'
            f'<text x="{pad - 4}" y="{height - pad}" class="label end">{lo:.2f}</text>'
            f'{"".join(lines)}</svg>')
