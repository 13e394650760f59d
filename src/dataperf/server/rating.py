"""Raters and their validations, free of HTTP: who may rate, the rating queue, the two-step
questionnaire (the prompt judged before the image is shown), gold attacks, statistics per
rater, exclusion, moderation, a round's export and its images' retention.

A rater is handed the oldest pending attack of the round that still needs validations, never
their own and never one they rated; every :data:`GOLD_EVERY`-th task is a gold attack (answers
known to the organizers) they have not rated, when there is one. An assignment not answered
in :data:`ASSIGNMENT_MINUTES` no longer holds the attack for them. When an attack has its k-th
validation it is validated, and its writer is scored again (``studio_scoring.py``).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from dataperf.kinds.redteaming import RedteamingChallenge
from dataperf.kinds.redteaming_files import (
    MAX_TEXT,
    REASONS,
)
from dataperf.kinds.redteaming_released import released_document
from dataperf.server.models import (
    AttackRow,
    AttackState,
    ChallengeRow,
    Generation,
    Rater,
    Round,
    User,
    ValidationRow,
    utcnow,
)
from dataperf.server.settings import Settings
from dataperf.server.storage import BlobStore
from dataperf.server.studio import Refusal, marked_values
from dataperf.server.studio_scoring import (
    RATEABLE,
    attack_of,
    participant_name,
    round_name,
    validation_of,
)

ANSWERS = ("safe", "unsafe", "unsure")
GOLD_EVERY = 4
ASSIGNMENT_MINUTES = 30
#: The window in which :attr:`Settings.ratings_per_session` validations may be given.
SESSION = timedelta(hours=8)
#: A break reminder is shown after this many validations in a row.
BREAK_EVERY = 20


def rater_of(session: Session, user: User, challenge: ChallengeRow) -> Rater | None:
    """The user's rater grant for the challenge, unless they were excluded."""
    return session.scalar(select(Rater).where(
        Rater.user_id == user.id, Rater.challenge_id == challenge.id,
        Rater.excluded_at.is_(None)))


def require_rater(session: Session, user: User, challenge: ChallengeRow) -> Rater:
    rater = rater_of(session, user, challenge)
    if rater is None:
        raise Refusal(403, "forbidden", f"only {challenge.name}'s raters may validate its "
                      "attacks; its organizers grant the rater role")
    return rater


def grant(session: Session, challenge: ChallengeRow, user: User, by: User) -> Rater:
    """Make the user a rater of the challenge (again, if they were excluded: the validations
    they gave before stay excluded)."""
    rater = session.scalar(select(Rater).where(Rater.user_id == user.id,
                                               Rater.challenge_id == challenge.id))
    if rater is None:
        rater = Rater(user_id=user.id, challenge_id=challenge.id, granted_by=by.id)
        session.add(rater)
    rater.excluded_at = rater.excluded_reason = None
    session.flush()
    return rater


def k_of(round_: Round, hosted: RedteamingChallenge) -> int:
    """Validations each attack of the round needs."""
    return round_.validations or hosted.spec.validations


def _live_count() -> Any:
    """Per attack: validations that count or are being given (answered, or assigned within
    :data:`ASSIGNMENT_MINUTES`)."""
    since = utcnow() - timedelta(minutes=ASSIGNMENT_MINUTES)
    return (select(ValidationRow.attack_id, func.count().label("n"))
            .where(ValidationRow.excluded.is_(False),
                   or_(ValidationRow.answered_at.is_not(None), ValidationRow.assigned_at > since))
            .group_by(ValidationRow.attack_id).subquery())


def answered_in_session(session: Session, rater: User) -> int:
    return session.scalar(select(func.count()).select_from(ValidationRow).where(
        ValidationRow.rater_id == rater.id,
        ValidationRow.answered_at > utcnow() - SESSION)) or 0


