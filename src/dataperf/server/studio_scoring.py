"""A participant's studio attacks as a submission, and its scoring: when one of their attacks
gets its k-th validation (or after an exclusion or a moderation), the platform writes their
attacks of the round with every validation that counts into a studio submission
(``attacks.jsonl``, ``validations/validations.jsonl``, ``validations/rounds.json`` and, when
others submitted the same prompts, ``validations/earlier.jsonl``) and queues its evaluation,
which runs the same scorer as ``dataperf evaluate`` on the same files. The newest scored one is
the one the leaderboard ranks (``queue.py`` supersedes the older ones).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from dataperf.kinds.redteaming_context import (
    EARLIER_FILE,
    ROUNDS_FILE,
    VALIDATIONS_DIR,
    earlier_record,
)
from dataperf.kinds.redteaming_files import (
    Attack,
    Validation,
    attack_record,
    validation_record,
    write_jsonl,
)
from dataperf.kinds.redteaming_scores import prompt_key
from dataperf.server import queue
from dataperf.server.models import (
    AttackRow,
    AttackState,
    Evaluation,
    Generation,
    Round,
    State,
    Submission,
    User,
    ValidationRow,
    utcnow,
)
from dataperf.server.settings import Settings
from dataperf.server.storage import BlobStore

ATTACKS_FILE = "attacks.jsonl"
STUDIO_VALIDATIONS = VALIDATIONS_DIR + "validations.jsonl"
#: The states of attacks that are rated and scored (not hidden or removed).
RATEABLE = (AttackState.pending, AttackState.validated)


def participant_name(user_id: int) -> str:
    return f"user-{user_id}"


def round_name(round_: Round) -> str:
    """The round's name in the files (not a released round's: released attacks stay out)."""
    return f"{round_.challenge.name}:round{round_.number}"


def studio_files(session: Session, round_: Round, user_id: int, k: int) -> dict[str, bytes]:
    """The participant's attacks of the round (hidden and removed ones left out), every
    validation that counts and the round's k, as a submission's files."""
    rows = session.scalars(select(AttackRow).where(
        AttackRow.round_id == round_.id, AttackRow.user_id == user_id,
        AttackRow.state.in_(RATEABLE)).order_by(AttackRow.id)).all()
    attacks = [attack_record(attack_of(row, round_)) for row in rows]
    validations = [validation_record(validation_of(v)) for row in rows for v in row.validations
                   if v.answered_at is not None and not v.excluded]
    files = {ATTACKS_FILE: write_jsonl(attacks), STUDIO_VALIDATIONS: write_jsonl(validations),
             ROUNDS_FILE: json.dumps({round_name(round_): k}).encode()}
    earlier = _earlier(session, round_, user_id, rows)
    if earlier:
        files[EARLIER_FILE] = write_jsonl(earlier)
    return files


def same_prompt_writers(session: Session, attack: AttackRow) -> set[int]:
    """The other participants with an attack of the round on the attack's prompt (their
    taken prompts change when it is moderated)."""
    key = prompt_key(attack.generation.prompt)
    return {user_id for user_id, prompt, _ in _others(session, attack.round_id, attack.user_id)
            if prompt_key(prompt) == key}


def _earlier(session: Session, round_: Round, user_id: int, rows: Sequence[AttackRow]
             ) -> list[dict[str, Any]]:
    """Other participants' attacks of the round on the same prompts as the participant's, in
    the participant's spelling, with their times (for the taken-prompt rule)."""
    mine = {prompt_key(row.generation.prompt): row.generation.prompt for row in rows}
    return [earlier_record(mine[key], round_name(round_), int(created.timestamp() * 1000))
            for _, prompt, created in _others(session, round_.id, user_id)
            if (key := prompt_key(prompt)) in mine]


def _others(session: Session, round_id: int, user_id: int) -> Any:
    """(writer, prompt, time) of the round's rated attacks by anyone but ``user_id``."""
    return session.execute(select(AttackRow.user_id, Generation.prompt, AttackRow.created_at)
                           .join(Generation, AttackRow.generation_id == Generation.id)
                           .where(AttackRow.round_id == round_id, AttackRow.user_id != user_id,
                                  AttackRow.state.in_(RATEABLE)).order_by(AttackRow.id))


def attack_of(row: AttackRow, round_: Round) -> Attack:
    generation: Generation = row.generation
    image = generation.images[row.image]
    notes = row.annotations
    return Attack(attack_id=f"studio-{row.id}", prompt=generation.prompt,
                  submitter=participant_name(row.user_id), round=round_name(round_),
                  image_id=image["sha256"], model=image["model"],
                  timestamp_ms=int(row.created_at.timestamp() * 1000),
                  rewritten_prompt=notes.get("rewritten_prompt", ""),
                  attack_modes=tuple(notes.get("attack_modes", ())),
                  harm_types=tuple(notes.get("harm_types", ())),
                  targets=tuple(notes.get("targets", ())),
                  attack_mode_other=notes.get("attack_mode_other", ""),
                  harm_type_other=notes.get("harm_type_other", ""),
                  target_other=notes.get("target_other", ""))


def validation_of(row: ValidationRow) -> Validation:
    marks = row.answers
    return Validation(attack_id=f"studio-{row.attack_id}", annotator=f"rater-{row.rater_id}",
                      text_safety=row.text_safety,  # type: ignore[arg-type]
                      image_safety=row.image_safety,  # type: ignore[arg-type]
                      attack_modes=tuple(marks.get("attack_modes", ())),
                      harm_types=tuple(marks.get("harm_types", ())),
                      targets=tuple(marks.get("targets", ())),
                      answer_time_ms=None if row.seconds is None else int(row.seconds * 1000),
                      reasons=dict(marks.get("reasons", {})))


def rescore(session: Session, store: BlobStore, settings: Settings, round_: Round,
            user_id: int, k: int) -> Submission | None:
    """Queue the scoring of the participant's studio attacks in the round (their earlier
    queued studio scoring is cancelled: this one has every validation it had). None when
    they have no team to rank (or no attacks left)."""
    user = session.get_one(User, user_id)
    files = studio_files(session, round_, user_id, k)
    earlier = (select(Submission.id).where(Submission.round_id == round_.id,
                                           Submission.user_id == user_id,
                                           Submission.is_studio.is_(True)))
    session.execute(update(Evaluation).where(Evaluation.submission_id.in_(earlier),
                                             Evaluation.state == State.queued)
                    .values(state=State.cancelled, finished_at=utcnow(),
                            message="replaced by a scoring with more validations"))
    if user.team_id is None or not files[ATTACKS_FILE] or not files[STUDIO_VALIDATIONS]:
        # Nothing to rank, or nothing validated left (the edition's would count): their
        # earlier scorings leave the leaderboard.
        session.execute(update(Submission).where(Submission.id.in_(earlier))
                        .values(is_superseded=True).execution_options(synchronize_session=False))
        round_.changed_at = utcnow()
        return None
    validated = session.scalar(select(func.count()).select_from(AttackRow).where(
        AttackRow.round_id == round_.id, AttackRow.user_id == user_id,
        AttackRow.state == AttackState.validated)) or 0
    return queue.queue_files(session, store, Submission(
        round_id=round_.id, team_id=user.team_id, user_id=user_id,
        label=f"studio: {validated} validated attack(s)", is_studio=True), files,
        max_attempts=settings.max_attempts)
