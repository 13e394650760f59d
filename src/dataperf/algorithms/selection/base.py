"""The ``Selector`` base class: checked hyper-parameters, a seeded Generator, shared first steps."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator

from dataperf.algorithms._params import _Constraint, _is_real, _Validated
from dataperf.algorithms._threads import one_thread
from dataperf.algorithms.selection._helpers import (
    _allocate,
    _class_weights,
    _dedupe,
    _ranked_by_class,
    _weak,
)
from dataperf.algorithms.selection.task import Selection, SelectionTask

__all__ = ["Selector"]


class _ClassMix(_Constraint):
    description = (
        "'balanced', 'prior', 'sqrt' or a sequence of non-negative per-class weights with a"
        " positive sum"
    )

    def accepts(self, value: Any) -> bool:
        if isinstance(value, str):
            return value in ("balanced", "prior", "sqrt")
        if not isinstance(value, Sequence | np.ndarray):
            return False
        weights = list(value)
        return (
            len(weights) >= 1 and all(_is_real(w) and w >= 0 for w in weights) and sum(weights) > 0
        )


class Selector(_Validated, BaseEstimator):
    """Base class: validates hyper-parameters, seeds a Generator and calls ``_select``.

    Its other methods are the first steps that several selectors share; they read the
    ``size`` and ``class_mix`` hyper-parameters, so only selectors that have them call them.
    """

    random_state: int | np.random.Generator | None
    size: int | None
    class_mix: str | Sequence[float]

    @one_thread
    def select(self, task: SelectionTask) -> Selection:
        """Choose at most ``task.budget`` labelled pool rows for ``task``."""
        self._validate_params()
        rng = np.random.default_rng(self.random_state)
        indices, labels = self._select(task, rng)
        return _finish(indices, labels, task)

    def _select(
        self, task: SelectionTask, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def _target_size(self, task: SelectionTask) -> int:
        """How many rows to choose: ``size`` capped by the budget (``None``: the budget)."""
        return task.budget if self.size is None else min(self.size, task.budget)

    def _checked_weights(self, task: SelectionTask) -> np.ndarray:
        """Per-class target proportions from ``class_mix``; a ValueError unless there is one
        per class."""
        weights = _class_weights(self.class_mix, task)
        if len(weights) != task.n_classes:
            expected = f"a sequence of {task.n_classes} weights (one per class)"
            raise ValueError(self._param_message("class_mix", expected, self.class_mix))
        return weights

    def _class_quotas(
        self,
        task: SelectionTask,
        ex: np.ndarray,
        ex_labels: np.ndarray,
        rng: np.random.Generator,
    ) -> tuple[list[np.ndarray], np.ndarray]:
        """Per class, its rows in the order they are taken (``_ranked_by_class``: its known
        examples ``ex``, then its weak rows by decreasing confidence), and its share of the
        target size split by ``class_mix`` (capped by its rows)."""
        n = self._target_size(task)
        weights = self._checked_weights(task)
        weak, _ = _weak(task)
        ranked = _ranked_by_class(task, weak, ex, ex_labels, rng)
        quotas = _allocate(n, weights, np.array([len(r) for r in ranked]))
        return ranked, quotas


def _finish(indices: np.ndarray, labels: np.ndarray, task: SelectionTask) -> Selection:
    """Drop repeated rows (first one wins) and cut to the budget."""
    indices, labels = _dedupe(indices, labels)
    return Selection(indices=indices[: task.budget].copy(), labels=labels[: task.budget].copy())
