"""Finding rows for a request, with the visibility rules applied."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from dataperf.server.api.errors import ApiError, forbidden, not_found
from dataperf.server.models import ChallengeRow, Role, Round, Submission, User


def challenge_row(session: Session, name: str) -> ChallengeRow:
    row = session.execute(select(ChallengeRow).where(ChallengeRow.name == name)
                          ).scalar_one_or_none()
    if row is None:
        raise not_found(f"challenge {name!r}")
    return row


def round_row(challenge: ChallengeRow, number: int | None) -> Round:
    """The given round, or the newest one."""
    if not challenge.rounds:
        raise ApiError(409, "conflict", f"{challenge.name} has no round yet")
    if number is None:
        return challenge.rounds[-1]
    for round_ in challenge.rounds:
        if round_.number == number:
            return round_
    raise not_found(f"round {number} of {challenge.name}")


def manages(user: User | None, challenge: ChallengeRow) -> bool:
    """Admins manage every challenge; an organizer manages the challenges they created."""
    if user is None:
        return False
    return user.role == Role.admin or (user.role == Role.organizer
                                       and challenge.owner_id == user.id)


def require_manager(user: User, challenge: ChallengeRow) -> None:
    if not manages(user, challenge):
        raise forbidden(f"only {challenge.name}'s organizers (and admins) may do this")


def submission_row(session: Session, submission_id: int, user: User | None) -> Submission:
    """A submission its viewer may see: their team's, any baseline, or all for managers."""
    row = session.get(Submission, submission_id)
    if row is None:
        raise not_found(f"submission {submission_id}")
    mine = user is not None and user.team_id == row.team_id
    if not (mine or row.is_baseline or manages(user, row.round.challenge)):
        raise not_found(f"submission {submission_id}")
    return row
