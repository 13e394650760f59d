"""Influence functions (Koh & Liang, 2017) of a logistic regression on the validation loss."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import scipy.linalg
from scipy.special import expit

from dataperf.algorithms._linear import fit_logistic
from dataperf.algorithms._neighbors import BLOCK_ROWS
from dataperf.algorithms._params import _Constraint, _Float, _Int, _Seed
from dataperf.algorithms.cleaning.base import Cleaner
from dataperf.algorithms.cleaning.task import CleaningTask

__all__ = ["InfluenceCleaner"]


class InfluenceCleaner(Cleaner):
    """Influence functions: rows whose removal most reduces the validation loss come first.

    Koh & Liang (2017) for an L2-regularised logistic regression (``C`` as in scikit-learn; the
    intercept is not penalised) fitted on the noisy training set. With the exact Hessian H of
    the training objective (one (d+1) x (d+1) solve) and the gradient g of the summed
    validation log-loss, removing row i changes the validation loss by about
    ``g' H^-1 grad_i`` (the row's own loss gradient); that is its value, ranked ascending.
    If the noisy labels hold one class, all values are 0 (random order).

    Cost: one logistic-regression fit, O(N d^2) for the Hessian (in blocks), O(d^3) for the
    solve and O(N d) for the values; O(d^2 + N) memory besides the fit.
    """

    _constraints: ClassVar[dict[str, _Constraint]] = {
        "C": _Float(0.0, low_open=True),
        "max_iter": _Int(1),
        "random_state": _Seed(),
    }

    def __init__(self, C: float = 1.0, max_iter: int = 1000, random_state: int | None = 0) -> None:
        self.C = C
        self.max_iter = max_iter
        self.random_state = random_state

    def _values(self, task: CleaningTask, rng: np.random.Generator) -> np.ndarray:
        X, y = task.x_train, task.noisy_labels
        n, d = X.shape
        model = fit_logistic(X, y, C=self.C, max_iter=self.max_iter, tol=1e-8)
        if model is None:
            return np.zeros(n, dtype=np.float64)
        w = np.r_[model.coef_.ravel(), model.intercept_].astype(np.float64)

        def augmented(block: np.ndarray) -> np.ndarray:
            return np.c_[np.asarray(block, dtype=np.float64), np.ones(len(block))]

        hessian = np.zeros((d + 1, d + 1))
        hessian[np.arange(d), np.arange(d)] = 1.0 / self.C
        for lo in range(0, n, BLOCK_ROWS):
            Z = augmented(X[lo : lo + BLOCK_ROWS])
            p = expit(Z @ w)
            hessian += (Z * (p * (1.0 - p))[:, None]).T @ Z
        Zv = augmented(task.x_val)
        pv = expit(Zv @ w)
        grad_val = Zv.T @ (pv - task.y_val)
        try:
            s = scipy.linalg.solve(hessian, grad_val, assume_a="pos")
        except (np.linalg.LinAlgError, scipy.linalg.LinAlgError):
            s = np.linalg.lstsq(hessian, grad_val, rcond=None)[0]
        values = np.empty(n, dtype=np.float64)
        for lo in range(0, n, BLOCK_ROWS):
            Z = augmented(X[lo : lo + BLOCK_ROWS])
            p = expit(Z @ w)
            values[lo : lo + len(Z)] = (p - y[lo : lo + len(Z)]) * (Z @ s)
        return values
