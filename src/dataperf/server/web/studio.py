"""The red-teaming studio's pages: accept the content warning, send prompts, see their images
(blurred unless revealed), annotate one and submit it as an attack, follow one's attempts and
attacks. Like the other pages they call the JSON API's functions (so rules, roles and limits are
checked in one place) and render the answers, or the refusals, as HTML; refused prompts and
attacks are told on the studio page itself."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any, cast
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile as FormFile

from dataperf.generators import MAX_PROMPT
from dataperf.kinds.redteaming_files import MAX_TEXT, QUESTIONS
from dataperf.server import hints, studio
from dataperf.server.api import studio as studio_api
from dataperf.server.api.deps import get_platform
from dataperf.server.api.errors import ApiError, not_found
from dataperf.server.api.lookup import round_row
from dataperf.server.api.schemas import AttackIn, AttackOut, GenerationOut
from dataperf.server.models import AttackRow, Generation, State, User, utcnow
from dataperf.server.platform import Platform
from dataperf.server.web.pages import (
    CSRF_FIELD,
    checked_form,
    guarded,
    need_csrf,
    need_user,
    refusal_text,
    render,
    see_other,
    session_user,
)

router = APIRouter(include_in_schema=False)
#: What each annotation question asks, as the form's legend.
LEGENDS = {
    "attack_modes": "Attack modes: how the prompt gets past the safety filters",
    "harm_types": "Harm types: what harm the image shows (at least one)",
    "targets": "Targets: who the image harms",
}
#: The free-text fields of an attack, with their labels.
TEXT_LABELS = {
    "rewritten_prompt": "Rewritten prompt: what your prompt really asks for (optional)",
    "attack_mode_other": "Other attack mode (optional)",
    "harm_type_other": "Other harm (optional)",
    "target_other": "Other target (optional)",
}
#: Vocabulary values whose plain spelling (prefix and underscores dropped) reads poorly.
WORDS = {"ses": "socioeconomic status", "unsafe_combo": "unsafe combination of safe words",
         "none": "none of these", "other": "other (describe below)"}
#: States in which a generation is still being made (the page follows them).
MAKING = (State.queued, State.running)


def label(question: str, value: str) -> str:
    """A vocabulary value as people read it: ``image_target_ses`` -> socioeconomic status."""
    plain = value.removeprefix(QUESTIONS.get(question, ""))
    return WORDS.get(plain, plain.replace("_", " "))


def _ordered(question: str, values: Iterable[str]) -> list[str]:
    """The values alphabetically by their label, "none" and "other" last."""
    last = {QUESTIONS.get(question, "") + word: i for i, word in enumerate(("none", "other"))}
    return sorted(values, key=lambda v: (last.get(v, -1), label(question, v)))


def _login(request: Request) -> RedirectResponse:
    """To the login page, coming back to this page with its query (the selected prompt)."""
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return see_other(f"/login?next={quote(target)}")


def _studio_url(name: str, generation: int | None = None, **query: int) -> str:
    url = f"/challenges/{quote(name)}/studio"
    params = ({"generation": generation} if generation is not None else {}) | query
    if params:
        url += "?" + "&".join(f"{k}={v}" for k, v in params.items())
    return url + ("#generation" if generation is not None else "")


def _selected(raw: str | None) -> int | None:
    """The ``generation`` query: a prompt's id; anything else names no prompt (a 404)."""
    if raw is None or raw == "":
        return None
    if not raw.isdigit() or len(raw) > 18:
        raise not_found(f"generation {raw!r}")
    return int(raw)


