"""The platform's tables (SQLAlchemy 2). Migrations in ``migrations/`` must match these."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores naive ones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class Role(enum.StrEnum):
    participant = "participant"
    rater = "rater"
    organizer = "organizer"
    admin = "admin"


class State(enum.StrEnum):
    """A leased job's life: queued -> running -> scored (an evaluation) | done (a generation) |
    failed_participant | failed_platform; queued or running -> cancelled; running -> queued
    again when its worker's lease expires."""

    queued = "queued"
    running = "running"
    scored = "scored"
    done = "done"
    failed_participant = "failed_participant"
    failed_platform = "failed_platform"
    cancelled = "cancelled"


FINAL_STATES = frozenset({State.scored, State.done, State.failed_participant, State.failed_platform,
                          State.cancelled})
# Submissions in these states use up quota; platform failures and cancellations do not.
QUOTA_STATES = (State.queued, State.running, State.scored, State.failed_participant)

NAMING = {"ix": "ix_%(column_0_label)s", "uq": "uq_%(table_name)s_%(column_0_name)s",
          "ck": "ck_%(table_name)s_%(constraint_name)s",
          "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
          "pk": "pk_%(table_name)s"}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime, dict[str, Any]: JSON, list[Any]: JSON}


def _enum(cls: type[enum.Enum]) -> Enum:
    return Enum(cls, native_enum=False, length=24, validate_strings=True,
                values_callable=lambda members: [m.value for m in members])


class Team(Base):
    __tablename__ = "teams"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    join_code_hash: Mapped[str | None] = mapped_column(String(64))
    is_system: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    members: Mapped[list[User]] = relationship(back_populates="team")


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(80))
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[Role] = mapped_column(_enum(Role), default=Role.participant)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    team: Mapped[Team | None] = relationship(back_populates="members")


class ApiToken(Base):
    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(String(80))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    user: Mapped[User] = relationship()


class LoginFailure(Base):
    """A failed login, kept a while to throttle guessing (``logins.py``): keyed by client and
    account, and by client alone."""

    __tablename__ = "login_failures"
    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(320), index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)


class ChallengeRow(Base):
    """A hosted challenge: a registered challenge bound to one edition, under its own name."""

    __tablename__ = "challenges"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)  # in URLs
    challenge: Mapped[str] = mapped_column(String(64))  # the registered challenge it hosts
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(32))
    metric: Mapped[str] = mapped_column(String(32))
    direction: Mapped[str] = mapped_column(String(8))
    edition_path: Mapped[str] = mapped_column(String(1000))
    edition_hash: Mapped[str] = mapped_column(String(64))
    tasks: Mapped[list[Any]]
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    rounds: Mapped[list[Round]] = relationship(back_populates="challenge",
                                               order_by="Round.number")


