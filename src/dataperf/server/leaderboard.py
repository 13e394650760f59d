"""Leaderboard rows from scored submissions: ordering, ranks with ties, and score history.

Pure functions, no database: the caller loads the scored submissions (``Entry``) of one part
of the test data and gets back the rows to show.

The rules, in plain words:

**What a row is ranked by (the view).** The view is ``"aggregate"`` or the name of one task.
For a task, the score is that task's value and 95% interval. For the aggregate with default
weights (no weights, or all weights equal), the score is the scorer's own aggregate: the mean
over tasks with its bootstrap interval. With other weights, the score is the weighted mean of
the task values, ``sum(w * value) / sum(w)``. Its interval assumes the tasks' test sets are
independent and uses a normal approximation: each task's half-width ``h`` is half its interval,
the combined half-width is ``sqrt(sum(((w / sum(w)) * h) ** 2))``, and the interval is centred
on the weighted mean. A task with weight 0 is left out; if any other task has no interval, the
weighted score has none either. Weights only affect the aggregate view.

**Weights.** Weights are finite, non-negative numbers keyed by task name; at least one must be
positive and every name must be a known task. A task not mentioned keeps weight 1, so weight 0
must be given explicitly to leave a task out. As text they are written ``task=weight`` items
separated by commas, e.g. ``trouser=2,shirt=1``; blank items are ignored.

**Order.** Best score first (highest or lowest value, depending on the challenge's direction).
Equal values are ordered by submission time, earlier first, then by submission ID, lower
first, so the order never depends on how the submissions were loaded.

**One row per team.** By default each team shows only its best submission in the view (with the
same tie-break). With "final submissions only", a team that picked any final submissions is
judged by those alone; a team that picked none is judged by all its submissions. Baseline
submissions are never merged: each keeps its own row.

**Ranks and ties.** Baselines take no rank: they are shown at their place in the order, but
ranks count participants only, and a rank is shared by rows that cannot be told apart
("1, 2, 2, 4"). Going down the list, the first row starts a group with rank 1. Each next row
joins the current group when its score cannot be told apart from the group's *first* row: both
have intervals and the intervals overlap (touching ends count), or the two values are exactly
equal. Otherwise the row starts a new group, ranked by its position among participant rows.
Comparing with the group's first row, not the row just above, stops ties from chaining down a
long list: if A ties B and B ties C but A does not tie C, C does not share A's rank. A row is
marked tied when its group has more than one row.

**The Ladder** (Blum & Hardt, 2015), a round's option against adaptive overfitting of the
public board. Each team's submissions are taken in time order, and for each score (every task
and the aggregate, separately) the team has a released value: its first submission releases its
score rounded to the nearest multiple of the step; a later one releases a new value only when
its score beats the released value by more than the step (rounded the same way), and otherwise
releases the same value again. Every submission shows its released value, without an interval
(an interval would tell what the rounding hides). Baselines are not laddered. A team that keeps
resubmitting small variations learns little from the public rows, so its public score stays
close to its private one.

**History.** Every submission, baselines included and not one per team, in order of submission
time (then submission ID), with its score in the view and the best value so far. A submission
is marked as a new best when it beats every earlier one; equalling the best is not enough.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from dataperf.scores import Direction

AGGREGATE = "aggregate"


@dataclass(frozen=True)
class Cell:
    """One score with its optional 95% interval."""

    value: float
    ci_low: float | None = None
    ci_high: float | None = None


@dataclass(frozen=True)
class Entry:
    """One scored submission, for one part of the test data."""

    submission_id: int
    team_id: int
    team: str
    created_at: datetime
    tasks: Mapping[str, Cell]
    aggregate: Cell
    is_baseline: bool = False
    is_final: bool = False
    label: str = ""


@dataclass(frozen=True)
class Row:
    """One leaderboard row; ``rank`` is None for baselines, ``score`` is what it is ranked by."""

    rank: int | None
    tied: bool
    entry: Entry
    score: Cell


@dataclass(frozen=True)
class Point:
    """One submission in the score history, with the best value up to and including it."""

    created_at: datetime
    submission_id: int
    team: str
    value: float
    best: float
    is_best: bool


Scored = tuple[Entry, Cell]


def weighted_aggregate(tasks: Mapping[str, Cell], weights: Mapping[str, float]) -> Cell:
    """The weighted mean of the task scores, with a normal-approximation interval."""
    full = _resolve_weights(weights, list(tasks))
    return _combine((w, tasks[name]) for name, w in full.items() if w > 0)


def parse_weights(text: str, tasks: Sequence[str]) -> dict[str, float]:
    """Weights for every task from ``"task=w,task=w"``; tasks not named keep weight 1."""
    weights: dict[str, float] = {}
    for item in filter(str.strip, text.split(",")):
        name, sep, raw = (part.strip() for part in item.partition("="))
        if not sep or not name:
            raise ValueError(f"expected 'task=weight', got {item.strip()!r}")
        if name in weights:
            raise ValueError(f"task {name!r} is given more than one weight")
        try:
            weights[name] = float(raw)
        except ValueError:
            raise ValueError(f"weight of {name!r} is not a number: {raw!r}") from None
    return _resolve_weights(weights, tasks)


def rank_entries(
    entries: Sequence[Entry],
    *,
    direction: Direction,
    view: str = AGGREGATE,
    weights: Mapping[str, float] | None = None,
    one_per_team: bool = True,
    finals_only: bool = False,
) -> list[Row]:
    """The leaderboard rows, best first, ranked with ties (see the module docstring)."""
    score_of = _scorer(entries, view, weights)
    pool = _finals(entries) if finals_only else entries
    ordered = sorted(((e, score_of(e)) for e in pool), key=_order_key(direction))
    if one_per_team:
        ordered = _best_per_team(ordered)
    return _rank(ordered)


def history(
    entries: Sequence[Entry],
    *,
    direction: Direction,
    view: str = AGGREGATE,
    weights: Mapping[str, float] | None = None,
) -> list[Point]:
    """Every submission in time order with its score and the best value so far."""
    score_of = _scorer(entries, view, weights)
    sign = _sign(direction)
    points: list[Point] = []
    best: float | None = None
    for entry in sorted(entries, key=lambda e: (e.created_at, e.submission_id)):
        value = score_of(entry).value
        if best is None or sign * value < sign * best:
            best, is_best = value, True
        else:
            is_best = False
        points.append(
            Point(entry.created_at, entry.submission_id, entry.team, value, best, is_best)
        )
    return points


def laddered(entries: Sequence[Entry], *, direction: Direction, step: float) -> list[Entry]:
    """The entries with every participant's scores replaced by their Ladder values (see the
    module docstring), in the same order."""
    if not (math.isfinite(step) and step > 0):
        raise ValueError(f"the Ladder step must be a positive number, got {step!r}")
    sign = _sign(direction)
    released: dict[tuple[int, str], float] = {}

    def release(team_id: int, name: str, cell: Cell) -> Cell:
        best = released.get((team_id, name))
        if best is None or sign * (cell.value - best) < -step:
            best = released[(team_id, name)] = round(round(cell.value / step) * step, 12)
        return Cell(best)

    out: dict[int, Entry] = {}
    for entry in sorted(entries, key=lambda e: (e.created_at, e.submission_id)):
        if entry.is_baseline:
            continue
        out[entry.submission_id] = replace(
            entry, aggregate=release(entry.team_id, AGGREGATE, entry.aggregate),
            tasks={name: release(entry.team_id, name, cell) for name, cell in entry.tasks.items()})
    return [out.get(e.submission_id, e) for e in entries]


def _resolve_weights(weights: Mapping[str, float], tasks: Sequence[str]) -> dict[str, float]:
    """Checked weights for every task, 1 for the tasks not named."""
    unknown = sorted(set(weights) - set(tasks))
    if unknown:
        raise ValueError(
            f"unknown task(s) in weights: {', '.join(unknown)}; known tasks: {', '.join(tasks)}"
        )
    bad = [name for name, w in weights.items() if not (math.isfinite(w) and w >= 0)]
    if bad:
        raise ValueError(f"weights must be finite and non-negative; not so for: {', '.join(bad)}")
    full = {name: float(weights.get(name, 1.0)) for name in tasks}
    if not any(w > 0 for w in full.values()):
        raise ValueError("at least one weight must be positive")
    return full


def _combine(weighted: Iterable[tuple[float, Cell]]) -> Cell:
    """Weighted mean of cells (positive weights); interval by independent normal errors."""
    items = list(weighted)
    total = math.fsum(w for w, _ in items)
    value = math.fsum(w * cell.value for w, cell in items) / total
    spread = 0.0
    for w, cell in items:
        if cell.ci_low is None or cell.ci_high is None:
            return Cell(value)
        spread += (w / total * (cell.ci_high - cell.ci_low) / 2) ** 2
    half = math.sqrt(spread)
    return Cell(value, value - half, value + half)


def _scorer(
    entries: Sequence[Entry], view: str, weights: Mapping[str, float] | None
) -> Callable[[Entry], Cell]:
    """The function giving an entry's score in the view."""
    if view != AGGREGATE:
        names = _task_names(entries)
        if view not in names:
            raise ValueError(
                f"unknown view {view!r}; use {AGGREGATE!r} or a task: {', '.join(sorted(names))}"
            )
        return lambda e: _task_cell(e, view)
    if weights is None:
        return _own_aggregate
    full = _resolve_weights(weights, _task_names(entries))
    if len(set(full.values())) == 1:
        return _own_aggregate
    positive = [(name, w) for name, w in full.items() if w > 0]
    return lambda e: _combine((w, _task_cell(e, name)) for name, w in positive)


