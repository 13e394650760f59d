"""The pages' charts: score axes on round ticks that cover every score (and stay inside [0, 1]
for shares), team colours with a key, and one colour per label across a picture's parts."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from dataperf.server.web import charts

scores = st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=50)
shares = st.lists(st.floats(0, 1), min_size=1, max_size=50)


@given(scores)
def test_ticks_are_round_ordered_and_cover_every_score(values: list[float]) -> None:
    ticks = charts.value_axis(values)
    assert len(ticks) >= 2
    steps = np.diff(ticks)
    slack = 1e-9 * steps[0]  # the rounding of tick values
    assert ticks[0] <= min(values) + slack
    assert ticks[-1] >= max(values) - slack
    assert np.all(steps > 0)
    assert np.allclose(steps, steps[0])
    mantissa = steps[0] / 10 ** np.floor(np.log10(steps[0]))
    assert min(abs(mantissa - m) for m in (1, 2, 5, 10)) < 1e-6
    assert len(ticks) <= 12


@given(shares)
def test_shares_are_drawn_inside_zero_to_one_with_distinct_labels(values: list[float]) -> None:
    ticks = charts.value_axis(values)
    assert ticks[0] >= 0
    assert ticks[-1] <= 1
    assert ticks[0] <= min(values) + 1e-12
    assert ticks[-1] >= max(values) - 1e-12
    labels = [charts._tick_text(t, ticks) for t in ticks]
    assert len(set(labels)) == len(labels)


def test_a_flat_fraction_history_reads_near_its_value() -> None:
    """One score of 0.7 once read "0.7" at both ends of a -0.4..1.6 axis."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    svg = charts.history_chart([start, start + timedelta(hours=1)], [0.7, 0.7], [0.7, 0.7],
                               ["Team A", "Team B"])
    labels = re.findall(r'class="label end">([-0-9.]+)</text>', svg)
    assert labels == ["0.65", "0.70", "0.75"]
    assert "Team A: 0.7 at 2026-01-01 00:00 UTC" in svg  # whose dot, on hover
    assert re.findall(r'class="swatch (\w+)"></span>Team (\w)', svg) == [
        ("team0", "A"), ("team1", "B")]


def test_teams_beyond_the_palette_share_one_colour_and_are_counted() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    teams = [f"T{i}" for i in range(charts.TEAM_COLOURS + 3)]
    svg = charts.history_chart([start + timedelta(minutes=i) for i in range(len(teams))],
                               list(np.linspace(0.1, 0.9, len(teams))),
                               list(np.linspace(0.1, 0.9, len(teams))), teams)
    assert "3 more teams" in svg
    assert svg.count(f'class="dot team{charts.TEAM_COLOURS}"') == 3


def test_a_selection_picture_gives_each_label_one_colour_in_every_part() -> None:
    """Label 0 was red in the scatter and blue in the class-balance bars."""
    rng = np.random.default_rng(0)
    points = rng.normal(size=(50, 2))
    selected = np.zeros(50, dtype=bool)
    selected[:10] = True
    labels = np.array([0, 1] * 5)
    scatter = charts.scatter(points, selected, labels)
    key = charts.legend([("pick0", "selected, label 0"), ("pick1", "selected, label 1")])
    balance = charts.bars([("label 0", 5), ("label 1", 5)], colours=["pick0", "pick1"])
    for kind in ("pick0", "pick1"):
        assert f'class="{kind}"' in scatter
        assert f'class="swatch {kind}"' in key
        assert f'class="bar {kind}"' in balance