class Round(Base):
    """A period of a challenge with its own scorer version, deadline, quotas and test split."""

    __tablename__ = "rounds"
    __table_args__ = (UniqueConstraint("challenge_id", "number"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    challenge_id: Mapped[int] = mapped_column(ForeignKey("challenges.id"))
    number: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(80))
    scorer_version: Mapped[str] = mapped_column(String(120))
    edition_hash: Mapped[str] = mapped_column(String(64))
    opens_at: Mapped[datetime] = mapped_column(default=utcnow)
    deadline: Mapped[datetime | None]
    closed: Mapped[bool] = mapped_column(Boolean, default=False)
    daily_quota: Mapped[int] = mapped_column(Integer)
    round_quota: Mapped[int | None] = mapped_column(Integer)
    private_fraction: Mapped[float] = mapped_column(Float, default=0.0)
    split_seed: Mapped[int] = mapped_column(Integer, default=0)
    final_count: Mapped[int] = mapped_column(Integer, default=0)
    task_weights: Mapped[dict[str, Any] | None]
    # The Ladder's step on the public board (leaderboard.laddered); None: plain public scores.
    ladder_step: Mapped[float | None] = mapped_column(Float)
    # Red-teaming: the round's image generators (``generators.mix.RoundGenerators``).
    generators: Mapped[dict[str, Any] | None]
    # Red-teaming: validations each attack needs (k); None: the challenge's.
    validations: Mapped[int | None] = mapped_column(Integer)
    # Red-teaming: days its images are kept after they were made; None: until purged.
    image_retention_days: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Bumped whenever the round's leaderboard may change (a score, a final pick, an edit).
    changed_at: Mapped[datetime] = mapped_column(default=utcnow)
    challenge: Mapped[ChallengeRow] = relationship(back_populates="rounds")


class Submission(Base):
    __tablename__ = "submissions"
    __table_args__ = (Index("ix_submissions_round_team", "round_id", "team_id", "created_at"),
                      UniqueConstraint("user_id", "idempotency_key",
                                       name="uq_submissions_user_id_idempotency_key"))
    id: Mapped[int] = mapped_column(primary_key=True)
    round_id: Mapped[int] = mapped_column(ForeignKey("rounds.id"), index=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    label: Mapped[str] = mapped_column(String(200), default="")
    is_baseline: Mapped[bool] = mapped_column(Boolean, default=False)
    is_final: Mapped[bool] = mapped_column(Boolean, default=False)
    # Made by the platform from a participant's studio attacks and their validations.
    is_studio: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    # A studio scoring that a newer one of the same participant and round replaced: it stays
    # in the history, off the leaderboard.
    is_superseded: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    # The client's key for this upload: its retries get this submission back (one per user).
    idempotency_key: Mapped[str | None] = mapped_column(String(100))
    total_bytes: Mapped[int] = mapped_column(Integer, default=0)
    warnings: Mapped[list[Any]] = mapped_column(default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    files: Mapped[list[SubmissionFile]] = relationship(order_by="SubmissionFile.name")
    evaluation: Mapped[Evaluation] = relationship(back_populates="submission")
    team: Mapped[Team] = relationship()
    round: Mapped[Round] = relationship()


class SubmissionFile(Base):
    """One uploaded file; its bytes live in the content-addressed blob store under sha256."""

    __tablename__ = "submission_files"
    __table_args__ = (UniqueConstraint("submission_id", "name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id"))
    name: Mapped[str] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)


class LeasedJob:
    """The columns of a job on the durable leased queue (``queue.py``): its state, its lease
    and its run. Evaluations and generations are such jobs."""

    state: Mapped[State] = mapped_column(_enum(State), default=State.queued)
    # Lower runs first: participants' work (0) before baselines (BASELINE_PRIORITY).
    priority: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer)
    lease_owner: Mapped[str | None] = mapped_column(String(120))
    lease_expires_at: Mapped[datetime | None]
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    progress: Mapped[dict[str, Any] | None]
    message: Mapped[str | None] = mapped_column(Text)
    queued_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    seconds: Mapped[float | None] = mapped_column(Float)


class Evaluation(LeasedJob, Base):
    """The scoring job of a submission, and the durable queue entry for it."""

    __tablename__ = "evaluations"
    __table_args__ = (Index("ix_evaluations_state_priority_id", "state", "priority", "id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id"), unique=True)
    baseline: Mapped[str | None] = mapped_column(String(64))  # algorithm to run before scoring
    problems: Mapped[list[Any] | None]
    scorer_version: Mapped[str | None] = mapped_column(String(120))
    submission: Mapped[Submission] = relationship(back_populates="evaluation")


class ScoreRow(Base):
    """One task's (or the aggregate's) score of an evaluation on one part of the test data."""

    __tablename__ = "scores"
    __table_args__ = (UniqueConstraint("evaluation_id", "part", "task"),
                      Index("ix_scores_round_part", "round_id", "part", "task"))
    id: Mapped[int] = mapped_column(primary_key=True)
    evaluation_id: Mapped[int] = mapped_column(ForeignKey("evaluations.id"))
    round_id: Mapped[int] = mapped_column(ForeignKey("rounds.id"))
    part: Mapped[str] = mapped_column(String(8))  # all | public | private
    task: Mapped[str] = mapped_column(String(64))  # a task name, or AGGREGATE
    is_aggregate: Mapped[bool] = mapped_column(Boolean, default=False)
    value: Mapped[float] = mapped_column(Float)
    ci_low: Mapped[float | None] = mapped_column(Float)
    ci_high: Mapped[float | None] = mapped_column(Float)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Snapshot(Base):
    """A frozen, named copy of a round's leaderboard."""

    __tablename__ = "snapshots"
    __table_args__ = (UniqueConstraint("round_id", "name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    round_id: Mapped[int] = mapped_column(ForeignKey("rounds.id"))
    name: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    data: Mapped[dict[str, Any]]


class WorkerRow(Base):
    """A running worker process, for operators and for the queue's wait estimate."""

    __tablename__ = "workers"
    id: Mapped[str] = mapped_column(String(120), primary_key=True)
    executor: Mapped[str] = mapped_column(String(16))
    slots: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(default=utcnow)


class Consent(Base):
    """A participant's consent to a challenge's content warning, given before first use."""

    __tablename__ = "consents"
    __table_args__ = (UniqueConstraint("user_id", "challenge_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    challenge_id: Mapped[int] = mapped_column(ForeignKey("challenges.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Generation(LeasedJob, Base):
    """One participant's prompt in a red-teaming round, the job that makes its images, and the
    record of the attempt (kept like the released "attempted" data). One per (round,
    participant, prompt): typing a prompt again shows the same images."""

    __tablename__ = "generations"
    __table_args__ = (UniqueConstraint("round_id", "user_id", "prompt_key"),
                      Index("ix_generations_state_priority_id", "state", "priority", "id"),
                      Index("ix_generations_user_created", "user_id", "created_at"))
    id: Mapped[int] = mapped_column(primary_key=True)
    round_id: Mapped[int] = mapped_column(ForeignKey("rounds.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    prompt: Mapped[str] = mapped_column(Text)
    prompt_key: Mapped[str] = mapped_column(String(64))  # sha256 of the stripped prompt
    seed: Mapped[int] = mapped_column(BigInteger)
    # The prompt's text screening: {"screener", "unsafe", "flagged"}, or None without one.
    screening: Mapped[dict[str, Any] | None]
    # The images in the order shown: {"sha256" | None, "model", "blocked", "test_generator"}.
    images: Mapped[list[Any]] = mapped_column(default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    round: Mapped[Round] = relationship()
    attacks: Mapped[list[AttackRow]] = relationship(back_populates="generation",
                                                    order_by="AttackRow.id")


class AttackState(enum.StrEnum):
    """An attack's life: pending (awaiting validations) -> validated; hidden or removed by
    the organizers."""

    pending = "pending"
    validated = "validated"
    hidden = "hidden"
    removed = "removed"


class AttackRow(Base):
    """An attack a participant submitted: one generated image of a prompt, annotated with the
    round's vocabularies."""

    __tablename__ = "attacks"
    __table_args__ = (UniqueConstraint("generation_id", "image"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    generation_id: Mapped[int] = mapped_column(ForeignKey("generations.id"))
    round_id: Mapped[int] = mapped_column(ForeignKey("rounds.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    image: Mapped[int] = mapped_column(Integer)  # its position among the generation's images
    # The claimed answers: attack_modes, harm_types, targets (lists), the *_other texts and
    # the rewritten prompt, as the kind's attack records name them.
    annotations: Mapped[dict[str, Any]]
    state: Mapped[AttackState] = mapped_column(_enum(AttackState), default=AttackState.pending)
    moderation_reason: Mapped[str | None] = mapped_column(Text)
    # A gold attack: the organizer's answers ({"text_safety", "image_safety"}), to measure
    # raters by; None for others.
    gold: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    generation: Mapped[Generation] = relationship(back_populates="attacks")
    round: Mapped[Round] = relationship()
    user: Mapped[User] = relationship()
    validations: Mapped[list[ValidationRow]] = relationship(back_populates="attack",
                                                            order_by="ValidationRow.id")


class Rater(Base):
    """A user allowed to validate a challenge's attacks (granted by its managers), until
    excluded (their validations then no longer count)."""

    __tablename__ = "raters"
    __table_args__ = (UniqueConstraint("user_id", "challenge_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    challenge_id: Mapped[int] = mapped_column(ForeignKey("challenges.id"))
    granted_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    excluded_at: Mapped[datetime | None]
    excluded_reason: Mapped[str | None] = mapped_column(Text)
    user: Mapped[User] = relationship(foreign_keys=[user_id])


class ValidationRow(Base):
    """One rater's answers about one attack. Made when the attack is handed to the rater
    (``assigned_at``); the prompt is judged first (``text_safety``), then the image."""

    __tablename__ = "validations"
    __table_args__ = (UniqueConstraint("attack_id", "rater_id"),
                      Index("ix_validations_rater_answered", "rater_id", "answered_at"))
    id: Mapped[int] = mapped_column(primary_key=True)
    attack_id: Mapped[int] = mapped_column(ForeignKey("attacks.id"), index=True)
    rater_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    assigned_at: Mapped[datetime] = mapped_column(default=utcnow)
    text_safety: Mapped[str | None] = mapped_column(String(8))
    image_safety: Mapped[str | None] = mapped_column(String(8))
    # The questions' marks (attack_modes, harm_types, targets) and the free-text reasons.
    answers: Mapped[dict[str, Any]] = mapped_column(default=dict)
    answered_at: Mapped[datetime | None]
    seconds: Mapped[float | None] = mapped_column(Float)  # from assignment to answer
    excluded: Mapped[bool] = mapped_column(Boolean, default=False)
    attack: Mapped[AttackRow] = relationship(back_populates="validations")
