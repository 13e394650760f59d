"""What every executor is: the :class:`Executor` protocol the worker loop drives, and the
events an executor reports for each job: ``("progress", {"step", "done", "total"})``, then
``("done", Outcome)``.
The local one is in ``executors.py``, the Ray one in ``ray_executor.py``."""

from __future__ import annotations

from typing import Any, Protocol

from dataperf.server.jobs import GenerationJob, Job

Event = tuple[str, Any]


class Executor(Protocol):
    name: str
    capacity: int

    def start(self, job: Job | GenerationJob) -> None: ...
    def events(self, timeout: float) -> list[tuple[str, Event]]: ...  # by the job's key
    def stop(self, key: str) -> None: ...
    def running(self) -> set[str]: ...
    def close(self) -> None: ...
