"""Server settings, read from ``DATAPERF_*`` environment variables (or passed in tests)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from dataperf.home import home

MIB = 1024 * 1024


class Settings(BaseSettings):
    """Everything an operator can tune. Defaults give the embedded mode: SQLite in WAL mode under
    ``DATAPERF_HOME`` and an in-process pool of evaluation workers."""

    model_config = SettingsConfigDict(env_prefix="DATAPERF_", extra="ignore")

    home: Path = Field(default_factory=home)
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default sqlite:///$DATAPERF_HOME/dataperf.db")
    workers: int = Field(default=1, ge=0, le=64,
                         description="evaluation slots run inside the server (0: none)")
    lease_seconds: float = Field(default=60.0, gt=0,
                                 description="a job whose worker is silent this long is re-run")
    heartbeat_seconds: float = Field(default=5.0, gt=0)
    poll_seconds: float = Field(default=0.5, gt=0, description="idle worker's queue poll period")
    job_seconds: float = Field(default=3600.0, gt=0,
                               description="a job (an evaluation or a generation) running this "
                               "long is stopped and fails for the platform, using no quota")
    max_attempts: int = Field(default=3, ge=1,
                              description="runs of one job before it fails for the platform")
    daily_quota: int = Field(default=10, ge=0, description="submissions per team per 24 hours")
    round_quota: int | None = Field(default=None, ge=0,
                                    description="submissions per team per round (none: no limit)")
    max_upload_bytes: int = Field(default=32 * MIB, gt=0)
    max_upload_files: int = Field(default=64, gt=0)
    max_edition_bytes: int = Field(default=512 * MIB, gt=0)
    allow_registration: bool = True
    seed_bundled: bool = Field(default=True,
                               description="register bundled challenges and their baselines")
    baselines: tuple[str, ...] = Field(
        default=("random", "pseudo-label", "noise-aware", "knn-shapley", "uniform",
                 "sample-value"),
        description="built-in algorithms queued as baseline entries (those a challenge has)")
    released_rounds: bool = Field(
        default=True, description="host the original rounds a bundled edition holds (the "
                                  "released Adversarial Nibbler rounds) as closed rounds "
                                  "before the first open one, with their participants scored")

    generators: dict[str, Any] = Field(
        default={"generators": [{"name": "tiny"}], "images_per_prompt": 4},
        description="red-teaming rounds' image generators unless a round sets its own (JSON: "
                    "generators.mix.RoundGenerators); the default `tiny` is a test generator")
    generations_per_minute: int = Field(default=10, ge=1,
                                        description="prompts one participant may send a minute")
    text_screener: str | None = Field(
        default="profanity-check",
        description="screens red-teaming prompts (a flag for raters, never a refusal); none: off")
    image_screener: str | None = Field(
        default="open-nsfw",
        description="screens generated red-teaming images (a flag for participants and "
                    "organizers, never a block); none: off")
    ratings_per_session: int = Field(default=100, ge=1,
                                     description="validations one rater may give in 8 hours")
    rater_support: str = Field(
        default="Rating unsafe images can be distressing. Take breaks, stop whenever you need "
                "to, and talk to the organizers or someone you trust if the content affects "
                "you.",
        description="the support note shown to raters (add your organisation's resources)")

    @property
    def sqlalchemy_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'dataperf.db'}"

    @property
    def blobs_dir(self) -> Path:
        return self.home / "blobs"
