"""Participant-side training-data selection algorithms.

In a selection challenge the model is frozen and participants choose its training data: from a
pool of N embedded, unlabelled items they pick at most ``budget`` rows and give each a label.
Algorithms see a :class:`SelectionTask` (pool embeddings, a few known examples, and weak machine
labels with per-class confidence from an imperfect annotator) and return a :class:`Selection`.

Every algorithm follows the scikit-learn contract: the constructor only stores hyper-parameters,
:meth:`select` validates them, turns ``random_state`` into a :class:`numpy.random.Generator`
and does the work; the result is deterministic for a given ``random_state``. Nothing here builds
a dense N x N matrix: whole-pool passes run over float32 blocks, and the expensive steps (k-NN
graphs, farthest-point sampling, model fits) run on candidate subsets whose size caps are stated
in each class docstring, so a pool of 1,000,000 x 256 float16 rows fits in a few GiB.

:data:`dataperf.algorithms.selectors.SELECTORS` maps command-line names to the classes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import product
from numbers import Integral
from typing import Any, ClassVar

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score

from dataperf.algorithms._linear import fit_logistic
from dataperf.algorithms._neighbors import (
    BLOCK_ROWS,
    facility_location,
    farthest_point_sampling,
    knn_similarity_graph,
)
from dataperf.algorithms._params import (
    _Constraint,
    _Float,
    _Int,
    _is_real,
    _Seed,
    _Validated,
)
from dataperf.algorithms._threads import one_thread

__all__ = [
    "ConfidenceSelector",
    "FPSCVSelector",
    "FacilityLocationSelector",
    "PseudoLabelSelector",
    "RandomSelector",
    "Selection",
    "SelectionTask",
    "Selector",
    "UncertaintySelector",
    "make_synthetic_task",
    "score_selection",
]


# --------------------------------------------------------------------------------------------
# Data


@dataclass(frozen=True)
class SelectionTask:
    """Public data of one selection task, as algorithms see it.

    ``embeddings`` is the (N, d) pool (float16 or float32), row i being pool item i.
    ``weak_proba`` is the (N, C) float32 annotator probability of each class (rows sum to 1; for
    vision C = 2 and column 1 is the confidence that the item is positive). ``examples`` are pool
    row indices of known examples and ``example_labels`` their class indices. At most ``budget``
    rows may be selected.
    """

    embeddings: np.ndarray
    weak_proba: np.ndarray
    examples: np.ndarray
    example_labels: np.ndarray
    budget: int

    def __post_init__(self) -> None:
        emb, proba = self.embeddings, self.weak_proba
        if emb.ndim != 2:
            raise ValueError(f"embeddings must be a 2-D array; got shape {emb.shape}.")
        if proba.ndim != 2 or proba.shape[0] != emb.shape[0] or proba.shape[1] < 2:
            raise ValueError(
                f"weak_proba must have shape (N, C) with N = {emb.shape[0]} pool rows and C >= 2;"
                f" got {proba.shape}."
            )
        examples = np.asarray(self.examples, dtype=np.int64).reshape(-1)
        labels = np.asarray(self.example_labels, dtype=np.int64).reshape(-1)
        if examples.shape != labels.shape:
            raise ValueError(
                f"examples and example_labels must have the same length; got {examples.size}"
                f" and {labels.size}."
            )
        if examples.size and (examples.min() < 0 or examples.max() >= emb.shape[0]):
            raise ValueError(f"examples must be pool row indices in [0, {emb.shape[0]}).")
        if labels.size and (labels.min() < 0 or labels.max() >= proba.shape[1]):
            raise ValueError(f"example_labels must be class indices in [0, {proba.shape[1]}).")
        if isinstance(self.budget, bool) or not isinstance(self.budget, Integral):
            raise ValueError(f"budget must be an int >= 0; got {self.budget!r}.")
        if self.budget < 0:
            raise ValueError(f"budget must be an int >= 0; got {self.budget!r}.")
        object.__setattr__(self, "examples", examples)
        object.__setattr__(self, "example_labels", labels)
        object.__setattr__(self, "budget", int(self.budget))

    @property
    def n_classes(self) -> int:
        """Number of classes C."""
        return int(self.weak_proba.shape[1])

    @property
    def n_items(self) -> int:
        """Number of pool rows N."""
        return int(self.embeddings.shape[0])


@dataclass(frozen=True)
class Selection:
    """Chosen pool rows and the label given to each: unique int64 ``indices`` and int64
    ``labels`` (class indices), both of length K <= budget."""

    indices: np.ndarray
    labels: np.ndarray


# --------------------------------------------------------------------------------------------
# Parameter validation


class _ClassMix(_Constraint):
    description = (
        "'balanced', 'prior', 'sqrt' or a sequence of non-negative per-class weights with a"
        " positive sum"
    )

    def accepts(self, value: Any) -> bool:
        if isinstance(value, str):
            return value in ("balanced", "prior", "sqrt")
        if not isinstance(value, Sequence | np.ndarray):
            return False
        weights = list(value)
        return (
            len(weights) >= 1 and all(_is_real(w) and w >= 0 for w in weights) and sum(weights) > 0
        )


class Selector(_Validated, BaseEstimator):
    """Base class: validates hyper-parameters, seeds a Generator and calls ``_select``."""

    random_state: int | np.random.Generator | None

    @one_thread
    def select(self, task: SelectionTask) -> Selection:
        """Choose at most ``task.budget`` labelled pool rows for ``task``."""
        self._validate_params()
        rng = np.random.default_rng(self.random_state)
        indices, labels = self._select(task, rng)
        return _finish(indices, labels, task)

    def _select(
        self, task: SelectionTask, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError


# --------------------------------------------------------------------------------------------
# Shared helpers


def _dedupe(indices: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Drop repeated rows, keeping the first occurrence (and its label) in order."""
    indices = np.asarray(indices, dtype=np.int64).reshape(-1)
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    _, first = np.unique(indices, return_index=True)
    keep = np.sort(first)
    return indices[keep], labels[keep]


