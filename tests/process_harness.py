"""The platform as real processes: `dataperf serve` replicas and `dataperf worker`s started
with ``subprocess`` on one database and one home (the shared file storage), so that tests can
kill them (SIGKILL) at any moment, and the database helpers those tests check the queue with.

Every process writes its log to a file beside the home (a pipe nobody reads could fill up and
stop it); :meth:`Process.log_tail` shows the end of it in failure messages.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

from dataperf.server.db import Database
from dataperf.server.models import Evaluation, State, WorkerRow
from dataperf.server.settings import Settings
from official_layout import cli_env, dataperf_command
from platform_harness import LiveServer, free_port

#: Fast leases and polls for processes the tests kill (DATAPERF_* names, lower case).
FAST = {"lease_seconds": 2.0, "heartbeat_seconds": 0.4, "poll_seconds": 0.1}


def platform_env(settings: Settings, **overrides: Any) -> dict[str, str]:
    """The environment of a `dataperf` process on the database and home of ``settings``, with
    the fast lease settings and ``overrides`` (setting names; tuples and lists as JSON)."""
    env = cli_env(settings.home)
    values: dict[str, Any] = {"database_url": settings.sqlalchemy_url, "baselines": [],
                              "released_rounds": False, **FAST, **overrides}
    for name, value in values.items():
        if isinstance(value, list | tuple):
            text = "[" + ", ".join(f'"{v}"' for v in value) + "]"
        elif isinstance(value, bool):
            text = "true" if value else "false"
        else:
            text = str(value)
        env[f"DATAPERF_{name.upper()}"] = text
    return env


@dataclass
class Process:
    popen: subprocess.Popen[bytes]
    log: Path

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs (leases stay held, uploads stop halfway)."""
        if self.alive():
            self.popen.send_signal(signal.SIGKILL)
        self.popen.wait()

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM, then the exit status (SIGKILL if it does not stop in ``timeout``)."""
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise


@dataclass
class ServerProcess(Process):
    """A `dataperf serve` process; ``live`` talks to it like the in-thread servers."""

    live: LiveServer = field(default=None)  # type: ignore[assignment]
    port: int = 0


def _logs(settings: Settings) -> Path:
    folder = settings.home.parent / "logs"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen([*dataperf_command(), *args], env=env,
                                stdin=subprocess.DEVNULL, stdout=out, stderr=out)


def start_worker(settings: Settings, slots: int = 2, **overrides: Any) -> Process:
    """A `dataperf worker` on the database and home of ``settings`` (not waited for)."""
    log = _logs(settings) / f"worker-{time.monotonic_ns()}.log"
    popen = _spawn(["worker", "--slots", str(slots)], platform_env(settings, **overrides), log)
    return Process(popen, log)


def start_server(settings: Settings, port: int | None = None,
                 options: Sequence[str] = ("--workers", "0"), **overrides: Any
                 ) -> ServerProcess:
    """A `dataperf serve --workers 0` replica (or with other ``options``) on a free loopback
    port (not waited for: see :func:`wait_until_up`); ``port`` serves on a given one (a
    restart at the same address)."""
    port = port or free_port()
    log = _logs(settings) / f"server-{port}-{time.monotonic_ns()}.log"
    popen = _spawn(["serve", "--host", "127.0.0.1", "--port", str(port), *options],
                   platform_env(settings, **overrides), log)
    return ServerProcess(popen, log, LiveServer(f"http://127.0.0.1:{port}", settings), port)


def wait_until_up(server: ServerProcess, timeout: float = 120) -> None:
    """Until the server answers its health check (its start-up work done)."""
    deadline = time.monotonic() + timeout
    while True:
        assert server.alive(), f"the server exited:\n{server.log_tail()}"
        try:
            if httpx.get(f"{server.live.url}/api/v1/health", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, f"the server did not start:\n{server.log_tail()}"
        time.sleep(0.1)


@contextmanager
def replicas(settings: Settings, count: int = 2, **overrides: Any
             ) -> Iterator[list[ServerProcess]]:
    """``count`` server replicas started side by side (they take turns at start-up work),
    stopped afterwards."""
    with ExitStack() as stack:
        servers = []
        for _ in range(count):
            server = start_server(settings, **overrides)
            stack.callback(_stop_quietly, server)
            servers.append(server)
        for server in servers:
            wait_until_up(server)
        yield servers


@contextmanager
def workers(settings: Settings, count: int = 2, slots: int = 2, **overrides: Any
            ) -> Iterator[list[Process]]:
    """``count`` workers, stopped (SIGTERM) afterwards."""
    with ExitStack() as stack:
        started = []
        for _ in range(count):
            worker = start_worker(settings, slots, **overrides)
            stack.callback(_stop_quietly, worker)
            started.append(worker)
        yield started


def _stop_quietly(process: Process) -> None:
    with suppress(subprocess.TimeoutExpired):
        process.stop()


def wait_for(condition: Callable[[], object], timeout: float, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out{': ' + what if what else ''}"
        time.sleep(0.1)


def states(db: Database) -> dict[State, int]:
    """Evaluations by state."""
    with db.read() as session:
        rows = session.execute(select(Evaluation.state, func.count()).group_by(Evaluation.state))
        return {State(state): count for state, count in rows}


def registered_workers(db: Database) -> set[str]:
    """The workers that have registered (killed ones stay listed)."""
    with db.read() as session:
        return set(session.scalars(select(WorkerRow.id)))
