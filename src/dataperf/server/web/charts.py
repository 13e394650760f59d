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
    return (f'<svg class="interval" viewBox="0 0 {width} {height}" role="img" '
            f'aria-label="{escape(title)}"><title>{escape(title)}</title>'
            f'<line x1="4" x2="{width - 4}" y1="{height / 2}" y2="{height / 2}" class="axis"/>'
            f'{bar}<circle cx="{_fmt(x(value))}" cy="{height / 2}" r="4" class="dot"/></svg>')


TEAM_COLOURS = 6  # teams drawn in their own colour (the rest share one)


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values covering [lo, hi], about ``count`` of them (1, 2 or 5 times a power
    of ten apart); the first is at or below ``lo`` and the last at or above ``hi``."""
    raw = (hi - lo) / max(count - 1, 1)
    power = 10.0 ** np.floor(np.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw - 1e-12)
    first, last = np.floor(lo / step + 1e-9), np.ceil(hi / step - 1e-9)  # 0.65 / 0.05 is 12.99..
    first -= first * step > lo + 1e-9 * step  # but never short of the scores
    last += last * step < hi - 1e-9 * step
    return [round(float(k * step), 12) for k in np.arange(first, last + 1)]


def value_axis(values: Sequence[float]) -> list[float]:
    """Ticks for scores: padded around a flat series, and kept inside [0, 1] when every score
    is (a share or an F1 never reads -0.4)."""
    lo, hi = float(min(values)), float(max(values))
    if hi - lo < 1e-9:
        pad = max(abs(lo) * 0.05, 0.05)
        lo, hi = lo - pad, hi + pad
    ticks = nice_ticks(lo, hi)
    if min(values) >= 0 and max(values) <= 1:
        ticks = [t for t in ticks if -1e-9 <= t <= 1 + 1e-9]
        if len(ticks) < 2:
            ticks = [0.0, 1.0]
    return ticks


def _tick_text(value: float, ticks: Sequence[float]) -> str:
    step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0
    decimals = max(0, int(-np.floor(np.log10(step) + 1e-9))) if step > 0 else 2
    return f"{value:.{decimals}f}"


def history_chart(times: Sequence[datetime], values: Sequence[float],
                  bests: Sequence[float], teams: Sequence[str], *, width: int = 420,
                  height: int = 220) -> str:
    """Every scored submission over time (dots in its team's colour, named on hover) and the
    best so far (a step line), with a legend of the teams."""
    if not times:
        return '<p class="muted">No scored submissions yet.</p>'
    left, right, top, bottom = 44, 12, 10, 30
    t = np.array([moment.timestamp() for moment in times])
    t0, t1 = float(t.min()), float(t.max())
    ticks = value_axis([*values, *bests])
    v0, v1 = ticks[0], ticks[-1]

    def px(ts: float) -> float:
        return left + (width - left - right) * ((ts - t0) / (t1 - t0) if t1 > t0 else 0.5)

    def py(val: float) -> float:
        return height - bottom - (height - top - bottom) * (val - v0) / (v1 - v0)

    order = list(dict.fromkeys(teams))  # in the order of their first submission
    colour = {team: f"team{min(i, TEAM_COLOURS)}" for i, team in enumerate(order)}
    grid = "".join(
        f'<line x1="{left}" x2="{width - right}" y1="{_fmt(py(v))}" y2="{_fmt(py(v))}" '
        f'class="grid"/><text x="{left - 6}" y="{_fmt(py(v) + 4)}" class="label end">'
        f"{_tick_text(v, ticks)}</text>" for v in ticks)
    steps = []
    for i, (ts, best) in enumerate(zip(t, bests, strict=True)):
        if i:
            steps.append(f"{_fmt(px(ts))},{_fmt(py(bests[i - 1]))}")
        steps.append(f"{_fmt(px(ts))},{_fmt(py(best))}")
    dots = "".join(
        f'<circle cx="{_fmt(px(ts))}" cy="{_fmt(py(val))}" r="4" class="dot {colour[team]}">'
        f"<title>{escape(team)}: {val:.4g} at {moment:%Y-%m-%d %H:%M} UTC</title></circle>"
        for ts, val, team, moment in zip(t, values, teams, times, strict=True))
    first, last = f"{times[0]:%Y-%m-%d %H:%M}", f"{times[-1]:%Y-%m-%d %H:%M}"
    dates = (f'<text x="{_fmt(px(t0))}" y="{height - 8}" class="label middle">{first}</text>'
             if t1 <= t0 else
             f'<text x="{left}" y="{height - 8}" class="label">{first}</text>'
             f'<text x="{width - right}" y="{height - 8}" class="label end">{last}</text>')
    keys = [("best", "best so far")] + [(colour[team], team) for team in order[:TEAM_COLOURS]]
    if len(order) > TEAM_COLOURS:
        keys.append((f"team{TEAM_COLOURS}", f"{len(order) - TEAM_COLOURS} more teams"))
    return (f'<svg class="chart history" viewBox="0 0 {width} {height}" role="img" '
            f'aria-label="Scores over time by team, and the best so far">{grid}'
            f'<line x1="{left}" x2="{left}" y1="{top}" y2="{height - bottom}" class="axis"/>'
            f'{dates}<polyline points="{" ".join(steps)}" class="best"/>{dots}</svg>'
            + legend(keys))


def legend(keys: Sequence[tuple[str, str]]) -> str:
    """A chart's key: (CSS class of the colour, what it stands for), as a list under it."""
    return ('<ul class="legend">' + "".join(
        f'<li><span class="swatch {kind}"></span>{escape(text)}</li>' for kind, text in keys)
        + "</ul>")


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


def bars(counts: Sequence[tuple[str, int]], *, width: int = 360,
         colours: Sequence[str] | None = None) -> str:
    """Horizontal bars, e.g. the class balance of a selection; ``colours`` are the bars' CSS
    classes (by default two alternating ones)."""
    total = max((c for _, c in counts), default=0) or 1
    rows = []
    for i, (name, count) in enumerate(counts):
        w = (width - 120) * count / total
        kind = colours[i] if colours else f"bar{i % 2}"
        rows.append(f'<text x="0" y="{i * 24 + 15}" class="label">{escape(name)}</text>'
                    f'<rect x="70" y="{i * 24 + 4}" width="{_fmt(w)}" height="14" '
                    f'class="bar {kind}"/><text x="{_fmt(76 + w)}" y="{i * 24 + 15}" '
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