def _task_names(entries: Sequence[Entry]) -> list[str]:
    """Every task name found in the entries, in first-seen order."""
    return list(dict.fromkeys(name for e in entries for name in e.tasks))


def _own_aggregate(entry: Entry) -> Cell:
    return entry.aggregate


def _task_cell(entry: Entry, name: str) -> Cell:
    cell = entry.tasks.get(name)
    if cell is None:
        raise ValueError(f"submission {entry.submission_id} has no score for task {name!r}")
    return cell


def _sign(direction: Direction) -> int:
    """-1 when higher is better, 1 when lower is better: ``sign * value`` sorts best first."""
    if direction not in ("higher", "lower"):
        raise ValueError(f"direction must be 'higher' or 'lower', got {direction!r}")
    return -1 if direction == "higher" else 1


def _order_key(direction: Direction) -> Callable[[Scored], tuple[float, datetime, int]]:
    """Sort key: best value first, then earlier submission, then lower submission ID."""
    sign = _sign(direction)
    return lambda s: (sign * s[1].value, s[0].created_at, s[0].submission_id)


def _finals(entries: Sequence[Entry]) -> list[Entry]:
    """Final submissions of teams that picked some; all submissions of teams that picked none."""
    picked = {e.team_id for e in entries if e.is_final}
    return [e for e in entries if e.is_baseline or e.is_final or e.team_id not in picked]


