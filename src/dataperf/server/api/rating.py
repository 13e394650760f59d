"""Raters: the rating queue and the two-step questionnaire; organizers: raters, their
statistics and exclusion, gold attacks, moderation and the review of a round's attacks."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dataperf.kinds.redteaming import RedteamingChallenge
from dataperf.kinds.redteaming_files import REASONS
from dataperf.screening import blurred
from dataperf.server import rating, studio, studio_scoring
from dataperf.server.api.deps import current_user, get_platform
from dataperf.server.api.errors import ApiError, forbidden, not_found
from dataperf.server.api.lookup import require_manager, round_row
from dataperf.server.api.schemas import (
    GoldIn,
    ImageJudgement,
    ModerationIn,
    PromptJudgement,
    RaterIn,
    RaterStatsOut,
    RatingNext,
    RatingOut,
    ReasonIn,
    ReviewOut,
)
from dataperf.server.api.studio import (
    API,
    MAX_LISTED,
    PRIVATE,
    attack_out,
    red_teaming_row,
    refusals,
)
from dataperf.server.models import (
    AttackRow,
    AttackState,
    ChallengeRow,
    Rater,
    Role,
    User,
    ValidationRow,
)
from dataperf.server.platform import Platform

router = APIRouter(tags=["red-teaming raters"])


def _hosted(platform: Platform, challenge: ChallengeRow) -> RedteamingChallenge:
    hosted = platform.challenge(challenge)
    assert isinstance(hosted, RedteamingChallenge)
    return hosted


def rating_out(row: ValidationRow) -> RatingOut:
    attack = row.attack
    stage: Literal["prompt", "image", "done"] = \
        "done" if row.answered_at else "image" if row.text_safety else "prompt"
    return RatingOut(
        id=row.id, challenge=attack.round.challenge.name,
        round=attack.round.number, prompt=attack.generation.prompt,
        stage=stage, image_url=None if stage == "prompt" else f"{API}/ratings/{row.id}/image",
        text_safety=row.text_safety, image_safety=row.image_safety,  # type: ignore[arg-type]
        answers=row.answers, assigned_at=row.assigned_at, answered_at=row.answered_at)


def stats_out(stats: rating.RaterStats) -> RaterStatsOut:
    return RaterStatsOut(rater_id=stats.rater_id, name=stats.name,
                         validations=stats.validations, mean_seconds=stats.mean_seconds,
                         gold_answered=stats.gold_answered, gold_accuracy=stats.gold_accuracy,
                         agreement=stats.agreement, excluded=stats.excluded)


# Raters ------------------------------------------------------------------------------------------

@router.post("/challenges/{name}/ratings", response_model=RatingNext,
             summary="The next attack to validate (your open one first)")
def next_rating(name: str, user: User = Depends(current_user),
                platform: Platform = Depends(get_platform)) -> RatingNext:
    with platform.db.write() as session, refusals():
        challenge = red_teaming_row(session, name)
        rating.require_rater(session, user, challenge)
        if not studio.has_consented(session, user, challenge):
            raise ApiError(403, "consent-needed", "accept the content warning first (POST "
                           f"{API}/challenges/{name}/consent): the attacks you rate may show "
                           "disturbing images")
        hosted = _hosted(platform, challenge)
        round_ = round_row(challenge, None)
        row = rating.next_rating(session, platform.settings, round_, user,
                                 rating.k_of(round_, hosted))
        done = rating.answered_in_session(session, user)
        vocabulary = hosted.vocabulary(platform.edition(challenge))
        return RatingNext(
            rating=rating_out(row) if row is not None else None, answered_in_session=done,
            session_cap=platform.settings.ratings_per_session,
            take_a_break=done > 0 and done % rating.BREAK_EVERY == 0,
            support=platform.settings.rater_support,
            vocabularies={q: sorted(v) for q, v in vocabulary.items()}, reasons=list(REASONS))


def _own(session: Session, rating_id: int, user: User) -> ValidationRow:
    with refusals():
        row = rating.own_rating(session, rating_id, user)
        rating.require_rater(session, user, row.attack.round.challenge)
    return row


@router.get("/ratings/{rating_id}", response_model=RatingOut, summary="One of your ratings")
def get_rating(rating_id: int, user: User = Depends(current_user),
               platform: Platform = Depends(get_platform)) -> RatingOut:
    with platform.db.read() as session:
        return rating_out(_own(session, rating_id, user))


@router.post("/ratings/{rating_id}/prompt", response_model=RatingOut,
             summary="Step one: is the prompt safe? (before the image is shown)")
def judge_prompt(rating_id: int, body: PromptJudgement, user: User = Depends(current_user),
                 platform: Platform = Depends(get_platform)) -> RatingOut:
    with platform.db.write() as session, refusals():
        row = _own(session, rating_id, user)
        rating.judge_prompt(row, body.text_safety)
        return rating_out(row)


@router.get("/ratings/{rating_id}/image", response_class=Response,
            summary="The attack's image: blurred unless revealed; after the prompt is judged",
            responses={200: {"content": {"image/png": {}}}})
def rating_image(rating_id: int, reveal: bool = Query(False), user: User = Depends(current_user),
                 platform: Platform = Depends(get_platform)) -> Response:
    with platform.db.read() as session:
        row = _own(session, rating_id, user)
        if row.text_safety is None:
            raise ApiError(409, "prompt-first", "judge the prompt first: the image is shown "
                           "after, so that it does not colour the answer")
        digest = row.attack.generation.images[row.attack.image]["sha256"]
    data = platform.store.get(digest)
    return Response(data if reveal else blurred(data), media_type="image/png", headers=PRIVATE)


@router.post("/ratings/{rating_id}/answer", response_model=RatingOut,
             summary="Step two: the image and the categories it shows")
def answer(rating_id: int, body: ImageJudgement, user: User = Depends(current_user),
           platform: Platform = Depends(get_platform)) -> RatingOut:
    with platform.db.write() as session, refusals():
        row = _own(session, rating_id, user)
        attack = row.attack
        challenge = attack.round.challenge
        hosted = _hosted(platform, challenge)
        round_ = attack.round
        k = rating.k_of(round_, hosted)
        if rating.answer(session, row, body.model_dump(),
                         hosted.vocabulary(platform.edition(challenge)), k):
            studio_scoring.rescore(session, platform.store, platform.settings, round_,
                                   attack.user_id, k)
        return rating_out(row)


@router.get("/challenges/{name}/ratings/me", response_model=RaterStatsOut,
            summary="Your validations, agreement with other raters and gold accuracy")
def my_stats(name: str, user: User = Depends(current_user),
             platform: Platform = Depends(get_platform)) -> RaterStatsOut:
    with platform.db.read() as session, refusals():
        challenge = red_teaming_row(session, name)
        rating.require_rater(session, user, challenge)
        return stats_out(rating.rater_stats(session, challenge, [user.id])[0])


# Organizers --------------------------------------------------------------------------------------

def _managed(session: Session, name: str, user: User) -> ChallengeRow:
    challenge = red_teaming_row(session, name)
    require_manager(user, challenge)
    return challenge


@router.post("/challenges/{name}/raters", response_model=RaterStatsOut, status_code=201,
             summary="Make an account a rater of the challenge")
def add_rater(name: str, body: RaterIn, user: User = Depends(current_user),
              platform: Platform = Depends(get_platform)) -> RaterStatsOut:
    with platform.db.write() as session:
        challenge = _managed(session, name, user)
        account = session.scalar(select(User).where(
            func.lower(User.email) == body.email.strip().lower()))
        if account is None:
            raise not_found(f"an account with the email {body.email!r}")
        rating.grant(session, challenge, account, user)
        return stats_out(rating.rater_stats(session, challenge, [account.id])[0])


@router.get("/challenges/{name}/raters", response_model=list[RaterStatsOut],
            summary="Every rater's validations, speed, agreement and gold accuracy")
def list_raters(name: str, user: User = Depends(current_user),
                platform: Platform = Depends(get_platform)) -> list[RaterStatsOut]:
    with platform.db.read() as session:
        return [stats_out(s) for s in rating.rater_stats(session, _managed(session, name, user))]


@router.post("/challenges/{name}/raters/{rater_id}/exclude", response_model=RaterStatsOut,
             summary="Exclude a rater: their validations stop counting and are asked again")
def exclude_rater(name: str, rater_id: int, body: ReasonIn, user: User = Depends(current_user),
                  platform: Platform = Depends(get_platform)) -> RaterStatsOut:
    with platform.db.write() as session, refusals():
        challenge = _managed(session, name, user)
        grant = session.scalar(select(Rater).where(Rater.challenge_id == challenge.id,
                                                   Rater.user_id == rater_id))
        if grant is None:
            raise not_found(f"rater {rater_id} of {name}")
        hosted = _hosted(platform, challenge)
        k = rating.k_of(round_row(challenge, None), hosted)
        for round_id, participant in sorted(rating.exclude(session, challenge, grant,
                                                           body.reason, k)):
            rescored = next(r for r in challenge.rounds if r.id == round_id)
            studio_scoring.rescore(session, platform.store, platform.settings, rescored,
                                   participant, rating.k_of(rescored, hosted))
        return stats_out(rating.rater_stats(session, challenge, [rater_id])[0])


def _managed_attack(session: Session, attack_id: int, user: User) -> AttackRow:
    attack = session.get(AttackRow, attack_id)
    if attack is None:
        raise not_found(f"attack {attack_id}")
    require_manager(user, attack.round.challenge)
    return attack


def review_out(session: Session, row: AttackRow) -> ReviewOut:
    return ReviewOut(**attack_out(row).model_dump(), submitter=row.user.name,
                     validations=rating.counted(session, row), gold=row.gold,
                     moderation_reason=row.moderation_reason)


@router.post("/attacks/{attack_id}/gold", response_model=ReviewOut,
             summary="Make an attack gold: the organizers' answers, to measure raters by")
def set_gold(attack_id: int, body: GoldIn, user: User = Depends(current_user),
             platform: Platform = Depends(get_platform)) -> ReviewOut:
    with platform.db.write() as session, refusals():
        attack = _managed_attack(session, attack_id, user)
        rating.set_gold(attack, body.text_safety, body.image_safety)
        return review_out(session, attack)


@router.post("/attacks/{attack_id}/moderation", response_model=ReviewOut,
             summary="Hide or remove an attack (or restore it), with the reason logged")
def moderate(attack_id: int, body: ModerationIn, user: User = Depends(current_user),
             platform: Platform = Depends(get_platform)) -> ReviewOut:
    with platform.db.write() as session, refusals():
        attack = _managed_attack(session, attack_id, user)
        round_ = attack.round
        hosted = _hosted(platform, attack.round.challenge)
        k = rating.k_of(round_, hosted)
        rating.moderate(session, attack, body.state, body.reason, k)
        session.flush()
        writers = {attack.user_id, *studio_scoring.same_prompt_writers(session, attack)}
        for writer in sorted(writers):
            studio_scoring.rescore(session, platform.store, platform.settings, round_, writer, k)
        return review_out(session, attack)


@router.get("/challenges/{name}/review", response_model=list[ReviewOut],
            summary="The round's attacks for its organizers, newest first")
def review(name: str, round: int | None = None, state: AttackState | None = None,
           user: User = Depends(current_user),
           platform: Platform = Depends(get_platform)) -> list[ReviewOut]:
    with platform.db.read() as session:
        round_ = round_row(_managed(session, name, user), round)
        query: Any = select(AttackRow).where(AttackRow.round_id == round_.id)
        if state is not None:
            query = query.where(AttackRow.state == state)
        rows = session.scalars(query.order_by(AttackRow.id.desc()).limit(MAX_LISTED))
        return [review_out(session, row) for row in rows]


@router.get("/challenges/{name}/rounds/{number}/export",
            summary="A round's data in the released Adversarial Nibbler layout")
def export_round(name: str, number: int, user: User = Depends(current_user),
                 platform: Platform = Depends(get_platform)) -> dict[str, Any]:
    with platform.db.read() as session:
        return rating.export_round(session, round_row(_managed(session, name, user), number))


@router.delete("/challenges/{name}/rounds/{number}/images",
               summary="Admins: delete a round's generated images (records stay)")
def purge_images(name: str, number: int, user: User = Depends(current_user),
                 platform: Platform = Depends(get_platform)) -> dict[str, int]:
    if user.role != Role.admin:
        raise forbidden("only admins may purge a round's images")
    with platform.db.write() as session:
        round_ = round_row(red_teaming_row(session, name), number)
        return {"deleted": rating.purge_images(session, platform.store, round_)}
