"""Account pages: log in and out, sign up, the account (teams, API tokens)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from dataperf.exceptions import describe
from dataperf.server.api import accounts
from dataperf.server.api.deps import get_platform
from dataperf.server.api.errors import ApiError
from dataperf.server.api.schemas import (
    JoinTeam,
    Login,
    NewTeam,
    Register,
)
from dataperf.server.models import (
    ApiToken,
    User,
    utcnow,
)
from dataperf.server.platform import Platform
from dataperf.server.security import hash_token, new_token
from dataperf.server.web.pages import (
    CSRF_FAILED,
    checked_form,
    confirmations,
    error_page,
    form_of,
    guarded,
    login_redirect,
    need_user,
    render,
    see_other,
    session_user,
)
from dataperf.server.web.session import (
    CSRF_FIELD,
    SESSION_COOKIE,
    csrf_ok,
    end_session,
    start_session,
)

router = APIRouter(include_in_schema=False)


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


confirmations(
    welcome="Welcome to DataPerf: your account is ready and you are logged in. Open a "
            "challenge to submit, or create or join a team on your account page.",
    joined="You joined the team.",
    revoked="The token is revoked: it no longer works.",
    logged_out="You are logged out.")


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
    response = see_other("/", "welcome")
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
    response = see_other("/", "logged_out")
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
    return see_other("/account", "joined")


@router.post("/account/tokens/{token_id}/revoke")
@guarded
async def revoke_token(request: Request, token_id: int,
                       user: User | None = Depends(session_user),
                       platform: Platform = Depends(get_platform)) -> Response:
    user = need_user(request, user)
    await checked_form(request)
    await run_in_threadpool(accounts.revoke, token_id, user, platform)
    return see_other("/account", "revoked")
