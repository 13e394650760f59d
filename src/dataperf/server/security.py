"""Passwords (argon2id), API tokens (random, stored as SHA-256) and what each role may do."""

from __future__ import annotations

import hashlib
import hmac
import secrets

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
