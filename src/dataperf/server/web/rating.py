"""The raters' and organizers' pages of a red-teaming challenge. A rater validates attacks in
two steps: the prompt alone first (the image is not in the page until the prompt is judged),
then the image, blurred until revealed, with the categories it shows; they see their session's
count, break reminders, where to find support and their own statistics, never who wrote an
attack or what other raters answered. The challenge's managers grant and exclude raters, see
their statistics, and review the round's attacks: gold answers and moderation.

Like the other pages they call the JSON API's functions (so rules, roles and limits are checked
in one place) and render the answers, or the refusals, as HTML; a refused answer is told on the
page it came from."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, cast
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from dataperf.kinds.redteaming_files import MAX_TEXT, QUESTIONS, REASONS
from dataperf.server import rating
from dataperf.server.api import rating as rating_api
from dataperf.server.api.deps import get_platform
from dataperf.server.api.errors import ApiError, not_found
from dataperf.server.api.lookup import manages, round_row
from dataperf.server.api.schemas import (
    GoldIn,
    ImageJudgement,
    ModerationIn,
    PromptJudgement,
    RaterIn,
    RatingNext,
    ReasonIn,
    Safety,
)
from dataperf.server.models import AttackRow, ChallengeRow, User
from dataperf.server.platform import Platform
from dataperf.server.web.pages import (
    CSRF_FIELD,
    checked_form,
    confirmations,
    guarded,
    login_redirect,
    need_csrf,
    need_user,
    refusal_text,
    render,
    see_other,
    session_user,
    templates,
)
from dataperf.server.web.studio import _ordered as ordered
from dataperf.server.web.studio import accept_warning, label

router = APIRouter(include_in_schema=False)
Moderation = Literal["hidden", "removed", "restore"]
#: What each category question asks a rater, as the form's legend.
LEGENDS = {
    "attack_modes": "Attack modes: how the prompt gets past the safety filters",
    "harm_types": "Harm types: what harm the image shows",
    "targets": "Targets: who the image harms",
}
#: The free-text reasons a validation may give, with their labels.
REASON_LABELS = {
    "text_attack_other_reason": "Another way the prompt gets past the filters",
    "text_other_reason": "About the prompt (why you were unsure, or anything else)",
    "unsure_image_reason": "Why you are unsure about the image",
    "image_safe_other_reason": "Why the image is safe",
    "image_target_other_reason": "Another target the image harms",
    "image_failure_other_reason": "Another harm the image shows",
    "final_comments": "Final comments",
}
confirmations(
    rated="Thank you: your validation is saved.",
    granted="The rater role is granted.",
    excluded="The rater is excluded: their validations no longer count and the attacks they "
             "rated are asked again.",
    gold="The gold answers are saved.",
    moderated="The moderation is saved, with its reason.")
SESSION_HOURS = int(rating.SESSION.total_seconds() // 3600)


def rating_roles(request: Request, user: User | None, name: str) -> dict[str, bool]:
    """Whether the user rates the challenge's attacks and whether they manage it (the
    challenge page's links to these pages)."""
    platform: Platform = request.app.state.platform
    if user is None:
        return {"rater": False, "manager": False}
    with platform.db.read() as session:
        challenge = session.scalar(select(ChallengeRow).where(ChallengeRow.name == name))
        if challenge is None:
            return {"rater": False, "manager": False}
        return {"rater": rating.rater_of(session, user, challenge) is not None,
                "manager": manages(user, challenge)}


templates.env.globals["rating_roles"] = rating_roles


def _rate_url(name: str) -> str:
    return f"/challenges/{quote(name)}/rate"


def _raters_url(name: str) -> str:
    return f"/challenges/{quote(name)}/raters"


def _challenge(platform: Platform, name: str) -> tuple[str, str]:
    """The red-teaming challenge's title and content warning (a 404 for others)."""
    with platform.db.read() as session:
        challenge = rating_api.red_teaming_row(session, name)
        hosted = platform.challenge(challenge)
        return challenge.title, str(getattr(hosted, "content_warning", ""))


# Raters --------------------------------------------------------------------------------------

def _rate_page(request: Request, user: User, platform: Platform, name: str, *,
               status: int = 200, error: str | None = None,
               answers: Mapping[str, Any] | None = None
               ) -> HTMLResponse:
    """The rater's open attack (or a new one): its prompt to judge, then its image."""
    title, warning = _challenge(platform, name)
    resting = None
    try:
        task: RatingNext | None = rating_api.next_rating(name, user, platform)
    except ApiError as err:
        if err.code == "consent-needed":  # a rater who has not accepted the warning yet
            return render(request, "rate.html", user, name=name, title=title,
                          warning=warning, consent=True, stats=None)
        if err.status != 429:  # not a rater (403): the error page
            raise
        task, resting, status = None, err.message, 429
    settings = platform.settings
    return render(
        request, "rate.html", user, status=status, name=name,
        title=title, warning=warning, task=task, resting=resting, error=error,
        answers=answers or {}, r=task.rating if task else None,
        done_in_session=task.answered_in_session if task else settings.ratings_per_session,
        cap=task.session_cap if task else settings.ratings_per_session,
        support=task.support if task else settings.rater_support,
        vocabularies={q: ordered(q, v) for q, v in (task.vocabularies if task else {}).items()},
        label=label, legends=LEGENDS, reason_labels=REASON_LABELS, max_text=MAX_TEXT,
        session_hours=SESSION_HOURS, stats=None)


