"""Where jobs run: a pool of local processes (default) or a Ray cluster.

An executor starts jobs, reports their events (progress, then one outcome) and can stop a
running job. It knows nothing of the database; the worker loop (``worker.py``) does that.
"""

from __future__ import annotations

import multiprocessing
import signal
from multiprocessing.connection import Connection, wait
from typing import Any

from dataperf.server.execution import Event, Executor
from dataperf.server.jobs import GenerationJob, Job, Outcome, run_job


def _die_with_parent() -> None:
    """Linux: the scoring process gets SIGKILL when its worker dies, so no orphan runs on."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _serve(connection: Connection) -> None:
    """A scoring process: run the jobs it is sent, one at a time, reporting progress."""
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the worker decides when we stop

    def progress(step: str, done: int, total: int) -> None:
        connection.send(("progress", {"step": step, "done": done, "total": total}))

    from threadpoolctl import threadpool_limits

    while True:
        try:
            job = connection.recv()
        except (EOFError, OSError):
            return
        # One thread per slot: slots run side by side, and numerical libraries spreading each
        # job over every core would only fight each other (seen: 74 s instead of 1 s).
        with threadpool_limits(1):
            outcome = run_job(job, progress)
        connection.send(("done", outcome))


class _Slot:
    """One long-lived scoring process (imports and edition caches stay warm between jobs)."""

    def __init__(self, context: Any):
        self.connection, child = multiprocessing.Pipe()
        self.process = context.Process(target=_serve, args=(child,), daemon=True)
        self.process.start()
        child.close()
        self.key: str | None = None  # the running job's

    def kill(self) -> None:
        self.process.kill()
        self.process.join(5)
        self.connection.close()


class LocalExecutor:
    """``capacity`` scoring processes on this machine; stopping a job kills its process."""

    name = "local"

    def __init__(self, capacity: int):
        self.capacity = capacity
        self._context = multiprocessing.get_context("spawn")
        self._slots: list[_Slot] = []

    def start(self, job: Job | GenerationJob) -> None:
        slot = next((s for s in self._slots if s.key is None), None)
        if slot is None:
            if len(self._slots) >= self.capacity:
                raise RuntimeError("no free slot")
            slot = _Slot(self._context)
            self._slots.append(slot)
        slot.key = job.key
        slot.connection.send(job)

    def running(self) -> set[str]:
        return {s.key for s in self._slots if s.key is not None}

    def events(self, timeout: float) -> list[tuple[str, Event]]:
        busy = {s.connection: s for s in self._slots if s.key is not None}
        if not busy:
            return []
        found: list[tuple[str, Event]] = []
        for connection in wait(list(busy), timeout):
            slot = busy[connection]  # type: ignore[index]
            key = slot.key
            assert key is not None
            try:
                while slot.connection.poll():
                    kind, payload = slot.connection.recv()
                    found.append((key, (kind, payload)))
                    if kind == "done":
                        slot.key = None
                        break
            except (EOFError, OSError):  # the scoring process died (killed, out of memory)
                self._replace(slot)
                found.append((key, ("done", Outcome(
                    "failed_platform", message="the scoring process stopped unexpectedly",
                    retry=True))))
        return found

    def stop(self, key: str) -> None:
        for slot in self._slots:
            if slot.key == key:
                self._replace(slot)

    def _replace(self, slot: _Slot) -> None:
        slot.kill()
        self._slots.remove(slot)

    def close(self) -> None:
        for slot in list(self._slots):
            self._replace(slot)


def make_executor(slots: int, ray_address: str | None = None) -> Executor:
    """A local process pool, or a Ray cluster when an address is given."""
    if ray_address is None:
        return LocalExecutor(slots)
    try:
        from dataperf.server.ray_executor import RayExecutor
    except ModuleNotFoundError as missing:
        from dataperf.exceptions import DataPerfError

        raise DataPerfError(f"running on Ray needs extra packages ({missing.name} is missing):"
                            " pip install 'dataperf[ray]'") from None
    return RayExecutor(slots, ray_address)
