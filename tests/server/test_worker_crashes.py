"""Crash safety of the durable queue: a worker process killed (SIGKILL) in the middle of
evaluations, again and again, loses nothing, leaves nothing stuck and scores every submission
exactly once, with correct quotas. Real worker processes (`dataperf worker`), real databases."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from dataperf.registry import get_challenge
from dataperf.server.db import Database
from dataperf.server.models import Evaluation, ScoreRow, State, WorkerRow
from dataperf.server.settings import Settings
from official_layout import cli_env, dataperf_command
from platform_harness import LiveServer, fast_settings, live_server

CHALLENGE = "vision-selection"


def _worker_env(settings: Settings) -> dict[str, str]:
    env = cli_env(settings.home)
    env.update({"DATAPERF_DATABASE_URL": settings.sqlalchemy_url,
                "DATAPERF_LEASE_SECONDS": "2", "DATAPERF_HEARTBEAT_SECONDS": "0.4",
                "DATAPERF_POLL_SECONDS": "0.1"})
    return env


def _start_worker(settings: Settings, slots: int = 2) -> subprocess.Popen[bytes]:
    return subprocess.Popen([*dataperf_command(), "worker", "--slots", str(slots)],
                            env=_worker_env(settings), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)


def _states(db: Database) -> dict[State, int]:
    with db.read() as session:
        rows = session.execute(select(Evaluation.state, func.count()).group_by(Evaluation.state))
        return {State(state): count for state, count in rows}


def _workers(db: Database) -> set[str]:
    """The workers that have registered (killed ones stay listed)."""
    with db.read() as session:
        return set(session.scalars(select(WorkerRow.id)))


def _wait_for(condition: object, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


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
        worker = _start_worker(server.settings)

        def started(worker: subprocess.Popen[bytes] = worker) -> bool:
            return _states(db).get(State.running, 0) > 0 or worker.poll() is not None

        _wait_for(started, 120)
        assert worker.poll() is None, worker.stderr.read() if worker.stderr else ""
        time.sleep(0.5 + kills * 0.7)  # kill at different points of the evaluations
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        kills += 1
    assert kills == 4

    earlier = _workers(db)
    survivors = [_start_worker(server.settings) for _ in range(2)]  # two claim side by side
    try:
        _wait_for(lambda: _states(db).get(State.scored, 0) == len(submitted), 300)
        _wait_for(lambda: len(_workers(db) - earlier) == 2, 120)  # up before they are stopped
    finally:
        for survivor in survivors:
            survivor.send_signal(signal.SIGTERM)
        assert [survivor.wait(60) for survivor in survivors] == [0, 0]

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
        worker = _start_worker(settings, slots=1)
        _wait_for(lambda: _states(db).get(State.running, 0) == 1, 120)
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        # Any live worker reaps the expired lease; this one then finds nothing left to run.
        survivor = _start_worker(settings, slots=1)
        try:
            found = server.wait(token, submission_id, timeout=60)
        finally:
            survivor.send_signal(signal.SIGTERM)
            survivor.wait(60)
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
    worker = _start_worker(server.settings, slots=1)
    _wait_for(lambda: _states(db).get(State.running, 0) == 1, 120)
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(60) == 0
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
