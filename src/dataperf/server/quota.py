"""Submission quotas: per team, per 24 hours and per round. Platform failures and cancelled
submissions do not count (``models.QUOTA_STATES``).

A submission counts against its team and against the participant who made it, wherever they
go: moving to a new team does not refill a participant's quota, and the quota that binds is
the more used of the two."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dataperf.server.models import QUOTA_STATES, Evaluation, Round, Submission

DAY = timedelta(hours=24)


@dataclass(frozen=True)
class Usage:
    whose: str  # "your team" or "you"
    today: int  # in the last 24 hours
    in_round: int
    frees_at: datetime | None  # when the oldest of the day's submissions stops counting


def usages(session: Session, round_: Round, team_id: int, user_id: int, now: datetime
           ) -> tuple[Usage, Usage]:
    """The team's usage of the round's quota and the participant's own (in any team)."""
    return (_usage(session, round_, Submission.team_id == team_id, now, "your team"),
            _usage(session, round_, Submission.user_id == user_id, now, "you"))


def binding(round_: Round, found: tuple[Usage, Usage]) -> Usage:
    """The usage that leaves the fewest submissions (the team's when they are equal)."""
    def left(u: Usage) -> int:
        daily = round_.daily_quota - u.today
        return min(daily, round_.round_quota - u.in_round) if round_.round_quota is not None \
            else daily
    return min(found, key=left)


def _usage(session: Session, round_: Round, whose: Any, now: datetime, name: str) -> Usage:
    counted = (select(Submission.created_at).join(Evaluation)
               .where(Submission.round_id == round_.id, whose,
                      Submission.is_baseline.is_(False), Submission.is_studio.is_(False),
                      Evaluation.state.in_(QUOTA_STATES)))
    in_round = session.scalar(select(func.count()).select_from(counted.subquery())) or 0
    day = counted.where(Submission.created_at > now - DAY).subquery()
    used_today = session.scalar(select(func.count()).select_from(day)) or 0
    oldest = session.scalar(select(func.min(day.c.created_at)))
    return Usage(name, used_today, in_round, oldest + DAY if oldest is not None else None)
