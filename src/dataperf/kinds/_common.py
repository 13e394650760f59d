"""Small pieces shared by the kinds (selection, cleaning, ...)."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from dataperf import metrics
from dataperf.exceptions import AlgorithmError, Problem, SpecError, describe
from dataperf.scores import TaskScore

if TYPE_CHECKING:
    from dataperf.challenge import Challenge

__all__ = ["BootstrapSpec", "KindSpec", "adopt_spec", "algorithm_summaries", "make_algorithm",
           "match_files", "mean_task_score", "task_seed", "validate_spec"]

T = TypeVar("T")
S = TypeVar("S", bound="KindSpec")
NAME_PATTERN = r"^[a-z0-9][a-z0-9-]{1,62}$"


class KindSpec(BaseModel):
    """The fields every kind's spec starts with; each kind narrows ``kind`` to its name (the
    field keeps its place) and adds its own fields after these."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME_PATTERN)
    kind: str
    version: int = Field(default=1, ge=1)
    title: str
    description: str = ""
    classes: list[str] = Field(default=["0", "1"], min_length=2)

    @model_validator(mode="after")
    def _unique_classes(self: S) -> S:
        if len(set(self.classes)) != len(self.classes):
            raise ValueError("classes must be unique")
        return self


class BootstrapSpec(BaseModel):
    """The percentile bootstrap interval of a kind's default profile."""

    model_config = ConfigDict(extra="forbid")

    n_resamples: int = Field(default=1000, ge=100, le=100_000)
    seed: int = Field(default=0, ge=0)
    confidence: float = Field(default=0.95, gt=0.5, lt=1.0)


def validate_spec(model: type[S], data: Mapping[str, Any], *, origin: str) -> S:
    """``model`` validated from ``data``; a SpecError naming ``origin`` and the kind if not."""
    try:
        return model.model_validate(dict(data))
    except ValidationError as err:
        kind = model.model_fields["kind"].default
        raise SpecError(f"{origin} is not a valid {kind} challenge: {describe(err)}") from None


def adopt_spec(challenge: Challenge, spec: KindSpec, *, builder: str | None,
               importer: str | None) -> None:
    """Set a challenge's builder, importer and the attributes its spec names."""
    challenge.builder = builder
    challenge.importer = importer
    challenge.name = spec.name
    challenge.version = spec.version
    challenge.title = spec.title
    challenge.description = spec.description


def mean_task_score(task_scores: Sequence[TaskScore], samples: Sequence[np.ndarray], *,
                    confidence: float) -> TaskScore:
    """The ``mean`` over tasks (0.0 without tasks), with a percentile interval over the mean of
    the tasks' bootstrap ``samples`` when there are any."""
    value = float(np.mean([s.value for s in task_scores])) if task_scores else 0.0
    if not samples:
        return TaskScore("mean", value)
    interval = metrics.percentile_interval(np.mean(samples, axis=0), confidence=confidence)
    return TaskScore("mean", value, interval.low, interval.high)


def make_algorithm(registry: Mapping[str, type[T]], name: str,
                   params: Mapping[str, Any] | None, random_state: int) -> T:
    """``registry[name](**params, random_state=random_state)``; an AlgorithmError for an unknown
    name or parameters the class does not take."""
    if name not in registry:
        raise AlgorithmError(f"unknown algorithm {name!r}; available: {', '.join(registry)}")
    try:
        return registry[name](**{**(params or {}), "random_state": random_state})
    except TypeError as err:
        raise AlgorithmError(f"bad parameters for {name}: {err}") from None


def algorithm_summaries(registry: Mapping[str, type]) -> dict[str, str]:
    """Name -> the first paragraph of each algorithm class's docstring (its name without one)."""
    return {name: _summary(cls) for name, cls in registry.items()}


def task_seed(seed: int, task_index: int) -> int:
    """The bootstrap seed of the task at ``task_index``, derived from the spec's ``seed``."""
    return int(np.random.SeedSequence([seed, task_index]).generate_state(1)[0])


def _summary(cls: type) -> str:
    doc = (cls.__doc__ or "").strip()
    return re.split(r"\n\s*\n", doc)[0].replace("\n", " ") if doc else cls.__name__


def match_files(files: Iterable[str], tasks: Sequence[str], *, patterns: Sequence[str],
                challenge: str, problems: list[Problem],
                every_task: bool = True) -> dict[str, str]:
    """Task name -> file name, where a task's file is named by any one of ``patterns``
    (``"{task}.txt"``, ``"{task}_train.json"``, ...; the first is the one to suggest). Other
    files, two files for one task and, with ``every_task``, missing tasks become problems, with
    a "did you mean" for names that differ in case, extension, the part after the task name, or
    a typo."""
    expected = {pattern.format(task=task): task for task in tasks for pattern in patterns}
    suggest = {task.lower(): patterns[0].format(task=task) for task in tasks}
    suggest |= {name.rpartition(".")[0].lower(): name for name in reversed(expected)}
    suggest |= {name.lower(): name for name in expected}
    found: dict[str, list[str]] = {task: [] for task in tasks}
    for name in sorted(files):
        if name in expected:
            found[expected[name]].append(name)
            continue
        stem = name.rpartition(".")[0] or name
        guess = suggest.get(name.lower()) or suggest.get(stem.lower())
        if guess is None:
            close = difflib.get_close_matches(name, list(expected), n=1, cutoff=0.75)
            guess = close[0] if close else None
        hint = f"; did you mean {guess}?" if guess else ""
        wanted = " or ".join(pattern.format(task="{task}") for pattern in patterns)
        problems.append(Problem(name, "unexpected-file",
                                f"is not a submission file of {challenge} (expected "
                                f"{wanted} for the tasks {', '.join(tasks)}){hint}"))
    matched: dict[str, str] = {}
    for task, names in found.items():
        if not names:
            if every_task:
                problems.append(Problem(patterns[0].format(task=task), "missing-task",
                                        f"is missing: every task needs a file (task {task})"))
        elif len(names) > 1:
            problems.append(Problem(names[0], "ambiguous-task-file",
                                    f"and {', '.join(names[1:])} are both for task {task}; "
                                    "keep one"))
        else:
            matched[task] = names[0]
    return matched
