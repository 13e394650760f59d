"""The logistic-regression fit shared by the participant-side algorithms."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits

__all__ = ["SMALL_FIT", "fit_logistic"]

#: Matrices with fewer entries than this are fitted on one BLAS thread.
SMALL_FIT = 2_000_000


def fit_logistic(
    X: np.ndarray, y: np.ndarray, *, sample_weight: np.ndarray | None = None, **params: Any
) -> LogisticRegression | None:
    """``LogisticRegression(random_state=0, **params)`` fitted on (X, y); None for one class.

    Convergence warnings are silenced. Small fits run with one BLAS thread: on tiny matrices
    thread hand-offs cost far more than the arithmetic (tens of times more on a busy machine).
    """
    if len(np.unique(y)) < 2:
        return None
    model = LogisticRegression(random_state=0, **params)
    threads = 1 if X.size < SMALL_FIT else None
    with warnings.catch_warnings(), threadpool_limits(limits=threads, user_api="blas"):
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, y, sample_weight=sample_weight)
    return model
