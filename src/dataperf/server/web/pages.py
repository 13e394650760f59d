"""The web pages' common parts, and the public pages (home, a challenge and its leaderboard).

Every page calls the same functions as the JSON API (so rules, roles and limits are checked in
one place) and renders the answers, or the refusals, as HTML. The other areas have their own
modules: ``accounts.py``, ``submitting.py``, ``organizing.py``, ``studio.py``, ``rating.py``."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError
from sqlalchemy import func, select
from starlette.concurrency import run_in_threadpool

from dataperf import __version__
from dataperf.exceptions import DataPerfError, describe
from dataperf.server import boards
from dataperf.server.api import challenges as challenge_api
from dataperf.server.api.deps import get_platform
from dataperf.server.api.errors import ApiError
from dataperf.server.api.lookup import challenge_row, round_row
from dataperf.server.models import ApiToken, Evaluation, State, Submission, User, utcnow
from dataperf.server.platform import Platform
from dataperf.server.security import hash_token
from dataperf.server.web import charts
from dataperf.server.web.session import (
    CSRF_FIELD,
    SESSION_COOKIE,
    csrf_ok,
    csrf_token,
    remember_csrf,
)

templates = Jinja2Templates(directory=str(Path(__file__).with_name("templates")))
templates.env.globals["bar"] = charts.interval_bar
# How pages name each kind's metric (an unlisted one reads as its id without underscores).
METRIC_TITLES = {"f1": "F1", "macro_f1": "macro F1", "accuracy": "accuracy",
                 "fraction_of_fixes": "fraction of fixes", "market_score": "market score",
                 "model_fooling_score": "Model Fooling Score"}
templates.env.filters["metric_title"] = lambda metric: METRIC_TITLES.get(
    metric, metric.replace("_", " "))
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


#: Confirmations after a successful form, by the ``done`` query of the page it leads to (never
#: echoing user text); each area adds its own with :func:`confirmations`.
DONE: dict[str, str] = {}


def confirmations(**messages: str) -> None:
    DONE.update(messages)


def render(request: Request, template: str, user: User | None, status: int = 200,
           **context: Any) -> HTMLResponse:
    done = request.query_params.get("done")
    flashes = context.pop("flashes", []) + (
        [{"kind": "ok", "text": DONE[done]}] if done in DONE else [])
    response = templates.TemplateResponse(request, template, {
        "user": user, "csrf": csrf_token(request), "version": __version__, "status": status,
        "flashes": flashes, **context}, status_code=status)
    response.headers["Cache-Control"] = "no-store"
    remember_csrf(request, response)
    return response


def error_page(request: Request, user: User | None, status: int, message: str) -> HTMLResponse:
    return render(request, "error.html", user, status=status, title=TITLES.get(status, "Error"),
                  message=message, next=request.url.path)


def see_other(url: str, done: str | None = None) -> RedirectResponse:
    """Go on to ``url`` after a form; ``done`` names the confirmation it shows (see DONE)."""
    if done is not None:
        assert done in DONE, done
        path, _, anchor = url.partition("#")
        url = f"{path}{'&' if '?' in path else '?'}done={done}" + (f"#{anchor}" if anchor else "")
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
        algorithms = challenge_api.described(platform, row)[1]
        waiting = dict(session.execute(
            select(Submission.is_baseline, func.count()).join(Evaluation)
            .where(Submission.round_id == round_.id,
                   Evaluation.state.in_((State.queued, State.running)))
            .group_by(Submission.is_baseline)).all())
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
        waiting_baselines=waiting.get(True, 0), waiting_entries=waiting.get(False, 0),
        example_algorithm="random" if "random" in algorithms else next(iter(algorithms), None),
        history=charts.history_chart([p["created_at"] for p in points],
                                     [p["value"] for p in points], [p["best"] for p in points],
                                     [p["team"] for p in points]))
