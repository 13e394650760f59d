"""The Ray executor on a real local Ray instance (one per module: starting Ray takes seconds):
scores equal to in-process ones, progress then exactly one outcome per job, participant errors,
stopping (the task is killed and its slot freed), two jobs at once, a crashed task that comes
back for a re-run, and the whole worker path from an API submission to its score."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from dataperf.registry import get_challenge
from dataperf.server.execution import Event
from dataperf.server.jobs import Job, Outcome, run_job
from platform_harness import database_url, fast_settings, live_server, require_ray

require_ray()

from dataperf.server.ray_executor import RayExecutor, died  # noqa: E402 (needs ray)

pytestmark = pytest.mark.slow
CHALLENGE = "vision-selection"
SLOW_BASELINE = "fps-cv"  # a few seconds on a Ray worker, with progress from its start


@pytest.fixture(scope="module")
def executor() -> Iterator[RayExecutor]:
    ray_executor = RayExecutor(2, "local")
    yield ray_executor
    ray_executor.close()


@pytest.fixture(autouse=True)
def no_leftovers(executor: RayExecutor) -> Iterator[None]:
    """A failed test leaves no job running into the next one."""
    yield
    for evaluation_id in executor.running():
        executor.stop(evaluation_id)


@pytest.fixture(scope="module")
def random_files() -> dict[str, bytes]:
    challenge = get_challenge(CHALLENGE)
    return challenge.run_algorithm("random", challenge.edition("offline"))


def make_job(evaluation_id: int, files: dict[str, bytes], **extra: Any) -> Job:
    """A job as ``queue.load_job`` builds it for the hosted bundled challenge."""
    edition = get_challenge(CHALLENGE).edition("offline")
    return Job(evaluation_id=evaluation_id, attempt=1, challenge=CHALLENGE,
               edition_path="bundled:offline", edition_hash=edition.content_hash, files=files,
               **extra)


def task_pids(evaluation_id: int) -> list[int]:
    """Processes running the Ray task of an evaluation (Ray titles them ``ray::<task name>``)."""
    title = f"ray::dataperf-evaluations-{evaluation_id}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                words = (entry / "cmdline").read_bytes().replace(b"\0", b" ").split()
            except OSError:
                continue
            if words and words[0] == title:
                found.append(int(entry.name))
    return found


def collect(executor: RayExecutor, until: Callable[[list[tuple[str, Event]]], bool],
            timeout: float = 90, watch: Callable[[], None] | None = None
            ) -> list[tuple[str, Event]]:
    """Events until ``until(events)`` holds."""
    events: list[tuple[str, Event]] = []
    deadline = time.monotonic() + timeout
    while not until(events):
        assert time.monotonic() < deadline, f"timed out; events so far: {events}"
        events += executor.events(0.2)
        if watch is not None:
            watch()
    return events


def key(evaluation_id: int) -> str:
    """The executor's name of an evaluation's job."""
    return f"evaluations:{evaluation_id}"


def done(*evaluation_ids: int) -> Callable[[list[tuple[str, Event]]], bool]:
    keys = {key(i) for i in evaluation_ids}
    return lambda events: {k for k, (kind, _) in events if kind == "done"} >= keys


def started(evaluation_id: int) -> Callable[[list[tuple[str, Event]]], bool]:
    return lambda events: any(k == key(evaluation_id) for k, _ in events)


def outcomes(events: list[tuple[str, Event]]) -> dict[int, Outcome]:
    """The outcomes by evaluation id."""
    found: dict[int, Outcome] = {}
    for name, (kind, payload) in events:
        if kind == "done":
            evaluation_id = int(name.removeprefix("evaluations:"))
            assert evaluation_id not in found, f"two outcomes for {evaluation_id}"
            found[evaluation_id] = payload
    return found


def test_a_job_on_ray_scores_exactly_as_in_process(
        executor: RayExecutor, random_files: dict[str, bytes]) -> None:
    assert (executor.name, executor.capacity) == ("ray", 2)
    job = make_job(1, random_files)
    executor.start(job)
    assert executor.running() == {key(1)}
    events = collect(executor, done(1))
    assert {k for k, _ in events} == {key(1)}
    kinds = [kind for _, (kind, _) in events]
    assert kinds[-1] == "done"
    assert kinds.count("done") == 1
    assert "progress" in kinds
    for _, (_kind, payload) in events[:-1]:
        assert set(payload) == {"step", "done", "total"}
    outcome = outcomes(events)[1]
    local = run_job(job)
    assert outcome.status == "scored", outcome.message
    assert (outcome.parts["all"]["aggregate"]["value"]
            == local.parts["all"]["aggregate"]["value"])
    assert outcome.parts == local.parts
    assert executor.running() == set()
    assert executor.events(0.1) == []


def test_participant_errors_come_back_with_their_problems(executor: RayExecutor) -> None:
    job = make_job(2, {"Trouser.csv": b"this is not a list of ids\n"})
    executor.start(job)
    outcome = outcomes(collect(executor, done(2)))[2]
    local = run_job(job)
    assert outcome.status == "failed_participant"
    assert not outcome.retry
    assert outcome.message == local.message
    assert outcome.message
    assert outcome.problems == local.problems
    assert outcome.problems


def test_stop_kills_the_task_frees_its_slot_and_silences_it(
        executor: RayExecutor, random_files: dict[str, bytes]) -> None:
    executor.start(make_job(3, {}, baseline=SLOW_BASELINE))
    collect(executor, started(3))  # its baseline is running
    assert task_pids(3)
    executor.stop(key(3))
    assert executor.running() == set()
    deadline = time.monotonic() + 15
    while task_pids(3):
        assert time.monotonic() < deadline, "the stopped task is still running"
        time.sleep(0.1)

    executor.start(make_job(4, random_files))  # both slots are free again
    executor.start(make_job(5, random_files))
    with pytest.raises(RuntimeError, match="no free slot"):
        executor.start(make_job(6, random_files))
    events = collect(executor, done(4, 5))
    assert key(3) not in {k for k, _ in events}
    assert {i: o.status for i, o in outcomes(events).items()} == {4: "scored", 5: "scored"}
    assert executor.events(0.5) == []


def test_two_jobs_run_at_the_same_time(
        executor: RayExecutor, random_files: dict[str, bytes]) -> None:
    executor.start(make_job(7, {}, baseline=SLOW_BASELINE))
    collect(executor, started(7))  # 7 is running (its baseline takes seconds more) ...
    executor.start(make_job(8, random_files))
    assert executor.running() == {key(7), key(8)}
    events = collect(executor, done(8))
    assert task_pids(7), "7 finished first: make its job slower"  # ... and still is: 8 ran
    assert executor.running() == {key(7)}  # all along its run
    assert {i: o.status for i, o in outcomes(events).items()} == {8: "scored"}
    assert key(8) in {k for k, (kind, _) in events if kind == "progress"}
    executor.stop(key(7))
    assert executor.running() == set()


def test_a_crashed_task_comes_back_for_a_rerun(executor: RayExecutor) -> None:
    executor.start(make_job(9, {}, baseline=SLOW_BASELINE))
    collect(executor, started(9))
    (pid,) = task_pids(9)
    os.kill(pid, signal.SIGKILL)
    outcome = outcomes(collect(executor, done(9)))[9]
    assert outcome.status == "failed_platform"
    assert outcome.retry
    assert outcome.message
    assert "stopped unexpectedly" in outcome.message
    assert executor.running() == set()


def test_ray_failures_are_platform_failures_to_retry() -> None:
    from ray import exceptions

    memory = died(exceptions.OutOfMemoryError("Task was killed due to the node running low"))
    node = died(exceptions.NodeDiedError("node 1 died"))
    assert memory.status == node.status == "failed_platform"
    assert memory.retry
    assert node.retry
    assert "ran out of memory" in (memory.message or "")
    assert "node running the job was lost" in (node.message or "")


def test_the_worker_scores_an_api_submission_on_ray(
        executor: RayExecutor, random_files: dict[str, bytes], tmp_path: Path) -> None:
    from dataperf.server.db import Database
    from dataperf.server.worker import Worker

    with database_url("sqlite", tmp_path) as url, \
            live_server(fast_settings(tmp_path / "home", url, workers=0)) as server:
        token = server.register("ada@example.org", "Ada")["token"]
        with server.api(token) as api:
            answer = api.post(f"/challenges/{CHALLENGE}/submissions", data={"label": "random"},
                              files=[("files", (n, d)) for n, d in random_files.items()])
        assert answer.status_code == 202, answer.text
        submission_id = answer.json()["id"]

        db = Database(url)
        db.migrate()
        stop = threading.Event()
        worker = Worker(db, server.settings, RayExecutor(2, "local"))  # shares the module's Ray
        thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
        thread.start()
        try:
            scored = server.wait(token, submission_id, timeout=120)
        finally:
            stop.set()
            thread.join(30)
            db.dispose()
        assert not thread.is_alive()

    challenge = get_challenge(CHALLENGE)
    edition = challenge.edition("offline")
    local = challenge.score(challenge.parse_submission(random_files, edition), edition)
    assert scored["state"] == "scored", scored
    assert scored["attempts"] == 1
    aggregate = scored["scores"]["all"]["aggregate"]
    assert aggregate["value"] == local.aggregate.value
    assert (aggregate["ci_low"], aggregate["ci_high"]) == (local.aggregate.ci_low,
                                                           local.aggregate.ci_high)
    assert executor.running() == set()  # the module's executor and Ray outlived that worker
