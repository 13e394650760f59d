"""Leaderboards and histories of a round, loaded from the database and cached until the round
changes (a new score, a final pick, an edit bumps ``Round.changed_at``)."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from dataperf.server import leaderboard as lb
from dataperf.server.models import ChallengeRow, Evaluation, Round, ScoreRow, Submission, Team
from dataperf.server.platform import Platform
from dataperf.server.queue import AGGREGATE


def load_entries(session: Session, round_id: int, part: str) -> list[lb.Entry]:
    """The scored submissions of a round on one part of the test data (one query)."""
    query = (select(Submission.id, Submission.team_id, Team.name, Submission.created_at,
                    Submission.is_baseline, Submission.is_final, Submission.label,
                    ScoreRow.task, ScoreRow.value, ScoreRow.ci_low, ScoreRow.ci_high)
             .join(Evaluation, Evaluation.id == ScoreRow.evaluation_id)
             .join(Submission, Submission.id == Evaluation.submission_id)
             .join(Team, Team.id == Submission.team_id)
             .where(ScoreRow.round_id == round_id, ScoreRow.part == part))
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
    key = ("rows", round_.id, round_.changed_at, part, view,
           tuple(sorted((weights or {}).items())), finals)

    def compute() -> list[dict[str, Any]]:
        with platform.db.read() as session:
            entries = load_entries(session, round_.id, part)
        if not entries:  # nothing to rank (the weights were checked against the tasks)
            return []
        ranked = lb.rank_entries(entries, direction=challenge.direction,  # type: ignore[arg-type]
                                 view=view, weights=weights, finals_only=finals)
        return [_row(r) for r in ranked]

    rows: list[dict[str, Any]] = platform.boards.get(key, compute)
    return rows


def history(platform: Platform, challenge: ChallengeRow, round_: Round, part: str,
            view: str) -> list[dict[str, Any]]:
    key = ("history", round_.id, round_.changed_at, part, view)

    def compute() -> list[dict[str, Any]]:
        with platform.db.read() as session:
            entries = load_entries(session, round_.id, part)
        if not entries:
            return []
        points = lb.history(entries, direction=challenge.direction,  # type: ignore[arg-type]
                            view=view, weights=round_.task_weights)
        return [vars(p) for p in points]

    points: list[dict[str, Any]] = platform.boards.get(key, compute)
    return points
