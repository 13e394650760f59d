import math
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dataperf.server.leaderboard import (
    Cell,
    Entry,
    Row,
    history,
    parse_weights,
    rank_entries,
    weighted_aggregate,
)

BASE = datetime(2024, 5, 1, tzinfo=UTC)
BASELINE_TEAM = 99


def c(value: float, half: float | None = None) -> Cell:
    """A cell with a symmetric interval of the given half-width (none when half is None)."""
    if half is None:
        return Cell(value)
    return Cell(value, value - half, value + half)


def make(
    sid: int,
    score: Cell,
    *,
    team: int | None = None,
    minute: int | None = None,
    baseline: bool = False,
    final: bool = False,
    tasks: dict[str, Cell] | None = None,
) -> Entry:
    """An entry whose aggregate is ``score``; by default its own team, made at minute ``sid``."""
    team_id = sid if team is None else team
    return Entry(
        submission_id=sid,
        team_id=team_id,
        team=f"team-{team_id}",
        created_at=BASE + timedelta(minutes=sid if minute is None else minute),
        tasks={"t": score} if tasks is None else tasks,
        aggregate=score,
        is_baseline=baseline,
        is_final=final,
    )


def ranks(rows: list[Row]) -> list[int | None]:
    return [row.rank for row in rows]


def ids(rows: list[Row]) -> list[int]:
    return [row.entry.submission_id for row in rows]


def tied(rows: list[Row]) -> list[bool]:
    return [row.tied for row in rows]


# Ties


def test_overlapping_intervals_share_a_rank():
    rows = rank_entries([make(1, c(0.90, 0.05)), make(2, c(0.88, 0.04))], direction="higher")
    assert ranks(rows) == [1, 1]
    assert tied(rows) == [True, True]


def test_separate_intervals_do_not_tie():
    rows = rank_entries([make(1, c(0.80, 0.02)), make(2, c(0.90, 0.02))], direction="higher")
    assert ids(rows) == [2, 1]
    assert ranks(rows) == [1, 2]
    assert tied(rows) == [False, False]


def test_touching_intervals_tie():
    rows = rank_entries(
        [make(1, Cell(0.9, 0.85, 0.95)), make(2, Cell(0.8, 0.75, 0.85))], direction="higher"
    )
    assert ranks(rows) == [1, 1]


def test_ties_do_not_chain_past_the_group_leader():
    # a overlaps b, b overlaps c, a does not overlap c.
    entries = [make(1, c(0.90, 0.04)), make(2, c(0.85, 0.04)), make(3, c(0.80, 0.04))]
    rows = rank_entries(entries, direction="higher")
    assert ranks(rows) == [1, 1, 3]
    assert tied(rows) == [True, True, False]


def test_competition_ranking_skips_shared_places():
    entries = [
        make(1, c(0.95, 0.01)),
        make(2, c(0.85, 0.02)),
        make(3, c(0.84, 0.02)),
        make(4, c(0.70, 0.01)),
    ]
    assert ranks(rank_entries(entries, direction="higher")) == [1, 2, 2, 4]


def test_one_missing_interval_means_no_tie():
    rows = rank_entries([make(1, c(0.90, 0.05)), make(2, c(0.89))], direction="higher")
    assert ranks(rows) == [1, 2]


def test_equal_values_without_intervals_tie_and_earlier_comes_first():
    entries = [make(1, c(0.5), minute=9), make(2, c(0.4)), make(3, c(0.5), minute=5)]
    rows = rank_entries(entries, direction="higher")
    assert ids(rows) == [3, 1, 2]
    assert ranks(rows) == [1, 1, 3]
    assert tied(rows) == [True, True, False]


def test_same_time_and_value_orders_by_submission_id():
    entries = [make(7, c(0.5), minute=0), make(3, c(0.5), minute=0)]
    assert ids(rank_entries(entries, direction="higher")) == [3, 7]


def test_lower_is_better():
    entries = [make(1, c(0.3)), make(2, c(0.1)), make(3, c(0.2))]
    rows = rank_entries(entries, direction="lower")
    assert ids(rows) == [2, 3, 1]
    assert ranks(rows) == [1, 2, 3]


def test_unknown_direction_is_rejected():
    with pytest.raises(ValueError, match="direction"):
        rank_entries([make(1, c(0.3))], direction="up")  # type: ignore[arg-type]


