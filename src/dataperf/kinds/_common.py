"""Small pieces shared by the kinds (selection, cleaning, ...)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import numpy as np

from dataperf import metrics
from dataperf.exceptions import AlgorithmError
from dataperf.scores import TaskScore

__all__ = ["make_algorithm", "mean_task_score"]

T = TypeVar("T")


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
