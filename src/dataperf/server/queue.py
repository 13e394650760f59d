"""The durable job queue, kept in the database (the one source of truth).

Its jobs are rows of a :class:`~dataperf.server.models.LeasedJob` table: evaluations (score a
submission) and generations (make a prompt's images). A worker *claims* the oldest queued job
of a table with a single conditional UPDATE (plus ``FOR UPDATE SKIP LOCKED`` on PostgreSQL),
taking a *lease* that it renews by heartbeat. Every later write by that worker is *fenced* by
(owner, attempt): a worker whose lease was taken over can no longer change anything, so each
job's outcome is recorded exactly once. A lease that runs out puts the job back in the queue
until it has used ``max_attempts`` runs; then it fails for the platform (which costs the
participant no quota).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal, cast

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.orm import Session

from dataperf.server.db import Database
from dataperf.server.jobs import GenerationJob, Job, Outcome
from dataperf.server.models import (
    Evaluation,
    Generation,
    LeasedJob,
    Round,
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
#: The queued tables, in the order a worker with a free slot serves them: generations first
#: (a participant is waiting at the screen), then evaluations.
TABLES: tuple[type[Evaluation] | type[Generation], ...] = (Generation, Evaluation)
Table = type[Evaluation] | type[Generation]


@dataclass(frozen=True)
class Lease:
    table: Table
    job_id: int
    attempt: int
    owner: str

    @property
    def key(self) -> str:
        """The job's name among every table's jobs (executors know jobs by it)."""
        return job_key(self.table, self.job_id)


def job_key(table: Table, job_id: int) -> str:
    return f"{table.__tablename__}:{job_id}"


def claim(db: Database, owner: str, lease_seconds: float, table: Table = Evaluation
          ) -> Lease | None:
    """Take the first queued job of ``table`` (by priority, then age), or None."""
    now = utcnow()
    oldest = (select(table.id).where(table.state == State.queued)
              .order_by(table.priority, table.id).limit(1))
    if not db.is_sqlite:
        oldest = oldest.with_for_update(skip_locked=True)
    with db.write() as session:
        row = session.execute(
            update(table)
            .where(table.id == oldest.scalar_subquery(), table.state == State.queued)
            .values(state=State.running, lease_owner=owner, attempts=table.attempts + 1,
                    lease_expires_at=now + timedelta(seconds=lease_seconds), started_at=now,
                    progress=None)
            .returning(table.id, table.attempts)
            .execution_options(synchronize_session=False)
        ).first()
    return Lease(table, row[0], row[1], owner) if row else None


def load_job(db: Database, store: BlobStore, lease: Lease,
             default_generators: dict[str, Any] | None = None,
             image_screener: str | None = None) -> Job | GenerationJob:
    """Everything a worker needs to run the leased job, files included; a generation of a
    round without generators of its own uses ``default_generators`` (the operator's), and
    its images are screened by ``image_screener``."""
    if lease.table is Generation:
        with db.read() as session:
            generation = session.get_one(Generation, lease.job_id)
            return GenerationJob(generation_id=generation.id, attempt=lease.attempt,
                                 prompt=generation.prompt, seed=generation.seed,
                                 generators=dict(generation.round.generators
                                                 or default_generators or {}),
                                 image_screener=image_screener)
    with db.read() as session:
        evaluation = session.get_one(Evaluation, lease.job_id)
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
    table = lease.table
    return and_(table.id == lease.job_id, table.state == State.running,
                table.lease_owner == lease.owner, table.attempts == lease.attempt)


def heartbeat(db: Database, lease: Lease, lease_seconds: float,
              progress: dict[str, Any] | None) -> Literal["ok", "cancel", "lost"]:
    """Renew the lease (and record progress). 'lost': another worker owns the job now."""
    values: dict[str, Any] = {"lease_expires_at": utcnow() + timedelta(seconds=lease_seconds)}
    if progress is not None:
        values["progress"] = progress
    with db.write() as session:
        row = session.execute(update(lease.table).where(_fenced(lease)).values(**values)
                              .returning(lease.table.cancel_requested)
                              .execution_options(synchronize_session=False)).first()
    if row is None:
        return "lost"
    return "cancel" if row[0] else "ok"


def finish(db: Database, store: BlobStore, lease: Lease, outcome: Outcome,
           seconds: float) -> bool:
    """Record the outcome of a leased run; False (and nothing written) if the lease was lost."""
    now = utcnow()
    for data in [*outcome.files.values(), *outcome.images.values()]:
        store.put(data)  # before the transaction: a stored blob without a row is harmless
    with db.write() as session:
        job = cast(Evaluation | Generation | None, session.execute(
            select(lease.table).where(_fenced(lease)).with_for_update()).scalar_one_or_none())
        if job is None:
            return False
        if outcome.retry and job.attempts < job.max_attempts:
            _requeue(job)
            return True
        job.state = State(outcome.status)
        job.finished_at = now
        job.seconds = seconds
        job.message = outcome.message
        job.lease_owner = None
        job.lease_expires_at = None
        if isinstance(job, Generation):
            job.images = [_stored(shown, outcome.images) for shown in outcome.shown]
        else:
            _record_evaluation(session, job, outcome, now)
    return True


def _stored(shown: dict[str, Any], images: dict[str, bytes]) -> dict[str, Any]:
    """An image as a generation records it: its PNG by digest instead of by name."""
    name = shown.get("png")
    digest = hashlib.sha256(images[name]).hexdigest() if name is not None else None
    return {"sha256": digest, **{k: v for k, v in shown.items() if k != "png"}}


def _record_evaluation(session: Session, evaluation: Evaluation, outcome: Outcome,
                       now: Any) -> None:
    evaluation.problems = outcome.problems
    submission = evaluation.submission
    if outcome.files:
        _attach_files(session, submission, outcome.files)
    for part, score in outcome.parts.items():
        evaluation.scorer_version = score["scorer_version"]
        _add_scores(session, evaluation, submission.round_id, part, score)
        submission.warnings = list(score.get("warnings", []))
    if outcome.parts:
        submission.round.changed_at = now
        if submission.is_studio:
            _supersede(session, submission)


def _supersede(session: Session, submission: Submission) -> None:
    """Of a participant's studio scorings in a round, the newest scored one counts: the older
    ones are superseded (and this one too, if a newer one was scored first)."""
    same = (Submission.round_id == submission.round_id,
            Submission.user_id == submission.user_id, Submission.is_studio.is_(True))
    session.execute(update(Submission).where(*same, Submission.id < submission.id)
                    .values(is_superseded=True).execution_options(synchronize_session=False))
    newer = session.scalar(select(func.count()).select_from(Submission).join(Evaluation).where(
        *same, Submission.id > submission.id, Evaluation.state == State.scored)) or 0
    submission.is_superseded = newer > 0


def queue_files(session: Session, store: BlobStore, submission: Submission,
                files: Mapping[str, bytes], *, max_attempts: int, priority: int = 0
                ) -> Submission:
    """Add ``submission`` with its files stored, and queue its evaluation."""
    submission.total_bytes = sum(map(len, files.values()))
    session.add(submission)
    session.flush()
    session.add_all([SubmissionFile(submission_id=submission.id, name=name,
                                    sha256=store.put(data), size=len(data))
                     for name, data in sorted(files.items())])
    session.add(Evaluation(submission_id=submission.id, priority=priority,
                           max_attempts=max_attempts))
    session.flush()
    return submission


def _requeue(job: LeasedJob) -> None:
    job.state = State.queued
    job.lease_owner = None
    job.lease_expires_at = None
    job.progress = None


def score_again(session: Session, round_: Round) -> int:
    """Queue every finished evaluation of the round again, from its stored files, with its
    scores removed (e.g. for a new public/private split); the number queued."""
    finished = list(session.scalars(select(Evaluation).join(Submission).where(
        Submission.round_id == round_.id,
        Evaluation.state.in_((State.scored, State.failed_participant, State.failed_platform)))))
    if not finished:
        return 0
    session.execute(delete(ScoreRow).where(ScoreRow.evaluation_id.in_([e.id for e in finished])))
    now = utcnow()
    for evaluation in finished:
        _requeue(evaluation)
        evaluation.attempts, evaluation.queued_at = 0, now
        evaluation.started_at = evaluation.finished_at = evaluation.seconds = None
        evaluation.message = evaluation.problems = evaluation.scorer_version = None
    round_.changed_at = now
    return len(finished)


def _attach_files(session: Session, submission: Submission, files: dict[str, bytes]) -> None:
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
    cleared = {"lease_owner": None, "lease_expires_at": None}
    touched = 0
    with db.write() as session:
        for table in TABLES:
            expired = and_(table.state == State.running, table.lease_expires_at < now)
            results = [
                session.execute(
                    update(table).where(expired, table.cancel_requested.is_(True))
                    .values(state=State.cancelled, finished_at=now, message="cancelled",
                            **cleared)
                    .execution_options(synchronize_session=False)),
                session.execute(
                    update(table).where(expired, table.attempts >= table.max_attempts)
                    .values(state=State.failed_platform, finished_at=now, **cleared,
                            message=_interrupted(table))
                    .execution_options(synchronize_session=False)),
                session.execute(
                    update(table).where(expired).values(state=State.queued, progress=None,
                                                        **cleared)
                    .execution_options(synchronize_session=False)),
            ]
            touched += sum(r.rowcount for r in results)  # type: ignore[attr-defined]
    return touched


def _interrupted(table: Table) -> str:
    if table is Generation:
        return ("making the images was interrupted on every attempt (its worker stopped); "
                "type the prompt again, and tell the organizers if it happens again")
    return ("the evaluation was interrupted on every attempt (its worker stopped); this is "
            "the platform's fault and used none of your quota — submit again or tell the "
            "organizers")


def cancel(session: Session, job: LeasedJob) -> None:
    """Cancel now if queued; a running one is stopped by its worker at the next heartbeat."""
    if job.state == State.queued:
        job.state = State.cancelled
        job.finished_at = utcnow()
        job.message = "cancelled"
    elif job.state == State.running:
        job.cancel_requested = True


def release(db: Database, lease: Lease) -> None:
    """Hand a job back untouched (its worker is shutting down): the run does not count."""
    with db.write() as session:
        session.execute(update(lease.table).where(_fenced(lease))
                        .values(state=State.queued, attempts=lease.table.attempts - 1,
                                lease_owner=None, lease_expires_at=None, progress=None)
                        .execution_options(synchronize_session=False))


def mark_cancelled(db: Database, lease: Lease) -> None:
    with db.write() as session:
        session.execute(update(lease.table).where(_fenced(lease))
                        .values(state=State.cancelled, finished_at=utcnow(), message="cancelled",
                                lease_owner=None, lease_expires_at=None)
                        .execution_options(synchronize_session=False))


@dataclass(frozen=True)
class Wait:
    position: int  # evaluations ahead of this one in the queue
    seconds: float | None  # estimated wait before it starts; None without any history


def wait_estimate(session: Session, job: Evaluation | Generation, *,
                  heartbeat_seconds: float) -> Wait:
    """Position in the queue and an estimate: the jobs ahead (and running ones, half done on
    average) times the recent mean run time of the job's table, spread over the live workers'
    slots. Generations are served before evaluations, so evaluations also wait for them."""
    table = type(job)
    first = or_(table.priority < job.priority,
                and_(table.priority == job.priority, table.id < job.id))
    ahead = session.scalar(select(func.count()).select_from(table).where(
        table.state == State.queued, first)) or 0
    if table is Evaluation:
        ahead += session.scalar(select(func.count()).select_from(Generation).where(
            Generation.state == State.queued)) or 0
    running = sum(session.scalar(select(func.count()).select_from(t).where(
        t.state == State.running)) or 0 for t in TABLES)
    recent = select(table.seconds).where(table.state.in_((State.scored, State.done)),
                                         table.seconds.is_not(None)) \
        .order_by(table.id.desc()).limit(50).subquery()
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