def _finish(indices: np.ndarray, labels: np.ndarray, task: SelectionTask) -> Selection:
    """Drop repeated rows (first one wins) and cut to the budget."""
    indices, labels = _dedupe(indices, labels)
    return Selection(indices=indices[: task.budget].copy(), labels=labels[: task.budget].copy())


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


def _target_size(size: int | None, task: SelectionTask) -> int:
    """How many rows to choose: ``size`` capped by the budget (``None``: the budget)."""
    return task.budget if size is None else min(size, task.budget)


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


# --------------------------------------------------------------------------------------------
# Algorithms


class RandomSelector(Selector):
    """Class-balanced random: equal shares per weak-label class, drawn uniformly, weak labels.

    Splits ``min(size, budget)`` (``size=None``: the budget) equally across classes (a class
    with too few weakly labelled items gives its remainder to the others) and draws uniformly
    among the items whose weak label (argmax of ``weak_proba``) is that class; each row is
    labelled with its weak label. The default ``size=500`` mirrors the original challenge's
    random baseline. Cost: O(N).
    """

    _constraints: ClassVar[dict[str, _Constraint]] = {
        "size": _Int(1, none_ok=True),
        "random_state": _Seed(),
    }

    def __init__(self, size: int | None = 500, random_state: int | None = 0) -> None:
        self.size = size
        self.random_state = random_state

    def _select(
        self, task: SelectionTask, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        n = _target_size(self.size, task)
        weak = _argmax_labels(task.weak_proba)
        counts = np.bincount(weak, minlength=task.n_classes)
        quotas = _allocate(n, np.ones(task.n_classes), counts)
        picks = [
            rng.choice(np.flatnonzero(weak == c), size=int(q), replace=False)
            for c, q in enumerate(quotas)
        ]
        indices = np.concatenate(picks)
        return indices, weak[indices]


class ConfidenceSelector(Selector):
    """Weak-label confidence filtering: the most confident items of each class plus examples.

    Each class gets a share of ``min(size, budget)`` (``size=None`` means the budget) from
    ``class_mix`` ('balanced': equal shares; 'prior': proportional to the annotator's class
    frequencies, i.e. its mean probabilities; 'sqrt': proportional to their square roots; or
    explicit weights). A class's share is filled first with its known examples (if
    ``include_examples``), then with the items weakly labelled as that class in decreasing
    order of confidence (ties broken at random). Weak labels here and in the selectors below
    are the annotator's classes matched to its own class frequencies (see ``_prior_matched``),
    which keeps classes it is rarely sure of. Cost: O(N log N).
    """

    _constraints: ClassVar[dict[str, _Constraint]] = {
        "size": _Int(1, none_ok=True),
        "class_mix": _ClassMix(),
        "random_state": _Seed(),
    }

    def __init__(
        self,
        size: int | None = None,
        class_mix: str | Sequence[float] = "balanced",
        include_examples: bool = True,
        random_state: int | None = 0,
    ) -> None:
        self.size = size
        self.class_mix = class_mix
        self.include_examples = include_examples
        self.random_state = random_state

    def _select(
        self, task: SelectionTask, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        n = _target_size(self.size, task)
        weights = _checked_mix(self, self.class_mix, task)
        weak, _ = _weak(task)
        ex, ex_labels = _unique_examples(task) if self.include_examples else _no_examples()
        ranked = _ranked_by_class(task, weak, ex, ex_labels, rng)
        quotas = _allocate(n, weights, np.array([len(r) for r in ranked]))
        indices = np.concatenate([r[:q] for r, q in zip(ranked, quotas, strict=True)])
        labels = np.repeat(np.arange(task.n_classes), quotas)
        return indices, labels


class FPSCVSelector(Selector):
    """Farthest-point coverage + nested cross-validation over small per-class subsets (fpscv).

    Generalises the original vision winner to C classes. Candidates of class c are its known
    examples, its ``n_confident`` most confident weakly labelled items, and the points of an
    ``n_fps``-point farthest-point sample of the pool whose weak label is c (for vision, the
    FPS points supply the negatives). The background class (the one the annotator assigns
    most pool items to) gets ``n_background`` training rows per trial, every other class
    ``n_per_class``. For each class ``n_folds`` random subsets of that size are drawn; every
    combination across classes (the nested loops of the original; at most ``max_trials``,
    sampled at random beyond that) trains ``LogisticRegression(random_state=0)`` and is scored
    on the candidates it did not use (binary F1 of class 1 for C = 2, macro F1 otherwise). The
    best subset is returned, labelled as its candidates are.

    Cost: FPS runs on a uniform subsample of at most ``max_pool`` rows held in float32
    (``max_pool * d * 4`` bytes; O(n_fps * max_pool * d) time); the CV fits at most
    ``max_trials`` (or ``n_folds ** C``) small models and scores them on at most
    ``C * n_confident + n_fps`` candidates plus the examples.
    """

    _constraints: ClassVar[dict[str, _Constraint]] = {
        "n_per_class": _Int(1),
        "n_background": _Int(1),
        "n_fps": _Int(1),
        "n_confident": _Int(0),
        "n_folds": _Int(1),
        "max_trials": _Int(1),
        "max_pool": _Int(1),
        "random_state": _Seed(),
    }

    def __init__(
        self,
        n_per_class: int = 5,
        n_background: int = 40,
        n_fps: int = 1000,
        n_confident: int = 200,
        n_folds: int = 10,
        max_trials: int = 100,
        max_pool: int = 100_000,
        random_state: int | None = 0,
    ) -> None:
        self.n_per_class = n_per_class
        self.n_background = n_background
        self.n_fps = n_fps
        self.n_confident = n_confident
        self.n_folds = n_folds
        self.max_trials = max_trials
        self.max_pool = max_pool
        self.random_state = random_state

    def _select(
        self, task: SelectionTask, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        n_classes = task.n_classes
        weak, _ = _weak(task)
        background = int(np.argmax(np.bincount(weak, minlength=n_classes)))
        ex, ex_labels = _unique_examples(task)

        sub = np.sort(
            rng.choice(task.n_items, size=min(self.max_pool, task.n_items), replace=False)
        )
        sub_x = _rows(task.embeddings, sub)
        fps = sub[farthest_point_sampling(sub_x, self.n_fps, start=int(rng.integers(len(sub))))]
        del sub_x

        cand_idx: list[np.ndarray] = [ex]
        cand_lab: list[np.ndarray] = [ex_labels]
        for c in range(n_classes):
            members = np.flatnonzero(weak == c)
            top = _ranked(members, task.weak_proba[members, c], rng)[: self.n_confident]
            cand_idx.append(top)
            cand_lab.append(np.full(len(top), c, dtype=np.int64))
        cand_idx.append(fps)
        cand_lab.append(weak[fps])
        cand, y = _dedupe(np.concatenate(cand_idx), np.concatenate(cand_lab))
        X = _rows(task.embeddings, cand)

        sizes = np.array(
            [self.n_background if c == background else self.n_per_class for c in range(n_classes)]
        )
        per_class = [np.flatnonzero(y == c) for c in range(n_classes)]
        counts = np.array([len(p) for p in per_class])
        sizes = np.minimum(sizes, np.maximum(counts - 1, 0))
        sizes = _allocate(min(task.budget, int(sizes.sum())), sizes, sizes)
        present = [c for c in range(n_classes) if sizes[c] > 0]
        if not present:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        folds = {
            c: [
                rng.choice(per_class[c], size=int(sizes[c]), replace=False)
                for _ in range(self.n_folds)
            ]
            for c in present
        }
        grid: list[tuple[int, ...]]
        if self.n_folds ** len(present) <= self.max_trials:
            grid = list(product(range(self.n_folds), repeat=len(present)))
        else:
            draws = rng.integers(self.n_folds, size=(self.max_trials, len(present)))
            grid = [tuple(int(v) for v in row) for row in draws]

        best_score, best_rows = -1.0, np.zeros(0, dtype=np.int64)
        for combo in grid:
            train = np.concatenate([folds[c][f] for c, f in zip(present, combo, strict=True)])
            held = np.ones(len(y), dtype=bool)
            held[train] = False
            model = fit_logistic(X[train], y[train])
            if model is None or not held.any():
                score = 0.0
            else:
                score = _f1(y[held], model.predict(X[held]), n_classes)
            if score > best_score:
                best_score, best_rows = score, train
        return cand[best_rows], y[best_rows]


class UncertaintySelector(Selector):
    """Uncertainty sampling: grow confident seeds with the items the model is least sure of.

    Starts from the known examples plus the ``n_seed`` most confident weakly labelled items of
    each class (fewer when the seeds would take more than half of a small budget, so that every
    class gets seeds and the rounds get the rest), fits ``LogisticRegression(random_state=0)``
    on the selection, and in ``n_rounds`` rounds adds the candidates with the smallest margin
    between the two most probable classes, in equal numbers per weak class. Candidates are the
    ``trusted_fraction`` most confident items of each weak class (so the added labels, the
    annotator's, are trustworthy), and each added row gets its weak label.

    Cost: candidates are a uniform subsample of at most ``max_candidates`` rows held in float32
    (``max_candidates * d * 4`` bytes); each round is one fit on the selection (at most the
    budget) and one pass over the candidates.
    """

    _constraints: ClassVar[dict[str, _Constraint]] = {
        "size": _Int(1, none_ok=True),
        "n_seed": _Int(0),
        "n_rounds": _Int(1),
        "trusted_fraction": _Float(0.0, 1.0, low_open=True),
        "max_candidates": _Int(1),
        "random_state": _Seed(),
    }

    def __init__(
        self,
        size: int | None = None,
        n_seed: int = 25,
        n_rounds: int = 10,
        trusted_fraction: float = 0.5,
        max_candidates: int = 100_000,
        random_state: int | None = 0,
    ) -> None:
        self.size = size
        self.n_seed = n_seed
        self.n_rounds = n_rounds
        self.trusted_fraction = trusted_fraction
        self.max_candidates = max_candidates
        self.random_state = random_state

    def _select(
        self, task: SelectionTask, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        n = _target_size(self.size, task)
        n_classes = task.n_classes
        weak, _ = _weak(task)
        ex, ex_labels = _unique_examples(task)
        taken = np.zeros(task.n_items, dtype=bool)
        taken[ex] = True
        sel_idx, sel_lab, trusted = [ex], [ex_labels], []
        n_seed = min(self.n_seed, max(1, (n - len(ex)) // (2 * n_classes)))
        for c in range(n_classes):
            members = np.flatnonzero((weak == c) & ~taken)
            ordered = _ranked(members, task.weak_proba[members, c], rng)
            trusted.append(ordered[n_seed : math.ceil(self.trusted_fraction * len(ordered))])
            sel_idx.append(ordered[:n_seed])
            sel_lab.append(np.full(len(ordered[:n_seed]), c, dtype=np.int64))
        indices, labels = np.concatenate(sel_idx), np.concatenate(sel_lab)

        pool = np.sort(np.concatenate(trusted))
        if len(pool) > self.max_candidates:
            pool = np.sort(rng.choice(pool, size=self.max_candidates, replace=False))
        pool_x = _rows(task.embeddings, pool)
        pool_y = weak[pool]
        free = np.ones(len(pool), dtype=bool)
        sel_x = _rows(task.embeddings, indices)

        for round_ in range(self.n_rounds):
            left = n - len(indices)
            if left <= 0 or not free.any():
                break
            batch = math.ceil(left / (self.n_rounds - round_))
            model = fit_logistic(sel_x, labels)
            if model is None:
                margin = rng.random(len(pool))
            else:
                proba = np.sort(_proba(model, pool_x, n_classes), axis=1)
                margin = proba[:, -1] - proba[:, -2]
            counts = np.bincount(pool_y[free], minlength=n_classes)
            quotas = _allocate(batch, np.ones(n_classes), counts)
            chosen = []
            for c in range(n_classes):
                members = np.flatnonzero(free & (pool_y == c))
                order = np.lexsort((rng.random(len(members)), margin[members]))
                chosen.append(members[order[: quotas[c]]])
            new = np.concatenate(chosen)
            free[new] = False
            indices = np.concatenate([indices, pool[new]])
            labels = np.concatenate([labels, pool_y[new]])
            sel_x = np.concatenate([sel_x, pool_x[new]])
        return indices, labels


class FacilityLocationSelector(Selector):
    """Facility location on a k-NN graph: confident items plus representatives covering each class.

    Each class gets a share of ``min(size, budget)`` (``size=None`` means the budget) from
    ``class_mix``. A ``confident_fraction`` of the share is its known examples and most
    confident weak items; the rest is chosen by lazy greedy facility location, over a sparse
    ``n_neighbors``-NN similarity graph of the ``trusted_fraction`` most confident items weakly
    labelled as that class, so that the chosen rows cover where the class lies in the pool, not
    just its most typical region. Rows are labelled with their weak labels.

    Cost: the graph is built per class on a uniform subsample of at most ``max_candidates``
    rows (brute-force k-NN: O(max_candidates^2 d) time, O(max_candidates * k) memory).
    """

    _constraints: ClassVar[dict[str, _Constraint]] = {
        "size": _Int(1, none_ok=True),
        "confident_fraction": _Float(0.0, 1.0),
        "n_neighbors": _Int(1),
        "trusted_fraction": _Float(0.0, 1.0, low_open=True),
        "max_candidates": _Int(1),
        "class_mix": _ClassMix(),
        "random_state": _Seed(),
    }

    def __init__(
        self,
        size: int | None = None,
        confident_fraction: float = 0.2,
        n_neighbors: int = 10,
        trusted_fraction: float = 0.8,
        max_candidates: int = 10_000,
        class_mix: str | Sequence[float] = "sqrt",
        random_state: int | None = 0,
    ) -> None:
        self.size = size
        self.confident_fraction = confident_fraction
        self.n_neighbors = n_neighbors
        self.trusted_fraction = trusted_fraction
        self.max_candidates = max_candidates
        self.class_mix = class_mix
        self.random_state = random_state

    def _select(
        self, task: SelectionTask, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        n = _target_size(self.size, task)
        weights = _checked_mix(self, self.class_mix, task)
        weak, _ = _weak(task)
        ex, ex_labels = _unique_examples(task)
        ranked = _ranked_by_class(task, weak, ex, ex_labels, rng)
        quotas = _allocate(n, weights, np.array([len(r) for r in ranked]))
        indices, labels = [], []
        for c in range(task.n_classes):
            quota = int(quotas[c])
            n_base = min(quota, round(self.confident_fraction * quota))
            base = ranked[c][:n_base]
            pool = ranked[c][
                n_base : max(n_base, math.ceil(self.trusted_fraction * len(ranked[c])))
            ]
            if len(pool) > self.max_candidates:
                pool = rng.choice(pool, size=self.max_candidates, replace=False)
            pool = np.concatenate([base, np.sort(pool)])
            graph = knn_similarity_graph(_rows(task.embeddings, pool), self.n_neighbors)
            extra = pool[facility_location(graph, quota - n_base, initial=np.arange(n_base))]
            # Fill any shortfall (tiny classes) with the next most confident items.
            rest = ranked[c][~np.isin(ranked[c], np.concatenate([base, extra]))]
            chosen = np.concatenate([base, extra, rest[: quota - len(base) - len(extra)]])
            indices.append(chosen)
            labels.append(np.full(len(chosen), c, dtype=np.int64))
        idx, lab = np.concatenate(indices), np.concatenate(labels)
        # Known examples keep their known labels.
        pos = np.searchsorted(ex, idx, sorter=np.argsort(ex)) if len(ex) else None
        if pos is not None:
            order = np.argsort(ex)
            pos = np.minimum(pos, len(ex) - 1)
            hit = ex[order[pos]] == idx
            lab[hit] = ex_labels[order[pos[hit]]]
        return idx, lab


class PseudoLabelSelector(Selector):
    """Pseudo-labelling: clean the weak labels, fit a teacher, distil it into a small labelled set.

    Works on a working set of at most ``max_train`` pool rows drawn uniformly, plus the examples.

    1. Noisy labels. Each class with at least 5 known examples gets an example-anchored model
       (see ``_example_anchored``): it undoes annotators that confuse a look-alike class with a
       concept, by mixing the annotator's ranking with a ranking learnt from the examples, as
       far as held-out examples say the mix ranks true members higher. The labels are then
       matched to the estimated class frequencies (annotator's mean probability, capped by an
       estimate from the examples), which rescues classes the annotator is rarely sure of.
    2. Confident learning: out-of-sample class probabilities from ``n_folds``-fold
       cross-validation of ``LogisticRegression`` on the embeddings; a row is kept if its
       probability of its noisy label is at least the average for that label (per-class
       thresholds, as in Northcutt et al.'s confident learning).
    3. Teacher: ``LogisticRegression(random_state=0)`` (the frozen model's own family and
       defaults, so the frozen model can represent its decision boundary) on the kept rows,
       the examples weighted ``example_weight``.
    4. Distillation: ``min(size, budget)`` rows, the known examples first with their labels,
       then at random per teacher class so that the class mix follows ``class_mix`` ('sqrt':
       shares proportional to the square roots of the annotator's class frequencies, between
       'prior' and 'balanced'); each carries the teacher's label. A ``boundary_fraction`` of
       the rows can instead be drawn from the ``boundary_oversample`` times as many rows
       closest to the teacher's decision boundary; off by default, because near the boundary
       the teacher's labels are the least reliable.

    Cost: per anchored class 6 fits on at most 10,000 + examples rows, then ``n_folds + 1``
    fits on at most ``max_train`` rows held in float32 (``max_train * d * 4`` bytes).
    """

    _constraints: ClassVar[dict[str, _Constraint]] = {
        "size": _Int(1, none_ok=True),
        "class_mix": _ClassMix(),
        "boundary_fraction": _Float(0.0, 1.0),
        "boundary_oversample": _Float(1.0),
        "n_folds": _Int(2),
        "example_weight": _Float(0.0),
        "max_train": _Int(2),
        "random_state": _Seed(),
    }

    def __init__(
        self,
        size: int | None = None,
        class_mix: str | Sequence[float] = "sqrt",
        boundary_fraction: float = 0.0,
        boundary_oversample: float = 3.0,
        n_folds: int = 3,
        example_weight: float = 5.0,
        max_train: int = 50_000,
        random_state: int | None = 0,
    ) -> None:
        self.size = size
        self.class_mix = class_mix
        self.boundary_fraction = boundary_fraction
        self.boundary_oversample = boundary_oversample
        self.n_folds = n_folds
        self.example_weight = example_weight
        self.max_train = max_train
        self.random_state = random_state

    def _select(
        self, task: SelectionTask, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        n = _target_size(self.size, task)
        weights = _checked_mix(self, self.class_mix, task)
        n_classes = task.n_classes
        ex, ex_labels = _unique_examples(task)

        work = rng.choice(task.n_items, size=min(self.max_train, task.n_items), replace=False)
        work = np.concatenate([np.sort(np.setdiff1d(work, ex)), ex])
        is_example = np.zeros(len(work), dtype=bool)
        is_example[len(work) - len(ex) :] = True
        X = _rows(task.embeddings, work)
        scores, priors = _example_anchored(
            X, np.asarray(task.weak_proba[work], dtype=np.float64), ex_labels, rng
        )
        noisy = _prior_matched(scores, priors)
        noisy[is_example] = ex_labels
        del scores
        weight = np.where(is_example, float(self.example_weight), 1.0)

        keep = _confident_rows(X, noisy, n_classes, self.n_folds, rng) | is_example
        teacher = fit_logistic(X[keep], noisy[keep], sample_weight=weight[keep])
        if teacher is None:  # a single class survives: nothing to distil
            labels, margin = noisy, rng.random(len(work))
        else:
            proba = _proba(teacher, X, n_classes)
            labels = np.argmax(proba, axis=1)
            proba.sort(axis=1)
            margin = proba[:, -1] - proba[:, -2]
        del X
        labels[is_example] = noisy[is_example]

        free = ~is_example
        chosen = [np.flatnonzero(is_example)]
        n_boundary = min(round(self.boundary_fraction * n), max(n - len(ex), 0))
        if n_boundary:
            candidates = np.flatnonzero(free)
            close = candidates[np.argsort(margin[candidates], kind="stable")]
            close = close[: max(n_boundary, round(self.boundary_oversample * n_boundary))]
            picked = rng.choice(close, size=min(n_boundary, len(close)), replace=False)
            free[picked] = False
            chosen.append(picked)
        taken = np.concatenate(chosen)
        have = np.bincount(labels[taken], minlength=n_classes)
        available = np.bincount(labels[free], minlength=n_classes)
        target = _allocate(n, weights, have + available)
        quotas = np.minimum(np.maximum(target - have, 0), available)
        quotas += _allocate(n - len(taken) - int(quotas.sum()), weights, available - quotas)
        for c in range(n_classes):
            members = np.flatnonzero(free & (labels == c))
            chosen.append(rng.choice(members, size=int(quotas[c]), replace=False))
        rows = np.concatenate(chosen)
        return work[rows], labels[rows]


def _ranks(values: np.ndarray) -> np.ndarray:
    """Positions of ``values`` in increasing order, scaled to [0, 1)."""
    out = np.empty(len(values), dtype=np.float64)
    out[np.argsort(values, kind="stable")] = np.arange(len(values)) / max(len(values), 1)
    return out


#: Classes with fewer known examples than this are not anchored (see ``_example_anchored``).
_MIN_ANCHOR_EXAMPLES = 5
#: Negatives drawn for each example-anchored model.
_ANCHOR_NEGATIVES = 10_000
#: Weights of the example-anchored ranking tried against the annotator's.
_ANCHOR_WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)


def _anchor_model(X: np.ndarray, positives: np.ndarray, negatives: np.ndarray) -> Any:
    """Balanced ``LogisticRegression`` of ``positives`` against ``negatives`` (row indices)."""
    y = np.r_[np.ones(len(positives), dtype=np.int64), np.zeros(len(negatives), dtype=np.int64)]
    return fit_logistic(X[np.r_[positives, negatives]], y, class_weight="balanced")


def _example_anchored(
    X: np.ndarray, proba: np.ndarray, ex_labels: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Annotator probabilities corrected with the known examples, and class frequencies.

    ``X`` and ``proba`` are the rows of a working set whose last ``len(ex_labels)`` rows are
    the known examples. An annotator can confuse a look-alike class with a concept; the known
    examples, a random sample of the concept, cannot. For every class with at least
    ``_MIN_ANCHOR_EXAMPLES`` examples, a balanced ``LogisticRegression`` separates its examples
    from (up to ``_ANCHOR_NEGATIVES`` of) the rows the annotator ranks in the lower half for it.
    The class's column is then reordered by a weighted mean of the annotator's rank and this
    model's rank (keeping the column's values). The weight is the one whose ranking puts the
    most held-out examples in its top k rows, k being the tightest plausible class size: the
    examples are a random sample of the class, so at a fixed k more of them means more true
    members (ties favour the annotator). The class size is the annotator's mean probability,
    capped by twice the number of rows that the chosen ranking puts above the median example
    (half of the class should be there): look-alikes inflate the annotator's mean, overlapping
    classes inflate the second estimate, so the smaller is kept. Classes without examples share
    the rest in proportion to their mean probability.
    """
    n_rows, n_classes = proba.shape
    first_example = n_rows - len(ex_labels)
    scores = proba.copy()
    priors = proba[:first_example].mean(axis=0) if first_example else proba.mean(axis=0)
    anchored = np.zeros(n_classes, dtype=bool)
    for c in range(n_classes):
        pos = first_example + np.flatnonzero(ex_labels == c)
        if len(pos) < _MIN_ANCHOR_EXAMPLES or first_example < 2:
            continue
        col = proba[:first_example, c]
        low = np.flatnonzero(col <= np.median(col))
        if len(low) > _ANCHOR_NEGATIVES:
            low = np.sort(rng.choice(low, size=_ANCHOR_NEGATIVES, replace=False))
        # Anchor scores; the examples get out-of-fold ones, so they can judge the ranking.
        score = _anchor_model(X, pos, low).decision_function(X)
        n_folds = min(5, len(pos))
        fold = rng.permutation(len(pos)) % n_folds
        for f in range(n_folds):
            model = _anchor_model(X, pos[fold != f], low)
            score[pos[fold == f]] = model.decision_function(X[pos[fold == f]])
        weak_rank, anchor_rank = _ranks(proba[:, c]), _ranks(score)
        mixes = [(1.0 - w) * weak_rank + w * anchor_rank for w in _ANCHOR_WEIGHTS]
        # Half of the class should rank above the median example: a size estimate per mix.
        estimates = [
            2.0 * float(np.mean(mixed[:first_example] >= np.median(mixed[pos]))) for mixed in mixes
        ]
        # The examples are a random sample of the class, so at a fixed number k of rows taken
        # as the class, the ranking that puts more of them in its top k has more true members
        # there. Compare at the tightest plausible size; ties favour the annotator.
        k = max(1, round(min(float(priors[c]), *estimates) * first_example))
        best_recall, best = -1.0, 0
        for i, mixed in enumerate(mixes):
            threshold = np.partition(mixed[:first_example], first_example - k)[first_example - k]
            recall = float(np.mean(mixed[pos] >= threshold))
            if recall > best_recall:
                best_recall, best = recall, i
        priors[c] = min(priors[c], estimates[best])
        combined = mixes[best]
        combined = _ranks(combined)
        scores[:, c] = np.sort(proba[:, c])[np.minimum((combined * n_rows).astype(int), n_rows - 1)]
        anchored[c] = True
    if anchored.any():
        rest = max(1.0 - float(priors[anchored].sum()), 0.0)
        free = ~anchored
        if free.any():
            mass = priors[free].sum()
            priors[free] = priors[free] * rest / mass if mass > 0 else rest / free.sum()
        if n_classes == 2 and anchored.sum() == 1:
            scores[:, ~anchored] = 1.0 - scores[:, anchored]
        else:
            scores /= np.maximum(scores.sum(axis=1, keepdims=True), 1e-12)
    return scores, priors


def _confident_rows(
    X: np.ndarray, noisy: np.ndarray, n_classes: int, n_folds: int, rng: np.random.Generator
) -> np.ndarray:
    """Rows whose out-of-sample probability of their noisy label reaches that label's average
    (confident learning's per-class thresholds); classes too small to cross-validate are kept."""
    proba = np.zeros((len(noisy), n_classes), dtype=np.float32)
    fold = np.empty(len(noisy), dtype=np.int64)
    for c in range(n_classes):  # stratified folds
        members = rng.permutation(np.flatnonzero(noisy == c))
        fold[members] = np.arange(len(members)) % n_folds
    for f in range(n_folds):
        train, test = fold != f, fold == f
        model = fit_logistic(X[train], noisy[train])
        if model is None or not test.any():
            return np.ones(len(noisy), dtype=bool)
        proba[test] = _proba(model, X[test], n_classes)
    own = proba[np.arange(len(noisy)), noisy]
    counts = np.bincount(noisy, minlength=n_classes)
    means = np.bincount(noisy, weights=own, minlength=n_classes) / np.maximum(counts, 1)
    return (own >= means[noisy]) | (counts[noisy] < n_folds)


def _no_examples() -> tuple[np.ndarray, np.ndarray]:
    return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)


def _checked_mix(selector: Selector, mix: str | Sequence[float], task: SelectionTask) -> np.ndarray:
    weights = _class_weights(mix, task)
    if len(weights) != task.n_classes:
        raise ValueError(
            selector._param_message(
                "class_mix", f"a sequence of {task.n_classes} weights (one per class)", mix
            )
        )
    return weights


# --------------------------------------------------------------------------------------------
# Development helpers: synthetic tasks and a local stand-in for the frozen-model scorer


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
