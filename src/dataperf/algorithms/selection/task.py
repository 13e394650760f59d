"""What a selection algorithm sees and returns: ``SelectionTask`` and ``Selection``."""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral

import numpy as np

__all__ = ["Selection", "SelectionTask"]


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

