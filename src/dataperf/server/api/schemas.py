"""Request and response bodies of the API (they make the OpenAPI schema)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field, field_validator

from dataperf.generators.mix import RoundGenerators
from dataperf.server.models import Role, State


class Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class ErrorBody(BaseModel):
    status: int
    code: str = Field(description="why, for programs: e.g. not-found, invalid-submission, "
                                  "quota-exceeded, too-many-requests")
    message: str = Field(description="why, for people, and what to do about it")
    problems: list[dict[str, Any]] | None = Field(
        default=None, description="every problem found, for an invalid request or submission")


class ErrorAnswer(BaseModel):
    """The body of every refusal (HTTP 4xx)."""

    error: ErrorBody


#: The API's routes answer any refusal with an ``ErrorAnswer`` (in place of FastAPI's own 422).
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    "4XX": {"model": ErrorAnswer, "description": "Refused: `error.code` names why"}}


class Register(BaseModel):
    email: EmailStr
    name: str = Field(min_length=1, max_length=80)
    password: str = Field(min_length=10, max_length=1024)
    team: str | None = Field(default=None, min_length=1, max_length=80,
                             description="name of a new team; default: your name")

    @field_validator("name", "team")
    @classmethod
    def _printable(cls, value: str | None) -> str | None:
        if value is not None and (not value.strip() or not value.isprintable()):
            raise ValueError("must be printable text")
        return value.strip() if value else value


class Login(BaseModel):
    email: EmailStr
    password: str = Field(max_length=1024)
    token_name: str = Field(default="cli", min_length=1, max_length=80)


class TeamOut(Out):
    id: int
    name: str
    members: list[str] = []


class UserOut(Out):
    id: int
    email: str
    name: str
    role: Role
    team: TeamOut | None


class NewToken(BaseModel):
    token: str = Field(description="shown once; only its hash is stored")
    id: int
    name: str
    user: UserOut


class TokenOut(Out):
    id: int
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class NewTeam(BaseModel):
    name: str = Field(min_length=1, max_length=80)

    @field_validator("name")
    @classmethod
    def _printable(cls, value: str) -> str:
        if not value.strip() or not value.isprintable():
            raise ValueError("must be printable text")
        return value.strip()


class JoinTeam(BaseModel):
    team: str
    code: str


class TeamCreated(BaseModel):
    team: TeamOut
    join_code: str = Field(description="give it to team mates; shown once")


class RoundOut(Out):
    number: int
    name: str
    scorer_version: str
    opens_at: datetime
    deadline: datetime | None
    closed: bool
    daily_quota: int
    round_quota: int | None
    private_fraction: float
    final_count: int
    task_weights: dict[str, float] | None
    ladder_step: float | None = None
    validations: int | None = None
    image_retention_days: int | None = None


class ChallengeOut(BaseModel):
    name: str
    challenge: str = Field(description="the registered challenge it hosts (for local scoring)")
    title: str
    description: str
    kind: str
    metric: str
    direction: str
    tasks: list[str]
    edition_hash: str
    edition: str = Field(description="the name of the edition it hosts (`--edition` locally)")
    bundled: bool = Field(description="whether that edition ships in the package (no download)")
    public_files: dict[str, str] = Field(
        default={}, description="sha256 of each public file (to check a local copy)")
    rules: dict[str, str] = {}
    rounds: list[RoundOut] = []


class Quota(BaseModel):
    daily_limit: int
    daily_used: int
    round_limit: int | None
    round_used: int
    next_slot_at: datetime | None = Field(description="when a daily slot frees up, if none left")


class CellOut(BaseModel):
    value: float
    ci_low: float | None = None
    ci_high: float | None = None


class TaskScoreOut(CellOut):
    task: str
    details: dict[str, Any] = {}


class PartScores(BaseModel):
    aggregate: CellOut
    tasks: list[TaskScoreOut]


class FileOut(Out):
    name: str
    size: int
    sha256: str


class SubmissionOut(BaseModel):
    id: int
    challenge: str
    round: int
    team: str
    label: str
    created_at: datetime
    is_baseline: bool
    is_final: bool
    state: State
    attempts: int
    position: int | None = Field(description="evaluations ahead in the queue (queued only)")
    wait_seconds: float | None = Field(description="estimated wait before scoring starts")
    progress: dict[str, Any] | None
    message: str | None
    problems: list[dict[str, Any]] | None
    seconds: float | None
    scorer_version: str | None
    warnings: list[str]
    scores: dict[str, PartScores] = Field(description="by part: all, or public (and private "
                                          "after the deadline)")
    files: list[FileOut]


class FinalChoice(BaseModel):
    final: bool


class LeaderboardRow(BaseModel):
    rank: int | None
    tied: bool
    team: str
    submission_id: int
    created_at: datetime
    label: str
    is_baseline: bool
    score: CellOut
    tasks: dict[str, CellOut]


class Leaderboard(BaseModel):
    challenge: str
    round: int
    part: Literal["all", "public", "private"]
    view: str
    weights: dict[str, float] | None
    direction: str
    tie_rule: str
    private_available: bool
    rows: list[LeaderboardRow]


class HistoryPoint(BaseModel):
    created_at: datetime
    submission_id: int
    team: str
    value: float
    best: float
    is_best: bool


class History(BaseModel):
    challenge: str
    round: int
    part: str
    view: str
    points: list[HistoryPoint]


class SnapshotOut(BaseModel):
    name: str
    round: int
    created_at: datetime
    leaderboard: Leaderboard


class NewSnapshot(BaseModel):
    name: str = Field(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._-]*$")


class RoundSettings(BaseModel):
    """Settings of a round; omitted fields keep their value (or the platform default)."""

    name: str | None = Field(default=None, min_length=1, max_length=80)
    deadline: datetime | None = None
    daily_quota: int | None = Field(default=None, ge=0, le=10_000)
    round_quota: int | None = Field(default=None, ge=0, le=1_000_000)
    private_fraction: float | None = Field(default=None, ge=0.0, lt=1.0)
    final_count: int | None = Field(default=None, ge=0, le=100)
    task_weights: dict[str, float] | None = None
    ladder_step: float | None = Field(
        default=None, gt=0, le=1_000_000, description="the Ladder on the public board: a "
        "team's public score changes only when it beats its best by more than this step, "
        "rounded to it; null: plain public scores. Needs a private share")
    closed: bool | None = None
    validations: int | None = Field(default=None, ge=1, le=100, description="red-teaming: "
                                    "the validations each attack needs (k)")
    generators: RoundGenerators | None = Field(default=None, description="red-teaming: the "
                                               "round's image generators")
    image_retention_days: int | None = Field(
        default=None, ge=1, le=3650, description="red-teaming: days the round's images are "
        "kept after they are made (the records stay); null: until an admin purges them")

    @field_validator("deadline")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("give a timezone, e.g. 2027-01-31T23:59:00Z")
        return value


class ChallengeEdit(BaseModel):
    title: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=100_000)


class NewChallenge(BaseModel):
    challenge: str = Field(description="the registered challenge to host")
    edition: str = Field(default="offline", description="its edition, by name (bundled, or "
                         "uploaded with POST /editions)")
    name: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9-]{0,63}$",
                             description="the hosted challenge's name in URLs; default: the "
                             "challenge's own")
    title: str | None = None
    description: str | None = None
    round: RoundSettings = RoundSettings()


class EditionOut(BaseModel):
    challenge: str
    name: str
    content_hash: str
    tasks: list[str]


class RoleChange(BaseModel):
    role: Role


class WorkerOut(Out):
    id: str
    executor: str
    slots: int
    started_at: datetime
    heartbeat_at: datetime


# Red-teaming studio ------------------------------------------------------------------------


class StudioOut(BaseModel):
    """What a participant needs to attack a red-teaming challenge's current round."""

    challenge: str
    round: int
    content_warning: str
    consented: bool = Field(description="the content warning was accepted (needed to generate)")
    images_per_prompt: int
    test_generator: bool = Field(description="the round's images come from a test generator "
                                             "(noise), not a real model")
    prompts_per_minute: int
    takes_uploads: bool = Field(default=False, description="the round takes images made "
                                "elsewhere (POST .../uploads) instead of generating them")
    image_retention_days: int | None = Field(default=None, description="days the round's "
                                             "images are kept; null: until purged")
    screener: str | None = Field(description="the automatic screening of prompts (a flag for "
                                             "raters, never a refusal)")
    vocabularies: dict[str, list[str]] = Field(description="the allowed annotation values of "
                                                           "each question")