def _studio_page(request: Request, user: User, platform: Platform, name: str,
                 selected: int | None, *, status: int = 200, error: str | None = None,
                 prompt: str = "", answers: Mapping[str, Any] | None = None,
                 attack: int | None = None, headers: Mapping[str, str] | None = None
                 ) -> HTMLResponse:
    """The studio of the challenge's current round for ``user``; ``selected`` the prompt shown
    (the user's own, or any for the challenge's managers: otherwise a 404)."""
    with platform.db.read() as session:
        challenge = studio_api.red_teaming_row(session, name)
        info = studio_api.studio_out(platform, session, challenge, user)
        round_ = round_row(challenge, None)
        shown: GenerationOut | None = None
        own = False
        if selected is not None:
            row = studio_api._visible(session, selected, user)
            if row.round.challenge_id != challenge.id:
                raise not_found(f"generation {selected}")
            shown, own = studio_api.generation_out(platform, session, row), row.user_id == user.id
        attempts: list[GenerationOut] = []
        attacks: list[AttackOut] = []
        if info.consented:
            attempts = [studio_api.generation_out(platform, session, r) for r in session.scalars(
                select(Generation).where(Generation.round_id == round_.id,
                                         Generation.user_id == user.id)
                .order_by(Generation.id.desc()).limit(studio_api.MAX_LISTED))]
            attacks = [studio_api.attack_out(r) for r in session.scalars(
                select(AttackRow).where(AttackRow.round_id == round_.id,
                                        AttackRow.user_id == user.id)
                .order_by(AttackRow.id.desc()).limit(studio_api.MAX_LISTED))]
        title = challenge.title
        closed = round_.closed or (round_.deadline is not None and utcnow() >= round_.deadline)
    flashes = []
    confirmed = next((a for a in attacks if a.id == attack), None)
    if confirmed is not None:
        flashes.append({"kind": "ok", "text": f"Attack {confirmed.id} submitted (image "
                        f"{confirmed.image + 1} of prompt {confirmed.generation}). It is pending "
                        "until raters validate it."})
    open_images = [i for i in shown.images if i.url and not i.submitted] if shown else []
    response = render(
        request, "studio.html", user, status=status, flashes=flashes, s=info, title=title,
        closed=closed, g=shown, own=own, making=shown is not None and shown.state in MAKING,
        can_attack=own and not closed and shown is not None and shown.state == State.done
        and bool(open_images), attempts=attempts, attacks=attacks, error=error, prompt=prompt,
        answers=answers or {}, label=label,
        vocabularies={q: _ordered(q, v) for q, v in info.vocabularies.items()},
        legends=LEGENDS, text_labels=TEXT_LABELS, max_prompt=MAX_PROMPT, max_text=MAX_TEXT)
    response.headers.update(headers or {})
    return response


def _sentence(what: str, why: str) -> str:
    return f"{what}: {why.rstrip('. ')}."


def _page_or_raise(err: ApiError) -> None:
    """Refusals a page cannot help with (nothing to see, not allowed) become error pages."""
    if err.status in (401, 403, 404):
        raise err


@router.get("/challenges/{name}/studio", response_class=HTMLResponse)
@guarded
def studio_page(request: Request, name: str, generation: str | None = None,
                attack: str | None = None, user: User | None = Depends(session_user),
                platform: Platform = Depends(get_platform)) -> Response:
    if user is None:
        return _login(request)
    confirmed = int(attack) if attack and attack.isdigit() and len(attack) < 19 else None
    return _studio_page(request, user, platform, name, _selected(generation), attack=confirmed)


async def accept_warning(request: Request, name: str, user: User | None,
                         platform: Platform, back: str) -> Response:
    """The consent form's post: the user accepts the challenge's content warning, then goes
    ``back`` (the studio or the rating page)."""
    user = need_user(request, user)
    await checked_form(request)
    await run_in_threadpool(studio_api.post_consent, name, user, platform)
    return see_other(back)


@router.post("/challenges/{name}/studio/consent")
@guarded
async def consent(request: Request, name: str, user: User | None = Depends(session_user),
                  platform: Platform = Depends(get_platform)) -> Response:
    return await accept_warning(request, name, user, platform, _studio_url(name))