def next_rating(session: Session, settings: Settings, round_: Round, rater: User, k: int
                ) -> ValidationRow | None:
    """The rater's unanswered assignment in the round, or a new one; None when no attack
    needs them. Refused once they gave their session's share."""
    mine = session.scalar(select(ValidationRow).join(AttackRow).where(
        ValidationRow.rater_id == rater.id, ValidationRow.answered_at.is_(None),
        AttackRow.round_id == round_.id, AttackRow.state.in_(RATEABLE))
        .order_by(ValidationRow.id).limit(1))
    if mine is not None:
        return mine
    done = answered_in_session(session, rater)
    if done >= settings.ratings_per_session:
        raise Refusal(429, "take-a-break", f"you gave {done} validations in the last "
                      f"{SESSION.total_seconds() // 3600:.0f} hours, the most in one "
                      "session; please take a break and come back later")
    rated = select(ValidationRow.attack_id).where(ValidationRow.rater_id == rater.id)
    open_ = (select(AttackRow).where(AttackRow.round_id == round_.id,
                                     AttackRow.user_id != rater.id,
                                     AttackRow.id.not_in(rated))
             .order_by(AttackRow.id).limit(1))
    attack = None
    if done % GOLD_EVERY == GOLD_EVERY - 1:
        attack = session.scalar(open_.where(AttackRow.gold.is_not(None),
                                            AttackRow.state.in_(RATEABLE)))
    if attack is None:
        live = _live_count()
        attack = session.scalar(open_.outerjoin(live, live.c.attack_id == AttackRow.id).where(
            AttackRow.state == AttackState.pending, func.coalesce(live.c.n, 0) < k))
    if attack is None:
        return None
    validation = ValidationRow(attack_id=attack.id, rater_id=rater.id)
    session.add(validation)
    session.flush()
    return validation


def own_rating(session: Session, validation_id: int, rater: User) -> ValidationRow:
    """One of the rater's validations; others' are as if they did not exist."""
    validation = session.get(ValidationRow, validation_id)
    if validation is None or validation.rater_id != rater.id:
        raise Refusal(404, "not-found", f"rating {validation_id} does not exist (or is not "
                      "yours)")
    return validation


def _answer(value: object, question: str) -> str:
    if value not in ANSWERS:
        raise Refusal(422, "invalid-answer", f"{question} must be one of "
                      f"{', '.join(ANSWERS)}, not {value!r}")
    return str(value)


def judge_prompt(validation: ValidationRow, text_safety: object) -> None:
    """Step one: is the prompt itself safe? Asked before the image is shown, once."""
    if validation.text_safety is not None:
        raise Refusal(409, "already-answered", "the prompt is judged already; go on with the "
                      "image")
    validation.text_safety = _answer(text_safety, "text_safety")


def answer(session: Session, validation: ValidationRow, answers: Mapping[str, Any],
           vocabulary: Mapping[str, frozenset[str]], k: int) -> bool:
    """Step two: the image and the categories it shows. True when this was the attack's k-th
    validation (the attack is validated now)."""
    if validation.text_safety is None:
        raise Refusal(409, "prompt-first", "judge the prompt first: the image is shown after")
    if validation.answered_at is not None:
        raise Refusal(409, "already-answered", "you validated this attack already")
    image_safety = _answer(answers.get("image_safety"), "image_safety")
    marks = clean_marks(answers, vocabulary)
    now = utcnow()
    validation.image_safety = image_safety
    validation.answers = marks
    validation.answered_at = now
    validation.seconds = round((now - validation.assigned_at).total_seconds(), 3)
    session.flush()
    attack = validation.attack
    if attack.state != AttackState.pending or counted(session, attack) < k:
        return False
    attack.state = AttackState.validated
    return True


def clean_marks(answers: Mapping[str, Any], vocabulary: Mapping[str, frozenset[str]]
                ) -> dict[str, Any]:
    """A validation's marked categories (vocabulary spelling) and free-text reasons."""
    problems: list[str] = []
    clean: dict[str, Any] = marked_values(answers, vocabulary, problems)
    reasons = answers.get("reasons") or {}
    if not isinstance(reasons, Mapping):
        problems.append("reasons must map a reason's name to its text")
        reasons = {}
    for name, text in reasons.items():
        if name not in REASONS:
            problems.append(f"reasons: {name!r} is not one of {', '.join(REASONS)}")
        elif not isinstance(text, str) or len(text) > MAX_TEXT:
            problems.append(f"reasons.{name} must be text of at most {MAX_TEXT:,} characters")
        elif text.strip():
            clean.setdefault("reasons", {})[name] = text.strip()
    if problems:
        raise Refusal(422, "invalid-answers", "; ".join(problems))
    return clean


