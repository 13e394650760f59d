"""Participant-side data-cleaning ("debugging") algorithms.

In a cleaning challenge a binary training set of N embedded rows carries noisy labels (a share
of them flipped). Participants return an ordering of all N row indices, most suspicious first;
the scorer fixes labels in that order and retrains the frozen linear model, and fewer fixes to
reach 95% of the fully-fixed accuracy is better. Algorithms see a :class:`CleaningTask`
(training embeddings, their noisy labels and a small clean validation set) and return a
permutation of ``range(N)``.

Every algorithm follows the scikit-learn contract: the constructor only stores hyper-parameters,
:meth:`Cleaner.rank` validates them, turns ``random_state`` into a
:class:`numpy.random.Generator` and does the work; the result is deterministic for a given
``random_state``. Each cleaner first computes a per-row value (:meth:`Cleaner.values`, low =
suspicious) and ranks by increasing value, ties broken at random. Nothing here builds a dense
N x N matrix; costs are stated in each class docstring (N training rows, M validation rows,
d dimensions).

:data:`CLEANERS` maps command-line names to the classes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import scipy.linalg
from scipy.special import expit
from sklearn.base import BaseEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier
from threadpoolctl import threadpool_limits

from dataperf.algorithms._linear import fit_logistic
from dataperf.algorithms._neighbors import BLOCK_ROWS
from dataperf.algorithms._params import _Choice, _Constraint, _Float, _Int, _Seed, _Validated
from dataperf.algorithms._threads import one_thread

__all__ = [
    "CLEANERS",
    "Cleaner",
    "CleaningTask",
    "ConfidentLearningCleaner",
    "DataOOBCleaner",
    "InfluenceCleaner",
    "KNNShapleyCleaner",
    "LossCleaner",
    "RandomCleaner",
    "TMCShapleyCleaner",
    "knn_shapley",
]


# --------------------------------------------------------------------------------------------
# Data


def _labels(name: str, labels: Any, n_rows: int, rows: str) -> np.ndarray:
    array = np.asarray(labels)
    if array.shape != (n_rows,):
        raise ValueError(
            f"{name} must be a 1-D array with one label per {rows} row ({n_rows}); got shape"
            f" {array.shape}."
        )
    if array.dtype.kind not in "biuf" or (array.size and not np.all(np.isin(array, (0, 1)))):
        raise ValueError(f"{name} must hold binary labels 0 or 1.")
    return array.astype(np.int64)


@dataclass(frozen=True)
class CleaningTask:
    """Public data of one cleaning task, as algorithms see it.

    ``x_train`` is the (N, d) training set (float32; float16 and float64 are accepted) and
    ``noisy_labels`` its (N,) int64 labels in {0, 1}, some of them wrong. ``x_val`` (M, d) and
    ``y_val`` (M,) are a small clean validation set. N and M must be at least 1.
    """

    x_train: np.ndarray
    noisy_labels: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray

    def __post_init__(self) -> None:
        x, x_val = self.x_train, self.x_val
        for name, array in (("x_train", x), ("x_val", x_val)):
            if not isinstance(array, np.ndarray) or array.ndim != 2:
                shape = getattr(array, "shape", None)
                raise ValueError(f"{name} must be a 2-D numpy array; got shape {shape}.")
            if array.dtype.kind != "f":
                raise ValueError(f"{name} must be a float array; got dtype {array.dtype}.")
        if x.shape[0] < 1 or x.shape[1] < 1:
            raise ValueError(f"x_train must have at least one row and column; got {x.shape}.")
        if x_val.shape[0] < 1:
            raise ValueError("x_val must have at least one row.")
        if x_val.shape[1] != x.shape[1]:
            raise ValueError(
                f"x_val must have the same number of columns as x_train ({x.shape[1]}); got"
                f" {x_val.shape[1]}."
            )
        noisy = _labels("noisy_labels", self.noisy_labels, x.shape[0], "x_train")
        y_val = _labels("y_val", self.y_val, x_val.shape[0], "x_val")
        object.__setattr__(self, "noisy_labels", noisy)
        object.__setattr__(self, "y_val", y_val)

    @property
    def n_train(self) -> int:
        """Number of training rows N."""
        return int(self.x_train.shape[0])

    @property
    def n_val(self) -> int:
        """Number of validation rows M."""
        return int(self.x_val.shape[0])


# --------------------------------------------------------------------------------------------
# Base class


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


# --------------------------------------------------------------------------------------------
# Shared helpers

#: Distance entries (validation rows x training rows) computed at once by KNN-Shapley.
_KNN_BLOCK_ENTRIES = 1 << 23


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


# --------------------------------------------------------------------------------------------
# KNN-Shapley


def _sqnorms(X: np.ndarray) -> np.ndarray:
    out = np.empty(len(X), dtype=np.result_type(X.dtype, np.float32))
    for lo in range(0, len(X), BLOCK_ROWS):
        block = _float(X[lo : lo + BLOCK_ROWS])
        out[lo : lo + len(block)] = np.einsum("ij,ij->i", block, block)
    return out


def knn_shapley(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    n_neighbors: int = 10,
    chunk_size: int | None = None,
) -> np.ndarray:
    """Exact Shapley value of every training row for the K-NN utility (Jia et al., 2019).

    For one validation point (x, y) the utility of a training subset S is
    ``U(S) = (1/K) * #{the min(K, |S|) rows of S nearest to x whose label is y}``
    (Euclidean distance; equal distances are ordered by row index). Sorting the training rows by
    distance, alpha_1 nearest, the Shapley values follow the closed form
    ``s_N = 1[y_N = y] * min(K, N) / (K N)`` and
    ``s_i = s_{i+1} + (1[y_i = y] - 1[y_{i+1} = y]) / K * min(K, i) / i``.
    The result is the mean over validation points, float64 of shape (N,).

    Distances are computed for ``chunk_size`` validation points at a time (None: as many as
    keep the block near 8M entries), so memory is O(chunk_size * N + N) and time
    O(M N (d + log N)); no N x N matrix is built.
    """
    n, m = len(x_train), len(x_val)
    k = int(n_neighbors)
    if k < 1:
        raise ValueError(f"n_neighbors must be >= 1; got {n_neighbors!r}.")
    if chunk_size is None:
        chunk_size = max(1, _KNN_BLOCK_ENTRIES // max(n, 1))
    elif chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1 or None; got {chunk_size!r}.")
    if len(y_train) != n or len(y_val) != m:
        raise ValueError("y_train and y_val must have one label per row of x_train and x_val.")
    y_train = np.asarray(y_train)
    y_val = np.asarray(y_val)
    values = np.zeros(n, dtype=np.float64)
    if n == 0 or m == 0:
        return values
    sq = _sqnorms(x_train)
    i = np.arange(1, n, dtype=np.float64)
    coef = np.minimum(k, i) / (k * i)  # weights of the N - 1 differences
    last = min(k, n) / (k * n)
    for lo in range(0, m, chunk_size):
        v = _float(x_val[lo : lo + chunk_size]).astype(sq.dtype, copy=False)
        # Squared distance up to a per-column constant: |x|^2 - 2 x.v, as (chunk, N).
        block = np.empty((len(v), n), dtype=sq.dtype)
        for row_lo in range(0, n, BLOCK_ROWS):
            rows = _float(x_train[row_lo : row_lo + BLOCK_ROWS]).astype(sq.dtype, copy=False)
            block[:, row_lo : row_lo + len(rows)] = v @ rows.T
        block *= -2.0
        block += sq
        for j in range(len(v)):
            order = np.argsort(block[j], kind="stable")
            match = (y_train[order] == y_val[lo + j]).astype(np.float64)
            s = np.empty(n, dtype=np.float64)
            s[-1] = match[-1] * last
            if n > 1:
                diff = (match[:-1] - match[1:]) * coef
                s[:-1] = s[-1] + np.cumsum(diff[::-1])[::-1]
            values[order] += s
        del block
    values /= m
    return values


# --------------------------------------------------------------------------------------------
# Algorithms


class RandomCleaner(Cleaner):
    """Random order: a seeded uniform permutation of the training rows (the baseline).

    Cost: O(N).
    """

    _constraints: ClassVar[dict[str, _Constraint]] = {"random_state": _Seed()}

    def __init__(self, random_state: int | None = 0) -> None:
        self.random_state = random_state

    def _values(self, task: CleaningTask, rng: np.random.Generator) -> np.ndarray:
        return rng.random(task.n_train)


class LossCleaner(Cleaner):
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

    def __init__(self, n_folds: int = 5, C: float = 1.0, random_state: int | None = 0) -> None:
        self.n_folds = n_folds
        self.C = C
        self.random_state = random_state

    def _values(self, task: CleaningTask, rng: np.random.Generator) -> np.ndarray:
        p1 = _oof_proba1(task.x_train, task.noisy_labels, self.n_folds, self.C, rng)
        return _own_proba(p1, task.noisy_labels)


class ConfidentLearningCleaner(Cleaner):
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

    def __init__(self, n_folds: int = 5, C: float = 1.0, random_state: int | None = 0) -> None:
        self.n_folds = n_folds
        self.C = C
        self.random_state = random_state

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


class KNNShapleyCleaner(Cleaner):
    """Exact KNN-Shapley: the Shapley value of each row for a K-NN classifier on validation.

    Jia et al. (2019): for every validation point the training rows are sorted by distance and
    the closed-form recursion gives each row's exact Shapley value for the K-NN utility (the
    share of the K nearest rows whose label is the validation point's label); values are
    averaged over validation points and ranked ascending (most harmful first). See
    :func:`knn_shapley`.

    Cost: O(M N (d + log N)) time; validation points are handled ``chunk_size`` at a time (None:
    automatic, blocks of about 8M distances), so memory is O(chunk_size * N) with no N x N
    matrix; 1,000,000 training rows take a few hundred MiB.
    """

    _constraints: ClassVar[dict[str, _Constraint]] = {
        "n_neighbors": _Int(1),
        "chunk_size": _Int(1, none_ok=True),
        "random_state": _Seed(),
    }

    def __init__(
        self, n_neighbors: int = 10, chunk_size: int | None = None, random_state: int | None = 0
    ) -> None:
        self.n_neighbors = n_neighbors
        self.chunk_size = chunk_size
        self.random_state = random_state

    def _values(self, task: CleaningTask, rng: np.random.Generator) -> np.ndarray:
        return knn_shapley(
            task.x_train,
            task.noisy_labels,
            task.x_val,
            task.y_val,
            n_neighbors=self.n_neighbors,
            chunk_size=self.chunk_size,
        )


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


CLEANERS: dict[str, type[Cleaner]] = {
    "random": RandomCleaner,
    "loss": LossCleaner,
    "confident-learning": ConfidentLearningCleaner,
    "knn-shapley": KNNShapleyCleaner,
    "data-oob": DataOOBCleaner,
    "influence": InfluenceCleaner,
    "tmc-shapley": TMCShapleyCleaner,
}