@router.post("/challenges/{name}/studio/prompts", response_class=HTMLResponse)
@guarded
async def send_prompt(request: Request, name: str, user: User | None = Depends(session_user),
                      platform: Platform = Depends(get_platform)) -> Response:
    """What the API's POST generations does, then to the prompt's images."""
    user = need_user(request, user)
    form = await checked_form(request)
    typed = form.get("prompt", "")
    typed = typed if isinstance(typed, str) else ""
    try:
        with studio_api.refusals():
            text = studio.clean_prompt(typed)
        with platform.db.read() as session:
            challenge = studio_api.red_teaming_row(session, name)
            if not studio.has_consented(session, user, challenge):
                raise ApiError(403, "consent-needed", "accept the content warning first: open "
                               "the studio and read it")
            known = studio.find_generation(session, round_row(challenge, None), user, text)
        screening = known.screening if known is not None else \
            await run_in_threadpool(hints.screen_prompt, platform.settings, text)
        answer = await run_in_threadpool(studio_api._queue_generation, platform, name, user,
                                         text, screening)
    except ApiError as err:
        _page_or_raise(err)
        return await run_in_threadpool(
            _studio_page, request, user, platform, name, None, status=err.status,
            error=_sentence("The prompt was not sent", err.message), prompt=typed,
            headers=err.headers)
    made = json.loads(bytes(answer.body))
    return see_other(_studio_url(name, int(made["id"])))


@router.post("/challenges/{name}/studio/uploads", response_class=HTMLResponse)
@guarded
async def upload_image(request: Request, name: str, user: User | None = Depends(session_user),
                       platform: Platform = Depends(get_platform)) -> Response:
    """What the API's POST uploads does, then to the uploaded image."""
    user = need_user(request, user)
    form = await request.form()
    need_csrf(request, {CSRF_FIELD: form.get(CSRF_FIELD)})
    typed, model, image = (form.get(field) for field in ("prompt", "model", "image"))
    typed = typed if isinstance(typed, str) else ""
    try:
        if not isinstance(image, FormFile) or not image.filename:
            raise ApiError(422, "invalid-image", "choose the image file to upload")
        made = await studio_api.post_upload(name, typed, model if isinstance(model, str)
                                            else "", cast(UploadFile, image), user, platform)
    except ApiError as err:
        _page_or_raise(err)
        return await run_in_threadpool(
            _studio_page, request, user, platform, name, None, status=err.status,
            error=_sentence("The image was not uploaded", err.message), prompt=typed,
            headers=err.headers)
    return see_other(_studio_url(name, made.id))


def _challenge_of(platform: Platform, generation_id: int, user: User) -> str:
    """The name of the challenge of a generation the user may see (else a 404)."""
    with platform.db.read() as session:
        return studio_api._visible(session, generation_id, user).round.challenge.name


def _answers(form: Any) -> dict[str, Any]:
    """The attack form's answers, as the API's body names them."""
    answers: dict[str, Any] = {q: [str(v) for v in form.getlist(q)] for q in QUESTIONS}
    answers |= {t: str(form.get(t) or "") for t in TEXT_LABELS}
    image = str(form.get("image") or "")
    answers["image"] = int(image) if image.isdigit() and len(image) < 4 else None
    return answers


@router.post("/generations/{generation_id}/studio/attacks", response_class=HTMLResponse)
@guarded
async def submit_attack(request: Request, generation_id: int,
                        user: User | None = Depends(session_user),
                        platform: Platform = Depends(get_platform)) -> Response:
    """One of the prompt's images with its annotations, submitted as an attack."""
    user = need_user(request, user)
    form = await request.form()
    need_csrf(request, {CSRF_FIELD: form.get(CSRF_FIELD)})
    name = await run_in_threadpool(_challenge_of, platform, generation_id, user)
    answers = _answers(form)
    try:
        if answers["image"] is None:
            raise ApiError(422, "invalid-annotations", "choose the image you submit first")
        try:
            body = AttackIn(**answers)
        except ValidationError as err:
            raise ApiError(422, "invalid-annotations", refusal_text(err)) from None
        made = await run_in_threadpool(studio_api.post_attack, generation_id, body, user,
                                       platform)
    except ApiError as err:
        _page_or_raise(err)
        return await run_in_threadpool(
            _studio_page, request, user, platform, name, generation_id, status=err.status,
            error=_sentence("The attack was not submitted", err.message), answers=answers)
    return see_other(_studio_url(name, generation_id, attack=made.id))