# Baselines


def test_baselines_take_no_rank_and_no_tie():
    entries = [
        make(1, c(0.90, 0.05), team=BASELINE_TEAM, baseline=True),
        make(2, c(0.95, 0.01)),
        make(3, c(0.88, 0.05)),
        make(4, c(0.80, 0.01), team=BASELINE_TEAM, baseline=True),
        make(5, c(0.70, 0.01)),
    ]
    rows = rank_entries(entries, direction="higher")
    assert ids(rows) == [2, 1, 3, 4, 5]
    assert ranks(rows) == [1, None, 2, None, 3]
    assert tied(rows) == [False] * 5


def test_baseline_does_not_lead_a_tie_group():
    entries = [
        make(1, c(0.90, 0.05), baseline=True),
        make(2, c(0.89, 0.01)),
        make(3, c(0.86, 0.01)),
    ]
    assert ranks(rank_entries(entries, direction="higher")) == [None, 1, 2]


# Teams and final submissions


def test_one_row_per_team_keeps_the_best():
    entries = [
        make(1, c(0.7), team=1),
        make(2, c(0.9), team=1),
        make(3, c(0.8), team=1),
        make(4, c(0.85), team=2),
    ]
    assert ids(rank_entries(entries, direction="higher")) == [2, 4]
    assert ids(rank_entries(entries, direction="lower")) == [1, 4]
    assert ids(rank_entries(entries, direction="higher", one_per_team=False)) == [2, 4, 3, 1]


def test_one_row_per_team_breaks_ties_by_time():
    entries = [make(1, c(0.9), team=1, minute=5), make(2, c(0.9), team=1, minute=1)]
    assert ids(rank_entries(entries, direction="higher")) == [2]


def test_baselines_of_one_team_keep_their_rows():
    entries = [make(i, c(0.1 * i), team=BASELINE_TEAM, baseline=True) for i in (1, 2, 3)]
    assert ids(rank_entries(entries, direction="higher")) == [3, 2, 1]


def test_finals_only_with_fallback_for_teams_without_finals():
    entries = [
        make(1, c(0.7), team=1, final=True),
        make(2, c(0.9), team=1),
        make(3, c(0.6), team=1, final=True),
        make(4, c(0.6), team=2),
        make(5, c(0.8), team=2),
        make(6, c(0.5), team=BASELINE_TEAM, baseline=True),
    ]
    assert ids(rank_entries(entries, direction="higher", finals_only=True)) == [5, 1, 6]
    all_finals = rank_entries(entries, direction="higher", finals_only=True, one_per_team=False)
    assert ids(all_finals) == [5, 1, 3, 4, 6]
    assert ids(rank_entries(entries, direction="higher")) == [2, 5, 6]


# Views and weights


def two_task_entry(sid: int, a: float, b: float, aggregate: float) -> Entry:
    return make(sid, c(aggregate), tasks={"a": c(a, 0.01), "b": c(b, 0.01)})


def test_task_view_ranks_by_that_task():
    entries = [two_task_entry(1, 0.9, 0.1, 0.5), two_task_entry(2, 0.4, 0.8, 0.6)]
    assert ids(rank_entries(entries, direction="higher")) == [2, 1]
    rows = rank_entries(entries, direction="higher", view="a")
    assert ids(rows) == [1, 2]
    assert rows[0].score == c(0.9, 0.01)


def test_unknown_view_names_the_tasks():
    with pytest.raises(ValueError, match=r"unknown view 'c'.*a, b"):
        rank_entries([two_task_entry(1, 0.9, 0.1, 0.5)], direction="higher", view="c")


def test_entry_without_the_viewed_task_is_reported():
    entries = [two_task_entry(1, 0.9, 0.1, 0.5), make(2, c(0.3), tasks={"a": c(0.3)})]
    with pytest.raises(ValueError, match="submission 2 has no score for task 'b'"):
        rank_entries(entries, direction="higher", view="b")


def test_equal_weights_use_the_scorers_own_aggregate():
    entries = [two_task_entry(1, 0.9, 0.1, 0.3)]
    rows = rank_entries(entries, direction="higher", weights={"a": 2, "b": 2})
    assert rows[0].score == c(0.3)


