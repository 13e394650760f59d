"""The central abstractions: a Challenge (of some kind) made of Tasks, scored on an Edition.

A kind (``dataperf.kinds``) implements the abstract methods once; each challenge of that kind is
an instance configured by a declarative spec. Profiles: ``default`` (ours: strict validation,
95% intervals) and ``official`` (the original DataPerf procedure, number for number).
"""

from __future__ import annotations

import math
import numbers
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from dataperf.editions import Edition
from dataperf.exceptions import (
    ChallengeNotFoundError,
    EditionError,
    Problem,
    SpecError,
    SubmissionError,
)
from dataperf.home import BUNDLED, editions_dir
from dataperf.scores import Direction, Score

Profile = Literal["default", "official"]
PROFILES: tuple[Profile, ...] = ("default", "official")
Part = Literal["public", "private"]
PARTS: tuple[Part, ...] = ("public", "private")

# progress(step, done, total): long steps report through this; the CLI draws a bar.
Progress = Callable[[str, int, int], None]


def no_progress(step: str, done: int, total: int) -> None:
    """A Progress that reports nowhere."""


@dataclass(frozen=True)
class Task:
    """One leaderboard slot inside a challenge, with its own data and its own score."""

    name: str


@dataclass(frozen=True)
class TestSplit:
    """Which part of each task's hidden test rows to score: the public or the private part.

    Hosted leaderboards show scores on the *public* part of the test rows during a round and
    reveal those on the *private* part after the deadline. The split is fixed by
    ``(private_fraction, seed)`` alone, so anyone with the edition can reproduce it:

    for the task at position ``task_index`` in the edition's task list, whose ``n_rows`` test
    rows are numbered in the order of the edition's hidden test table, the private rows are the
    first ``round(private_fraction * n_rows)`` entries (Python's ``round``, half to even) of
    ``np.random.default_rng(np.random.SeedSequence([seed, task_index])).permutation(n_rows)``;
    the public rows are all the others. The split does not depend on ``part``, so the two
    parts of one ``(private_fraction, seed)`` are disjoint and together cover every row.

    ``private_fraction`` must lie strictly between 0 and 1; :meth:`mask` refuses a task where
    either part would have no rows.
    """

    __test__ = False  # not a pytest test class, whatever its name

    private_fraction: float
    part: Part
    seed: int = 0

    def __post_init__(self) -> None:
        fraction = self.private_fraction
        if (isinstance(fraction, bool) or not isinstance(fraction, numbers.Real)
                or not math.isfinite(fraction) or not 0 < fraction < 1):
            raise SpecError(f"the private fraction of a test split must be a number strictly "
                            f"between 0 and 1 (e.g. 0.5), got {fraction!r}")
        if self.part not in PARTS:
            raise SpecError(f"the part of a test split must be one of {', '.join(PARTS)}, got "
                            f"{self.part!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, numbers.Integral) \
                or self.seed < 0:
            raise SpecError(f"the seed of a test split must be a non-negative integer, got "
                            f"{self.seed!r}")

    def n_private(self, n_rows: int) -> int:
        """How many of ``n_rows`` test rows are private."""
        return round(float(self.private_fraction) * n_rows)

    def mask(self, n_rows: int, task_index: int) -> np.ndarray:
        """Boolean array of length ``n_rows``: True for the rows in this split's part."""
        if n_rows < 0 or task_index < 0:
            raise ValueError(f"n_rows and task_index must be >= 0, got {n_rows}, {task_index}")
        n_private = self.n_private(n_rows)
        empty = "private" if n_private == 0 else "public" if n_private == n_rows else None
        if empty is not None:
            raise SpecError(
                f"a private fraction of {self.private_fraction:g} leaves the {empty} part of a "
                f"task with {n_rows} test row(s) empty ({n_private} private, "
                f"{n_rows - n_private} public); choose a fraction that gives both parts rows")
        rng = np.random.default_rng(np.random.SeedSequence([int(self.seed), int(task_index)]))
        private = np.zeros(n_rows, dtype=bool)
        private[rng.permutation(n_rows)[:n_private]] = True
        return private if self.part == "private" else ~private


@dataclass(frozen=True)
class Submission:
    """Parsed, validated submission files. Kinds subclass it with their content per task."""

    challenge: str
    files: Mapping[str, bytes]
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class ReleasedRound:
    """A round the original challenge ran, as an edition holds it: each participant's
    submission files (participant name -> file name -> bytes), to be scored like any other."""

    name: str
    title: str
    entries: Mapping[str, Mapping[str, bytes]]


class Challenge(ABC):
    """A challenge: its tasks, rules, frozen model, metric and editions."""

    name: str
    kind: str
    version: int
    title: str
    description: str
    metric: str
    direction: Direction
    # The kind's scoring procedure; a change here opens a new round on the platform.
    scorer_version: str
    # Modules (dotted paths) with ``build(out_dir, *, seed, overwrite, progress, limit=None)``
    # making the offline edition (``limit``: a quick subset of about that many pool rows) and
    # ``import_official(source, out_dir)`` reading the original files; None where there is none.
    builder: str | None = None
    importer: str | None = None
    #: Shown before anything else of a challenge whose data holds harmful content.
    content_warning: str = ""

    def tasks(self, edition: Edition) -> tuple[Task, ...]:
        """The tasks of an edition (offline and official editions may have different ones)."""
        return tuple(Task(name) for name in edition.tasks)

    def task(self, edition: Edition, name: str) -> Task:
        for task in self.tasks(edition):
            if task.name == name:
                return task
        known = ", ".join(edition.tasks)
        raise ChallengeNotFoundError(
            f"edition {edition.name!r} of {self.name} has no task {name!r}; its tasks: {known}")

    @abstractmethod
    def rules(self) -> dict[str, str]:
        """Human-readable rules, frozen model and metric, as ordered name -> text."""

    @abstractmethod
    def parse_submission(
        self, files: Mapping[str, bytes], edition: Edition, *, profile: Profile = "default"
    ) -> Submission:
        """Parse and validate submission files against the edition's public part.

        Raises SubmissionError listing every broken rule; has no side effects.
        """

    def missing_tasks(self, files: Mapping[str, bytes], edition: Edition) -> list[Problem]:
        """A ``missing-task`` problem for each task without a file, in kinds whose
        :meth:`parse_submission` accepts some tasks only (for local evaluation); the others
        report missing tasks while parsing, and return [] here."""
        return []

    def parse_leaderboard_submission(self, files: Mapping[str, bytes],
                                     edition: Edition) -> Submission:
        """:meth:`parse_submission` as a leaderboard takes it: it ranks the mean over every
        task, so every task needs a file. Every problem is reported at once."""
        missing = self.missing_tasks(files, edition)
        try:
            parsed = self.parse_submission(files, edition)
        except SubmissionError as err:
            found = {(p.file, p.rule) for p in err.problems}
            raise SubmissionError([*err.problems, *(p for p in missing
                                                    if (p.file, p.rule) not in found)]) from None
        if missing:
            raise SubmissionError(missing)
        return parsed

    @abstractmethod
    def score(
        self,
        submission: Submission,
        edition: Edition,
        *,
        profile: Profile = "default",
        progress: Progress = no_progress,
        split: TestSplit | None = None,
    ) -> Score:
        """Train the frozen model on the submission and score it on the hidden part.

        ``split`` restricts every task's metric, interval and details to one part (public or
        private) of its hidden test rows, as :class:`TestSplit` defines them, where task
        ``i`` is the ``i``-th of :meth:`tasks`; None scores all test rows. The model is trained
        and predicts exactly as without a split, so the public and private scores of a
        submission come from the same predictions. The Score's ``part`` records the part
        (``"all"`` without a split).
        """

    @abstractmethod
    def algorithms(self) -> dict[str, str]:
        """Built-in participant algorithms usable on this challenge: name -> one-line summary."""

    @abstractmethod
    def run_algorithm(
        self,
        name: str,
        edition: Edition,
        *,
        params: Mapping[str, Any] | None = None,
        random_state: int = 0,
        progress: Progress = no_progress,
    ) -> dict[str, bytes]:
        """Run a built-in algorithm on the public data; return submission files name -> bytes."""

    #: The built-in algorithm that results tables compare the best one with.
    baseline_algorithm = "random"

    def released_rounds(self, edition: Edition) -> list[ReleasedRound]:
        """The original challenge's rounds that the edition holds, oldest first, for the
        platform to host as closed historical rounds; none in most kinds."""
        return []

    def report_columns(self) -> list[tuple[str, str]]:
        """Task details shown next to each score in reports: (details key, column header)."""
        return [("train_rows", "train rows")]

    # Editions -------------------------------------------------------------------------------

    def edition_dirs(self) -> dict[str, Path]:
        """Available editions by name: the user's (built, imported) first, then bundled ones."""
        found: dict[str, Path] = {}
        for root in (editions_dir() / self.name, BUNDLED / self.name):
            if root.is_dir():
                for child in sorted(root.iterdir()):
                    if (child / "manifest.json").is_file():
                        found.setdefault(child.name, child)
        return found

    def edition(self, name_or_path: str = "offline", *, verify: bool = True) -> Edition:
        """Open an edition by name (``offline``, ``official``, ...) or by directory path."""
        candidate = Path(name_or_path)
        if candidate.is_dir() and (candidate / "manifest.json").is_file():
            edition = Edition.open(candidate, verify=verify)
        else:
            dirs = self.edition_dirs()
            if name_or_path not in dirs:
                known = ", ".join(dirs) or "none"
                raise EditionError(
                    f"{self.name} has no edition {name_or_path!r} (available: {known}). "
                    f"Build or import one with `dataperf data build {self.name}` or "
                    f"`dataperf data import {self.name} DIR`."
                )
            edition = Edition.open(dirs[name_or_path], verify=verify)
        if edition.challenge != self.name:
            raise EditionError(
                f"{edition.path} is an edition of {edition.challenge!r}, not of {self.name!r}"
            )
        return edition
