"""The durable evaluation queue, kept in the database (the one source of truth).

A worker *claims* the oldest queued evaluation with a single conditional UPDATE (plus ``FOR
UPDATE SKIP LOCKED`` on PostgreSQL), taking a *lease* that it renews by heartbeat. Every later
write by that worker is *fenced* by (owner, attempt): a worker whose lease was taken over can no
longer change anything, so each evaluation is scored exactly once. A lease that runs out puts
the job back in the queue until it has used ``max_attempts`` runs; then it fails for the
platform (which costs the participant no quota).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.orm import Session

from dataperf.server.db import Database
from dataperf.server.jobs import Job, Outcome
from dataperf.server.models import (
    Evaluation,
    ScoreRow,
    State,
    Submission,
    SubmissionFile,
    WorkerRow,
    utcnow,
)
from dataperf.server.storage import BlobStore

AGGREGATE = "__aggregate__"
BASELINE_PRIORITY = 10  # baselines fill idle time: participants' submissions go first


@dataclass(frozen=True)
class Lease:
    evaluation_id: int
    attempt: int
    owner: str


def claim(db: Database, owner: str, lease_seconds: float) -> Lease | None:
    """Take the first queued evaluation (by priority, then age), or None when there is none."""
    now = utcnow()
    oldest = (select(Evaluation.id).where(Evaluation.state == State.queued)
              .order_by(Evaluation.priority, Evaluation.id).limit(1))
    if not db.is_sqlite:
        oldest = oldest.with_for_update(skip_locked=True)
    with db.write() as session:
        row = session.execute(
            update(Evaluation)
            .where(Evaluation.id == oldest.scalar_subquery(), Evaluation.state == State.queued)
            .values(state=State.running, lease_owner=owner, attempts=Evaluation.attempts + 1,
                    lease_expires_at=now + timedelta(seconds=lease_seconds), started_at=now,
                    progress=None)
            .returning(Evaluation.id, Evaluation.attempts)
            .execution_options(synchronize_session=False)
        ).first()
    return Lease(row[0], row[1], owner) if row else None


def load_job(db: Database, store: BlobStore, lease: Lease) -> Job:
    """Everything a worker needs to score the leased evaluation, files included."""
    with db.read() as session:
        evaluation = session.get_one(Evaluation, lease.evaluation_id)
        submission = evaluation.submission
        round_ = submission.round
        challenge = round_.challenge
        names = [(f.name, f.sha256) for f in submission.files]
        job = Job(evaluation_id=evaluation.id, attempt=lease.attempt,
                  challenge=challenge.challenge,
                  edition_path=challenge.edition_path,
                  edition_hash=challenge.edition_hash, files={}, baseline=evaluation.baseline,
                  private_fraction=round_.private_fraction, split_seed=round_.split_seed)
    return Job(**{**job.__dict__, "files": {name: store.get(digest) for name, digest in names}})


def _fenced(lease: Lease) -> Any:
    return and_(Evaluation.id == lease.evaluation_id, Evaluation.state == State.running,
                Evaluation.lease_owner == lease.owner, Evaluation.attempts == lease.attempt)


def heartbeat(db: Database, lease: Lease, lease_seconds: float,
              progress: dict[str, Any] | None) -> Literal["ok", "cancel", "lost"]:
    """Renew the lease (and record progress). 'lost': another worker owns the job now."""
    values: dict[str, Any] = {"lease_expires_at": utcnow() + timedelta(seconds=lease_seconds)}
    if progress is not None:
        values["progress"] = progress
    with db.write() as session:
        row = session.execute(update(Evaluation).where(_fenced(lease)).values(**values)
                              .returning(Evaluation.cancel_requested)
                              .execution_options(synchronize_session=False)).first()
    if row is None:
        return "lost"
    return "cancel" if row[0] else "ok"


def finish(db: Database, store: BlobStore, lease: Lease, outcome: Outcome,
           seconds: float) -> bool:
    """Record the outcome of a leased run; False (and nothing written) if the lease was lost."""
    now = utcnow()
    for data in outcome.files.values():
        store.put(data)  # before the transaction: a stored blob without a row is harmless
    with db.write() as session:
        evaluation = session.execute(select(Evaluation).where(_fenced(lease))
                                     .with_for_update()).scalar_one_or_none()
        if evaluation is None:
            return False
        if outcome.retry and evaluation.attempts < evaluation.max_attempts:
            _requeue(evaluation)
            return True
        evaluation.state = State(outcome.status)
        evaluation.finished_at = now
        evaluation.seconds = seconds
        evaluation.message = outcome.message
        evaluation.problems = outcome.problems
        evaluation.lease_owner = None
        evaluation.lease_expires_at = None
        submission = evaluation.submission
        if outcome.files:
            _attach_files(session, submission, outcome.files)
        for part, score in outcome.parts.items():
            evaluation.scorer_version = score["scorer_version"]
            _add_scores(session, evaluation, submission.round_id, part, score)
            submission.warnings = list(score.get("warnings", []))
        if outcome.parts:
            submission.round.changed_at = now
    return True


def _requeue(evaluation: Evaluation) -> None:
    evaluation.state = State.queued
    evaluation.lease_owner = None
    evaluation.lease_expires_at = None
    evaluation.progress = None


def _attach_files(session: Session, submission: Submission, files: dict[str, bytes]) -> None:
    import hashlib

    for name, data in sorted(files.items()):
        session.add(SubmissionFile(submission_id=submission.id, name=name, size=len(data),
                                   sha256=hashlib.sha256(data).hexdigest()))
    submission.total_bytes = sum(len(d) for d in files.values())


def _add_scores(session: Session, evaluation: Evaluation, round_id: int, part: str,
                score: dict[str, Any]) -> None:
    for task in [*score["tasks"], score["aggregate"]]:
        is_aggregate = task is score["aggregate"]
        session.add(ScoreRow(evaluation_id=evaluation.id, round_id=round_id, part=part,
                             task=AGGREGATE if is_aggregate else task["task"],
                             is_aggregate=is_aggregate, value=task["value"],
                             ci_low=task["ci_low"], ci_high=task["ci_high"],
                             details=task["details"]))


def reap(db: Database) -> int:
    """Put running jobs whose lease ran out back in the queue (or fail them after too many
    attempts, or cancel them if cancelling was asked). Returns how many were touched."""
    now = utcnow()
    expired = and_(Evaluation.state == State.running, Evaluation.lease_expires_at < now)
    cleared = {"lease_owner": None, "lease_expires_at": None}
    with db.write() as session:
        cancelled = session.execute(
            update(Evaluation).where(expired, Evaluation.cancel_requested.is_(True))
            .values(state=State.cancelled, finished_at=now, message="cancelled", **cleared)
            .execution_options(synchronize_session=False))
        failed = session.execute(
            update(Evaluation).where(expired, Evaluation.attempts >= Evaluation.max_attempts)
            .values(state=State.failed_platform, finished_at=now, **cleared,
                    message="the evaluation was interrupted on every attempt (its worker "
                            "stopped); this is the platform's fault and used none of your "
                            "quota — submit again or tell the organizers")
            .execution_options(synchronize_session=False))
        requeued = session.execute(
            update(Evaluation).where(expired).values(state=State.queued, progress=None, **cleared)
            .execution_options(synchronize_session=False))
    return int(cancelled.rowcount + failed.rowcount + requeued.rowcount)  # type: ignore[attr-defined]


def cancel(session: Session, evaluation: Evaluation) -> None:
    """Cancel now if queued; a running one is stopped by its worker at the next heartbeat."""
    if evaluation.state == State.queued:
        evaluation.state = State.cancelled
        evaluation.finished_at = utcnow()
        evaluation.message = "cancelled"
    elif evaluation.state == State.running:
        evaluation.cancel_requested = True


def release(db: Database, lease: Lease) -> None:
    """Hand a job back untouched (its worker is shutting down): the run does not count."""
    with db.write() as session:
        session.execute(update(Evaluation).where(_fenced(lease))
                        .values(state=State.queued, attempts=Evaluation.attempts - 1,
                                lease_owner=None, lease_expires_at=None, progress=None)
                        .execution_options(synchronize_session=False))


def mark_cancelled(db: Database, lease: Lease) -> None:
    with db.write() as session:
        session.execute(update(Evaluation).where(_fenced(lease))
                        .values(state=State.cancelled, finished_at=utcnow(), message="cancelled",
                                lease_owner=None, lease_expires_at=None)
                        .execution_options(synchronize_session=False))


@dataclass(frozen=True)
class Wait:
    position: int  # evaluations ahead of this one in the queue
    seconds: float | None  # estimated wait before it starts; None without any history


def wait_estimate(session: Session, evaluation: Evaluation, *,
                  heartbeat_seconds: float) -> Wait:
    """Position in the queue and an estimate: the jobs ahead (and running ones, half done on
    average) times the recent mean run time, spread over the live workers' slots."""
    first = or_(Evaluation.priority < evaluation.priority,
                and_(Evaluation.priority == evaluation.priority, Evaluation.id < evaluation.id))
    ahead = session.scalar(select(func.count()).select_from(Evaluation).where(
        Evaluation.state == State.queued, first)) or 0
    running = session.scalar(select(func.count()).select_from(Evaluation).where(
        Evaluation.state == State.running)) or 0
    recent = select(Evaluation.seconds).where(Evaluation.state == State.scored,
                                              Evaluation.seconds.is_not(None)) \
        .order_by(Evaluation.id.desc()).limit(50).subquery()
    mean = session.scalar(select(func.avg(recent.c.seconds)))
    alive_since = utcnow() - timedelta(seconds=3 * heartbeat_seconds)
    slots = session.scalar(select(func.sum(WorkerRow.slots))
                           .where(WorkerRow.heartbeat_at >= alive_since)) or 0
    if mean is None or slots == 0:
        return Wait(ahead, None)
    return Wait(ahead, float(mean) * (ahead + 0.5 * running) / slots + 0.0)


def register_worker(db: Database, name: str, executor: str, slots: int) -> None:
    with db.write() as session:
        row = session.get(WorkerRow, name)
        if row is None:
            session.add(WorkerRow(id=name, executor=executor, slots=slots))
        else:
            row.heartbeat_at = utcnow()


def forget_dead_workers(db: Database, silent_seconds: float) -> None:
    """Drop workers that stopped heartbeating (killed ones never unregister)."""
    cutoff = utcnow() - timedelta(seconds=silent_seconds)
    with db.write() as session:
        session.execute(delete(WorkerRow).where(WorkerRow.heartbeat_at < cutoff)
                        .execution_options(synchronize_session=False))


def unregister_worker(db: Database, name: str) -> None:
    with db.write() as session:
        row = session.get(WorkerRow, name)
        if row is not None:
            session.delete(row)
