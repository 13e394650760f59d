"""The queue's jobs, free of any database. An evaluation (:class:`Job`) parses the files and
scores each part of the test data; a generation (:class:`GenerationJob`) makes a prompt's images
with its round's generators.

Workers (a local process or a Ray task) call :func:`run_job`; an evaluation takes the same
parse-and-score path as ``dataperf evaluate``, so a score on the platform equals the local one.
"""

from __future__ import annotations

import traceback
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, cast

from dataperf.challenge import Challenge, Progress, TestSplit, no_progress
from dataperf.editions import Edition
from dataperf.exceptions import DataPerfError, EditionError, SubmissionError
from dataperf.home import BUNDLED

BUNDLED_REF = "bundled:"
Status = Literal["scored", "done", "failed_participant", "failed_platform"]


@dataclass(frozen=True)
class Job:
    """Score a submission's files (or a baseline's) on the test data."""

    evaluation_id: int
    attempt: int
    challenge: str
    edition_path: str
    edition_hash: str
    files: dict[str, bytes]
    baseline: str | None = None  # run this built-in algorithm to make the files first
    private_fraction: float = 0.0
    split_seed: int = 0

    @property
    def key(self) -> str:
        """The job's name among all queued jobs (the queue's ``job_key``)."""
        return f"evaluations:{self.evaluation_id}"


@dataclass(frozen=True)
class GenerationJob:
    """Make a prompt's images with a round's generators (``generators.mix.RoundGenerators``)."""

    generation_id: int
    attempt: int
    prompt: str
    seed: int
    generators: dict[str, Any]
    image_screener: str | None = None  # flags unsafe images (a hint, never a block)

    @property
    def key(self) -> str:
        return f"generations:{self.generation_id}"


@dataclass
class Outcome:
    status: Status
    parts: dict[str, dict[str, Any]] = field(default_factory=dict)  # part -> Score.to_dict()
    files: dict[str, bytes] = field(default_factory=dict)  # files a baseline produced
    message: str | None = None
    problems: list[dict[str, Any]] | None = None
    retry: bool = False  # the attempt died of something outside the job; run it again
    # A generation's images in the order shown: {"png": a name in ``images`` or None, "model",
    # "blocked", "test_generator"}; ``images`` holds the PNGs by name.
    shown: list[dict[str, Any]] = field(default_factory=list)
    images: dict[str, bytes] = field(default_factory=dict)


def open_edition(challenge: Challenge, ref: str) -> Edition:
    """An edition by reference: ``bundled:<name>`` (shipped in the package, wherever it is
    installed) or a path or name as ``Challenge.edition`` takes it."""
    if ref.startswith(BUNDLED_REF):
        return challenge.edition(str(BUNDLED / challenge.name / ref.removeprefix(BUNDLED_REF)))
    return challenge.edition(ref)


# Editions opened (and verified) by this process, by (challenge, reference, content hash):
# a scoring process keeps its tables in memory between jobs instead of re-reading them.
_opened: dict[tuple[str, str, str], Edition] = {}


def _edition_for(challenge: Challenge, job: Job) -> Edition:
    key = (challenge.name, job.edition_path, job.edition_hash)
    if key not in _opened:
        edition = open_edition(challenge, job.edition_path)
        if edition.content_hash != job.edition_hash:
            raise EditionError(
                f"the edition at {job.edition_path} is not the registered one (content hash "
                f"{edition.content_hash}, expected {job.edition_hash})")
        if len(_opened) >= 4:  # a few editions' tables at most, oldest out first
            del _opened[next(iter(_opened))]
        _opened[key] = edition
    return _opened[key]


def parts(private_fraction: float) -> tuple[str, ...]:
    """The parts of the test data scored separately: all rows, or public and private."""
    return ("public", "private") if private_fraction > 0 else ("all",)


def run_job(job: Job | GenerationJob, progress: Progress = no_progress) -> Outcome:
    """Run a job. Participant mistakes and platform faults come back as failed outcomes."""
    if isinstance(job, GenerationJob):
        return run_generation(job, progress)
    from dataperf.registry import get_challenge

    try:
        challenge = get_challenge(job.challenge)
        edition = _edition_for(challenge, job)
        made = job.baseline is not None and not job.files  # a baseline scored again has its files
        files = challenge.run_algorithm(job.baseline, edition, progress=progress) \
            if made and job.baseline else job.files
        submission = challenge.parse_leaderboard_submission(files, edition)
        scored: dict[str, dict[str, Any]] = {}
        for part in parts(job.private_fraction):
            split = None if part == "all" else TestSplit(
                job.private_fraction, cast(Literal["public", "private"], part), job.split_seed)
            score = challenge.score(submission, edition, progress=progress, split=split)
            scored[part] = score.to_dict()
        return Outcome("scored", scored, files if made else {})
    except SubmissionError as err:
        return Outcome("failed_participant", message=str(err),
                       problems=[asdict(p) for p in err.problems])
    except DataPerfError as err:
        return Outcome("failed_platform", message=str(err))
    except Exception as err:  # a bug or a broken environment: the platform's fault, not theirs
        return Outcome("failed_platform", message=f"internal error: {err!r}\n"
                       + "".join(traceback.format_exception(err)[-3:]))


# Generator mixes made by this process, by their settings: a model loads once per process.
_mixes: dict[str, Any] = {}


def run_generation(job: GenerationJob, progress: Progress = no_progress) -> Outcome:
    """Make the prompt's images. A generator's error is told to the participant as it is."""
    import json

    from dataperf.generators import GenerationError
    from dataperf.generators.mix import GeneratorMix, RoundGenerators
    from dataperf.server import hints

    try:
        key = json.dumps(job.generators, sort_keys=True)
        if key not in _mixes:
            if len(_mixes) >= 4:
                del _mixes[next(iter(_mixes))]
            _mixes[key] = GeneratorMix(RoundGenerators.model_validate(job.generators))
        progress("generate", 0, 1)
        made = _mixes[key].generate(job.prompt, job.seed)
        progress("generate", 1, 1)
    except GenerationError as err:
        return Outcome("failed_platform", message=str(err))
    except Exception as err:  # a bug or a broken model: the platform's fault
        return Outcome("failed_platform", message=f"internal error: {err!r}\n"
                       + "".join(traceback.format_exception(err)[-3:]))
    images = {str(i): image.png for i, image in enumerate(made) if image.png is not None}
    shown = [{"png": str(i) if image.png is not None else None, "model": image.model,
              "blocked": image.blocked, "test_generator": image.test_generator}
             for i, image in enumerate(made)]
    if job.image_screener:
        pictured = [s for s in shown if s["png"] is not None]
        for item, screening in zip(pictured, hints.screen("images", job.image_screener,
                                                          list(images.values())), strict=True):
            item["screening"] = screening
    return Outcome("done", shown=shown, images=images)
