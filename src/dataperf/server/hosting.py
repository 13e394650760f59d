"""Hosting challenges: registering one on the platform, opening rounds, and seeding the bundled
challenges with their baselines on first start."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from dataperf.challenge import Challenge, ReleasedRound
from dataperf.editions import Edition
from dataperf.home import BUNDLED
from dataperf.registry import challenges
from dataperf.server import queue
from dataperf.server.jobs import BUNDLED_REF
from dataperf.server.models import (
    ChallengeRow,
    Evaluation,
    Round,
    Submission,
    Team,
    utcnow,
)
from dataperf.server.queue import BASELINE_PRIORITY
from dataperf.server.settings import Settings
from dataperf.server.storage import BlobStore

log = logging.getLogger("dataperf.server")
BASELINE_TEAM = "DataPerf baselines"


def scorer_version(challenge: Challenge) -> str:
    return f"{challenge.name}-v{challenge.version}/{challenge.scorer_version}"


def host(session: Session, challenge: Challenge, edition: Edition, edition_ref: str, *,
         name: str, owner_id: int | None, settings: Settings, title: str | None = None,
         description: str | None = None, round_settings: dict[str, Any] | None = None,
         released: Sequence[ReleasedRound] = ()) -> ChallengeRow:
    """Add a hosted challenge with its ``released`` rounds (closed) and its first open one."""
    row = ChallengeRow(name=name, challenge=challenge.name, title=title or challenge.title,
                       description=description or challenge.description, kind=challenge.kind,
                       metric=challenge.metric, direction=challenge.direction,
                       edition_path=edition_ref, edition_hash=edition.content_hash,
                       tasks=[t.name for t in challenge.tasks(edition)], owner_id=owner_id)
    session.add(row)
    session.flush()
    for number, original in enumerate(released, start=1):
        host_released(session, row, challenge, settings, number, original)
    open_round(session, row, challenge, settings, round_settings or {})
    return row


def host_released(session: Session, row: ChallengeRow, challenge: Challenge,
                  settings: Settings, number: int, original: ReleasedRound) -> Round:
    """A closed round of the original challenge: one ranked submission per participant, with
    their files as the edition holds them, queued for scoring after everyone else's."""
    round_ = Round(challenge_id=row.id, number=number, name=original.title[:80], closed=True,
                   scorer_version=scorer_version(challenge), edition_hash=row.edition_hash,
                   daily_quota=0, round_quota=0)
    session.add(round_)
    session.flush()
    store = BlobStore(settings.blobs_dir)
    for participant, files in original.entries.items():
        team = system_team(session, f"Original participant {participant}"[:80])
        queue.queue_files(session, store, Submission(
            round_id=round_.id, team_id=team.id, label=f"{original.name}, participant "
            f"{participant}: the released attacks"[:200]), files,
            max_attempts=settings.max_attempts, priority=BASELINE_PRIORITY)
    return round_


def system_team(session: Session, name: str) -> Team:
    """The platform's own team of that name (baselines, original participants)."""
    team = session.execute(select(Team).where(Team.name == name)).scalar_one_or_none()
    if team is None:
        team = Team(name=name, is_system=True)
        session.add(team)
        session.flush()
    return team


def open_round(session: Session, row: ChallengeRow, challenge: Challenge, settings: Settings,
               changes: dict[str, Any]) -> Round:
    """Close the current round (if any) and open the next, keeping its settings by default,
    with the built-in baselines as its first (unranked) entries."""
    previous = row.rounds[-1] if row.rounds else None
    if previous is not None:
        previous.closed = True
        previous.changed_at = utcnow()
    number = previous.number + 1 if previous else 1
    values: dict[str, Any] = {
        "name": f"Round {number}", "deadline": None,
        "daily_quota": previous.daily_quota if previous else settings.daily_quota,
        "round_quota": previous.round_quota if previous else settings.round_quota,
        "private_fraction": previous.private_fraction if previous else 0.0,
        "final_count": previous.final_count if previous else 0,
        "task_weights": previous.task_weights if previous else None,
        "ladder_step": previous.ladder_step if previous else None,
        "validations": previous.validations if previous else None,
        "generators": previous.generators if previous else None,
        "image_retention_days": previous.image_retention_days if previous else None,
    } | {k: v for k, v in changes.items() if v is not None or k == "deadline"}
    round_ = Round(challenge_id=row.id, number=number, scorer_version=scorer_version(challenge),
                   edition_hash=row.edition_hash, **values)
    session.add(round_)
    session.flush()
    session.refresh(row)
    add_baselines(session, round_, challenge, settings)
    return round_


def add_baselines(session: Session, round_: Round, challenge: Challenge,
                  settings: Settings) -> int:
    """Queue the built-in baselines of ``settings.baselines`` as baseline entries."""
    team = system_team(session, BASELINE_TEAM)
    names = [n for n in settings.baselines if n in challenge.algorithms()]
    for name in names:
        submission = Submission(round_id=round_.id, team_id=team.id, label=name,
                                is_baseline=True)
        session.add(submission)
        session.flush()
        session.add(Evaluation(submission_id=submission.id, baseline=name,
                               priority=BASELINE_PRIORITY, max_attempts=settings.max_attempts))
    return len(names)


def seed(session: Session, settings: Settings) -> list[str]:
    """Host every registered challenge that ships a bundled offline edition, with baselines;
    open a new round (with fresh baselines) wherever a challenge's scorer or bundled edition
    changed. Returns what changed."""
    changed, hosted_now = [], set()
    registered = challenges()
    for name, challenge in sorted(registered.items()):
        bundled = BUNDLED / name / "offline"
        exists = session.scalar(select(ChallengeRow.id).where(ChallengeRow.name == name))
        if exists is None and (bundled / "manifest.json").is_file():
            edition = Edition.open(bundled)
            released = challenge.released_rounds(edition) if settings.released_rounds else []
            host(session, challenge, edition, BUNDLED_REF + "offline", name=name,
                 owner_id=None, settings=settings, released=released)
            changed.append(f"hosted {name}")
            hosted_now.add(name)
    for row in session.scalars(select(ChallengeRow).order_by(ChallengeRow.name)):
        hosted = registered.get(row.challenge)
        if hosted is None or row.name in hosted_now:
            continue  # its definition is gone (its rows stay readable), or it is brand new
        fresh_hash = row.edition_hash
        if row.edition_path == BUNDLED_REF + "offline":
            fresh_hash = Edition.open(BUNDLED / row.challenge / "offline").content_hash
        if row.rounds[-1].scorer_version == scorer_version(hosted) and \
                fresh_hash == row.edition_hash:
            continue
        row.edition_hash = fresh_hash
        open_round(session, row, hosted, settings, {})
        changed.append(f"opened a new round of {row.name} (new scorer or edition)")
    return changed