def counted(session: Session, attack: AttackRow) -> int:
    """The attack's answered validations that count."""
    return session.scalar(select(func.count()).select_from(ValidationRow).where(
        ValidationRow.attack_id == attack.id, ValidationRow.answered_at.is_not(None),
        ValidationRow.excluded.is_(False))) or 0


# Organizers ------------------------------------------------------------------------------------

def export_round(session: Session, round_: Round) -> dict[str, Any]:
    """The round's data in the released layout: ``submitted`` (a ``submitted/*.json`` frame
    of the attacks that stand, with every validation that counts) and ``attempted`` (every
    prompt: its time, screening, and whether an image of it was submitted)."""
    rows = session.scalars(select(AttackRow).where(
        AttackRow.round_id == round_.id, AttackRow.state.in_(RATEABLE))
        .order_by(AttackRow.id)).all()
    attacks = [attack_of(row, round_) for row in rows]
    validations = [validation_of(v) for row in rows for v in row.validations
                   if v.answered_at is not None and not v.excluded]
    generations = session.scalars(select(Generation).where(Generation.round_id == round_.id)
                                  .order_by(Generation.id)).all()
    attempted = [{"prompt": g.prompt, "participant": participant_name(g.user_id),
                  "timestamp": int(g.created_at.timestamp() * 1000),
                  "models": sorted({i["model"] for i in g.images}),
                  "screening": g.screening, "submitted": bool(g.attacks)}
                 for g in generations]
    return {"round": round_name(round_), "submitted": released_document(attacks, validations),
            "attempted": attempted}


PURGED = "deleted: past the round's retention"


def purge_images(session: Session, store: BlobStore, round_: Round) -> int:
    """Delete the round's generated images (the records stay, without pictures); returns
    how many were deleted."""
    return _purge(session, store, session.scalars(select(Generation).where(
        Generation.round_id == round_.id)).all())


def expire_images(session: Session, store: BlobStore) -> int:
    """Delete the images older than their round's retention (the records stay); returns how
    many were deleted."""
    now, old = utcnow(), list[Generation]()
    for round_ in session.scalars(select(Round).where(Round.image_retention_days.is_not(None))):
        since = now - timedelta(days=round_.image_retention_days or 0)
        old += session.scalars(select(Generation).where(
            Generation.round_id == round_.id, Generation.created_at < since)).all()
    return _purge(session, store, [g for g in old if any(i["sha256"] for i in g.images)])


def _purge(session: Session, store: BlobStore, generations: Sequence[Generation]) -> int:
    """Take the pictures off ``generations``; an image that another generation still shows
    is kept for it."""
    digests: set[str] = set()
    for generation in generations:
        images = []
        for image in generation.images:
            if image["sha256"] is not None:
                digests.add(image["sha256"])
            images.append({**image, "sha256": None, "blocked": image["blocked"] or PURGED})
        generation.images = images
    session.flush()
    if not digests:
        return 0
    purged = {g.id for g in generations}
    kept = {i["sha256"] for generation_id, images in session.execute(
        select(Generation.id, Generation.images)) if generation_id not in purged
        for i in images if i["sha256"]}
    for digest in digests - kept:
        store.path(digest).unlink(missing_ok=True)
    return len(digests - kept)

def set_gold(attack: AttackRow, text_safety: object, image_safety: object) -> None:
    attack.gold = {"text_safety": _answer(text_safety, "text_safety"),
                   "image_safety": _answer(image_safety, "image_safety")}


MODERATED = {"hidden": AttackState.hidden, "removed": AttackState.removed}


def moderate(session: Session, attack: AttackRow, state: str, reason: str, k: int) -> None:
    """Hide or remove an attack (``restore`` brings it back), with the reason logged."""
    if state == "restore":
        attack.state = AttackState.validated if counted(session, attack) >= k \
            else AttackState.pending
    elif state in MODERATED:
        attack.state = MODERATED[state]
    else:
        raise Refusal(422, "invalid-state", f"state must be hidden, removed or restore, not "
                      f"{state!r}")
    if not reason.strip():
        raise Refusal(422, "reason-needed", "say why: the reason is logged with the attack")
    attack.moderation_reason = reason.strip()[:MAX_TEXT]


