"""Data-OOB (Kwon & Zou, 2023): out-of-bag accuracy of bagged models on each row's own label."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from sklearn.tree import DecisionTreeClassifier

from dataperf.algorithms._linear import fit_logistic
from dataperf.algorithms._neighbors import BLOCK_ROWS
from dataperf.algorithms._params import _Choice, _Constraint, _Float, _Int, _Seed
from dataperf.algorithms.cleaning.base import Cleaner, _float, _proba1
from dataperf.algorithms.cleaning.task import CleaningTask

__all__ = ["DataOOBCleaner"]


class DataOOBCleaner(Cleaner):
    """Data-OOB: out-of-bag accuracy of bagged trees on each row's own (noisy) label.

    Kwon & Zou (2023). ``n_estimators`` classifiers are trained on bootstrap samples of
    ``max_samples`` rows (None: N) drawn with replacement: randomised decision trees
    (``base='tree'``: ``max_features='sqrt'``, ``min_samples_leaf``, ``max_depth``) or
    ``LogisticRegression(C=C)`` (``base='logistic'``). A row's value is the share of the models
    that did not see it whose prediction equals its given label; rows never out of bag get the
    mean value. The validation set is not used.

    Cost: ``n_estimators`` fits on ``max_samples`` rows and predictions on the rest; O(N)
    memory besides the fits.
    """

    _constraints: ClassVar[dict[str, _Constraint]] = {
        "n_estimators": _Int(1),
        "max_samples": _Int(1, none_ok=True),
        "max_depth": _Int(1, none_ok=True),
        "min_samples_leaf": _Int(1),
        "C": _Float(0.0, low_open=True),
        "random_state": _Seed(),
        "base": _Choice(("tree", "logistic")),
    }

    def __init__(
        self,
        n_estimators: int = 200,
        base: str = "tree",
        max_samples: int | None = None,
        max_depth: int | None = None,
        min_samples_leaf: int = 5,
        C: float = 1.0,
        random_state: int | None = 0,
    ) -> None:
        self.n_estimators = n_estimators
        self.base = base
        self.max_samples = max_samples
        self.max_depth = max_depth
        self.min_samples_leaf = min_samples_leaf
        self.C = C
        self.random_state = random_state

    def _fit_predict(
        self, X: np.ndarray, y: np.ndarray, X_out: np.ndarray, rng: np.random.Generator
    ) -> np.ndarray:
        if len(np.unique(y)) < 2:
            return np.full(len(X_out), y[0], dtype=np.int64)
        if self.base == "logistic":
            model = fit_logistic(X, y, C=self.C)
            assert model is not None
            return (_proba1(model, X_out, 0.5) >= 0.5).astype(np.int64)
        tree = DecisionTreeClassifier(
            max_features="sqrt",
            max_depth=self.max_depth,
            min_samples_leaf=self.min_samples_leaf,
            random_state=int(rng.integers(2**31 - 1)),
        )
        tree.fit(X, y)
        out = np.empty(len(X_out), dtype=np.int64)
        for lo in range(0, len(X_out), BLOCK_ROWS):
            out[lo : lo + BLOCK_ROWS] = tree.predict(_float(X_out[lo : lo + BLOCK_ROWS]))
        return out

    def _values(self, task: CleaningTask, rng: np.random.Generator) -> np.ndarray:
        n, y = task.n_train, task.noisy_labels
        size = n if self.max_samples is None else self.max_samples
        correct = np.zeros(n, dtype=np.float64)
        counts = np.zeros(n, dtype=np.float64)
        for _ in range(self.n_estimators):
            drawn = rng.integers(n, size=size)
            out = np.ones(n, dtype=bool)
            out[drawn] = False
            if not out.any():
                continue
            drawn.sort()
            oob = np.flatnonzero(out)
            pred = self._fit_predict(_float(task.x_train[drawn]), y[drawn], task.x_train[oob], rng)
            correct[oob] += pred == y[oob]
            counts[oob] += 1.0
        seen = counts > 0
        values = np.full(n, np.nan)
        values[seen] = correct[seen] / counts[seen]
        values[~seen] = values[seen].mean() if seen.any() else 0.5
        return values
