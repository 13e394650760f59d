"""The red-teaming studio: accept the content warning, send prompts, see their images (blurred
unless revealed), submit attacks, follow one's attempts and attacks."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi import APIRouter, Depends, File, Form, Query, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from dataperf.generators import GenerationError
from dataperf.generators.upload import MAX_BYTES, Upload
from dataperf.screening import blurred
from dataperf.server import hints, queue, studio
from dataperf.server.api.deps import current_user, get_platform
from dataperf.server.api.errors import ApiError
from dataperf.server.api.lookup import challenge_row, manages, round_row
from dataperf.server.api.schemas import (
    AttackIn,
    AttackOut,
    GenerationOut,
    ImageOut,
    PromptIn,
    StudioOut,
)
from dataperf.server.models import AttackRow, ChallengeRow, Generation, Round, State, User
from dataperf.server.platform import Platform

router = APIRouter(tags=["red-teaming studio"])
API = "/api/v1"
#: Images are private to their viewers: never kept by shared caches or the browser's disk.
PRIVATE = {"Cache-Control": "private, no-store", "X-Content-Type-Options": "nosniff"}
MAX_LISTED = 200


@contextmanager
def refusals() -> Iterator[None]:
    """The studio's refusals as API errors."""
    try:
        yield
    except studio.Refusal as refusal:
        headers = {"Retry-After": str(refusal.retry_after)} if refusal.retry_after else None
        raise ApiError(refusal.status, refusal.code, refusal.message, headers=headers) from None


def red_teaming_row(session: Session, name: str) -> ChallengeRow:
    challenge = challenge_row(session, name)
    with refusals():
        studio.check_kind(challenge)
    return challenge


def studio_out(platform: Platform, session: Session, challenge: ChallengeRow,
               user: User) -> StudioOut:
    round_ = round_row(challenge, None)
    hosted = platform.challenge(challenge)
    generators = studio.round_generators(round_, platform.settings)
    vocabulary = hosted.vocabulary(platform.edition(challenge))  # type: ignore[attr-defined]
    return StudioOut(
        challenge=challenge.name, round=round_.number,
        content_warning=getattr(hosted, "content_warning", ""),
        consented=studio.has_consented(session, user, challenge),
        images_per_prompt=generators.images_per_prompt,
        test_generator=any(c.name == "tiny" for c in generators.generators),
        prompts_per_minute=platform.settings.generations_per_minute,
        takes_uploads=studio.takes_uploads(generators),
        image_retention_days=round_.image_retention_days,
        screener=hints.screener_name(platform.settings),
        vocabularies={q: sorted(v) for q, v in vocabulary.items()})


def generation_out(platform: Platform, session: Session, row: Generation) -> GenerationOut:
    wait = None
    if row.state == State.queued:
        wait = queue.wait_estimate(session, row,
                                   heartbeat_seconds=platform.settings.heartbeat_seconds)
    submitted = {attack.image for attack in row.attacks}
    images = [ImageOut(index=i, blocked=image["blocked"],
                       url=None if image["sha256"] is None
                       else f"{API}/generations/{row.id}/images/{i}",
                       test_generator=bool(image.get("test_generator")),
                       submitted=i in submitted,
                       screening=image.get("screening") if image["sha256"] else None)
              for i, image in enumerate(row.images)]
    return GenerationOut(
        id=row.id, challenge=row.round.challenge.name, round=row.round.number,
        prompt=row.prompt, created_at=row.created_at, state=row.state,
        position=wait.position if wait else None, wait_seconds=wait.seconds if wait else None,
        message=row.message, screening=row.screening, images=images)


def attack_out(row: AttackRow) -> AttackOut:
    generation = row.generation
    return AttackOut(id=row.id, challenge=generation.round.challenge.name,
                     round=generation.round.number, generation=generation.id, image=row.image,
                     prompt=generation.prompt, created_at=row.created_at, state=row.state.value,
                     annotations=row.annotations)


