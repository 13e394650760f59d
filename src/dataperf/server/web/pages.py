"""The web pages. They call the same functions as the JSON API (so rules, roles and limits are
checked in one place) and render the answers, or the refusals, as HTML."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi import UploadFile as ApiUpload
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from dataperf import __version__
from dataperf.exceptions import DataPerfError, SubmissionError, describe
from dataperf.registry import challenges as registered_challenges
from dataperf.server import boards
from dataperf.server.api import accounts, organize, submissions
from dataperf.server.api import challenges as challenge_api
from dataperf.server.api.deps import get_platform
from dataperf.server.api.errors import ApiError
from dataperf.server.api.lookup import challenge_row, manages, round_row, submission_row
from dataperf.server.api.schemas import (
    ChallengeEdit,
    FinalChoice,
    JoinTeam,
    Login,
    NewChallenge,
    NewSnapshot,
    NewTeam,
    Register,
    RoundSettings,
)
from dataperf.server.models import (
    ApiToken,
    ChallengeRow,
    Evaluation,
    Role,
    Round,
    ScoreRow,
    State,
    Submission,
    User,
    utcnow,
)
from dataperf.server.platform import Platform
from dataperf.server.security import allows, hash_token, new_token
from dataperf.server.web import charts
from dataperf.server.web.pictures import cleaning_pictures, pictures
from dataperf.server.web.session import (
    CSRF_FIELD,
    SESSION_COOKIE,
    csrf_ok,
    csrf_token,
    end_session,
    remember_csrf,
    start_session,
)

templates = Jinja2Templates(directory=str(Path(__file__).with_name("templates")))
templates.env.globals["bar"] = charts.interval_bar
router = APIRouter(include_in_schema=False)
TITLES = {400: "Bad request", 401: "Log in first", 403: "Not allowed", 404: "Not found",
          409: "Conflict", 413: "Too large", 422: "Invalid", 429: "Quota used up"}


def session_user(request: Request, platform: Platform = Depends(get_platform)) -> User | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    with platform.db.read() as session:
        row = session.execute(select(ApiToken).where(ApiToken.token_hash == hash_token(token),
                                                     ApiToken.revoked_at.is_(None))
                              ).scalar_one_or_none()
        return row.user if row else None


def render(request: Request, template: str, user: User | None, status: int = 200,
           **context: Any) -> HTMLResponse:
    response = templates.TemplateResponse(request, template, {
        "user": user, "csrf": csrf_token(request), "version": __version__, "status": status,
        "flashes": context.pop("flashes", []), **context}, status_code=status)
    response.headers["Cache-Control"] = "no-store"
    remember_csrf(request, response)
    return response


def error_page(request: Request, user: User | None, status: int, message: str) -> HTMLResponse:
    return render(request, "error.html", user, status=status, title=TITLES.get(status, "Error"),
                  message=message, next=request.url.path)


def see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


async def form_of(request: Request) -> dict[str, Any]:
    form = await request.form()
    return {k: v for k, v in form.multi_items()}


def guarded(handler: Callable[..., Any]) -> Callable[..., Any]:
    """Turn API refusals into error pages (plain handlers run in the thread pool)."""

    @functools.wraps(handler)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        request: Request = kwargs["request"]
        user = kwargs.get("user")
        try:
            if inspect.iscoroutinefunction(handler):
                return await handler(*args, **kwargs)
            return await run_in_threadpool(handler, *args, **kwargs)
        except ApiError as err:
            return error_page(request, user, err.status, err.message)
        except DataPerfError as err:
            return error_page(request, user, 400, str(err))

    return wrapper


def need_user(request: Request, user: User | None) -> User:
    if user is None:
        raise ApiError(401, "unauthorized", "this page is for signed-in users")
    return user


CSRF_FAILED = ("the form is out of date or came from another site (CSRF check failed); reload "
               "the page and try again")


def need_csrf(request: Request, form: dict[str, Any]) -> None:
    if not csrf_ok(request, form.get(CSRF_FIELD)):
        raise ApiError(403, "forbidden", CSRF_FAILED)


async def checked_form(request: Request) -> dict[str, Any]:
    """The posted form, after the CSRF check (an ApiError 403 when it fails)."""
    form = await form_of(request)
    need_csrf(request, form)
    return form


def refusal_text(err: Exception) -> str:
    """What a page shows for a refused form: pydantic's errors described, else the API's
    message, else the error's text."""
    if isinstance(err, ValidationError):
        return describe(err)
    return str(getattr(err, "message", str(err)))


def login_redirect(request: Request) -> RedirectResponse:
    return see_other(f"/login?next={quote(request.url.path)}")


