"""Weak-label confidence filtering: each class's most confident items, after its known examples."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import numpy as np

from dataperf.algorithms._params import _Constraint, _Int, _Seed
from dataperf.algorithms.selection._helpers import _no_examples, _unique_examples
from dataperf.algorithms.selection.base import Selector, _ClassMix
from dataperf.algorithms.selection.task import SelectionTask

__all__ = ["ConfidenceSelector"]


class ConfidenceSelector(Selector):
    """Weak-label confidence filtering: the most confident items of each class plus examples.

    Each class gets a share of ``min(size, budget)`` (``size=None`` means the budget) from
    ``class_mix`` ('balanced': equal shares; 'prior': proportional to the annotator's class
    frequencies, i.e. its mean probabilities; 'sqrt': proportional to their square roots; or
    explicit weights). A class's share is filled first with its known examples (if
    ``include_examples``), then with the items weakly labelled as that class in decreasing
    order of confidence (ties broken at random). Weak labels here and in the selectors below
    are the annotator's classes matched to its own class frequencies (see ``_prior_matched``),
    which keeps classes it is rarely sure of. Cost: O(N log N).
    """

    _constraints: ClassVar[dict[str, _Constraint]] = {
        "size": _Int(1, none_ok=True),
        "class_mix": _ClassMix(),
        "random_state": _Seed(),
    }

    def __init__(
        self,
        size: int | None = None,
        class_mix: str | Sequence[float] = "balanced",
        include_examples: bool = True,
        random_state: int | None = 0,
    ) -> None:
        self.size = size
        self.class_mix = class_mix
        self.include_examples = include_examples
        self.random_state = random_state

    def _select(
        self, task: SelectionTask, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        ex, ex_labels = _unique_examples(task) if self.include_examples else _no_examples()
        ranked, quotas = self._class_quotas(task, ex, ex_labels, rng)
        indices = np.concatenate([r[:q] for r, q in zip(ranked, quotas, strict=True)])
        labels = np.repeat(np.arange(task.n_classes), quotas)
        return indices, labels
