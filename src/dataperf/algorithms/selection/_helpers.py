"""The array steps selectors share: weak labels, class quotas, rankings, rows in float32."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score

from dataperf.algorithms._neighbors import BLOCK_ROWS
from dataperf.algorithms.selection.task import SelectionTask


def _dedupe(indices: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Drop repeated rows, keeping the first occurrence (and its label) in order."""
    indices = np.asarray(indices, dtype=np.int64).reshape(-1)
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    _, first = np.unique(indices, return_index=True)
    keep = np.sort(first)
    return indices[keep], labels[keep]


def _argmax_labels(proba: np.ndarray) -> np.ndarray:
    """The annotator's most probable class for every row (computed in blocks)."""
    out = np.empty(len(proba), dtype=np.int64)
    for lo in range(0, len(proba), BLOCK_ROWS):
        out[lo : lo + BLOCK_ROWS] = np.argmax(proba[lo : lo + BLOCK_ROWS], axis=1)
    return out


def _prior_matched(proba: np.ndarray, priors: np.ndarray | None = None) -> np.ndarray:
    """Class labels whose class frequencies match ``priors`` (default: the mean probability of
    each class, which a calibrated annotator gets right even when its argmax does not).

    Two classes: the ``round(prior_1 * N)`` rows most likely to be class 1 get class 1.
    More classes: argmax of log-probabilities plus per-class offsets, adjusted until the class
    frequencies match. Rows with equal scores are taken in row order. O(N C) memory.
    """
    n_rows, n_classes = proba.shape
    if priors is None:
        priors = np.asarray(proba.mean(axis=0, dtype=np.float64))
    priors = np.asarray(priors, dtype=np.float64) / np.sum(priors)
    if n_rows == 0:
        return np.zeros(0, dtype=np.int64)
    if n_classes == 2:
        labels = np.zeros(n_rows, dtype=np.int64)
        n_pos = round(float(priors[1]) * n_rows)
        margin = np.asarray(proba[:, 1], dtype=np.float32) - np.asarray(proba[:, 0], np.float32)
        labels[np.argsort(-margin, kind="stable")[:n_pos]] = 1
        return labels
    log_p = np.log(np.maximum(np.asarray(proba, dtype=np.float32), 1e-12))
    target = np.log(np.maximum(priors, 1.0 / n_rows))
    offset = np.zeros(n_classes, dtype=np.float32)
    labels = np.argmax(log_p, axis=1)
    for _ in range(200):
        frac = np.bincount(labels, minlength=n_classes) / n_rows
        if np.max(np.abs(frac - priors)) * n_rows <= max(1.0, 1e-3 * n_rows):
            break
        offset += 0.5 * (target - np.log(np.maximum(frac, 1.0 / n_rows))).astype(np.float32)
        labels = np.argmax(log_p + offset, axis=1)
    return labels.astype(np.int64)


def _weak(task: SelectionTask) -> tuple[np.ndarray, np.ndarray]:
    """Weak labels, matched to the annotator's own class frequencies (see
    :func:`_prior_matched`), and the annotator's probability of each row's weak label."""
    labels = _prior_matched(task.weak_proba)
    confidence = np.take_along_axis(task.weak_proba, labels[:, None], axis=1)[:, 0]
    return labels, confidence.astype(np.float32)


def _unique_examples(task: SelectionTask) -> tuple[np.ndarray, np.ndarray]:
    """Known examples without repeats (first label wins)."""
    _, first = np.unique(task.examples, return_index=True)
    first = np.sort(first)
    return task.examples[first], task.example_labels[first]


def _allocate(total: int, weights: np.ndarray, capacity: np.ndarray) -> np.ndarray:
    """Split ``total`` into integer shares proportional to ``weights``, each share capped by
    ``capacity``; what a capped class cannot take goes to the others (largest remainders)."""
    weights = np.asarray(weights, dtype=np.float64)
    capacity = np.asarray(capacity, dtype=np.int64)
    quotas = np.zeros(len(weights), dtype=np.int64)
    total = int(min(total, capacity[weights > 0].sum()))
    while True:
        left = total - int(quotas.sum())
        free = (quotas < capacity) & (weights > 0)
        if left <= 0 or not free.any():
            return quotas
        share = np.where(free, weights, 0.0)
        ideal = left * share / share.sum()
        add = np.floor(ideal).astype(np.int64)
        order = np.argsort(-(ideal - add), kind="stable")
        for c in order[: left - int(add.sum())]:
            add[c] += 1
        add = np.minimum(add, capacity - quotas)
        quotas += add


def _class_weights(mix: str | Sequence[float] | np.ndarray, task: SelectionTask) -> np.ndarray:
    """Per-class target proportions from a ``class_mix`` parameter."""
    if isinstance(mix, str):
        if mix == "balanced":
            return np.ones(task.n_classes)
        priors = np.asarray(task.weak_proba.mean(axis=0, dtype=np.float64))
        return np.sqrt(priors) if mix == "sqrt" else priors
    return np.asarray(mix, dtype=np.float64)


def _ranked(candidates: np.ndarray, score: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``candidates`` sorted by decreasing ``score``, ties broken at random."""
    tie = rng.random(len(candidates))
    return candidates[np.lexsort((tie, -score))]


def _ranked_by_class(
    task: SelectionTask,
    weak: np.ndarray,
    ex: np.ndarray,
    ex_labels: np.ndarray,
    rng: np.random.Generator,
) -> list[np.ndarray]:
    """For each class: its known examples ``ex`` (labelled ``ex_labels``), then the other rows
    weakly labelled as that class by decreasing confidence (ties broken at random)."""
    is_example = np.zeros(task.n_items, dtype=bool)
    is_example[ex] = True
    ranked = []
    for c in range(task.n_classes):
        members = np.flatnonzero((weak == c) & ~is_example)
        ordered = _ranked(members, task.weak_proba[members, c], rng)
        ranked.append(np.concatenate([ex[ex_labels == c], ordered]))
    return ranked


def _rows(X: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """Float32 copy of the given rows (gathered in sorted order, returned in the given order)."""
    indices = np.asarray(indices, dtype=np.int64)
    order = np.argsort(indices, kind="stable")
    out = np.empty((len(indices), X.shape[1]), dtype=np.float32)
    out[order] = X[indices[order]]
    return out


def _proba(model: LogisticRegression, X: np.ndarray, n_classes: int) -> np.ndarray:
    """(n, C) class probabilities, computed over float32 blocks; columns for classes the model
    never saw are zero."""
    out = np.zeros((len(X), n_classes), dtype=np.float32)
    cols = model.classes_.astype(np.int64)
    for lo in range(0, len(X), BLOCK_ROWS):
        block = np.asarray(X[lo : lo + BLOCK_ROWS], dtype=np.float32)
        out[lo : lo + len(block), cols] = model.predict_proba(block)
    return out


def _f1(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> float:
    """Binary F1 of class 1 for two classes, macro F1 otherwise."""
    if n_classes == 2:
        return float(f1_score(y_true, y_pred, pos_label=1, zero_division=0.0))
    return float(
        f1_score(y_true, y_pred, labels=np.arange(n_classes), average="macro", zero_division=0.0)
    )


def _no_examples() -> tuple[np.ndarray, np.ndarray]:
    return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