# Public pages -------------------------------------------------------------------------------

@router.get("/", response_class=HTMLResponse)
@guarded
def home(request: Request, user: User | None = Depends(session_user),
         platform: Platform = Depends(get_platform)) -> HTMLResponse:
    now = utcnow()
    items = []
    for item in challenge_api.list_challenges(platform):
        current = item.rounds[-1] if item.rounds else None
        closed = current is None or current.closed or (
            current.deadline is not None and now >= current.deadline)
        text = "closed" if closed else (
            f"open until {current.deadline:%Y-%m-%d %H:%M} UTC" if current and current.deadline
            else "open, no deadline")
        items.append(item.model_dump() | {"status": "closed" if closed else "open",
                                          "status_text": text})
    return render(request, "home.html", user, challenges=items)


@router.get("/challenges/{name}", response_class=HTMLResponse)
@guarded
def challenge_page(request: Request, name: str, view: str = "aggregate",
                   part: str | None = None, round: int | None = None,
                   user: User | None = Depends(session_user),
                   platform: Platform = Depends(get_platform)) -> HTMLResponse:
    with platform.db.read() as session:
        row = challenge_row(session, name)
        round_ = round_row(row, round)
        current = round_ is row.rounds[-1]
    detail = challenge_api.get_challenge(name, platform)
    chosen = challenge_api._part(round_, part, user, row)  # type: ignore[arg-type]
    board = challenge_api._leaderboard(platform, row, round_, chosen, view, None)
    points = boards.history(platform, row, round_, chosen, view)
    values = [r.score.value for r in board.rows] + [
        v for r in board.rows for v in (r.score.ci_low, r.score.ci_high) if v is not None]
    now = utcnow()
    quota = None
    if user is not None and user.team_id is not None and current:
        quota = challenge_api.quota(name, user, platform)
    return render(
        request, "challenge.html", user, challenge=detail, round=round_, rules=detail.rules,
        quota=quota, current=current, shown_round=None if current else round_.number,
        view=view, part=chosen, rows=board.rows, tie_rule=board.tie_rule,
        lo=min(values, default=0.0), hi=max(values, default=1.0),
        private_open=boards.private_open(round_, now),
        closed=round_.closed or (round_.deadline is not None and now >= round_.deadline),
        server_url=str(request.base_url).rstrip("/"),
        history=charts.history_chart([p["created_at"] for p in points],
                                     [p["value"] for p in points], [p["best"] for p in points]))


# Accounts -----------------------------------------------------------------------------------

@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str = "/", user: User | None = Depends(session_user)
               ) -> HTMLResponse:
    return render(request, "login.html", user, next=_safe_next(next), email="", error=None)


def _safe_next(target: str) -> str:
    """Only local paths: never redirect to another site after logging in."""
    return target if target.startswith("/") and not target.startswith("//") else "/"


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request, platform: Platform = Depends(get_platform)) -> Response:
    form = await form_of(request)
    target = _safe_next(str(form.get("next", "/")))
    if not csrf_ok(request, form.get(CSRF_FIELD)):
        return error_page(request, None, 403, CSRF_FAILED)
    try:
        answer = await run_in_threadpool(accounts.login, Login(email=form.get("email", ""),
                                      password=form.get("password", ""),
                                      token_name="browser session"), request, platform)
    except ApiError as err:
        throttled = err.status == 429
        page = render(request, "login.html", None, status=429 if throttled else 401,
                      next=target, email=form.get("email", ""),
                      error=f"{err.message[0].upper()}{err.message[1:]}." if throttled
                      else "Wrong email or password.")
        page.headers.update(err.headers or {})
        return page
    except ValidationError:
        return render(request, "login.html", None, status=401, next=target,
                      email=form.get("email", ""), error="Wrong email or password.")
    response = see_other(target)
    start_session(request, response, answer.token)
    return response


@router.get("/signup", response_class=HTMLResponse)
def signup_page(request: Request, user: User | None = Depends(session_user)) -> HTMLResponse:
    return render(request, "signup.html", user, form={}, error=None)


@router.post("/signup", response_class=HTMLResponse)
async def signup(request: Request, platform: Platform = Depends(get_platform)) -> Response:
    form = await form_of(request)
    if not csrf_ok(request, form.get(CSRF_FIELD)):
        return error_page(request, None, 403, CSRF_FAILED)
    shown = {k: form.get(k, "") for k in ("name", "email", "team")}
    try:
        body = Register(email=form.get("email", ""), name=form.get("name", ""),
                        password=form.get("password", ""), team=form.get("team") or None)
        answer = await run_in_threadpool(accounts.register, body, platform)
    except ValidationError as err:
        return render(request, "signup.html", None, status=422, form=shown, error=describe(err))
    except ApiError as err:
        return render(request, "signup.html", None, status=err.status, form=shown,
                      error=err.message)
    response = see_other("/")
    start_session(request, response, answer.token)
    return response


