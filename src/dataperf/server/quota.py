"""Submission quotas: per team, per 24 hours and per round. Platform failures and cancelled
submissions do not count (``models.QUOTA_STATES``)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dataperf.server.models import QUOTA_STATES, Evaluation, Round, Submission

DAY = timedelta(hours=24)


def usage(session: Session, round_: Round, team_id: int, now: datetime
          ) -> tuple[int, int, datetime | None]:
    """(used in the last 24 hours, used in the round, when the oldest of the day's expires)."""
    counted = (select(Submission.created_at).join(Evaluation)
               .where(Submission.round_id == round_.id, Submission.team_id == team_id,
                      Submission.is_baseline.is_(False), Submission.is_studio.is_(False),
                      Evaluation.state.in_(QUOTA_STATES)))
    in_round = session.scalar(select(func.count()).select_from(counted.subquery())) or 0
    day = counted.where(Submission.created_at > now - DAY).subquery()
    used_today = session.scalar(select(func.count()).select_from(day)) or 0
    oldest = session.scalar(select(func.min(day.c.created_at)))
    return used_today, in_round, (oldest + DAY if oldest is not None else None)