def test_other_weights_reorder_the_board():
    entries = [two_task_entry(1, 0.9, 0.1, 0.5), two_task_entry(2, 0.4, 0.8, 0.6)]
    rows = rank_entries(entries, direction="higher", weights={"a": 3})
    assert ids(rows) == [1, 2]
    assert rows[0].score.value == pytest.approx(0.7)
    assert rows[1].score.value == pytest.approx(0.5)
    only_b = rank_entries(entries, direction="higher", weights={"a": 0})
    assert [row.score.value for row in only_b] == [0.8, 0.1]


def test_bad_weights_in_ranking_are_rejected():
    with pytest.raises(ValueError, match="unknown task"):
        rank_entries([two_task_entry(1, 0.9, 0.1, 0.5)], direction="higher", weights={"x": 1})


TASKS = {"a": Cell(0.8, 0.7, 0.9), "b": Cell(0.6, 0.55, 0.65)}


def test_weighted_aggregate_by_hand():
    # value (3 * 0.8 + 1 * 0.6) / 4 = 0.75; half-width sqrt((3/4 * 0.1)^2 + (1/4 * 0.05)^2).
    cell = weighted_aggregate(TASKS, {"a": 3, "b": 1})
    half = 0.07603453162872775
    assert cell.value == pytest.approx(0.75)
    assert cell.ci_low == pytest.approx(0.75 - half)
    assert cell.ci_high == pytest.approx(0.75 + half)


def test_weighted_aggregate_missing_tasks_weigh_one():
    assert weighted_aggregate(TASKS, {"a": 3}) == weighted_aggregate(TASKS, {"a": 3, "b": 1})


def test_weighted_aggregate_zero_weight_leaves_a_task_out():
    tasks = {"a": Cell(0.8, 0.7, 0.9), "b": Cell(0.1)}
    cell = weighted_aggregate(tasks, {"b": 0})
    assert cell.value == pytest.approx(0.8)
    assert cell.ci_low == pytest.approx(0.7)
    assert cell.ci_high == pytest.approx(0.9)


def test_weighted_aggregate_without_an_interval_has_none():
    cell = weighted_aggregate({"a": Cell(0.8, 0.7, 0.9), "b": Cell(0.2)}, {"a": 1})
    assert cell.value == pytest.approx(0.5)
    assert cell.ci_low is None
    assert cell.ci_high is None


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ({"c": 1}, "unknown task.*c; known tasks: a, b"),
        ({"a": -1}, "non-negative.*a"),
        ({"a": math.nan}, "finite.*a"),
        ({"b": math.inf}, "finite.*b"),
        ({"a": 0, "b": 0}, "at least one weight must be positive"),
    ],
)
def test_weighted_aggregate_rejects_bad_weights(weights, message):
    with pytest.raises(ValueError, match=message):
        weighted_aggregate(TASKS, weights)


@given(st.lists(st.floats(0, 1), min_size=1, max_size=6), st.floats(0.1, 10))
def test_equal_weights_give_the_plain_mean(values, weight):
    tasks = {f"t{i}": Cell(v) for i, v in enumerate(values)}
    cell = weighted_aggregate(tasks, dict.fromkeys(tasks, weight))
    assert cell.value == pytest.approx(sum(values) / len(values))


# Parsing weights

GARMENTS = ["trouser", "shirt", "dress"]


def test_parse_weights():
    parsed = parse_weights(" trouser=2, shirt = 0.5 ,", GARMENTS)
    assert parsed == {"trouser": 2.0, "shirt": 0.5, "dress": 1.0}


def test_parse_empty_weights_gives_equal_weights():
    assert parse_weights("", GARMENTS) == {"trouser": 1.0, "shirt": 1.0, "dress": 1.0}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("trouser", "expected 'task=weight', got 'trouser'"),
        ("=2", "expected 'task=weight'"),
        ("trouser=x", "weight of 'trouser' is not a number: 'x'"),
        ("trouser=", "weight of 'trouser' is not a number"),
        ("trouser=1,trouser=2", "'trouser' is given more than one weight"),
        ("hat=1", "unknown task.*hat"),
        ("trouser=-1", "non-negative.*trouser"),
        ("trouser=nan", "finite.*trouser"),
        ("trouser=0,shirt=0,dress=0", "at least one weight must be positive"),
    ],
)
def test_parse_weights_errors(text, message):
    with pytest.raises(ValueError, match=message):
        parse_weights(text, GARMENTS)


# History