@router.post("/logout")
async def logout(request: Request, platform: Platform = Depends(get_platform)) -> Response:
    form = await form_of(request)
    token = request.cookies.get(SESSION_COOKIE)
    if csrf_ok(request, form.get(CSRF_FIELD)) and token:
        with platform.db.write() as session:
            row = session.execute(select(ApiToken).where(ApiToken.token_hash == hash_token(token))
                                  ).scalar_one_or_none()
            if row is not None and row.revoked_at is None:
                row.revoked_at = utcnow()
    response = see_other("/")
    end_session(response)
    return response


@router.get("/account", response_class=HTMLResponse)
@guarded
def account(request: Request, user: User | None = Depends(session_user),
            platform: Platform = Depends(get_platform)) -> Response:
    if user is None:
        return login_redirect(request)
    return _account_page(request, user, platform)


def _account_page(request: Request, user: User, platform: Platform, *,
                  join_code: str | None = None, token: str | None = None) -> Response:
    me = accounts.me(user, platform)
    return render(request, "account.html", user, team=me.team, join_code=join_code,
                  new_token=token, tokens=accounts.tokens(user, platform))


@router.post("/account/{action}", response_class=HTMLResponse)
@guarded
async def account_action(request: Request, action: str, user: User | None = Depends(session_user),
                         platform: Platform = Depends(get_platform)) -> Response:
    user = need_user(request, user)
    form = await checked_form(request)
    try:
        if action == "team":
            created = await run_in_threadpool(
                accounts.create_team, NewTeam(name=form.get("name", "")), user, platform)
            return await run_in_threadpool(_account_page, request, user, platform,
                                           join_code=created.join_code)
        if action == "join":
            await run_in_threadpool(accounts.join_team, JoinTeam(
                team=form.get("team", ""), code=form.get("code", "")), user, platform)
        elif action == "tokens":
            token = new_token()
            with platform.db.write() as session:
                session.add(ApiToken(user_id=user.id, name=str(form.get("name", "token"))[:80],
                                     token_hash=hash_token(token), prefix=token[:8]))
            return await run_in_threadpool(_account_page, request, user, platform, token=token)
        else:
            raise ApiError(404, "not-found", f"no account action {action!r}")
    except ValidationError as err:
        raise ApiError(422, "invalid-request", describe(err)) from None
    return see_other("/account")


@router.post("/account/tokens/{token_id}/revoke")
@guarded
async def revoke_token(request: Request, token_id: int,
                       user: User | None = Depends(session_user),
                       platform: Platform = Depends(get_platform)) -> Response:
    user = need_user(request, user)
    await checked_form(request)
    await run_in_threadpool(accounts.revoke, token_id, user, platform)
    return see_other("/account")


# Submitting ---------------------------------------------------------------------------------

def _quota(name: str, user: User, platform: Platform) -> Any:
    return challenge_api.quota(name, user, platform)


@router.get("/challenges/{name}/submit", response_class=HTMLResponse)
@guarded
def submit_page(request: Request, name: str, user: User | None = Depends(session_user),
                platform: Platform = Depends(get_platform)) -> Response:
    if user is None:
        return login_redirect(request)
    detail = challenge_api.get_challenge(name, platform)
    return render(request, "submit.html", user, challenge=detail, rules=detail.rules,
                  quota=_quota(name, user, platform), problems=None, error=None)


@router.post("/challenges/{name}/submit", response_class=HTMLResponse)
@guarded
async def submit(request: Request, name: str, user: User | None = Depends(session_user),
                 platform: Platform = Depends(get_platform)) -> Response:
    user = need_user(request, user)
    if not allows(user.role, Role.participant):
        raise ApiError(403, "forbidden", "your role cannot submit")
    form = await request.form(max_files=platform.settings.max_upload_files + 1)
    need_csrf(request, {CSRF_FIELD: form.get(CSRF_FIELD)})
    # Starlette's form gives its own UploadFile; the API's FastAPI type is the same class.
    uploads = [cast(ApiUpload, f) for f in form.getlist("files") if isinstance(f, UploadFile)]
    detail = await run_in_threadpool(challenge_api.get_challenge, name, platform)
    try:
        created = await run_in_threadpool(submissions.submit, name, uploads,
                                          str(form.get("label", "")), user, platform)
    except SubmissionError as err:
        return render(request, "submit.html", user, status=422, challenge=detail,
                      rules=detail.rules, quota=_quota(name, user, platform),
                      problems=err.problems, error=None)
    except ApiError as err:
        return render(request, "submit.html", user, status=err.status, challenge=detail,
                      rules=detail.rules, quota=_quota(name, user, platform), problems=None,
                      error=err.message)
    return see_other(f"/submissions/{created.id}")


