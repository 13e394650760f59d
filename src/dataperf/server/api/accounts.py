"""Registration, API tokens, the caller's profile, and teams."""

from __future__ import annotations

import secrets

from fastapi import APIRouter, Depends, Request
from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from dataperf.server import logins
from dataperf.server.api.deps import current_user, get_platform
from dataperf.server.api.errors import ApiError, not_found
from dataperf.server.api.schemas import (
    JoinTeam,
    Login,
    NewTeam,
    NewToken,
    Register,
    TeamCreated,
    TeamOut,
    TokenOut,
    UserOut,
)
from dataperf.server.models import ApiToken, Team, User, utcnow
from dataperf.server.platform import Platform
from dataperf.server.security import (
    hash_password,
    hash_token,
    new_token,
    password_problem,
    same_secret,
    verify_password,
)

router = APIRouter(tags=["accounts"])
# Checked when the email is unknown, so a login takes as long either way.
_DUMMY_HASH = hash_password("not a user's password")


def team_out(team: Team | None) -> TeamOut | None:
    if team is None:
        return None
    return TeamOut(id=team.id, name=team.name, members=sorted(m.name for m in team.members))


def user_out(user: User) -> UserOut:
    return UserOut(id=user.id, email=user.email, name=user.name, role=user.role,
                   team=team_out(user.team))


def _team_name_free(session: Session, name: str) -> None:
    """Refuse a team name that is taken, in any case (the databases' ``lower`` may leave
    letters beyond ASCII as they are, so the same name is looked for too)."""
    taken = session.scalar(select(func.count()).select_from(Team).where(
        or_(Team.name == name, func.lower(Team.name) == name.lower())))
    if taken:
        raise _name_taken(name)


def _name_taken(name: str) -> ApiError:
    return ApiError(409, "conflict", f"the team name {name!r} is taken; choose another")


def _already_registered(email: str) -> ApiError:
    return ApiError(409, "conflict", f"{email} is already registered; log in instead")


def _flush_new_team(session: Session, name: str) -> None:
    """Write the new team: a request that took the name meanwhile makes this one a 409."""
    try:
        session.flush()
    except IntegrityError as err:
        raise _name_taken(name) from err


def _issue_token(session: Session, user: User, name: str) -> NewToken:
    token = new_token()
    row = ApiToken(user_id=user.id, name=name, token_hash=hash_token(token), prefix=token[:8])
    session.add(row)
    session.flush()
    return NewToken(token=token, id=row.id, name=row.name, user=user_out(user))


@router.post("/auth/register", status_code=201, response_model=NewToken,
             summary="Create an account (and a team of one); returns an API token")
def register(body: Register, platform: Platform = Depends(get_platform)) -> NewToken:
    if not platform.settings.allow_registration:
        raise ApiError(403, "forbidden", "registration is closed on this server")
    email = body.email.lower()
    problem = password_problem(body.password, email=email, name=body.name)
    if problem:
        raise ApiError(422, "weak-password", problem)
    password_hash = hash_password(body.password)  # slow by design: outside the transaction
    with platform.db.write() as session:
        if session.scalar(select(func.count()).select_from(User).where(User.email == email)):
            raise _already_registered(email)
        team_name = body.team or body.name
        _team_name_free(session, team_name)
        team = Team(name=team_name)
        session.add(team)
        _flush_new_team(session, team_name)
        user = User(email=email, name=body.name, password_hash=password_hash, team=team)
        session.add(user)
        try:
            session.flush()
        except IntegrityError as err:  # registered meanwhile
            raise _already_registered(email) from err
        return _issue_token(session, user, "registration")


@router.post("/auth/token", response_model=NewToken, summary="Log in: a new API token")
def login(body: Login, request: Request, platform: Platform = Depends(get_platform)
          ) -> NewToken:
    email, now = body.email.lower(), utcnow()
    client = request.client.host if request.client else "unknown"
    with platform.db.read() as session:
        wait = logins.wait_seconds(session, client, email, now)
        user = session.execute(select(User).where(User.email == email)).scalar_one_or_none()
        stored = user.password_hash if user else _DUMMY_HASH
    if wait > 0:
        raise ApiError(429, "too-many-requests", f"too many failed logins for {email} from "
                       f"here; try again in {max(1, round(wait / 60))} minutes",
                       headers={"Retry-After": f"{wait:.0f}"})
    if not verify_password(stored, body.password) or user is None:
        with platform.db.write() as session:
            logins.failed(session, client, email, now)
        raise ApiError(401, "unauthorized", "wrong email or password")
    with platform.db.write() as session:
        logins.succeeded(session, client, email)
        return _issue_token(session, session.get_one(User, user.id), body.token_name)


@router.get("/me", response_model=UserOut, summary="Who the token belongs to")
def me(user: User = Depends(current_user), platform: Platform = Depends(get_platform)
       ) -> UserOut:
    with platform.db.read() as session:
        return user_out(session.get_one(User, user.id))


@router.get("/me/tokens", response_model=list[TokenOut], summary="Your API tokens")
def tokens(user: User = Depends(current_user), platform: Platform = Depends(get_platform)
           ) -> list[TokenOut]:
    with platform.db.read() as session:
        rows = session.scalars(select(ApiToken).where(ApiToken.user_id == user.id)
                               .order_by(ApiToken.id))
        return [TokenOut.model_validate(r) for r in rows]


@router.delete("/me/tokens/{token_id}", response_model=TokenOut, summary="Revoke a token")
def revoke(token_id: int, user: User = Depends(current_user),
           platform: Platform = Depends(get_platform)) -> TokenOut:
    with platform.db.write() as session:
        row = session.get(ApiToken, token_id)
        if row is None or row.user_id != user.id:
            raise not_found(f"token {token_id}")
        row.revoked_at = row.revoked_at or utcnow()
        return TokenOut.model_validate(row)


@router.post("/teams", status_code=201, response_model=TeamCreated,
             summary="Create a team and move into it")
def create_team(body: NewTeam, user: User = Depends(current_user),
                platform: Platform = Depends(get_platform)) -> TeamCreated:
    code = secrets.token_urlsafe(12)
    with platform.db.write() as session:
        _team_name_free(session, body.name)
        team = Team(name=body.name, join_code_hash=hash_token(code))
        session.add(team)
        _flush_new_team(session, body.name)
        session.get_one(User, user.id).team = team
        session.flush()
        return TeamCreated(team=team_out(team), join_code=code)  # type: ignore[arg-type]


@router.post("/teams/join", response_model=TeamOut, summary="Join a team with its join code")
def join_team(body: JoinTeam, user: User = Depends(current_user),
              platform: Platform = Depends(get_platform)) -> TeamOut:
    with platform.db.write() as session:
        team = session.execute(select(Team).where(Team.name == body.team)).scalar_one_or_none()
        if team is None or team.join_code_hash is None or team.is_system or \
                not same_secret(team.join_code_hash, hash_token(body.code)):
            raise ApiError(403, "forbidden", "wrong team name or join code")
        session.get_one(User, user.id).team = team
        session.flush()
        return team_out(team)  # type: ignore[return-value]
