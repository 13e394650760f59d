"""Farthest-point coverage plus nested cross-validation over small per-class subsets (fps-cv)."""

from __future__ import annotations

from itertools import product
from typing import ClassVar

import numpy as np

from dataperf.algorithms._linear import fit_logistic
from dataperf.algorithms._neighbors import farthest_point_sampling
from dataperf.algorithms._params import _Constraint, _Int, _Seed
from dataperf.algorithms.selection._helpers import (
    _allocate,
    _dedupe,
    _f1,
    _ranked,
    _rows,
    _unique_examples,
    _weak,
)
from dataperf.algorithms.selection.base import Selector
from dataperf.algorithms.selection.task import SelectionTask

__all__ = ["FPSCVSelector"]


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
