"""Development helpers: synthetic selection tasks and a local stand-in for the frozen scorer."""

from __future__ import annotations

import math

import numpy as np
from sklearn.linear_model import LogisticRegression

from dataperf.algorithms._linear import fit_logistic
from dataperf.algorithms._neighbors import BLOCK_ROWS
from dataperf.algorithms.selection._helpers import _f1
from dataperf.algorithms.selection.task import Selection, SelectionTask

__all__ = ["make_synthetic_task", "score_selection"]


def score_selection(
    selection: Selection, task: SelectionTask, X_test: np.ndarray, y_test: np.ndarray
) -> float:
    """Train ``LogisticRegression(random_state=0)`` on the selection (labels as given) and
    return F1 on a labelled test set (binary F1 of class 1 for C = 2, macro F1 otherwise)."""
    X = np.asarray(task.embeddings[np.sort(selection.indices)], dtype=np.float64)
    order = np.argsort(selection.indices, kind="stable")
    model = fit_logistic(X, selection.labels[order])
    if model is None:
        pred = np.full(len(y_test), selection.labels[0] if len(selection.labels) else 0)
    else:
        pred = model.predict(np.asarray(X_test, dtype=np.float64))
    return _f1(np.asarray(y_test), pred, task.n_classes)


def make_synthetic_task(
    n_items: int = 20_000,
    dim: int = 256,
    *,
    positive_rate: float = 0.1,
    test_positive_rate: float = 0.25,
    n_examples: int = 20,
    budget: int = 1000,
    n_test: int = 2000,
    random_state: int = 0,
    dtype: type = np.float16,
) -> tuple[SelectionTask, np.ndarray, np.ndarray]:
    """A binary vision-like task with a rare positive class, plus a labelled test set.

    Items come from a Gaussian mixture in a 16-dimensional latent space (12 negative clusters
    and 3 positive ones, each next to a negative cluster), embedded in ``dim`` dimensions with
    isotropic noise. The annotator, like a real machine labeller, is a logistic regression on a
    weaker view of the items (8 of the latent dimensions, with noise) trained on 1,500 other
    items of which 10% carry a random label; its confidence is its predicted probability, so it
    is roughly calibrated but makes systematic, feature-dependent errors. ``n_examples`` true
    positives are known. The test set has ``test_positive_rate`` positives. Returns
    ``(task, X_test, y_test)``; the pool is generated block by block so that large pools fit.
    """
    rng = np.random.default_rng(random_state)
    latent, n_neg, n_pos, view = 16, 12, 3, 8
    neg_centres = rng.normal(0.0, 1.6, size=(n_neg, latent))
    offsets = rng.normal(0.0, 1.0, size=(n_pos, latent))
    offsets *= 5.0 / np.linalg.norm(offsets, axis=1, keepdims=True)
    centres = np.concatenate([neg_centres, neg_centres[:n_pos] + offsets])
    mixing = rng.normal(0.0, 1.0 / math.sqrt(latent), size=(latent, dim))

    def draw(n: int, rate: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        y = (rng.random(n) < rate).astype(np.int64)
        cluster = np.where(y == 1, n_neg + rng.integers(n_pos, size=n), rng.integers(n_neg, size=n))
        z = centres[cluster] + rng.normal(0.0, 1.0, size=(n, latent))
        x: np.ndarray = (z @ mixing + rng.normal(0.0, 0.35, size=(n, dim))).astype(dtype)
        return x, y, z[:, :view] + rng.normal(0.0, 1.5, size=(n, view))

    _, y_ann, view_ann = draw(1500, positive_rate)
    flip = rng.random(len(y_ann)) < 0.1
    y_ann[flip] = rng.integers(2, size=int(flip.sum()))
    annotator = LogisticRegression(max_iter=1000).fit(view_ann, y_ann)

    X: np.ndarray = np.empty((n_items, dim), dtype=dtype)
    y_pool = np.empty(n_items, dtype=np.int64)
    confidence = np.empty(n_items, dtype=np.float32)
    for lo in range(0, n_items, BLOCK_ROWS):
        hi = min(lo + BLOCK_ROWS, n_items)
        X[lo:hi], y_pool[lo:hi], weak_view = draw(hi - lo, positive_rate)
        confidence[lo:hi] = annotator.predict_proba(weak_view)[:, 1]
    positives = np.flatnonzero(y_pool == 1)
    examples = rng.choice(positives, size=min(n_examples, len(positives)), replace=False)
    task = SelectionTask(
        embeddings=X,
        weak_proba=np.stack([1.0 - confidence, confidence], axis=1).astype(np.float32),
        examples=np.sort(examples).astype(np.int64),
        example_labels=np.ones(len(examples), dtype=np.int64),
        budget=budget,
    )
    X_test, y_test, _ = draw(n_test, test_positive_rate)
    return task, X_test.astype(np.float32), y_test