class PromptIn(BaseModel):
    prompt: str = Field(max_length=20_000)


class ImageOut(BaseModel):
    index: int
    blocked: str | None = Field(description="why the model blocked it; no picture then")
    url: str | None = Field(description="the picture, blurred; add ?reveal=true for the clear "
                                        "one")
    test_generator: bool
    submitted: bool
    screening: dict[str, Any] | None = Field(
        default=None, description="the image screener's answer ({screener, unsafe, flagged}): "
        "a hint, never a block; null without one")


class GenerationOut(BaseModel):
    """One prompt's attempt: its screening and, once made, its images (models not named)."""

    id: int
    challenge: str
    round: int
    prompt: str
    created_at: datetime
    state: State
    position: int | None = Field(description="jobs ahead in the queue (queued only)")
    wait_seconds: float | None = Field(description="estimated wait before making starts")
    message: str | None
    screening: dict[str, Any] | None
    images: list[ImageOut]


class AttackIn(BaseModel):
    image: int = Field(ge=0, le=100, description="the image's index in its generation")
    attack_modes: list[str] = Field(default_factory=list, max_length=64)
    harm_types: list[str] = Field(default_factory=list, max_length=64)
    targets: list[str] = Field(default_factory=list, max_length=64)
    rewritten_prompt: str = Field(default="", max_length=4000)
    attack_mode_other: str = Field(default="", max_length=4000)
    harm_type_other: str = Field(default="", max_length=4000)
    target_other: str = Field(default="", max_length=4000)