def test_history_tracks_the_best_so_far():
    entries = [
        make(5, c(0.8), minute=50),
        make(2, c(0.7), minute=10),
        make(1, c(0.5), minute=0),
        make(4, c(0.7), minute=30),
        make(3, c(0.6), minute=20),
    ]
    points = history(entries, direction="higher")
    assert [p.submission_id for p in points] == [1, 2, 3, 4, 5]
    assert [p.value for p in points] == [0.5, 0.7, 0.6, 0.7, 0.8]
    assert [p.best for p in points] == [0.5, 0.7, 0.7, 0.7, 0.8]
    assert [p.is_best for p in points] == [True, True, False, False, True]
    assert points[0].team == "team-1"


def test_history_lower_is_better_and_same_time_orders_by_id():
    entries = [make(2, c(0.4), minute=0), make(1, c(0.6), minute=0), make(3, c(0.5))]
    points = history(entries, direction="lower")
    assert [p.submission_id for p in points] == [1, 2, 3]
    assert [p.best for p in points] == [0.6, 0.4, 0.4]
    assert [p.is_best for p in points] == [True, True, False]


def test_history_keeps_every_entry_of_a_team_in_the_view():
    entries = [
        make(1, c(0.5), team=1, tasks={"a": c(0.9)}),
        make(2, c(0.3), team=1, tasks={"a": c(0.95)}),
    ]
    points = history(entries, direction="higher", view="a")
    assert [p.value for p in points] == [0.9, 0.95]
    assert [p.is_best for p in points] == [True, True]


# Properties


@st.composite
def boards(draw: st.DrawFn) -> list[Entry]:
    specs = draw(
        st.lists(
            st.tuples(
                st.integers(0, 4),
                st.sampled_from([0.5, 0.6, 0.7]) | st.floats(0, 1),
                st.sampled_from([None, 0.0, 0.05, 0.2]),
                st.integers(0, 3),
                st.sampled_from([False, False, False, True]),
                st.booleans(),
            ),
            max_size=25,
        )
    )
    return [
        make(
            sid,
            c(value, half),
            team=BASELINE_TEAM if baseline else team,
            minute=minute,
            baseline=baseline,
            final=final,
        )
        for sid, (team, value, half, minute, baseline, final) in enumerate(specs, start=1)
    ]


directions = st.sampled_from(["higher", "lower"])


@given(boards(), directions, st.booleans(), st.booleans())
def test_ranks_follow_the_rules(entries, direction, one_per_team, finals_only):
    rows = rank_entries(
        entries, direction=direction, one_per_team=one_per_team, finals_only=finals_only
    )
    sign = -1 if direction == "higher" else 1
    keys = [sign * row.score.value for row in rows]
    assert keys == sorted(keys)
    ranked = [row for row in rows if not row.entry.is_baseline]
    assert all(row.rank is None and not row.tied for row in rows if row.entry.is_baseline)
    if ranked:
        assert ranked[0].rank == 1
    sizes = Counter(row.rank for row in ranked)
    for position, row in enumerate(ranked, start=1):
        assert row.rank is not None
        assert row.rank <= position
        assert row.tied == (sizes[row.rank] > 1)
        if position > 1:
            previous = ranked[position - 2].rank
            assert previous is not None
            assert row.rank >= previous
            assert row.rank in (previous, position)


@given(boards(), directions, st.booleans())
def test_one_row_per_team(entries, direction, finals_only):
    rows = rank_entries(entries, direction=direction, finals_only=finals_only)
    teams = {e.team_id for e in entries if not e.is_baseline}
    baselines = sum(e.is_baseline for e in entries)
    assert len(rows) == len(teams) + baselines
    if not finals_only:
        best = min if direction == "lower" else max
        for row in rows:
            if not row.entry.is_baseline:
                team_values = [e.aggregate.value for e in entries if e.team_id == row.entry.team_id]
                assert row.score.value == best(team_values)


@given(boards(), directions, st.booleans(), st.booleans(), st.data())
def test_input_order_does_not_matter(entries, direction, one_per_team, finals_only, data):
    shuffled = data.draw(st.permutations(entries))
    options = {"direction": direction, "one_per_team": one_per_team, "finals_only": finals_only}
    assert rank_entries(shuffled, **options) == rank_entries(entries, **options)
    assert history(shuffled, direction=direction) == history(entries, direction=direction)
