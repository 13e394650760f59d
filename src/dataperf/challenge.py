"""The central abstractions: a Challenge (of some kind) made of Tasks, scored on an Edition.

A kind (``dataperf.kinds``) implements the abstract methods once; each challenge of that kind is
an instance configured by a declarative spec. Profiles: ``default`` (ours: strict validation,
95% intervals) and ``official`` (the original DataPerf procedure, number for number).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from dataperf.editions import Edition
from dataperf.exceptions import ChallengeNotFoundError, EditionError
from dataperf.home import BUNDLED, editions_dir
from dataperf.scores import Direction, Score

Profile = Literal["default", "official"]
PROFILES: tuple[Profile, ...] = ("default", "official")

# progress(step, done, total): long steps report through this; the CLI draws a bar.
Progress = Callable[[str, int, int], None]


def no_progress(step: str, done: int, total: int) -> None:
    """A Progress that reports nowhere."""


@dataclass(frozen=True)
class Task:
    """One leaderboard slot inside a challenge, with its own data and its own score."""

    name: str


@dataclass(frozen=True)
class Submission:
    """Parsed, validated submission files. Kinds subclass it with their content per task."""

    challenge: str
    files: Mapping[str, bytes]
    warnings: tuple[str, ...] = ()


class Challenge(ABC):
    """A challenge: its tasks, rules, frozen model, metric and editions."""

    name: str
    kind: str
    version: int
    title: str
    description: str
    metric: str
    direction: Direction
    # Modules (dotted paths) with ``build(out_dir, *, seed, overwrite, progress, limit=None)``
    # making the offline edition (``limit``: a quick subset of about that many pool rows) and
    # ``import_official(source, out_dir)`` reading the original files; None where there is none.
    builder: str | None = None
    importer: str | None = None

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

    @abstractmethod
    def score(
        self,
        submission: Submission,
        edition: Edition,
        *,
        profile: Profile = "default",
        progress: Progress = no_progress,
    ) -> Score:
        """Train the frozen model on the submission and score it on the hidden part."""

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
