"""The random baseline: a seeded uniform permutation of the training rows."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from dataperf.algorithms._params import _Constraint, _Seed
from dataperf.algorithms.cleaning.base import Cleaner
from dataperf.algorithms.cleaning.task import CleaningTask

__all__ = ["RandomCleaner"]


class RandomCleaner(Cleaner):
    """Random order: a seeded uniform permutation of the training rows (the baseline).

    Cost: O(N).
    """

    _constraints: ClassVar[dict[str, _Constraint]] = {"random_state": _Seed()}

    def __init__(self, random_state: int | None = 0) -> None:
        self.random_state = random_state

    def _values(self, task: CleaningTask, rng: np.random.Generator) -> np.ndarray:
        return rng.random(task.n_train)
