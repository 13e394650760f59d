"""Scores: per-task values with 95% intervals, the aggregate, and what makes them reproducible."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Direction = Literal["higher", "lower"]


@dataclass(frozen=True)
class TaskScore:
    """The score of one task (one leaderboard slot)."""

    task: str
    value: float
    ci_low: float | None = None
    ci_high: float | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Score:
    """A scored submission: per task, the aggregate, and the provenance of the number.

    ``edition_hash`` and ``scorer_version`` identify exactly what produced the score, so the
    same submission scored on the same edition by the same scorer version gives the same value.
    ``part`` is the part of the hidden test rows scored: ``"all"``, or ``"public"`` or
    ``"private"`` under a test split (see ``dataperf.challenge.TestSplit``).
    """

    challenge: str
    edition: str
    edition_hash: str
    scorer_version: str
    profile: str
    metric: str
    direction: Direction
    tasks: tuple[TaskScore, ...]
    aggregate: TaskScore
    warnings: tuple[str, ...] = ()
    part: str = "all"

    def task(self, name: str) -> TaskScore:
        for score in self.tasks:
            if score.task == name:
                return score
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["tasks"] = [asdict(t) for t in self.tasks]
        data["warnings"] = list(self.warnings)
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)