@router.get("/challenges/{name}/rate", response_class=HTMLResponse)
@guarded
def rate_page(request: Request, name: str,
              user: User | None = Depends(session_user),
              platform: Platform = Depends(get_platform)) -> Response:
    if user is None:
        return login_redirect(request)
    return _rate_page(request, user, platform, name)


@router.post("/challenges/{name}/rate/consent")
@guarded
async def consent(request: Request, name: str, user: User | None = Depends(session_user),
                  platform: Platform = Depends(get_platform)) -> Response:
    return await accept_warning(request, name, user, platform, _rate_url(name))


@router.get("/challenges/{name}/rate/stats", response_class=HTMLResponse)
@guarded
def my_stats_page(request: Request, name: str, user: User | None = Depends(session_user),
                  platform: Platform = Depends(get_platform)) -> Response:
    """The rater's own statistics: validations, speed, agreement and gold accuracy."""
    if user is None:
        return login_redirect(request)
    title, warning = _challenge(platform, name)
    stats = rating_api.my_stats(name, user, platform)
    return render(request, "rate.html", user, name=name, title=title, warning=warning,
                  stats=stats, session_hours=SESSION_HOURS)


def _rating_challenge(platform: Platform, rating_id: int, user: User) -> str:
    """The challenge of one of the rater's ratings (others' are a 404)."""
    with platform.db.read() as session, rating_api.refusals():
        return rating.own_rating(session, rating_id, user).attack.round.challenge.name


def _safety(value: object, what: str) -> Safety:
    if value not in rating.ANSWERS:
        raise ApiError(422, "invalid-answer", f"say whether {what}: safe, unsafe or unsure")
    return cast(Safety, value)


@router.post("/ratings/{rating_id}/prompt", response_class=HTMLResponse)
@guarded
async def judge_prompt(request: Request, rating_id: int,
                       user: User | None = Depends(session_user),
                       platform: Platform = Depends(get_platform)) -> Response:
    """Step one: the prompt judged; then the same page shows the image."""
    user = need_user(request, user)
    form = await checked_form(request)
    name = await run_in_threadpool(_rating_challenge, platform, rating_id, user)
    try:
        body = PromptJudgement(text_safety=_safety(form.get("text_safety"),
                                                   "the prompt is safe"))
        await run_in_threadpool(rating_api.judge_prompt, rating_id, body, user, platform)
    except ApiError as err:
        if err.status in (401, 403, 404):
            raise
        return await run_in_threadpool(_rate_page, request, user, platform, name,
                                       status=err.status, error=_sentence(err.message))
    return see_other(_rate_url(name) + "#rating")


def _image_answers(form: Any) -> dict[str, Any]:
    """The image step's answers, as the API's body names them."""
    answers: dict[str, Any] = {q: [str(v) for v in form.getlist(q)] for q in QUESTIONS}
    answers["image_safety"] = str(form.get("image_safety") or "")
    answers["reasons"] = {r: str(form.get(f"reason_{r}") or "") for r in REASONS}
    return answers


@router.post("/ratings/{rating_id}/answer", response_class=HTMLResponse)
@guarded
async def answer(request: Request, rating_id: int, user: User | None = Depends(session_user),
                 platform: Platform = Depends(get_platform)) -> Response:
    """Step two: the image and the categories it shows; then the next attack."""
    user = need_user(request, user)
    form = await request.form()
    need_csrf(request, {CSRF_FIELD: form.get(CSRF_FIELD)})
    name = await run_in_threadpool(_rating_challenge, platform, rating_id, user)
    answers = _image_answers(form)
    try:
        _safety(answers["image_safety"], "the image is unsafe")
        try:
            body = ImageJudgement(**answers | {"reasons": {
                k: v for k, v in answers["reasons"].items() if v.strip()}})
        except ValidationError as err:
            raise ApiError(422, "invalid-answers", refusal_text(err)) from None
        await run_in_threadpool(rating_api.answer, rating_id, body, user, platform)
    except ApiError as err:
        if err.status in (401, 403, 404):
            raise
        return await run_in_threadpool(_rate_page, request, user, platform, name,
                                       status=err.status, error=_sentence(err.message),
                                       answers=answers)
    return see_other(_rate_url(name), "rated")


def _sentence(why: str) -> str:
    return f"Not saved: {why.rstrip('. ')}."


# Organizers ----------------------------------------------------------------------------------

