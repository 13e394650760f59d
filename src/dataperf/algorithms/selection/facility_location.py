"""Facility location on per-class k-NN graphs: confident items plus representatives per class."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import ClassVar

import numpy as np

from dataperf.algorithms._neighbors import facility_location, knn_similarity_graph
from dataperf.algorithms._params import _Constraint, _Float, _Int, _Seed
from dataperf.algorithms.selection._helpers import _rows, _unique_examples
from dataperf.algorithms.selection.base import Selector, _ClassMix
from dataperf.algorithms.selection.task import SelectionTask

__all__ = ["FacilityLocationSelector"]


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
        ex, ex_labels = _unique_examples(task)
        ranked, quotas = self._class_quotas(task, ex, ex_labels, rng)
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
