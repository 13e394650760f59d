"""Uncertainty sampling: confident seeds grown with the items the model is least sure of."""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np

from dataperf.algorithms._linear import fit_logistic
from dataperf.algorithms._params import _Constraint, _Float, _Int, _Seed
from dataperf.algorithms.selection._helpers import (
    _allocate,
    _proba,
    _ranked,
    _rows,
    _unique_examples,
    _weak,
)
from dataperf.algorithms.selection.base import Selector
from dataperf.algorithms.selection.task import SelectionTask

__all__ = ["UncertaintySelector"]


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
        n = self._target_size(task)
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
