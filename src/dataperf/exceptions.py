"""Every error a user can cause, in one place.

The library raises these; only the CLI (and later the server's API layer) turns them into
messages for people. Each message names the problem and, where there is one, the fix.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import ValidationError


class DataPerfError(Exception):
    """Base class: a problem with the user's input, data or setup, not a bug."""


class ChallengeNotFoundError(DataPerfError):
    """No registered challenge (or task) has the requested name."""


class AlgorithmError(DataPerfError):
    """An unknown algorithm name, or bad hyper-parameters for one."""


class SpecError(DataPerfError):
    """A challenge definition (declarative file or plugin) is invalid."""


class EditionError(DataPerfError):
    """An edition is missing, incomplete or malformed."""


class IntegrityError(EditionError):
    """A file of an edition does not match the sha256 recorded in its manifest."""


class HiddenDataUnavailableError(EditionError):
    """Scoring needs the hidden part of an edition, and this copy has only the public part."""


class StorageUnavailableError(DataPerfError):
    """A file could not be written to the platform's storage (full, read-only, unmounted):
    nothing was stored, and the same request can be sent again later."""


class SourceDataError(DataPerfError):
    """Raw source data for building or importing an edition is missing or malformed."""


@dataclass(frozen=True)
class Problem:
    """One broken rule in a submission: which file, which rule, where, and which IDs."""

    file: str
    rule: str
    message: str
    line: int | None = None
    ids: tuple[str, ...] = field(default=())

    def __str__(self) -> str:
        where = f"{self.file}, line {self.line}" if self.line is not None else self.file
        text = f"{where}: {self.message} [{self.rule}]"
        if self.ids:
            shown = ", ".join(self.ids[:5])
            more = f" and {len(self.ids) - 5} more" if len(self.ids) > 5 else ""
            text += f" (IDs: {shown}{more})"
        return text


class SubmissionError(DataPerfError):
    """A submission breaks one or more rules; nothing was scored or stored."""

    def __init__(self, problems: Sequence[Problem]):
        self.problems = tuple(problems)
        head = "the submission was rejected"
        super().__init__(head + ":\n" + "\n".join(f"  - {p}" for p in self.problems))

    @property
    def rules(self) -> set[str]:
        return {p.rule for p in self.problems}


def describe(error: ValidationError) -> str:
    """A pydantic validation error as one line per broken field, without links."""
    parts = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"]) or "(top level)"
        parts.append(f"{where}: {item['msg']}")
    return "; ".join(parts)