def _best_per_team(ordered: list[Scored]) -> list[Scored]:
    """The first (best) row of each team from ordered rows; every baseline row is kept."""
    seen: set[int] = set()
    kept: list[Scored] = []
    for entry, score in ordered:
        if not entry.is_baseline:
            if entry.team_id in seen:
                continue
            seen.add(entry.team_id)
        kept.append((entry, score))
    return kept


def _indistinct(a: Cell, b: Cell) -> bool:
    """Equal values, or both intervals present and overlapping (closed)."""
    if a.value == b.value:
        return True
    if a.ci_low is None or a.ci_high is None or b.ci_low is None or b.ci_high is None:
        return False
    return a.ci_low <= b.ci_high and b.ci_low <= a.ci_high


def _rank(ordered: list[Scored]) -> list[Row]:
    """Rows with competition ranks; a row ties the first row of the current group."""
    ranks: list[int | None] = []
    lead: Cell | None = None
    group_rank = position = 0
    for entry, score in ordered:
        if entry.is_baseline:
            ranks.append(None)
            continue
        position += 1
        if lead is None or not _indistinct(lead, score):
            lead, group_rank = score, position
        ranks.append(group_rank)
    sizes = Counter(r for r in ranks if r is not None)
    return [
        Row(rank, rank is not None and sizes[rank] > 1, entry, score)
        for (entry, score), rank in zip(ordered, ranks, strict=True)
    ]