@router.get("/challenges/{name}/studio", response_model=StudioOut,
            summary="The studio of a red-teaming challenge's current round")
def get_studio(name: str, user: User = Depends(current_user),
               platform: Platform = Depends(get_platform)) -> StudioOut:
    with platform.db.read() as session:
        return studio_out(platform, session, red_teaming_row(session, name), user)


@router.post("/challenges/{name}/consent", response_model=StudioOut,
             summary="Accept the challenge's content warning (needed before generating)")
def post_consent(name: str, user: User = Depends(current_user),
                 platform: Platform = Depends(get_platform)) -> StudioOut:
    with platform.db.write() as session:
        challenge = red_teaming_row(session, name)
        studio.consent(session, user, challenge)
        session.flush()
        return studio_out(platform, session, challenge, user)


@router.post("/challenges/{name}/generations", response_model=GenerationOut,
             status_code=201, summary="Send a prompt: its images are made on the queue",
             responses={200: {"description": "the prompt was sent before: the same images"},
                        429: {"description": "too many prompts in the last minute"}})
async def post_generation(name: str, body: PromptIn, user: User = Depends(current_user),
                          platform: Platform = Depends(get_platform)) -> Any:
    with refusals():
        text = studio.clean_prompt(body.prompt)
    with platform.db.read() as session:
        round_ = _consented_round(session, name, user)
        known = studio.find_generation(session, round_, user, text)
    screening = known.screening if known is not None else \
        await run_in_threadpool(hints.screen_prompt, platform.settings, text)
    return await run_in_threadpool(_queue_generation, platform, name, user, text, screening)


def _consented_round(session: Session, name: str, user: User) -> Round:
    """The challenge's current round, once the user has accepted its content warning."""
    challenge = red_teaming_row(session, name)
    if not studio.has_consented(session, user, challenge):
        raise ApiError(403, "consent-needed", "accept the content warning first (POST "
                       f"{API}/challenges/{name}/consent)")
    return round_row(challenge, None)


@router.post("/challenges/{name}/uploads", response_model=GenerationOut, status_code=201,
             summary="Upload an image made elsewhere, with its prompt and the model's name "
                     "(in rounds that take uploads)")
async def post_upload(name: str, prompt: str = Form(...), model: str = Form(...),
                      image: UploadFile = File(...), user: User = Depends(current_user),
                      platform: Platform = Depends(get_platform)) -> GenerationOut:
    with refusals():
        text = studio.clean_prompt(prompt)
    data = await image.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise ApiError(413, "too-large", f"the image is over {MAX_BYTES // 2**20} MB, the most "
                       "an upload may be")
    with platform.db.read() as session, refusals():
        studio.check_upload(session, platform.settings, _consented_round(session, name, user),
                            user, text)
    screening = await run_in_threadpool(hints.screen_prompt, platform.settings, text)
    try:
        made = await run_in_threadpool(Upload().accept, data, model)
    except GenerationError as err:
        raise ApiError(422, "invalid-image", str(err)) from None
    assert made.png is not None  # a blank upload is refused
    digest = await run_in_threadpool(platform.store.put, made.png)
    (screened,) = await run_in_threadpool(hints.screen, "images",
                                          platform.settings.image_screener, [made.png])
    try:
        with platform.db.write() as session, refusals():
            row = studio.record_upload(session, platform.settings,
                                       round_row(red_teaming_row(session, name), None), user,
                                       text, made, digest, screening, screened)
            return generation_out(platform, session, row)
    except IntegrityError:  # the same prompt uploaded twice at once
        raise ApiError(409, "already-uploaded", "this prompt's image is being uploaded from "
                       "elsewhere") from None


