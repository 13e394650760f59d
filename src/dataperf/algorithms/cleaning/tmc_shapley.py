"""TMC-Shapley (Ghorbani & Zou, 2019): truncated Monte Carlo Shapley values of the training rows."""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np
from scipy.special import expit
from threadpoolctl import threadpool_limits

from dataperf.algorithms._params import _Choice, _Constraint, _Float, _Int, _Seed
from dataperf.algorithms.cleaning.base import Cleaner
from dataperf.algorithms.cleaning.task import CleaningTask

__all__ = ["TMCShapleyCleaner"]


class TMCShapleyCleaner(Cleaner):
    """Truncated Monte Carlo Shapley of each row for a logistic regression's validation score.

    Ghorbani & Zou (2019). For each of ``n_permutations`` seeded permutations, rows are added
    one by one; after each addition an L2-regularised logistic regression (``C``; the intercept
    only gets a 1e-6 penalty, which keeps it finite on separable subsets) is refitted by damped
    Newton steps (at most ``max_newton``) warm-started from the previous subset's solution, and
    the row's marginal contribution is the change of the validation score: ``metric='accuracy'``
    (as in the paper) or ``'log-likelihood'`` (mean log-probability of the validation labels, a
    smoother signal). The empty set predicts probability 1/2 (chance); a subset with k rows, all
    of one class, predicts that class with probability (k + 1) / (k + 2). Once the score has
    been within ``tolerance`` (relative) of the full set's for more than ``patience``
    consecutive additions, the rest of the permutation contributes 0. Values are the mean
    marginal contributions, ranked ascending.

    Cost: up to ``n_permutations * N`` refits, each O(|S| d^2 + d^3) per Newton step, plus
    O(M d) per evaluation: the slow reference, meant for thousands of rows, not millions.
    """

    _constraints: ClassVar[dict[str, _Constraint]] = {
        "n_permutations": _Int(1),
        "tolerance": _Float(0.0),
        "patience": _Int(0),
        "C": _Float(0.0, low_open=True),
        "max_newton": _Int(1),
        "random_state": _Seed(),
        "metric": _Choice(("accuracy", "log-likelihood")),
    }

    def __init__(
        self,
        n_permutations: int = 50,
        tolerance: float = 0.01,
        patience: int = 5,
        metric: str = "accuracy",
        C: float = 1.0,
        max_newton: int = 10,
        random_state: int | None = 0,
    ) -> None:
        self.n_permutations = n_permutations
        self.tolerance = tolerance
        self.patience = patience
        self.metric = metric
        self.C = C
        self.max_newton = max_newton
        self.random_state = random_state

    def _newton(self, Z: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
        """Minimise sum log-loss + |w[:-1]|^2 / (2C) from ``w`` (Z has a trailing ones column)."""
        penalty = np.full(Z.shape[1], 1.0 / self.C)
        penalty[-1] = 1e-6  # keeps the intercept finite on separable subsets

        def objective(w: np.ndarray, z: np.ndarray) -> float:
            return float(np.sum(np.logaddexp(0.0, z) - y * z) + 0.5 * penalty @ (w * w))

        z = Z @ w
        current = objective(w, z)
        for _ in range(self.max_newton):
            p = expit(z)
            grad = Z.T @ (p - y) + penalty * w
            hessian = (Z * (p * (1.0 - p))[:, None]).T @ Z
            hessian[np.diag_indices_from(hessian)] += penalty
            step = np.linalg.solve(hessian, grad)
            # Backtracking: plain Newton can overshoot on (nearly) separable subsets.
            for _ in range(30):
                candidate = w - step
                z_candidate = Z @ candidate
                value = objective(candidate, z_candidate)
                if value <= current:
                    break
                step = 0.5 * step
            else:
                break
            w, z, current = candidate, z_candidate, value
            if np.max(np.abs(step)) < 1e-6:
                break
        return w

    def _score(self, logits: np.ndarray, y_val: np.ndarray) -> float:
        """Validation score of predicted class-1 logits."""
        if self.metric == "log-likelihood":
            return float(-np.mean(np.logaddexp(0.0, np.where(y_val == 1, -logits, logits))))
        hit = np.where(logits == 0, 0.5, (logits > 0) == (y_val == 1))
        return float(np.mean(hit))

    def _constant(self, n_class1: int, n_rows: int, y_val: np.ndarray) -> float:
        """Score of a subset with ``n_rows`` rows, all class 1 (``n_class1 == n_rows``) or all
        class 0 (``n_class1 == 0``): smoothed class probability (chance for no rows)."""
        p1 = (n_class1 + 1.0) / (n_rows + 2.0)
        return self._score(np.full(len(y_val), math.log(p1 / (1.0 - p1))), y_val)

    def _values(self, task: CleaningTask, rng: np.random.Generator) -> np.ndarray:
        n, y = task.n_train, task.noisy_labels.astype(np.float64)
        Z = np.c_[np.asarray(task.x_train, dtype=np.float64), np.ones(n)]
        Zv = np.c_[np.asarray(task.x_val, dtype=np.float64), np.ones(task.n_val)]
        y_val = task.y_val
        values = np.zeros(n, dtype=np.float64)
        with threadpool_limits(limits=1, user_api="blas"):
            if 0.0 < y.mean() < 1.0:
                full = self._score(Zv @ self._newton(Z, y, np.zeros(Z.shape[1])), y_val)
            else:
                full = self._constant(int(y.sum()), n, y_val)
            for _ in range(self.n_permutations):
                perm = rng.permutation(n)
                w = np.zeros(Z.shape[1])
                previous, streak, n1 = self._constant(0, 0, y_val), 0, 0
                for j, i in enumerate(perm):
                    n1 += int(y[i])
                    if n1 in (0, j + 1):  # one class so far
                        score = self._constant(n1, j + 1, y_val)
                    else:
                        rows = perm[: j + 1]
                        w = self._newton(Z[rows], y[rows], w)
                        score = self._score(Zv @ w, y_val)
                    values[i] += score - previous
                    previous = score
                    if abs(full - score) <= self.tolerance * abs(full):
                        streak += 1
                        if streak > self.patience:
                            break
                    else:
                        streak = 0
        return values / self.n_permutations
