"""Orders from out-of-fold model confidence: cross-validated loss and confident learning."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from dataperf.algorithms._linear import fit_logistic
from dataperf.algorithms._params import _Constraint, _Float, _Int, _Seed
from dataperf.algorithms.cleaning.base import Cleaner, _proba1
from dataperf.algorithms.cleaning.task import CleaningTask

__all__ = ["ConfidentLearningCleaner", "LossCleaner"]


def _oof_proba1(
    X: np.ndarray, y: np.ndarray, n_folds: int, C: float, rng: np.random.Generator
) -> np.ndarray:
    """Out-of-fold probability of class 1 from ``LogisticRegression`` on stratified folds.

    A fold whose training part holds one class (or nothing) predicts that part's smoothed class
    frequency. With ``n_folds == 1`` (or a single row) the model is fitted in-sample.
    """
    n = len(y)
    n_folds = min(n_folds, n)
    if n_folds <= 1:
        return _proba1(fit_logistic(X, y, C=C), X, (y.sum() + 1.0) / (n + 2.0))
    fold = np.empty(n, dtype=np.int64)
    offset = 0
    for c in (0, 1):  # stratified folds
        members = rng.permutation(np.flatnonzero(y == c))
        fold[members] = (offset + np.arange(len(members))) % n_folds
        offset += len(members)
    out = np.empty(n, dtype=np.float64)
    for f in range(n_folds):
        train, test = fold != f, fold == f
        if not test.any():
            continue
        prior = (y[train].sum() + 1.0) / (train.sum() + 2.0)
        out[test] = _proba1(fit_logistic(X[train], y[train], C=C), X[test], prior)
    return out


def _own_proba(p1: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Probability of each row's own label."""
    return np.where(y == 1, p1, 1.0 - p1)


class _OutOfFoldCleaner(Cleaner):
    """Base class of the cleaners that judge rows by out-of-fold ``LogisticRegression(C=C)``
    probabilities on ``n_folds`` stratified folds (see ``_oof_proba1``)."""

    def __init__(self, n_folds: int = 5, C: float = 1.0, random_state: int | None = 0) -> None:
        self.n_folds = n_folds
        self.C = C
        self.random_state = random_state


class LossCleaner(_OutOfFoldCleaner):
    """Cross-validated loss: rows whose out-of-fold probability of their own label is lowest.

    A ``LogisticRegression(C=C)`` is fitted on ``n_folds - 1`` stratified folds of the noisy
    training set and predicts the held-out fold; a row's value is the predicted probability of
    its given label (so the highest log-loss comes first). ``n_folds=1`` fits in-sample. For
    two classes the margin (own-label probability minus the other's, 2p - 1) gives the same
    order, so it is not a separate method. The validation set is not used.

    Cost: ``n_folds`` logistic-regression fits on N rows; O(N) memory besides the fits.
    """

    _constraints: ClassVar[dict[str, _Constraint]] = {
        "n_folds": _Int(1),
        "C": _Float(0.0, low_open=True),
        "random_state": _Seed(),
    }

    def _values(self, task: CleaningTask, rng: np.random.Generator) -> np.ndarray:
        p1 = _oof_proba1(task.x_train, task.noisy_labels, self.n_folds, self.C, rng)
        return _own_proba(p1, task.noisy_labels)


class ConfidentLearningCleaner(_OutOfFoldCleaner):
    """Confident learning: off-diagonal rows of the confident joint first, by self-confidence.

    Follows Northcutt et al. (2021). Out-of-fold probabilities come from ``LogisticRegression``
    as in ``loss``. Class j's threshold t_j is the mean probability of class j over the rows
    labelled j. A row is confidently of class j when p_j >= t_j (the most probable such class
    when several are); it enters the confident joint at (given label, j). Rows off its
    diagonal (confidently of another class than their label) come first, ordered by increasing
    self-confidence (probability of the given label), then all others by self-confidence.

    Cost: as ``loss`` (``n_folds`` fits) plus O(N).
    """

    _constraints: ClassVar[dict[str, _Constraint]] = {
        "n_folds": _Int(2),
        "C": _Float(0.0, low_open=True),
        "random_state": _Seed(),
    }

    def _values(self, task: CleaningTask, rng: np.random.Generator) -> np.ndarray:
        y = task.noisy_labels
        p1 = _oof_proba1(task.x_train, y, self.n_folds, self.C, rng)
        proba = np.stack([1.0 - p1, p1], axis=1)
        thresholds = np.array(
            [proba[y == c, c].mean() if np.any(y == c) else np.inf for c in (0, 1)]
        )
        above = proba >= thresholds
        confident = np.argmax(np.where(above, proba, -np.inf), axis=1)
        flagged = above.any(axis=1) & (confident != y)
        self_confidence = _own_proba(p1, y)
        # Flagged rows first: self-confidence is in [0, 1], flagged rows are shifted below.
        return self_confidence - 2.0 * flagged
