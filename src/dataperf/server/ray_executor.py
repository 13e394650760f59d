"""Run evaluation jobs as Ray tasks (``dataperf worker --ray-address ...``).

:class:`RayExecutor` has the semantics of :class:`~dataperf.server.executors.LocalExecutor`:
each job is one CPU-only Ray task (``num_cpus=1``) that calls
:func:`~dataperf.server.jobs.run_job`, so a score computed on Ray equals the local one. The
database queue stays the one source of truth: Ray never retries a task itself
(``max_retries=0``); a task that dies (its worker crashed or ran out of memory, its node was
lost) comes back as a ``failed_platform`` outcome with ``retry=True`` and the queue runs it
again, up to its ``max_attempts``.

Progress: the task's progress callback sends ``(run, progress)`` to a small async actor (the
*board*, ``num_cpus=0``) without waiting; before returning its outcome the task makes one
blocking call to the board, so every progress event of a job is on the board before its result
is ready. :meth:`RayExecutor.events` waits (``ray.wait``) on the pending results together with
one long-poll call that returns as soon as progress arrives, then reports progress before
outcomes. Each start gets a fresh run number; events of stopped or finished runs are dropped.

Addresses: ``"local"`` starts a new Ray instance on this machine with ``slots`` CPUs (no
dashboard, no usage statistics, quiet logs) and shuts it down on :meth:`RayExecutor.close`;
anything else (``auto``, ``ray://head:10001``, ``head:6379``) is passed to
``ray.init(address=...)`` and the cluster is left running. If Ray is already initialized in
this process, that connection is reused and left running.

Files: a job carries its submission files inside it (they travel to the Ray worker with the
task), but not its edition: the Ray workers open the edition by the same reference as the
server. Bundled editions (``bundled:<name>``) are inside the installed ``dataperf`` package,
so every Ray node needs the same ``dataperf`` version installed; organizer editions live under
``DATAPERF_HOME`` (or an absolute path) and must be on storage that every Ray node sees at the
same path. A worker that opens a different edition reports a ``failed_platform`` outcome
(content hash mismatch) rather than a wrong score.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import threading
import time
from dataclasses import dataclass
from typing import Any

import ray
from ray import exceptions as ray_errors

from dataperf.server.execution import Event
from dataperf.server.jobs import GenerationJob, Job, Outcome, run_job

log = logging.getLogger("dataperf.worker")
LOCAL = "local"
SYNC_SECONDS = 30.0  # how long a finishing task waits for the board to take its progress


class _ProgressBoard:
    """Progress events of running jobs, kept until the executor takes them (a Ray actor)."""

    def __init__(self) -> None:
        self._events: list[tuple[int, dict[str, Any]]] = []
        self._arrived = asyncio.Event()

    async def put(self, run: int, progress: dict[str, Any]) -> None:
        self._events.append((run, progress))
        self._arrived.set()

    async def sync(self) -> None:
        """Return once every earlier ``put`` of the caller has been applied."""

    async def take(self, timeout: float) -> list[tuple[int, dict[str, Any]]]:
        """All events so far, waiting up to ``timeout`` seconds for the first one."""
        if not self._events and timeout > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), timeout)
        events, self._events = self._events, []
        self._arrived.clear()
        return events


def _score(job: Job | GenerationJob, run: int, board: Any) -> Outcome:
    """The Ray task: score ``job``, posting its progress to ``board`` as run ``run``."""

    def progress(step: str, done: int, total: int) -> None:
        with contextlib.suppress(Exception):  # progress is best effort; the score is not
            board.put.remote(run, {"step": step, "done": done, "total": total})

    outcome = run_job(job, progress)
    with contextlib.suppress(Exception):
        ray.get(board.sync.remote(), timeout=SYNC_SECONDS)
    return outcome


_Board = ray.remote(num_cpus=0, max_restarts=-1)(_ProgressBoard)
_score_task = ray.remote(num_cpus=1, num_gpus=0, max_retries=0)(_score)


def died(err: BaseException) -> Outcome:
    """The outcome of a task that Ray could not run to the end: re-run it."""
    if isinstance(err, ray_errors.OutOfMemoryError):
        what = "the Ray worker running the job was killed: its node ran out of memory"
    elif isinstance(err, ray_errors.WorkerCrashedError):
        what = "the Ray worker running the job stopped unexpectedly"
    elif isinstance(err, ray_errors.NodeDiedError | ray_errors.ObjectLostError
                    | ray_errors.LocalRayletDiedError):
        what = "the Ray node running the job was lost"
    elif isinstance(err, ray_errors.TaskCancelledError):
        what = "the Ray task was cancelled outside the platform"
    elif isinstance(err, ray_errors.RayTaskError):
        what = f"the Ray task failed: {err.cause!r}"
    else:
        what = f"Ray could not run the job: {type(err).__name__}"
    detail = str(err).strip().splitlines()
    if detail and not isinstance(err, ray_errors.RayTaskError):
        what += f" ({detail[0][:300]})"
    return Outcome("failed_platform", message=what, retry=True)


def connect(slots: int, address: str) -> bool:
    """Initialize Ray for ``address``; True if this started a local instance to shut down.

    ``ray.init`` replaces the process's SIGTERM handler with one that exits at once; the one
    the process had (``dataperf worker``'s: stop, handing running jobs back) is put back."""
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    if ray.is_initialized():
        return False
    quiet: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": False}
    sigterm = signal.getsignal(signal.SIGTERM)
    try:
        if address == LOCAL:
            ray.init(address=LOCAL, num_cpus=slots, num_gpus=0, include_dashboard=False,
                     **quiet)
            return True
        ray.init(address=address, **quiet)
        return False
    finally:
        if sigterm is not None and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, sigterm)


