"""Passwords (argon2id), API tokens (random, stored as SHA-256) and what each role may do."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import unicodedata

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from dataperf.server.models import Role

TOKEN_PREFIX = "dp_"
_hasher = PasswordHasher()

# What a role may act as: an admin can do everything, an organizer also participates.
GRANTS: dict[Role, frozenset[Role]] = {
    Role.participant: frozenset({Role.participant}),
    Role.rater: frozenset({Role.rater, Role.participant}),
    Role.organizer: frozenset({Role.organizer, Role.participant}),
    Role.admin: frozenset(Role),
}


MIN_PASSWORD = 10
#: zxcvbn's score (0 to 4) a new password needs: 3 is "safely unguessable" online.
MIN_STRENGTH = 3
#: The part of a password zxcvbn judges (its time grows with the length; beyond this many
#: characters a password is long enough anyway).
JUDGED = 64


def password_problem(password: str, *, email: str = "", name: str = "") -> str | None:
    """Why a new password is refused, in words (None: it is accepted): at least
    :data:`MIN_PASSWORD` characters, no control characters, and hard to guess by zxcvbn's
    estimate (the account's email and name count as known words)."""
    from zxcvbn import zxcvbn

    if len(password) < MIN_PASSWORD:
        return f"the password must have at least {MIN_PASSWORD} characters"
    if any(unicodedata.category(c) in ("Cc", "Cf", "Cs") for c in password):
        return "the password holds control characters; use letters, digits, spaces and signs"
    judged = zxcvbn(password[:JUDGED], user_inputs=[email, *email.split("@"), name])
    if judged["score"] >= MIN_STRENGTH:
        return None
    feedback = judged["feedback"]
    advice = " ".join(filter(None, [feedback.get("warning"), *feedback.get("suggestions", [])]))
    return "the password is too easy to guess" + (f": {advice}" if advice else "") + \
        " A few uncommon words make a strong one."


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored: str, password: str) -> bool:
    try:
        return _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def new_token() -> str:
    """A fresh API token: shown to its owner once, stored only as its hash."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """Tokens carry 256 random bits, so a fast hash is enough (no KDF needed)."""
    return hashlib.sha256(token.encode()).hexdigest()


def same_secret(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def allows(role: Role, needed: Role) -> bool:
    return needed in GRANTS[role]
