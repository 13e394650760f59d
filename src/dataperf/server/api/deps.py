"""Request dependencies: the platform, the caller (from an API token) and role checks."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select

from dataperf.server.api.errors import ApiError, forbidden
from dataperf.server.models import ApiToken, Role, User, utcnow
from dataperf.server.platform import Platform
from dataperf.server.security import allows, hash_token
from dataperf.server.web.session import SESSION_COOKIE

_bearer = HTTPBearer(auto_error=False, description="an API token: `dataperf login` makes one")

#: ``openapi_extra`` of a route that takes ``optional_user``: the schema says the token may be
#: left out (FastAPI documents every bearer dependency as required).
OPTIONAL_TOKEN: dict[str, object] = {"security": [{}]}


def get_platform(request: Request) -> Platform:
    platform: Platform = request.app.state.platform
    return platform


SAFE_METHODS = ("GET", "HEAD")


def optional_user(request: Request,
                  credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),
                  platform: Platform = Depends(get_platform)) -> User | None:
    """The token's owner, None without a token; a wrong or revoked token is an error.

    The browser's session cookie counts for reading only: a change through the API always
    needs the token in the Authorization header, so a cross-site request cannot make one.
    """
    secret = credentials.credentials if credentials else None
    if secret is None and request.method in SAFE_METHODS:
        secret = request.cookies.get(SESSION_COOKIE)
    if secret is None:
        return None
    now = utcnow()
    with platform.db.read() as session:
        token = session.execute(
            select(ApiToken).where(ApiToken.token_hash == hash_token(secret),
                                   ApiToken.revoked_at.is_(None))).scalar_one_or_none()
        user = token.user if token else None
    if token is None or user is None:
        raise ApiError(401, "unauthorized", "the API token is unknown or revoked; "
                       "log in again (`dataperf login`)", headers={"WWW-Authenticate": "Bearer"})
    if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=5):
        with platform.db.write() as session:  # coarse, so reads stay reads
            session.get_one(ApiToken, token.id).last_used_at = now
    return user


def current_user(user: User | None = Depends(optional_user)) -> User:
    if user is None:
        raise ApiError(401, "unauthorized", "log in first: send 'Authorization: Bearer <token>' "
                       "(`dataperf login` makes a token)", headers={"WWW-Authenticate": "Bearer"})
    return user


def require(role: Role) -> Callable[[User], User]:
    def check(user: User = Depends(current_user)) -> User:
        if not allows(user.role, role):
            raise forbidden(f"this needs the {role.value} role; you are a {user.role.value}")
        return user

    return check
