"""Metrics from confusion matrices, and seeded bootstrap intervals over test rows.

Every metric here is a function of the confusion matrix alone, so a bootstrap resample only has
to count, for each resample, how many times each (truth, prediction) cell was drawn. Resampled
row indices are shared by all seeds of a multi-seed scorer, so per-seed predictions are
resampled jointly, as a row-by-row bootstrap would.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

# A metric maps a stack of confusion matrices (..., C, C) (rows: truth, columns: prediction)
# to values (...,).
Metric = Callable[[np.ndarray], np.ndarray]


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts (C, C) with rows = true class, columns = predicted class."""
    cells = np.asarray(y_true, dtype=np.int64) * n_classes + np.asarray(y_pred, dtype=np.int64)
    return np.bincount(cells, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, 0 where the denominator is 0 (scikit-learn's zero_division)."""
    numerator = np.asarray(numerator, dtype=np.float64)
    denominator = np.asarray(denominator, dtype=np.float64)
    out = np.zeros(np.broadcast(numerator, denominator).shape)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def binary_f1(cm: np.ndarray) -> np.ndarray:
    """F1 of class 1: 2 tp / (2 tp + fp + fn)."""
    tp, fp, fn = cm[..., 1, 1], cm[..., 0, 1], cm[..., 1, 0]
    return _ratio(2 * tp, 2 * tp + fp + fn)


def macro_f1(cm: np.ndarray) -> np.ndarray:
    """Unweighted mean over classes of per-class F1 (a class absent from both truth and
    predictions counts as 0, as scikit-learn does when it is listed in ``labels``)."""
    tp = np.diagonal(cm, axis1=-2, axis2=-1)
    fp = cm.sum(axis=-2) - tp
    fn = cm.sum(axis=-1) - tp
    return _ratio(2 * tp, 2 * tp + fp + fn).mean(axis=-1)


def accuracy(cm: np.ndarray) -> np.ndarray:
    return _ratio(np.trace(cm, axis1=-2, axis2=-1), cm.sum(axis=(-2, -1)))


def precision_recall(cm: np.ndarray) -> tuple[float, float]:
    """Precision and recall of class 1 of one binary confusion matrix."""
    tp, fp, fn = cm[1, 1], cm[0, 1], cm[1, 0]
    return float(_ratio(tp, tp + fp)), float(_ratio(tp, tp + fn))


METRICS: dict[str, Metric] = {"f1": binary_f1, "macro_f1": macro_f1, "accuracy": accuracy}


@dataclass(frozen=True)
class Interval:
    low: float
    high: float


def bootstrap_confusions(
    y_true: np.ndarray,
    y_preds: np.ndarray,
    n_classes: int,
    *,
    n_resamples: int,
    seed: int,
    block: int = 64,
) -> np.ndarray:
    """Confusion matrices of ``n_resamples`` test sets drawn with replacement.

    ``y_preds`` is (S, n): the predictions of S models (seeds) on the same n test rows.
    Returns (S, n_resamples, C, C). Resample ``b`` uses the row indices
    ``default_rng(seed).integers(0, n, size=(n_resamples, n))[b]``, drawn in blocks of
    ``block`` resamples so memory stays O(block x n).
    """
    y_true = np.asarray(y_true, dtype=np.int64)
    y_preds = np.atleast_2d(np.asarray(y_preds, dtype=np.int64))
    n_seeds, n = y_preds.shape
    cells_per_matrix = n_classes * n_classes
    out = np.zeros((n_seeds, n_resamples, cells_per_matrix), dtype=np.int64)
    if n == 0:
        return out.reshape(n_seeds, n_resamples, n_classes, n_classes)
    cells = y_true[None, :] * n_classes + y_preds  # (S, n)
    rng = np.random.default_rng(seed)
    for start in range(0, n_resamples, block):
        stop = min(start + block, n_resamples)
        rows = rng.integers(0, n, size=(stop - start, n))
        offsets = np.arange(stop - start)[:, None] * cells_per_matrix
        for s in range(n_seeds):
            drawn = (cells[s][rows] + offsets).ravel()
            counts = np.bincount(drawn, minlength=(stop - start) * cells_per_matrix)
            out[s, start:stop] = counts.reshape(stop - start, cells_per_matrix)
    return out.reshape(n_seeds, n_resamples, n_classes, n_classes)


def percentile_interval(samples: np.ndarray, *, confidence: float = 0.95) -> Interval:
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(samples, [tail, 1.0 - tail])
    return Interval(float(low), float(high))
