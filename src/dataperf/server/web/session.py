"""Browser sessions and protection against cross-site request forgery.

A session is an API token kept in an HttpOnly, SameSite=Lax cookie (so it shows among the
user's tokens and can be revoked there). Every form carries a CSRF token equal to a random
``SameSite=Strict`` cookie (double submit): another site can neither read nor set it, so a
forged cross-site post never has the matching value.
"""

from __future__ import annotations

import secrets

from fastapi import Request, Response

from dataperf.server.security import same_secret

SESSION_COOKIE = "dp_session"
CSRF_COOKIE = "dp_csrf"
CSRF_FIELD = "csrf"


def csrf_token(request: Request) -> str:
    """This browser's CSRF token (made on first use; set as a cookie by ``remember_csrf``)."""
    token = request.cookies.get(CSRF_COOKIE)
    if not token or len(token) < 20:
        token = getattr(request.state, "new_csrf", None) or secrets.token_urlsafe(24)
        request.state.new_csrf = token
    return token


def remember_csrf(request: Request, response: Response) -> None:
    new = getattr(request.state, "new_csrf", None)
    if new:
        response.set_cookie(CSRF_COOKIE, new, httponly=True, samesite="strict",
                            secure=request.url.scheme == "https")


def csrf_ok(request: Request, submitted: object) -> bool:
    cookie = request.cookies.get(CSRF_COOKIE)
    if not cookie or not isinstance(submitted, str) or not submitted:
        return False
    return same_secret(cookie, submitted)


def start_session(request: Request, response: Response, token: str) -> None:
    response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="lax",
                        secure=request.url.scheme == "https", max_age=30 * 24 * 3600)


def end_session(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE)
