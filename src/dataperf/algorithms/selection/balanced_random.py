"""Class-balanced random selection: equal shares per weak class, drawn uniformly."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from dataperf.algorithms._params import _Constraint, _Int, _Seed
from dataperf.algorithms.selection._helpers import _allocate, _argmax_labels
from dataperf.algorithms.selection.base import Selector
from dataperf.algorithms.selection.task import SelectionTask

__all__ = ["RandomSelector"]


class RandomSelector(Selector):
    """Class-balanced random: equal shares per weak-label class, drawn uniformly, weak labels.

    Splits ``min(size, budget)`` (``size=None``: the budget) equally across classes (a class
    with too few weakly labelled items gives its remainder to the others) and draws uniformly
    among the items whose weak label (argmax of ``weak_proba``) is that class; each row is
    labelled with its weak label. The default ``size=500`` mirrors the original challenge's
    random baseline. Cost: O(N).
    """

    _constraints: ClassVar[dict[str, _Constraint]] = {
        "size": _Int(1, none_ok=True),
        "random_state": _Seed(),
    }

    def __init__(self, size: int | None = 500, random_state: int | None = 0) -> None:
        self.size = size
        self.random_state = random_state

    def _select(
        self, task: SelectionTask, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        n = self._target_size(task)
        weak = _argmax_labels(task.weak_proba)
        counts = np.bincount(weak, minlength=task.n_classes)
        quotas = _allocate(n, np.ones(task.n_classes), counts)
        picks = [
            rng.choice(np.flatnonzero(weak == c), size=int(q), replace=False)
            for c, q in enumerate(quotas)
        ]
        indices = np.concatenate(picks)
        return indices, weak[indices]
