"""Throttling password guesses, kept in the database so that every server replica counts the
same failures.

Failures are counted per (client, account) and per client. Guessing an account's password from
one client locks that client out of that account for a while (and, after many failures, out of
every account), never the account's owner at another client; a login that succeeds clears the
failures of its client and account.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from dataperf.server.models import LoginFailure

WINDOW = timedelta(minutes=15)
PAIR_LIMIT = 5  # failures of one client at one account in the window
CLIENT_LIMIT = 50  # failures of one client at any accounts in the window


def _keys(client: str, email: str) -> tuple[str, str]:
    return f"{client[:100]} {email[:200]}", f"{client[:100]} *"


def wait_seconds(session: Session, client: str, email: str, now: datetime) -> float:
    """Seconds until this client may try this account again (0: now)."""
    pair, anywhere = _keys(client, email)
    wait = 0.0
    for key, limit in ((pair, PAIR_LIMIT), (anywhere, CLIENT_LIMIT)):
        count, oldest = session.execute(select(func.count(), func.min(LoginFailure.at)).where(
            LoginFailure.key == key, LoginFailure.at > now - WINDOW)).one()
        if count >= limit:
            wait = max(wait, (oldest + WINDOW - now).total_seconds())
    return wait


def failed(session: Session, client: str, email: str, now: datetime) -> None:
    session.execute(delete(LoginFailure).where(LoginFailure.at <= now - WINDOW))
    session.add_all([LoginFailure(key=key, at=now) for key in _keys(client, email)])


def succeeded(session: Session, client: str, email: str) -> None:
    session.execute(delete(LoginFailure).where(LoginFailure.key == _keys(client, email)[0]))