@router.get("/submissions", response_class=HTMLResponse)
@guarded
def my_submissions(request: Request, user: User | None = Depends(session_user),
                   platform: Platform = Depends(get_platform)) -> Response:
    if user is None:
        return login_redirect(request)
    return render(request, "submissions.html", user, heading="Your team's submissions",
                  submissions=submissions.my_submissions(None, 200, user, platform))


@router.get("/submissions/{submission_id}", response_class=HTMLResponse)
@guarded
def submission_page(request: Request, submission_id: int,
                    user: User | None = Depends(session_user),
                    platform: Platform = Depends(get_platform)) -> Response:
    with platform.db.read() as session:
        row = submission_row(session, submission_id, user)
        challenge = row.round.challenge
        can_edit = user is not None and (user.team_id == row.team_id or manages(user, challenge))
        final_count = row.round.final_count
        detail = submissions.submission_out(platform, session, row, user)
        digests = {f.name: f.sha256 for f in row.files}
    hosted = platform.challenge(challenge)
    shown = []
    if detail.state == State.scored and hosted.kind == "cleaning" and detail.scores:
        part, scores = next(iter(detail.scores.items()))
        mine = {t.task: t.details.get("curve", []) for t in scores.tasks}
        shown = cleaning_pictures(mine, _reference_curves(platform, challenge, row.round, part))
    elif detail.state == State.scored:  # only then are the files read back from the store
        files = {n: platform.store.get(d) for n, d in digests.items()}
        shown = pictures(hosted, platform.edition(challenge), files)
    scale = float(getattr(getattr(hosted, "spec", None), "scale", 1.0))
    return render(request, "submission.html", user, s=detail, can_edit=can_edit,
                  final_count=final_count, pictures=shown, scale=scale,
                  columns=hosted.report_columns(), kind=hosted.kind)


def _curves(session: Session, submission_id: int, part: str) -> dict[str, list[float]]:
    rows = session.execute(
        select(ScoreRow.task, ScoreRow.details).join(Evaluation)
        .where(Evaluation.submission_id == submission_id, ScoreRow.part == part,
               ScoreRow.is_aggregate.is_(False))).all()
    return {task: details.get("curve", []) for task, details in rows}


def _reference_curves(platform: Platform, challenge: ChallengeRow, round_: Round, part: str
                      ) -> dict[str, dict[str, list[float]]]:
    """The random baseline's curves and the leading entry's, on the same part."""
    rows = boards.standings(platform, challenge, round_, part, "aggregate", None)
    leader = next((r for r in rows if not r["is_baseline"]), None)
    found: dict[str, dict[str, list[float]]] = {}
    with platform.db.read() as session:
        random_id = session.scalar(select(Submission.id).where(
            Submission.round_id == round_.id, Submission.is_baseline.is_(True),
            Submission.label == "random").order_by(Submission.id.desc()).limit(1))
        if random_id is not None:
            found["random order (baseline)"] = _curves(session, random_id, part)
        if leader is not None:
            found[f"best entry ({leader['team']})"] = _curves(session, leader["submission_id"],
                                                              part)
    return found


@router.post("/submissions/{submission_id}/{action}")
@guarded
async def submission_action(request: Request, submission_id: int, action: str,
                            user: User | None = Depends(session_user),
                            platform: Platform = Depends(get_platform)) -> Response:
    user = need_user(request, user)
    form = await checked_form(request)
    if action == "cancel":
        await run_in_threadpool(submissions.cancel, submission_id, user, platform)
    elif action == "final":
        await run_in_threadpool(submissions.choose_final, submission_id,
                                FinalChoice(final=form.get("final") == "true"), user, platform)
    else:
        raise ApiError(404, "not-found", f"no submission action {action!r}")
    return see_other(f"/submissions/{submission_id}")


# Organizing ---------------------------------------------------------------------------------

def need_organizer(request: Request, user: User | None) -> User:
    user = need_user(request, user)
    if not allows(user.role, Role.organizer):
        raise ApiError(403, "forbidden", "this page is for organizers")
    return user