@dataclass
class _Run:
    run: int
    result: ray.ObjectRef[Outcome]


class RayExecutor:
    """``slots`` concurrent jobs as Ray tasks; stopping a job force-cancels its task."""

    name = "ray"

    def __init__(self, slots: int, address: str = LOCAL):
        self.capacity = slots
        self._owns_ray = connect(slots, address)
        self._board: Any = _Board.remote()  # an ActorHandle; Ray's stubs miss async methods
        self._runs: dict[str, _Run] = {}  # job key -> its current run
        self._next_run = 0
        self._poll: ray.ObjectRef[list[tuple[int, dict[str, Any]]]] | None = None
        self._closed = False

    def start(self, job: Job | GenerationJob) -> None:
        if len(self._runs) >= self.capacity:
            raise RuntimeError("no free slot")
        if job.key in self._runs:
            raise RuntimeError(f"job {job.key} is already running")
        self._next_run += 1
        result = _score_task.options(name=f"dataperf-{job.key.replace(':', '-')}").remote(
            job, self._next_run, self._board)
        self._runs[job.key] = _Run(self._next_run, result)

    def running(self) -> set[str]:
        return set(self._runs)

    def events(self, timeout: float) -> list[tuple[str, Event]]:
        deadline = time.monotonic() + timeout
        while self._runs:
            remaining = max(0.0, deadline - time.monotonic())
            if self._poll is None:
                self._poll = self._board.take.remote(remaining)
            results = {r.result: key for key, r in self._runs.items()}
            waitables: list[Any] = [*results, self._poll]
            ray.wait(waitables, num_returns=1, timeout=remaining)
            ready, _ = ray.wait(waitables, num_returns=len(waitables), timeout=0)
            finished = [ref for ref in ready if ref in results]
            progress: list[tuple[int, dict[str, Any]]] = []
            if self._poll in ready:
                progress += self._take(self._poll)
                self._poll = None
            if finished:  # their progress is on the board by now (the task synced)
                progress += self._take(self._board.take.remote(0.0))
            by_run = {r.run: key for key, r in self._runs.items()}
            found: list[tuple[str, Event]] = [
                (by_run[run], ("progress", payload)) for run, payload in progress if run in by_run]
            for ref in finished:
                key = results[ref]
                del self._runs[key]
                found.append((key, ("done", self._outcome(ref))))
            if found or time.monotonic() >= deadline:
                return found
        return []

    def _take(self, ref: ray.ObjectRef[list[tuple[int, dict[str, Any]]]]
              ) -> list[tuple[int, dict[str, Any]]]:
        try:
            return ray.get(ref)
        except ray_errors.RayError as err:  # the board restarts; only progress is lost
            log.warning("could not read job progress from Ray: %s", err)
            return []

    @staticmethod
    def _outcome(ref: ray.ObjectRef[Outcome]) -> Outcome:
        try:
            outcome = ray.get(ref)
        except Exception as err:
            return died(err)
        if not isinstance(outcome, Outcome):
            return Outcome("failed_platform", retry=True,
                           message=f"the Ray task returned {type(outcome).__name__}")
        return outcome

    def stop(self, key: str) -> None:
        run = self._runs.pop(key, None)
        if run is not None:
            self._cancel(run)

    @staticmethod
    def _cancel(run: _Run) -> None:
        try:
            ray.cancel(run.result, force=True)
        except Exception as err:  # already finished or gone: nothing left to stop
            log.debug("cancelling a Ray task: %s", err)

    def close(self) -> None:
        """Cancel every job; shut Ray down if this executor started it."""
        if self._closed:
            return
        self._closed = True
        for run in self._runs.values():
            self._cancel(run)
        self._runs.clear()
        with contextlib.suppress(Exception):
            ray.kill(self._board)
        if self._owns_ray:
            ray.shutdown()
