"""One evaluation job, free of any database: parse the files, score each part of the test data.

Workers (a local process or a Ray task) call :func:`run_job`; it is the same parse-and-score
path as ``dataperf evaluate``, so a score on the platform equals the local one.
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
Status = Literal["scored", "failed_participant", "failed_platform"]


@dataclass(frozen=True)
class Job:
    evaluation_id: int
    attempt: int
    challenge: str
    edition_path: str
    edition_hash: str
    files: dict[str, bytes]
    baseline: str | None = None  # run this built-in algorithm to make the files first
    private_fraction: float = 0.0
    split_seed: int = 0


@dataclass
class Outcome:
    status: Status
    parts: dict[str, dict[str, Any]] = field(default_factory=dict)  # part -> Score.to_dict()
    files: dict[str, bytes] = field(default_factory=dict)  # files a baseline produced
    message: str | None = None
    problems: list[dict[str, Any]] | None = None
    retry: bool = False  # the attempt died of something outside the job; run it again


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


def run_job(job: Job, progress: Progress = no_progress) -> Outcome:
    """Score a job. Participant mistakes and platform faults come back as failed outcomes."""
    from dataperf.registry import get_challenge

    try:
        challenge = get_challenge(job.challenge)
        edition = _edition_for(challenge, job)
        files = job.files
        if job.baseline:
            files = challenge.run_algorithm(job.baseline, edition, progress=progress)
        submission = challenge.parse_leaderboard_submission(files, edition)
        scored: dict[str, dict[str, Any]] = {}
        for part in parts(job.private_fraction):
            split = None if part == "all" else TestSplit(
                job.private_fraction, cast(Literal["public", "private"], part), job.split_seed)
            score = challenge.score(submission, edition, progress=progress, split=split)
            scored[part] = score.to_dict()
        return Outcome("scored", scored, files if job.baseline else {})
    except SubmissionError as err:
        return Outcome("failed_participant", message=str(err),
                       problems=[asdict(p) for p in err.problems])
    except DataPerfError as err:
        return Outcome("failed_platform", message=str(err))
    except Exception as err:  # a bug or a broken environment: the platform's fault, not theirs
        return Outcome("failed_platform", message=f"internal error: {err!r}\n"
                       + "".join(traceback.format_exception(err)[-3:]))
