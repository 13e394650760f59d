"""The ``Cleaner`` base class (values, a seeded ranking) and block-wise helpers cleaners share."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.linear_model import LogisticRegression

from dataperf.algorithms._neighbors import BLOCK_ROWS
from dataperf.algorithms._params import _Validated
from dataperf.algorithms._threads import one_thread
from dataperf.algorithms.cleaning.task import CleaningTask

__all__ = ["Cleaner"]


class Cleaner(_Validated, BaseEstimator):
    """Base class: validates hyper-parameters, seeds a Generator and calls ``_values``."""

    random_state: int | np.random.Generator | None

    @one_thread
    def values(self, task: CleaningTask) -> np.ndarray:
        """(N,) float64 value of every training row; low values are suspicious."""
        self._validate_params()
        rng = np.random.default_rng(self.random_state)
        return self._values(task, rng)

    @one_thread
    def rank(self, task: CleaningTask) -> np.ndarray:
        """All N training row indices (int64), most suspicious first."""
        self._validate_params()
        rng = np.random.default_rng(self.random_state)
        values = np.asarray(self._values(task, rng), dtype=np.float64)
        if values.shape != (task.n_train,):  # pragma: no cover - a bug in a subclass
            raise RuntimeError(f"{type(self).__name__} returned values of shape {values.shape}.")
        values = np.where(np.isfinite(values), values, np.nanmean(values) if values.size else 0)
        return np.lexsort((rng.random(task.n_train), values)).astype(np.int64)

    def _values(self, task: CleaningTask, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError


def _float(X: np.ndarray) -> np.ndarray:
    """``X`` as float32 (float64 stays float64)."""
    return np.asarray(X, dtype=np.result_type(X.dtype, np.float32))


def _proba1(model: LogisticRegression | None, X: np.ndarray, fallback: float) -> np.ndarray:
    """Probability of class 1 for every row of ``X`` (float64, in blocks); ``fallback`` when
    there is no model."""
    out = np.full(len(X), fallback, dtype=np.float64)
    if model is None:
        return out
    for lo in range(0, len(X), BLOCK_ROWS):
        out[lo : lo + BLOCK_ROWS] = model.predict_proba(_float(X[lo : lo + BLOCK_ROWS]))[:, 1]
    return out
