"""Crash safety of the durable queue: a worker process killed (SIGKILL) in the middle of
evaluations, again and again, loses nothing, leaves nothing stuck and scores every submission
exactly once, with correct quotas. Real worker processes (`dataperf worker`), real databases."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from dataperf.registry import get_challenge
from dataperf.server.db import Database
from dataperf.server.models import Evaluation, ScoreRow, State
from platform_harness import LiveServer, database_url, fast_settings, free_port, live_server
from process_harness import Process, start_server, start_worker, wait_until_up
from process_harness import registered_workers as _workers
from process_harness import states as _states
from process_harness import wait_for as _wait_for

CHALLENGE = "vision-selection"


@pytest.fixture
def platform(db_url: str, tmp_path: Path) -> Iterator[tuple[LiveServer, Database]]:
    settings = fast_settings(tmp_path / "home", db_url, workers=0, max_attempts=20,
                             daily_quota=50, lease_seconds=2.0)
    with live_server(settings) as server:
        db = Database(settings.sqlalchemy_url)
        yield server, db
        db.dispose()


def _submit(server: LiveServer, token: str, count: int) -> list[int]:
    challenge = get_challenge(CHALLENGE)
    edition = challenge.edition("offline")
    ids = []
    with server.api(token) as api:
        for seed in range(count):
            files = challenge.run_algorithm("random", edition, random_state=seed)
            answer = api.post(f"/challenges/{CHALLENGE}/submissions", data={"label": str(seed)},
                              files=[("files", (n, d)) for n, d in files.items()])
            assert answer.status_code == 202, answer.text
            ids.append(answer.json()["id"])
    return ids


def test_killed_workers_lose_nothing_and_score_each_submission_once(
        platform: tuple[LiveServer, Database]) -> None:
    server, db = platform
    token = server.user("crash@example.org")
    submitted = _submit(server, token, 8)

    kills = 0
    while kills < 4 and _states(db).get(State.scored, 0) < len(submitted):
        worker = start_worker(server.settings)

        def started(worker: Process = worker) -> bool:
            return _states(db).get(State.running, 0) > 0 or not worker.alive()

        _wait_for(started, 120)
        assert worker.alive(), worker.log_tail()
        time.sleep(0.5 + kills * 0.7)  # kill at different points of the evaluations
        worker.kill()
        kills += 1
    assert kills == 4

    earlier = _workers(db)
    survivors = [start_worker(server.settings) for _ in range(2)]  # two claim side by side
    try:
        _wait_for(lambda: _states(db).get(State.scored, 0) == len(submitted), 300)
        _wait_for(lambda: len(_workers(db) - earlier) == 2, 120)  # up before they are stopped
    finally:
        assert [survivor.stop() for survivor in survivors] == [0, 0]

    assert _states(db) == {State.scored: len(submitted)}
    with db.read() as session:
        attempts = session.scalars(select(Evaluation.attempts)).all()
        per_evaluation = session.execute(select(ScoreRow.evaluation_id, func.count())
                                         .group_by(ScoreRow.evaluation_id)).all()
    assert max(attempts) > 1, "no evaluation was interrupted; the test proved nothing"
    assert sorted(count for _, count in per_evaluation) == [4] * len(submitted)  # 3 tasks + mean

    challenge = get_challenge(CHALLENGE)
    edition = challenge.edition("offline")
    with server.api(token) as api:
        assert api.get(f"/challenges/{CHALLENGE}/quota").json()["daily_used"] == len(submitted)
        for seed, submission_id in enumerate(submitted):
            found = api.get(f"/submissions/{submission_id}").json()
            files = challenge.run_algorithm("random", edition, random_state=seed)
            local = challenge.score(challenge.parse_submission(files, edition), edition)
            assert found["scores"]["all"]["aggregate"]["value"] == local.aggregate.value


def test_a_job_that_keeps_losing_its_worker_fails_for_the_platform_without_using_quota(
        db_url: str, tmp_path: Path) -> None:
    settings = fast_settings(tmp_path / "home", db_url, workers=0, max_attempts=1,
                             lease_seconds=2.0)
    with live_server(settings) as server:
        db = Database(settings.sqlalchemy_url)
        token = server.user("unlucky@example.org")
        (submission_id,) = _submit(server, token, 1)
        worker = start_worker(settings, slots=1)
        _wait_for(lambda: _states(db).get(State.running, 0) == 1, 120)
        worker.kill()
        # Any live worker reaps the expired lease; this one then finds nothing left to run.
        survivor = start_worker(settings, slots=1)
        try:
            found = server.wait(token, submission_id, timeout=60)
        finally:
            survivor.stop()
        db.dispose()
        assert found["state"] == "failed_platform"
        assert "platform's fault" in found["message"]
        with server.api(token) as api:
            assert api.get(f"/challenges/{CHALLENGE}/quota").json()["daily_used"] == 0


def test_sigterm_hands_running_jobs_back_without_using_an_attempt(
        platform: tuple[LiveServer, Database]) -> None:
    server, db = platform
    token = server.user("calm@example.org")
    (_submission_id,) = _submit(server, token, 1)
    worker = start_worker(server.settings, slots=1)
    _wait_for(lambda: _states(db).get(State.running, 0) == 1, 120)
    assert worker.stop() == 0
    with db.read() as session:
        evaluation = session.scalars(select(Evaluation)).one()
    # Back in the queue, untouched, for the next worker.
    assert (evaluation.state, evaluation.attempts) == (State.queued, 0)


def test_cancelling_a_running_evaluation_stops_it(db_url: str, tmp_path: Path) -> None:
    """A slow baseline (fps-cv, seconds) is cancelled while it runs; its slot scores the next."""
    settings = fast_settings(tmp_path / "home", db_url, workers=1, baselines=("fps-cv",))
    with live_server(settings) as server:
        db = Database(settings.sqlalchemy_url)
        admin = server.user("admin@example.org", role="admin")
        with server.api(admin) as api:  # speech selection has an fps-cv baseline too
            def vision_baseline() -> dict:
                (found,) = api.get("/challenges/vision-selection/submissions").json()
                return found

            _wait_for(lambda: vision_baseline()["state"] == "running", 120)
            baseline = vision_baseline()
            answer = api.post(f"/submissions/{baseline['id']}/cancel")
        assert answer.status_code == 200, answer.text
        assert answer.json()["state"] == "running"  # stops at the worker's next heartbeat
        found = server.wait(admin, baseline["id"], timeout=30)
        assert found["state"] == "cancelled"
        assert not found["scores"]
        token = server.user("next@example.org")
        (after,) = _submit(server, token, 1)
        assert server.wait(token, after, timeout=120)["state"] == "scored"
        db.dispose()


def test_a_worker_waits_out_an_unreachable_database_and_a_failing_read(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The database unreachable for a while (a PostgreSQL restart: every query fails) or the
    storage failing on write does not stop a worker, nor lose the outcome it could not record
    then; a stored file that could not be read is tried again rather than failing the
    submission."""
    from sqlalchemy.exc import OperationalError

    from dataperf.server import queue
    from dataperf.server.executors import LocalExecutor
    from dataperf.server.storage import BlobStore
    from dataperf.server.worker import start_in_thread

    settings = fast_settings(tmp_path / "home", None, workers=0)
    with live_server(settings) as server:
        token = server.user("patient@example.org")
        (submission_id,) = _submit(server, token, 1)
        unreachable = OperationalError("SELECT 1", {}, Exception("the database system is "
                                                                  "shutting down"))
        failures: dict[str, list[Exception | None]] = {  # None: this call goes through
            "claim": [unreachable] * 3,
            "get": [OSError(5, "Input/output error")],  # the first run cannot read a file
            # Its retry is recorded; the second run's outcome meets the database down, then
            # storage failing (as a baseline's files would).
            "finish": [None, unreachable, OSError(28, "No space left on device")]}

        def failing(name: str, real: object) -> object:
            def replacement(*args: object, **kwargs: object) -> object:
                if failures[name] and (error := failures[name].pop(0)) is not None:
                    raise error
                return real(*args, **kwargs)  # type: ignore[operator]
            return replacement

        monkeypatch.setattr(queue, "claim", failing("claim", queue.claim))
        monkeypatch.setattr(queue, "finish", failing("finish", queue.finish))
        monkeypatch.setattr(BlobStore, "get", failing("get", BlobStore.get))
        db = Database(settings.sqlalchemy_url)
        thread, stop = start_in_thread(db, settings, LocalExecutor(1))
        try:
            found = server.wait(token, submission_id, timeout=120)
            assert thread.is_alive()
        finally:
            stop.set()
            thread.join(60)
        with db.read() as session:
            evaluation = session.scalars(select(Evaluation)).one()
            rows = session.scalar(select(func.count()).select_from(ScoreRow))
        db.dispose()
        assert failures == {"claim": [], "finish": [], "get": []}
        assert found["state"] == "scored", found
        assert evaluation.attempts == 2  # the unreadable file cost one run, nothing else did
        assert rows == 4


