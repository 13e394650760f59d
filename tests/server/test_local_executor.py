"""The local executor: long-lived scoring processes that report progress, then one outcome;
stopping a job kills its process; a process that dies comes back as a retryable failure."""

from __future__ import annotations

import os
import signal
import time

import pytest

from dataperf.registry import get_challenge
from dataperf.server.executors import LocalExecutor
from dataperf.server.jobs import BUNDLED_REF, Job, run_job

CHALLENGE = "vision-selection"


def _job(evaluation_id: int, files: dict[str, bytes] | None = None) -> Job:
    challenge = get_challenge(CHALLENGE)
    edition = challenge.edition("offline")
    return Job(evaluation_id=evaluation_id, attempt=1, challenge=CHALLENGE,
               edition_path=BUNDLED_REF + "offline", edition_hash=edition.content_hash,
               files=files if files is not None else challenge.run_algorithm("random", edition))


def _key(evaluation_id: int) -> str:
    return f"evaluations:{evaluation_id}"


def _collect(executor: LocalExecutor, timeout: float = 120) -> dict[int, list[tuple[str, object]]]:
    """Events by evaluation id (executors name jobs by key)."""
    events: dict[int, list[tuple[str, object]]] = {}
    deadline = time.monotonic() + timeout
    while executor.running():
        assert time.monotonic() < deadline
        for key, event in executor.events(0.5):
            events.setdefault(int(key.removeprefix("evaluations:")), []).append(event)
    return events


@pytest.fixture
def executor() -> LocalExecutor:
    pool = LocalExecutor(2)
    yield pool  # type: ignore[misc]
    pool.close()


def test_jobs_report_progress_then_the_same_outcome_as_in_process(
        executor: LocalExecutor) -> None:
    good, bad = _job(1), _job(2, {"Trouser.csv": b"ImageID,Confidence\nnope,1\n"})
    executor.start(good)
    executor.start(bad)
    assert executor.running() == {_key(1), _key(2)}
    events = _collect(executor)
    kinds = [kind for kind, _ in events[1]]
    assert kinds[-1] == "done"
    assert kinds.count("done") == 1
    assert "progress" in kinds
    steps = [payload["step"] for kind, payload in events[1] if kind == "progress"]  # type: ignore[index]
    assert any("Trouser" in step for step in steps)
    outcome = events[1][-1][1]
    assert outcome.status == "scored"  # type: ignore[attr-defined]
    expected = run_job(good).parts["all"]["aggregate"]["value"]
    assert outcome.parts["all"]["aggregate"]["value"] == expected  # type: ignore[attr-defined]
    failed = events[2][-1][1]
    assert failed.status == "failed_participant"  # type: ignore[attr-defined]
    assert "Sneaker.csv" in failed.message  # type: ignore[attr-defined]


def test_stop_kills_the_job_and_frees_its_slot(executor: LocalExecutor) -> None:
    executor.start(_job(1))
    executor.stop(_key(1))
    assert executor.running() == set()
    assert executor.events(0.2) == []
    executor.start(_job(3))
    assert _collect(executor)[3][-1][1].status == "scored"  # type: ignore[attr-defined]


def test_a_scoring_process_that_dies_is_a_retryable_platform_failure(
        executor: LocalExecutor) -> None:
    executor.start(_job(1))
    (slot,) = executor._slots
    os.kill(slot.process.pid, signal.SIGKILL)
    outcome = _collect(executor)[1][-1][1]
    assert outcome.status == "failed_platform"  # type: ignore[attr-defined]
    assert outcome.retry  # type: ignore[attr-defined]
