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

from dataperf.server import queue, rating
from dataperf.server.db import Database
from dataperf.server.execution import Executor
from dataperf.server.jobs import Outcome
from dataperf.server.settings import Settings
from dataperf.server.storage import BlobStore

log = logging.getLogger("dataperf.worker")
EXPIRY_SECONDS = 3600.0  # how often a worker deletes images past their round's retention


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
        self._next_expiry = 0.0  # when to delete images past their retention next

    def run(self, stop: threading.Event) -> None:
        """Work until ``stop`` is set; running jobs are then handed back to the queue."""
        queue.register_worker(self.db, self.name, self.executor.name, self.executor.capacity)
        next_beat = 0.0
        try:
            while not stop.is_set():
                now = time.monotonic()
                if now >= next_beat:
                    self._beat()
                    next_beat = now + self.settings.heartbeat_seconds
                claimed = self._fill()
                timeout = 0.05 if claimed else self.settings.poll_seconds
                finished = False
                for key, event in self.executor.events(timeout):
                    finished |= self._handle(key, event)
                if not (self._leases or claimed or finished):  # idle: the queue was empty
                    stop.wait(self.settings.poll_seconds)
        finally:
            self._release_all()
            self.executor.close()
            queue.unregister_worker(self.db, self.name)

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
            except Exception as err:  # a corrupt blob, say: the platform's fault
                log.exception("could not load job %s", lease.key)
                queue.finish(self.db, self.store, lease,
                             Outcome("failed_platform", message=f"could not load the job: {err}"),
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
        if not queue.finish(self.db, self.store, lease, payload, seconds):
            log.warning("job %s: lease lost; its outcome was discarded", key)
        return True

    def _beat(self) -> None:
        """Renew every lease; stop jobs that were cancelled or taken over; re-queue dead ones."""
        queue.register_worker(self.db, self.name, self.executor.name, self.executor.capacity)
        for key, lease in list(self._leases.items()):
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
