"""Real platforms for tests: a uvicorn server on a loopback port, backed by a real SQLite file
or a fresh database on a real PostgreSQL server, with fast lease and heartbeat settings.

PostgreSQL: set ``DATAPERF_TEST_POSTGRES_URL`` to a URL of a role that may create databases
(``.ci/run`` starts a server and sets it). Without it the PostgreSQL variants are skipped,
except under CI, where they fail: CI must test both.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from dataperf.server.settings import Settings

POSTGRES_ENV = "DATAPERF_TEST_POSTGRES_URL"
BACKENDS = ["sqlite", "postgresql"]
PASSWORD = "correct horse battery staple"


def fast_settings(home: Path, database_url: str | None = None, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"home": home, "database_url": database_url, "workers": 1,
                              "lease_seconds": 4.0, "heartbeat_seconds": 0.5,
                              "poll_seconds": 0.1, "baselines": (), "released_rounds": False}
    return Settings(**(values | overrides))


def require_ray() -> None:
    """Skip the calling test module without Ray installed, except under CI, where it fails."""
    try:
        import ray  # noqa: F401
    except ModuleNotFoundError:
        if os.environ.get("CI"):
            raise
        pytest.skip("ray is not installed (pip install 'dataperf[ray]')", allow_module_level=True)


@contextmanager
def database_url(backend: str, home: Path) -> Iterator[str]:
    """A URL of an empty database of the given backend, dropped afterwards."""
    admin_url = None
    if backend != "sqlite":
        admin_url = os.environ.get(POSTGRES_ENV)
        if not admin_url:
            if os.environ.get("CI"):
                pytest.fail(f"{POSTGRES_ENV} is not set: CI must test PostgreSQL")
            pytest.skip(f"no PostgreSQL ({POSTGRES_ENV} not set)")
    with scratch_database(admin_url, home) as url:
        yield url


@contextmanager
def scratch_database(admin_url: str | None, home: Path, prefix: str = "dataperf_test"
                     ) -> Iterator[str]:
    """A URL of an empty database: a SQLite file under ``home``, or a new PostgreSQL database
    (named ``prefix`` and a random suffix) on the server of ``admin_url``, dropped afterwards.
    The benchmarks use it too."""
    if admin_url is None:
        yield f"sqlite:///{home / 'dataperf.db'}"
        return
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def queue_baselines(settings: Settings, challenge: str, baseline: str, count: int = 1
                    ) -> list[int]:
    """Queue ``count`` entries of a built-in ``baseline`` in ``challenge``'s current round
    (work for a worker that uses no quota); their evaluations' ids."""
    from sqlalchemy import select

    from dataperf.registry import get_challenge
    from dataperf.server.db import Database
    from dataperf.server.hosting import add_baselines
    from dataperf.server.models import ChallengeRow, Evaluation

    db = Database(settings.sqlalchemy_url)
    chosen = settings.model_copy(update={"baselines": (baseline,)})
    with db.write() as session:
        before = set(session.scalars(select(Evaluation.id)))
        row = session.scalars(select(ChallengeRow).where(ChallengeRow.name == challenge)).one()
        for _ in range(count):
            add_baselines(session, row.rounds[-1], get_challenge(challenge), chosen)
        session.flush()
        ids = sorted(set(session.scalars(select(Evaluation.id))) - before)
    db.dispose()
    return ids


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class LiveServer:
    url: str
    settings: Settings

    def api(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=f"{self.url}/api/v1", headers=headers, timeout=60)

    def register(self, email: str, name: str | None = None, **extra: Any) -> dict[str, Any]:
        with self.api() as client:
            answer = client.post("/auth/register", json={
                "email": email, "name": name or email.split("@")[0], "password": PASSWORD,
                **extra})
        assert answer.status_code == 201, answer.text
        found: dict[str, Any] = answer.json()
        return found

    def user(self, email: str, role: str = "participant") -> str:
        """A token of a new user with ``role`` (set directly in the database)."""
        from dataperf.server.db import Database
        from dataperf.server.users import upsert_user

        token = str(self.register(email)["token"])
        if role != "participant":
            db = Database(self.settings.sqlalchemy_url)
            upsert_user(db, email, email.split("@")[0], PASSWORD, role)
            db.dispose()
        return token

    def host(self, challenge: str, name: str, owner_email: str | None = None) -> None:
        """Host a registered challenge's bundled offline edition as ``name`` (directly in the
        database: also kinds the organize API does not host yet)."""
        from sqlalchemy import select

        from dataperf.editions import Edition
        from dataperf.home import BUNDLED
        from dataperf.registry import get_challenge
        from dataperf.server import hosting
        from dataperf.server.db import Database
        from dataperf.server.jobs import BUNDLED_REF
        from dataperf.server.models import User

        db = Database(self.settings.sqlalchemy_url)
        with db.write() as session:
            owner = session.scalar(select(User.id).where(User.email == owner_email)) \
                if owner_email else None
            hosting.host(session, get_challenge(challenge),
                         Edition.open(BUNDLED / challenge / "offline"), BUNDLED_REF + "offline",
                         name=name, owner_id=owner, settings=self.settings)
        db.dispose()

    def wait(self, token: str, submission_id: int, timeout: float = 180) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        with self.api(token) as client:
            while True:
                found: dict[str, Any] = client.get(f"/submissions/{submission_id}").json()
                if found["state"] in ("scored", "failed_participant", "failed_platform",
                                      "cancelled"):
                    return found
                assert time.monotonic() < deadline, f"still {found['state']}: {found}"
                time.sleep(0.2)


@contextmanager
def live_server(settings: Settings) -> Iterator[LiveServer]:
    """Serve ``create_app(settings)`` with uvicorn on a free loopback port, in a thread."""
    import uvicorn

    from dataperf.server.app import create_app

    port = free_port()
    saved_home = os.environ.get("DATAPERF_HOME")  # create_app points it at the server's home
    config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=port,
                            log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive(), "the server failed to start"
        assert time.monotonic() < deadline, "the server did not start in 60 s"
        time.sleep(0.05)
    try:
        yield LiveServer(f"http://127.0.0.1:{port}", settings)
    finally:
        server.should_exit = True
        thread.join(60)
        if saved_home is None:
            os.environ.pop("DATAPERF_HOME", None)
        else:
            os.environ["DATAPERF_HOME"] = saved_home