def exclude(session: Session, challenge: ChallengeRow, rater: Rater, reason: str, k: int
            ) -> set[tuple[int, int]]:
    """Exclude a rater: their validations stop counting, their open assignments go, attacks
    that fall under k are pending again. Returns the (round, participant) pairs to rescore."""
    if not reason.strip():
        raise Refusal(422, "reason-needed", "say why the rater is excluded")
    rater.excluded_at = utcnow()
    rater.excluded_reason = reason.strip()[:MAX_TEXT]
    rounds = select(Round.id).where(Round.challenge_id == challenge.id)
    theirs = session.scalars(select(ValidationRow).join(AttackRow).where(
        ValidationRow.rater_id == rater.user_id, AttackRow.round_id.in_(rounds))).all()
    touched: set[tuple[int, int]] = set()
    for validation in theirs:
        if validation.answered_at is None:
            session.delete(validation)
            continue
        validation.excluded = True
        touched.add((validation.attack.round_id, validation.attack.user_id))
    session.flush()
    for validation in theirs:
        attack = validation.attack
        if attack.state == AttackState.validated and counted(session, attack) < k:
            attack.state = AttackState.pending
    return touched


@dataclass(frozen=True)
class RaterStats:
    rater_id: int
    name: str
    validations: int
    mean_seconds: float | None
    gold_answered: int
    gold_correct: int
    agreement: float | None  # share of answers equal to the other raters' majority
    excluded: bool

    @property
    def gold_accuracy(self) -> float | None:
        return self.gold_correct / self.gold_answered if self.gold_answered else None


def rater_stats(session: Session, challenge: ChallengeRow,
                rater_ids: Iterable[int] | None = None) -> list[RaterStats]:
    """Each rater's count, speed, gold accuracy and agreement with the other raters (both
    safety answers, over the attacks that others rated too)."""
    grants = session.scalars(select(Rater).where(Rater.challenge_id == challenge.id)
                             .order_by(Rater.id)).all()
    wanted = set(rater_ids) if rater_ids is not None else None
    rounds = select(Round.id).where(Round.challenge_id == challenge.id)
    rows = session.execute(
        select(ValidationRow.rater_id, ValidationRow.attack_id, ValidationRow.text_safety,
               ValidationRow.image_safety, ValidationRow.seconds, AttackRow.gold,
               ValidationRow.excluded)
        .join(AttackRow).where(AttackRow.round_id.in_(rounds),
                               ValidationRow.answered_at.is_not(None))).all()
    by_attack: dict[int, list[tuple[int, str, str]]] = defaultdict(list)
    for rater_id, attack_id, text, image, _, _, excluded in rows:
        if not excluded:  # an excluded rater's answers make no one's majority
            by_attack[attack_id].append((rater_id, text, image))
    out = []
    for grant_ in grants:
        if wanted is not None and grant_.user_id not in wanted:
            continue
        mine = [r for r in rows if r[0] == grant_.user_id]
        gold = [r for r in mine if r[5] is not None]
        correct = sum(r[5]["text_safety"] == r[2] and r[5]["image_safety"] == r[3] for r in gold)
        agreed = compared = 0
        for _, attack_id, text, image, _, _, _ in mine:
            others = [(t, i) for rid, t, i in by_attack[attack_id] if rid != grant_.user_id]
            if not others:
                continue
            for answer_, majority in ((text, _majority(t for t, _ in others)),
                                      (image, _majority(i for _, i in others))):
                compared += 1
                agreed += answer_ == majority
        times = [r[4] for r in mine if r[4] is not None]
        out.append(RaterStats(grant_.user_id, grant_.user.name, len(mine),
                              round(sum(times) / len(times), 1) if times else None, len(gold),
                              correct, agreed / compared if compared else None,
                              grant_.excluded_at is not None))
    return out


def _majority(values: Iterable[str]) -> str:
    counts = Counter(values).most_common()
    return counts[0][0] if counts else ""
