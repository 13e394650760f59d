"""Leaderboards and histories of a round, loaded from the database and cached until the round
changes (a new score, a final pick, an edit bumps ``Round.changed_at``)."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, aliased

from dataperf.server import leaderboard as lb
from dataperf.server.models import ChallengeRow, Evaluation, Round, ScoreRow, Submission, Team
from dataperf.server.platform import Platform
from dataperf.server.queue import AGGREGATE


def _best_per_team(round_id: int, part: str, task: str, direction: str) -> Any:
    """IDs of each team's best submission by one score row (and of every baseline), chosen in
    the database with the leaderboard's own order: score, then earlier, then lower ID."""
    score, evaluation, submission = aliased(ScoreRow), aliased(Evaluation), aliased(Submission)
    value = score.value.desc() if direction == "higher" else score.value.asc()
    ranked = (select(submission.id.label("id"), submission.is_baseline.label("baseline"),
                     func.row_number().over(partition_by=submission.team_id,
                                            order_by=(value, submission.created_at,
                                                      submission.id)).label("place"))
              .select_from(score)
              .join(evaluation, evaluation.id == score.evaluation_id)
              .join(submission, submission.id == evaluation.submission_id)
              .where(score.round_id == round_id, score.part == part, score.task == task,
                     submission.is_superseded.is_(False))
              ).subquery()
    return select(ranked.c.id).where(or_(ranked.c.place == 1, ranked.c.baseline.is_(True)))


def load_entries(session: Session, round_id: int, part: str, *,
                 best_by: tuple[str, str] | None = None,
                 superseded: bool = False, team_id: int | None = None) -> list[lb.Entry]:
    """The scored submissions of a round on one part of the test data (one query), without
    superseded studio scorings unless asked; with ``best_by=(task, direction)`` only each
    team's best by that score row, and baselines; with ``team_id`` only that team's."""
    query = (select(Submission.id, Submission.team_id, Team.name, Submission.created_at,
                    Submission.is_baseline, Submission.is_final, Submission.label,
                    ScoreRow.task, ScoreRow.value, ScoreRow.ci_low, ScoreRow.ci_high)
             .join(Evaluation, Evaluation.id == ScoreRow.evaluation_id)
             .join(Submission, Submission.id == Evaluation.submission_id)
             .join(Team, Team.id == Submission.team_id)
             .where(ScoreRow.round_id == round_id, ScoreRow.part == part))
    if not superseded:
        query = query.where(Submission.is_superseded.is_(False))
    if team_id is not None:
        query = query.where(Submission.team_id == team_id)
    if best_by is not None:
        query = query.where(Submission.id.in_(_best_per_team(round_id, part, *best_by)))
    heads: dict[int, tuple[Any, ...]] = {}
    cells: dict[int, dict[str, lb.Cell]] = defaultdict(dict)
    for sid, team_id, team, created, baseline, final, label, task, value, low, high in \
            session.execute(query):
        heads[sid] = (team_id, team, created, baseline, final, label)
        cells[sid][task] = lb.Cell(value, low, high)
    entries = []
    for sid, (team_id, team, created, baseline, final, label) in heads.items():
        tasks = cells[sid]
        aggregate = tasks.pop(AGGREGATE)
        entries.append(lb.Entry(sid, team_id, team, created, tasks, aggregate,
                                bool(baseline), bool(final), label))
    return entries


def default_part(round_: Round) -> str:
    return "public" if round_.private_fraction > 0 else "all"


def private_open(round_: Round, now: datetime) -> bool:
    """Private scores and ranks appear once the round's deadline has passed (or it closed)."""
    ended = round_.closed or (round_.deadline is not None and now >= round_.deadline)
    return round_.private_fraction > 0 and ended


def ladder_step(round_: Round, part: str) -> float | None:
    """The Ladder's step where it applies: the public part of a round that uses it."""
    return round_.ladder_step if part == "public" else None


def _released(entries: list[lb.Entry], challenge: ChallengeRow, step: float | None
              ) -> list[lb.Entry]:
    if step is None:
        return entries
    return lb.laddered(entries, direction=challenge.direction,  # type: ignore[arg-type]
                       step=step)


def _row(row: lb.Row) -> dict[str, Any]:
    entry = row.entry
    return {"rank": row.rank, "tied": row.tied, "team": entry.team,
            "submission_id": entry.submission_id, "created_at": entry.created_at,
            "label": entry.label, "is_baseline": entry.is_baseline,
            "score": _cell(row.score), "tasks": {k: _cell(v) for k, v in entry.tasks.items()}}


def _cell(cell: lb.Cell) -> dict[str, Any]:
    return {"value": cell.value, "ci_low": cell.ci_low, "ci_high": cell.ci_high}


def standings(platform: Platform, challenge: ChallengeRow, round_: Round, part: str,
              view: str, weights: dict[str, float] | None) -> list[dict[str, Any]]:
    """Ranked rows (as plain data), computed once per round change and request shape."""
    weights = weights if weights is not None else round_.task_weights
    finals = round_.final_count > 0 and part == "private"
    step = ladder_step(round_, part)
    key = ("rows", round_.id, round_.changed_at, part, view,
           tuple(sorted((weights or {}).items())), finals, step)

    def compute() -> list[dict[str, Any]]:
        if view != lb.AGGREGATE and view not in challenge.tasks:
            raise ValueError(f"unknown view {view!r}; use {lb.AGGREGATE!r} or a task: "
                             f"{', '.join(challenge.tasks)}")
        # One row per team by a single stored score: let the database pick each team's best.
        equal = weights is None or len({float(weights.get(t, 1.0))
                                        for t in challenge.tasks}) <= 1
        key_row = view if view != lb.AGGREGATE else AGGREGATE if equal else None
        # The Ladder releases values from each team's whole sequence of submissions.
        best_by = (key_row, challenge.direction) if key_row and not finals and step is None \
            else None
        with platform.db.read() as session:
            entries = _released(load_entries(session, round_.id, part, best_by=best_by),
                                challenge, step)
        if not entries:  # nothing to rank (the weights were checked against the tasks)
            return []
        ranked = lb.rank_entries(entries, direction=challenge.direction,  # type: ignore[arg-type]
                                 view=view, weights=weights, finals_only=finals)
        return [_row(r) for r in ranked]

    rows: list[dict[str, Any]] = platform.boards.get(key, compute)
    return rows


def history(platform: Platform, challenge: ChallengeRow, round_: Round, part: str,
            view: str) -> list[dict[str, Any]]:
    step = ladder_step(round_, part)
    key = ("history", round_.id, round_.changed_at, part, view, step)

    def compute() -> list[dict[str, Any]]:
        with platform.db.read() as session:
            entries = _released(load_entries(session, round_.id, part, superseded=True),
                                challenge, step)
        if not entries:
            return []
        points = lb.history(entries, direction=challenge.direction,  # type: ignore[arg-type]
                            view=view, weights=round_.task_weights)
        return [vars(p) for p in points]

    points: list[dict[str, Any]] = platform.boards.get(key, compute)
    return points
