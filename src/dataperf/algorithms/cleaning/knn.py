"""Exact KNN-Shapley values (Jia et al., 2019) and the cleaner that ranks by them."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from dataperf.algorithms._neighbors import BLOCK_ROWS
from dataperf.algorithms._params import _Constraint, _Int, _Seed
from dataperf.algorithms.cleaning.base import Cleaner, _float
from dataperf.algorithms.cleaning.task import CleaningTask

__all__ = ["KNNShapleyCleaner", "knn_shapley"]


#: Distance entries (validation rows x training rows) computed at once by KNN-Shapley.
_KNN_BLOCK_ENTRIES = 1 << 23


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
