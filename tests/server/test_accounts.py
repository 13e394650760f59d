"""Accounts: passwords are checked with argon2 and guessing is throttled; tokens are shown once
and stored only as hashes."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from dataperf.exceptions import DataPerfError
from dataperf.server.db import Database
from dataperf.server.models import ApiToken, User
from dataperf.server.users import upsert_user
from official_layout import dataperf
from platform_harness import PASSWORD, LiveServer


def test_repeated_wrong_passwords_lock_the_account_for_a_while(server: LiveServer) -> None:
    token = server.register("guess@example.org")["token"]
    server.register("other@example.org")
    with server.api() as api:
        wrong = [api.post("/auth/token", json={"email": "guess@example.org",
                                               "password": f"wrong {i}"}).status_code
                 for i in range(5)]
        locked = api.post("/auth/token", json={"email": "guess@example.org",
                                               "password": PASSWORD})
        unknown = api.post("/auth/token", json={"email": "nobody@example.org",
                                                "password": PASSWORD})
        other = api.post("/auth/token", json={"email": "OTHER@example.org",
                                              "password": PASSWORD})
    assert wrong == [401] * 5
    assert locked.status_code == 429
    assert "too many failed logins" in locked.json()["error"]["message"]
    assert int(locked.headers["Retry-After"]) > 0
    assert unknown.status_code == 401  # same answer as a wrong password
    assert other.status_code == 200  # the email is case-insensitive; other accounts unaffected
    # The owner, at another client, is not locked out by someone else's guesses.
    elsewhere = httpx.Client(base_url=f"{server.url}/api/v1",
                             transport=httpx.HTTPTransport(local_address="127.0.0.2"))
    with elsewhere:
        owner = elsewhere.post("/auth/token", json={"email": "guess@example.org",
                                                    "password": PASSWORD})
    assert owner.status_code == 200, owner.text

    db = Database(server.settings.sqlalchemy_url)
    with db.read() as session:
        hashes = session.scalars(select(ApiToken.token_hash)).all()
        password_hash = session.scalars(select(User.password_hash)
                                        .where(User.email == "guess@example.org")).one()
    db.dispose()
    assert token not in hashes
    assert all(len(h) == 64 for h in hashes)  # sha256 hex, never the token itself
    assert password_hash.startswith("$argon2id$")
    assert PASSWORD not in password_hash


def test_weak_passwords_are_refused_with_a_reason(server: LiveServer) -> None:
    with server.api() as api:
        def register(password: str) -> httpx.Response:
            return api.post("/auth/register", json={"email": "ada@weak.example.org",
                                                    "name": "Ada Lovelace",
                                                    "password": password})

        answers = {password: register(password) for password in (
            " " * 10, "\x00" * 10, "password12", "qwertyuiop", "ada@weak.example.org",
            "1234567890")}
        strong = register("lantern orchard velvet")
    for password, answer in answers.items():
        assert answer.status_code == 422, (password, answer.text)
    assert answers["\x00" * 10].json()["error"]["message"].startswith(
        "the password holds control characters")
    common = answers["password12"].json()["error"]
    assert common["code"] == "weak-password"
    assert "too easy to guess" in common["message"]
    assert "common password" in common["message"]  # zxcvbn's own advice, in words
    assert strong.status_code == 201, strong.text


def test_the_operators_users_get_strong_passwords_too(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'users.db'}")
    db.migrate()
    with pytest.raises(DataPerfError, match="too easy to guess"):
        upsert_user(db, "root@example.org", "root", "password12", "admin")
    assert upsert_user(db, "root@example.org", "root", "lantern orchard velvet", "admin")
    db.dispose()


def test_a_piped_password_logs_in_without_a_warning(server: LiveServer, tmp_path: Path) -> None:
    """``echo $PASSWORD | dataperf login`` reads the line quietly, as --password-stdin does
    (it printed a GetPassWarning about echo)."""
    server.register("piper@example.org")
    logged_in = dataperf("login", "--server", server.url, "--email", "piper@example.org",
                         home=tmp_path, input=PASSWORD + "\n")
    assert logged_in.returncode == 0, logged_in
    assert "Warning" not in logged_in.err
    assert "logged in" in logged_in.out