@router.get("/organize", response_class=HTMLResponse)
@guarded
def organize_page(request: Request, user: User | None = Depends(session_user),
                  platform: Platform = Depends(get_platform)) -> Response:
    if user is None:
        return login_redirect(request)
    return _organize_page(request, need_organizer(request, user), platform)


def _organize_page(request: Request, user: User, platform: Platform,
                   error: str | None = None) -> Response:
    managed = []
    with platform.db.read() as session:
        for row in session.scalars(select(ChallengeRow).order_by(ChallengeRow.name)):
            if not manages(user, row):
                continue
            counts = dict(session.execute(
                select(Evaluation.state, func.count()).join(Submission).join(Round)
                .where(Round.challenge_id == row.id).group_by(Evaluation.state)).all())
            managed.append({"row": row, "round": row.rounds[-1],
                            "failures": counts.get(State.failed_participant, 0)
                            + counts.get(State.failed_platform, 0),
                            "queued": counts.get(State.queued, 0)})
    return render(request, "organize.html", user, managed=managed, error=error,
                  registered=sorted(registered_challenges()))


def _round_settings(form: dict[str, Any]) -> RoundSettings:
    def number(key: str, kind: Callable[[str], Any]) -> Any:
        value = str(form.get(key, "")).strip()
        return kind(value) if value else None

    deadline = str(form.get("deadline", "")).strip()
    values = {"deadline": datetime.fromisoformat(deadline).replace(tzinfo=UTC)
              if deadline else None,
              "daily_quota": number("daily_quota", int), "round_quota": number("round_quota", int),
              "private_fraction": number("private_fraction", float),
              "final_count": number("final_count", int)}
    return RoundSettings(**{k: v for k, v in values.items() if v is not None or k == "deadline"})


@router.post("/organize/challenges", response_class=HTMLResponse)
@guarded
async def organize_create(request: Request, user: User | None = Depends(session_user),
                          platform: Platform = Depends(get_platform)) -> Response:
    user = need_organizer(request, user)
    form = await checked_form(request)
    archive = form.get("edition_file")
    try:
        if isinstance(archive, UploadFile) and archive.filename:
            uploaded = await run_in_threadpool(organize.upload_edition, cast(ApiUpload, archive),
                                               user, platform)
            challenge, edition = uploaded.challenge, uploaded.name
        else:
            challenge, edition = str(form.get("challenge", "")), str(form.get("edition", "offline"))
            if not challenge:
                raise ApiError(422, "invalid-request", "upload an edition archive or pick a "
                               "registered challenge")
        body = NewChallenge(challenge=challenge, edition=edition or "offline",
                            name=form.get("name") or None, title=form.get("title") or None)
        hosted = await run_in_threadpool(organize.create_challenge, body, user, platform)
    except (ValidationError, ApiError, DataPerfError) as err:
        return await run_in_threadpool(_organize_page, request, user, platform, refusal_text(err))
    return see_other(f"/challenges/{hosted.name}")


@router.post("/organize/{name}/{action}", response_class=HTMLResponse)
@guarded
async def organize_action(request: Request, name: str, action: str,
                          user: User | None = Depends(session_user),
                          platform: Platform = Depends(get_platform)) -> Response:
    user = need_organizer(request, user)
    form = await checked_form(request)
    try:
        if action == "describe":
            await run_in_threadpool(organize.edit_challenge, name, ChallengeEdit(
                title=form.get("title") or None, description=form.get("description")),
                user, platform)
        elif action == "round" and form.get("action") == "open":
            await run_in_threadpool(organize.new_round, name, _round_settings(form), user,
                                    platform)
        elif action == "round":
            await run_in_threadpool(organize.edit_round, name, int(form.get("number", 0)),
                                    _round_settings(form), user, platform)
        elif action == "snapshot":
            await run_in_threadpool(organize.create_snapshot, name,
                                    NewSnapshot(name=form.get("name", "")), None, user, platform)
        else:
            raise ApiError(404, "not-found", f"no organizer action {action!r}")
    except (ValidationError, ValueError) as err:
        return await run_in_threadpool(_organize_page, request, user, platform, refusal_text(err))
    return see_other("/organize")


@router.get("/organize/{name}/submissions", response_class=HTMLResponse)
@guarded
def organize_submissions(request: Request, name: str, user: User | None = Depends(session_user),
                         platform: Platform = Depends(get_platform)) -> Response:
    if user is None:
        return login_redirect(request)
    user = need_organizer(request, user)
    found = organize.all_submissions(name, 1000, None, user, platform)
    return render(request, "submissions.html", user, heading=f"All submissions of {name}",
                  submissions=found)
