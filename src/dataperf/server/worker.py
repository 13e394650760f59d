"""The worker loop: claim jobs from the database queue, run them on an executor, keep their
leases alive, stop cancelled ones and record outcomes. Runs inside ``dataperf serve`` (embedded
mode) or on its own as ``dataperf worker``."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from typing import Any

from dataperf.exceptions import StorageUnavailableError
from dataperf.server import queue, rating
from dataperf.server.db import UNREACHABLE, Database
from dataperf.server.execution import Executor
from dataperf.server.jobs import Outcome
from dataperf.server.settings import Settings
from dataperf.server.storage import BlobStore

log = logging.getLogger("dataperf.worker")
EXPIRY_SECONDS = 3600.0  # how often a worker deletes images past their round's retention
#: The database is unreachable (``db.UNREACHABLE``), or the file storage fails (full,
#: read-only for a while: a baseline's files cannot be stored): wait, then go on.
TRANSIENT = (*UNREACHABLE, OSError, StorageUnavailableError)
RECONNECT_SECONDS = 1.0


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Worker:
    def __init__(self, db: Database, settings: Settings, executor: Executor,
                 name: str | None = None):
        self.db = db
        self.settings = settings
        self.store = BlobStore(settings.blobs_dir)
        self.executor = executor
        self.name = name or worker_name()
        # Running jobs by their key (``queue.job_key``): leases, start times, last progress.
        self._leases: dict[str, queue.Lease] = {}
        self._started: dict[str, float] = {}
        self._progress: dict[str, dict[str, Any]] = {}
        # Outcomes not recorded yet (the database was unreachable): lease, outcome, seconds.
        self._unrecorded: list[tuple[queue.Lease, Outcome, float]] = []
        self._next_expiry = 0.0  # when to delete images past their retention next
        self._next_beat = 0.0

    def run(self, stop: threading.Event) -> None:
        """Work until ``stop`` is set; running jobs are then handed back to the queue. While
        the database is unreachable (or the storage fails) the worker waits for it (running
        jobs go on; a lease that runs out meanwhile is another worker's to re-run, and fencing
        discards this one's outcome)."""
        try:
            while not stop.is_set():
                try:
                    self._step(stop)
                except TRANSIENT as err:
                    log.warning("the database or the file storage failed, trying again in "
                                "%g s: %s", RECONNECT_SECONDS, str(err).splitlines()[0])
                    stop.wait(RECONNECT_SECONDS)
        finally:
            try:
                self._release_all()
                queue.unregister_worker(self.db, self.name)
            except UNREACHABLE:  # its leases run out instead, and others re-run the jobs
                log.warning("could not hand the running jobs back: the database is "
                            "unreachable")
            finally:
                self.executor.close()

    def _step(self, stop: threading.Event) -> None:
        self._record_outcomes()
        now = time.monotonic()
        if now >= self._next_beat:
            self._beat()
            self._next_beat = now + self.settings.heartbeat_seconds
        claimed = self._fill()
        timeout = 0.05 if claimed else self.settings.poll_seconds
        finished = False
        for key, event in self.executor.events(timeout):
            finished |= self._handle(key, event)
        if not (self._leases or claimed or finished):  # idle: the queue was empty
            stop.wait(self.settings.poll_seconds)

    def _fill(self) -> bool:
        """Claim jobs for the free slots, a queued generation before a queued evaluation."""
        claimed = False
        while len(self._leases) < self.executor.capacity:
            lease = self._claim()
            if lease is None:
                break
            claimed = True
            try:
                job = queue.load_job(self.db, self.store, lease, self.settings.generators,
                                     self.settings.image_screener)
            except UNREACHABLE:
                raise  # not the job's fault: its lease runs out and it is run again
            except Exception as err:  # a corrupt blob, say: the platform's fault
                log.exception("could not load job %s", lease.key)
                # A file that could not be read (the storage failing for a while) is tried
                # again, as long as the job has attempts left.
                queue.finish(self.db, self.store, lease,
                             Outcome("failed_platform", message=f"could not load the job: {err}",
                                     retry=isinstance(err, OSError)),
                             0.0)
                continue
            self._leases[lease.key] = lease
            self._started[lease.key] = time.monotonic()
            self.executor.start(job)
        return claimed

    def _claim(self) -> queue.Lease | None:
        for table in queue.TABLES:
            lease = queue.claim(self.db, self.name, self.settings.lease_seconds, table)
            if lease is not None:
                return lease
        return None

    def _handle(self, key: str, event: tuple[str, Any]) -> bool:
        """Record an event; True when it ended a job (so a slot is free now)."""
        kind, payload = event
        lease = self._leases.get(key)
        if lease is None:
            return False
        if kind == "progress":
            self._progress[key] = payload
            return False
        seconds = time.monotonic() - self._started.pop(key)
        del self._leases[key]
        self._progress.pop(key, None)
        self._unrecorded.append((lease, payload, seconds))
        self._record_outcomes()
        return True

    def _record_outcomes(self) -> None:
        """Record finished jobs' outcomes, oldest first; one the database (or the storage, for
        a baseline's files) could not take stays for the next try (``finish`` is fenced: a
        late one is discarded, not doubled)."""
        while self._unrecorded:
            lease, outcome, seconds = self._unrecorded[0]
            if not queue.finish(self.db, self.store, lease, outcome, seconds):
                log.warning("job %s: lease lost; its outcome was discarded", lease.key)
            self._unrecorded.pop(0)

    def _beat(self) -> None:
        """Renew every lease; stop jobs that were cancelled or taken over; re-queue dead ones."""
        queue.register_worker(self.db, self.name, self.executor.name, self.executor.capacity)
        for key, lease in list(self._leases.items()):
            if self._overran(key, lease):
                continue
            answer = queue.heartbeat(self.db, lease, self.settings.lease_seconds,
                                     self._progress.get(key))
            if answer == "ok":
                continue
            self.executor.stop(key)
            self._forget(key)
            if answer == "cancel":
                queue.mark_cancelled(self.db, lease)
        queue.reap(self.db)
        queue.forget_dead_workers(self.db, 3 * self.settings.lease_seconds)
        if time.monotonic() >= self._next_expiry:
            self._next_expiry = time.monotonic() + EXPIRY_SECONDS
            with self.db.write() as session:
                deleted = rating.expire_images(session, self.store)
            if deleted:
                log.info("deleted %d image(s) past their round's retention", deleted)

    def _overran(self, key: str, lease: queue.Lease) -> bool:
        """Stop a job that has run past the time limit: it fails for the platform (a scorer
        or generator that hangs), is not run again and uses no quota."""
        seconds = time.monotonic() - self._started[key]
        limit = self.settings.job_seconds
        if seconds <= limit:
            return False
        log.warning("job %s ran past the limit of %g s; stopping it", key, limit)
        self.executor.stop(key)
        self._forget(key)
        self._unrecorded.append((lease, Outcome(
            "failed_platform", message=f"stopped after {limit:g} s, the time limit of one "
            "run: the platform's fault, not yours; it used none of your quota"), seconds))
        self._record_outcomes()
        return True

    def _forget(self, key: str) -> None:
        self._leases.pop(key, None)
        self._started.pop(key, None)
        self._progress.pop(key, None)

    def _release_all(self) -> None:
        for key, lease in list(self._leases.items()):
            self.executor.stop(key)
            queue.release(self.db, lease)
            self._forget(key)


def start_in_thread(db: Database, settings: Settings, executor: Executor
                    ) -> tuple[threading.Thread, threading.Event]:
    stop = threading.Event()
    thread = threading.Thread(target=Worker(db, settings, executor).run, args=(stop,),
                              name="dataperf-worker", daemon=True)
    thread.start()
    return thread, stop