def _queue_generation(platform: Platform, name: str, user: User, text: str,
                      screening: dict[str, Any] | None) -> JSONResponse:
    for _ in range(2):  # the same prompt sent twice at once: the second finds the first
        try:
            with platform.db.write() as session, refusals():
                round_ = round_row(red_teaming_row(session, name), None)
                row, queued = studio.request_images(session, platform.settings, round_, user,
                                                    text, screening)
                session.flush()
                out = generation_out(platform, session, row)
            return JSONResponse(out.model_dump(mode="json"), status_code=201 if queued else 200)
        except IntegrityError:
            continue
    raise ApiError(409, "conflict", "the same prompt is being sent from elsewhere; try again")


@router.get("/challenges/{name}/generations", response_model=list[GenerationOut],
            summary="Your prompts in the current round, newest first (the attempts)")
def list_generations(name: str, user: User = Depends(current_user),
                     platform: Platform = Depends(get_platform)) -> list[GenerationOut]:
    with platform.db.read() as session:
        round_ = round_row(red_teaming_row(session, name), None)
        rows = session.scalars(select(Generation).where(
            Generation.round_id == round_.id, Generation.user_id == user.id)
            .order_by(Generation.id.desc()).limit(MAX_LISTED))
        return [generation_out(platform, session, row) for row in rows]


def _visible(session: Session, generation_id: int, user: User) -> Generation:
    row = session.get(Generation, generation_id)
    manager = row is not None and manages(user, row.round.challenge)
    with refusals():
        return studio.visible_generation(session, generation_id, user, manager)


@router.get("/generations/{generation_id}", response_model=GenerationOut,
            summary="One of your prompts: its state, place in the queue, images")
def get_generation(generation_id: int, user: User = Depends(current_user),
                   platform: Platform = Depends(get_platform)) -> GenerationOut:
    with platform.db.read() as session:
        return generation_out(platform, session, _visible(session, generation_id, user))


@router.get("/generations/{generation_id}/images/{index}",
            response_class=Response, summary="A generated image: blurred unless revealed",
            responses={200: {"content": {"image/png": {}}}})
def get_image(generation_id: int, index: int, reveal: bool = Query(
        False, description="the clear image instead of the blurred one"),
        user: User = Depends(current_user),
        platform: Platform = Depends(get_platform)) -> Response:
    with platform.db.read() as session, refusals():
        image = studio.shown_image(_visible(session, generation_id, user), index)
    data = platform.store.get(image["sha256"])
    return Response(data if reveal else blurred(data), media_type="image/png", headers=PRIVATE)


@router.post("/generations/{generation_id}/attacks", response_model=AttackOut,
             status_code=201, summary="Submit one of a prompt's images as an attack")
def post_attack(generation_id: int, body: AttackIn, user: User = Depends(current_user),
                platform: Platform = Depends(get_platform)) -> AttackOut:
    try:
        with platform.db.write() as session, refusals():
            generation = _visible(session, generation_id, user)
            challenge = generation.round.challenge
            vocabulary = platform.challenge(challenge).vocabulary(  # type: ignore[attr-defined]
                platform.edition(challenge))
            attack = studio.submit_attack(session, generation, user, body.image,
                                          body.model_dump(exclude={"image"}), vocabulary)
            return attack_out(attack)
    except IntegrityError:
        raise ApiError(409, "already-submitted", f"image {body.image} of this prompt is "
                       "submitted already") from None


@router.get("/challenges/{name}/attacks", response_model=list[AttackOut],
            summary="Your submitted attacks in the current round, newest first")
def list_attacks(name: str, user: User = Depends(current_user),
                 platform: Platform = Depends(get_platform)) -> list[AttackOut]:
    with platform.db.read() as session:
        round_ = round_row(red_teaming_row(session, name), None)
        rows = session.scalars(select(AttackRow).where(
            AttackRow.round_id == round_.id, AttackRow.user_id == user.id)
            .order_by(AttackRow.id.desc()).limit(MAX_LISTED))
        return [attack_out(row) for row in rows]
