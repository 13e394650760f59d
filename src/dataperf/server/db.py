"""The database: engines, sessions and migrations.

SQLite (the embedded default) runs in WAL mode so readers never wait for the writer; a write
transaction starts with ``BEGIN IMMEDIATE`` so two writers queue up instead of failing when one
tries to upgrade a read lock. PostgreSQL needs none of that: both session kinds use one engine.
"""

from __future__ import annotations

import fcntl
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib.resources import files
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

STARTUP_LOCK = 0x0DA7A9E4F  # any constant shared by every DataPerf process
#: The database cannot be reached (restarting, failing over, the network down).
UNREACHABLE = (OperationalError, InterfaceError)
START_WAIT_SECONDS = 60.0  # how long a starting process waits for an unreachable database
log = logging.getLogger("dataperf.db")
T = TypeVar("T")


def _sqlite_engine(url: str, begin: str) -> Engine:
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 60})

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves (below)
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=60000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        connection.exec_driver_sql(begin)

    return engine


class Database:
    """Sessions for reading (``read()``) and for writing (``write()``, committed on success)."""

    def __init__(self, url: str):
        self.url = url
        self.is_sqlite = make_url(url).get_backend_name() == "sqlite"
        if self.is_sqlite:
            self.engine = _sqlite_engine(url, "BEGIN")
            self.write_engine = _sqlite_engine(url, "BEGIN IMMEDIATE")
        else:
            self.engine = self.write_engine = create_engine(url, pool_pre_ping=True)
        self._read = sessionmaker(self.engine, expire_on_commit=False)
        self._write = sessionmaker(self.write_engine, expire_on_commit=False)

    @contextmanager
    def read(self) -> Iterator[Session]:
        with self._read() as session:
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        with self._write() as session, session.begin():
            yield session

    @contextmanager
    def startup_lock(self) -> Iterator[None]:
        """Serialize start-up work (migrations, hosting) across processes and replicas:
        a PostgreSQL advisory lock, or a file lock beside the SQLite database."""
        if not self.is_sqlite:
            with self.engine.connect() as connection:
                connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": STARTUP_LOCK})
                try:
                    yield
                finally:
                    connection.execute(text("SELECT pg_advisory_unlock(:key)"),
                                       {"key": STARTUP_LOCK})
                    connection.commit()
            return
        database = make_url(self.url).database
        if not database or database == ":memory:":
            yield
            return
        with open(f"{database}.startup-lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def when_reachable(self, work: Callable[[], T], seconds: float = START_WAIT_SECONDS) -> T:
        """``work()``, tried again every second while the database is unreachable, for up to
        ``seconds`` (then the error is raised): a process started while the database restarts
        waits for it instead of exiting. ``work`` must be safe to repeat."""
        deadline = time.monotonic() + seconds
        while True:
            try:
                return work()
            except UNREACHABLE as err:
                if time.monotonic() >= deadline:
                    raise
                log.warning("the database is unreachable, trying again: %s",
                            str(err).splitlines()[0])
                time.sleep(1.0)

    def migrate(self, revision: str = "head") -> None:
        """Bring the schema to a migration, by default the newest (Alembic ``upgrade``)."""
        from alembic import command
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(files("dataperf.server") / "migrations"))
        with self.write_engine.connect() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
            connection.commit()

    def dispose(self) -> None:
        self.engine.dispose()
        if self.write_engine is not self.engine:
            self.write_engine.dispose()