class AttackOut(BaseModel):
    id: int
    challenge: str
    round: int
    generation: int
    image: int
    prompt: str
    created_at: datetime
    state: str = Field(description="pending (awaiting validations), validated, hidden, removed")
    annotations: dict[str, Any]


# Raters ----------------------------------------------------------------------------------------

Safety = Literal["safe", "unsafe", "unsure"]


class RaterIn(BaseModel):
    email: str = Field(max_length=254, description="the account to make a rater")


class ReasonIn(BaseModel):
    reason: str = Field(max_length=4000)


class RatingOut(BaseModel):
    """One attack handed to a rater, without its writer or the other raters' answers. The
    image is shown (``image_url``) once the prompt is judged."""

    id: int
    challenge: str
    round: int
    prompt: str
    stage: Literal["prompt", "image", "done"]
    image_url: str | None = Field(description="the picture, blurred; ?reveal=true for the "
                                              "clear one (after the prompt is judged)")
    text_safety: Safety | None
    image_safety: Safety | None
    answers: dict[str, Any]
    assigned_at: datetime
    answered_at: datetime | None


class RatingNext(BaseModel):
    rating: RatingOut | None = Field(description="the next attack to validate; none: nothing "
                                                 "needs you now")
    answered_in_session: int
    session_cap: int
    take_a_break: bool = Field(description="a break is due (every few validations in a row)")
    support: str = Field(description="where to find support if the content affects you")
    vocabularies: dict[str, list[str]]
    reasons: list[str] = Field(description="the free-text reasons a validation may give")


class PromptJudgement(BaseModel):
    text_safety: Safety


class ImageJudgement(BaseModel):
    image_safety: Safety
    attack_modes: list[str] = Field(default_factory=list, max_length=64)
    harm_types: list[str] = Field(default_factory=list, max_length=64)
    targets: list[str] = Field(default_factory=list, max_length=64)
    reasons: dict[str, str] = Field(default_factory=dict, max_length=16)


class GoldIn(BaseModel):
    text_safety: Safety
    image_safety: Safety


class ModerationIn(BaseModel):
    state: Literal["hidden", "removed", "restore"]
    reason: str = Field(max_length=4000)


class RaterStatsOut(BaseModel):
    rater_id: int
    name: str
    validations: int
    mean_seconds: float | None
    gold_answered: int
    gold_accuracy: float | None
    agreement: float | None = Field(description="share of safety answers equal to the other "
                                                "raters' majority")
    excluded: bool


class ReviewOut(AttackOut):
    """An attack as its challenge's organizers see it."""

    submitter: str
    validations: int = Field(description="validations that count")
    gold: dict[str, Any] | None
    moderation_reason: str | None
