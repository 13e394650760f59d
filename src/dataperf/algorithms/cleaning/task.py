"""What a cleaning algorithm sees: ``CleaningTask``, training rows with noisy labels."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["CleaningTask"]


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