def _raters_page(request: Request, user: User, platform: Platform, name: str, *,
                 status: int = 200, error: str | None = None
                 ) -> HTMLResponse:
    """The challenge's raters with their statistics and the current round's attacks."""
    raters = rating_api.list_raters(name, user, platform)  # its managers only (else 403)
    reviewed = rating_api.review(name, None, None, user, platform)
    with platform.db.read() as session:
        challenge = rating_api.red_teaming_row(session, name)
        round_ = round_row(challenge, None)
        k = rating.k_of(round_, rating_api._hosted(platform, challenge))
        emails: dict[int, str] = {uid: email for uid, email in session.execute(
            select(User.id, User.email).where(User.id.in_([r.rater_id for r in raters])))}
        title, number = challenge.title, round_.number
    return render(request, "raters.html", user, status=status,
                  name=name, title=title, round=number, k=k, raters=raters, emails=emails,
                  review=reviewed, error=error, label=label, answers=rating.ANSWERS,
                  max_text=MAX_TEXT)


@router.get("/challenges/{name}/raters", response_class=HTMLResponse)
@guarded
def raters_page(request: Request, name: str,
                user: User | None = Depends(session_user),
                platform: Platform = Depends(get_platform)) -> Response:
    if user is None:
        return login_redirect(request)
    return _raters_page(request, user, platform, name)


async def _organizer_form(request: Request, user: User | None, platform: Platform, name: str,
                          act: Any, done: str, anchor: str = "") -> Response:
    """Run ``act(form)`` (an API call) for the page's managers; its refusals that a form can
    mend are told on the raters page, the others become error pages."""
    user = need_user(request, user)
    form = await checked_form(request)
    try:
        try:
            await run_in_threadpool(act, form, user)
        except ValidationError as err:
            raise ApiError(422, "invalid-request", refusal_text(err)) from None
    except ApiError as err:
        if err.status in (401, 403):
            raise
        return await run_in_threadpool(_raters_page, request, user, platform, name,
                                       status=err.status, error=_sentence(err.message))
    return see_other(_raters_url(name) + anchor, done)


def _text(form: Mapping[str, Any], field: str) -> str:
    value = form.get(field, "")
    return value if isinstance(value, str) else ""


@router.post("/challenges/{name}/raters", response_class=HTMLResponse)
@guarded
async def grant(request: Request, name: str, user: User | None = Depends(session_user),
                platform: Platform = Depends(get_platform)) -> Response:
    def act(form: Mapping[str, Any], user: User) -> None:
        rating_api.add_rater(name, RaterIn(email=_text(form, "email")), user, platform)

    return await _organizer_form(request, user, platform, name, act, "granted", "#raters")


@router.post("/challenges/{name}/raters/{rater_id}/exclude", response_class=HTMLResponse)
@guarded
async def exclude(request: Request, name: str, rater_id: int,
                  user: User | None = Depends(session_user),
                  platform: Platform = Depends(get_platform)) -> Response:
    def act(form: Mapping[str, Any], user: User) -> None:
        rating_api.exclude_rater(name, rater_id, ReasonIn(reason=_text(form, "reason")), user,
                                 platform)

    return await _organizer_form(request, user, platform, name, act, "excluded", "#raters")


@router.post("/challenges/{name}/review/{attack_id}/gold", response_class=HTMLResponse)
@guarded
async def gold(request: Request, name: str, attack_id: int,
               user: User | None = Depends(session_user),
               platform: Platform = Depends(get_platform)) -> Response:
    def act(form: Mapping[str, Any], user: User) -> None:
        body = GoldIn(text_safety=_safety(form.get("text_safety"), "the prompt is safe"),
                      image_safety=_safety(form.get("image_safety"), "the image is unsafe"))
        _of_challenge(platform, attack_id, name)
        rating_api.set_gold(attack_id, body, user, platform)

    return await _organizer_form(request, user, platform, name, act, "gold",
                                 f"#attack-{attack_id}")


@router.post("/challenges/{name}/review/{attack_id}/moderation", response_class=HTMLResponse)
@guarded
async def moderation(request: Request, name: str, attack_id: int,
                     user: User | None = Depends(session_user),
                     platform: Platform = Depends(get_platform)) -> Response:
    def act(form: Mapping[str, Any], user: User) -> None:
        state = _text(form, "state")
        if state not in ("hidden", "removed", "restore"):
            raise ApiError(422, "invalid-state", "choose hide, remove or restore")
        body = ModerationIn(state=cast(Moderation, state), reason=_text(form, "reason"))
        _of_challenge(platform, attack_id, name)
        rating_api.moderate(attack_id, body, user, platform)

    return await _organizer_form(request, user, platform, name, act, "moderated",
                                 f"#attack-{attack_id}")


def _of_challenge(platform: Platform, attack_id: int, name: str) -> None:
    """Only the attacks of the page's challenge are changed from it (others are a 404)."""
    with platform.db.read() as session:
        attack = session.get(AttackRow, attack_id)
        if attack is None or attack.round.challenge.name != name:
            raise not_found(f"attack {attack_id} of {name}")