@contextmanager
def forwarder(target: tuple[str, int]) -> Iterator[tuple[int, threading.Event]]:
    """A loopback port that refuses connections until the event is set, then forwards each
    one to ``target``: a database that is down and comes back."""
    port = free_port()
    opened = threading.Event()
    closing = threading.Event()

    def pump(source: socket.socket, sink: socket.socket) -> None:
        with suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def serve() -> None:
        opened.wait()
        with socket.create_server(("127.0.0.1", port)) as listener:
            listener.settimeout(0.2)
            while not closing.is_set():
                try:
                    client, _ = listener.accept()
                except TimeoutError:
                    continue
                upstream = socket.create_connection(target)
                for ends in ((client, upstream), (upstream, client)):
                    threading.Thread(target=pump, args=ends, daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield port, opened
    finally:
        closing.set()
        opened.set()
        thread.join(5)


def test_a_worker_and_a_server_started_while_the_database_is_down_wait_for_it(
        tmp_path: Path) -> None:
    """Started while PostgreSQL refuses connections (restarting), `dataperf worker` and
    `dataperf serve` wait for it and start once it is back, instead of exiting."""
    with database_url("postgresql", tmp_path) as url:
        real = make_url(url)
        with forwarder((real.host or "127.0.0.1", real.port or 5432)) as (port, opened):
            down = real.set(host="127.0.0.1", port=port).render_as_string(hide_password=False)
            settings = fast_settings(tmp_path / "home", down, workers=0)
            worker = start_worker(settings, 1)
            server = start_server(settings)
            try:
                time.sleep(3)
                assert worker.alive(), worker.log_tail()
                assert server.alive(), server.log_tail()
                opened.set()
                wait_until_up(server)
                db = Database(url)
                _wait_for(lambda: _workers(db), 60, f"no worker:\n{worker.log_tail()}")
                db.dispose()
            finally:
                server.stop()
                code = worker.stop()
    assert code == 0, worker.log_tail()
    for process in (worker, server):
        assert "the database is unreachable, trying again" in process.log_tail(80)


def test_a_job_past_its_time_limit_is_stopped_and_fails_for_the_platform(
        db_url: str, tmp_path: Path) -> None:
    """A run that takes longer than ``job_seconds`` (a scorer that hangs) is stopped at a
    heartbeat, fails for the platform with a message that says so, and frees its slot."""
    settings = fast_settings(tmp_path / "home", db_url, workers=1, baselines=("fps-cv",),
                             job_seconds=0.5)
    with live_server(settings) as server:
        admin = server.user("admin@example.org", role="admin")
        with server.api(admin) as api:
            def baselines() -> list[dict]:
                return api.get(f"/challenges/{CHALLENGE}/submissions").json()

            _wait_for(lambda: baselines() and baselines()[0]["state"] == "failed_platform", 120)
            (stopped,) = baselines()
        assert "stopped after 0.5 s, the time limit of one run" in stopped["message"]
        assert stopped["attempts"] == 1
        assert not stopped["scores"]
