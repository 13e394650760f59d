"""Geometric primitives for selection algorithms: farthest-point sampling, sparse k-NN graphs
and greedy facility location.

None of these builds a dense N x N matrix. Costs are stated per function; N is the number of
rows given, d their dimension.
"""

from __future__ import annotations

import heapq

import numpy as np
from scipy import sparse
from sklearn.neighbors import NearestNeighbors
from threadpoolctl import threadpool_limits

__all__ = [
    "BLOCK_ROWS",
    "facility_location",
    "farthest_point_sampling",
    "knn_similarity_graph",
    "row_sqnorms",
]

#: Rows converted to float32 at a time when walking a (possibly float16) matrix.
BLOCK_ROWS = 65_536


def row_sqnorms(X: np.ndarray, block_rows: int = BLOCK_ROWS) -> np.ndarray:
    """Squared Euclidean norm of every row, computed in float32 blocks. O(N d) time."""
    out = np.empty(len(X), dtype=np.float32)
    for start in range(0, len(X), block_rows):
        block = np.asarray(X[start : start + block_rows], dtype=np.float32)
        out[start : start + len(block)] = np.einsum("ij,ij->i", block, block)
    return out


def farthest_point_sampling(
    X: np.ndarray, n_points: int, *, start: int = 0, block_rows: int = BLOCK_ROWS
) -> np.ndarray:
    """Greedy farthest-point sampling (Euclidean): each new point is the row farthest from all
    rows chosen so far; the first is ``start``.

    Vectorised: every step does one distance update of the new point against all N rows, as a
    matrix-vector product over float32 blocks of ``block_rows`` rows (float16 input is
    converted block by block, so pass float32 to avoid re-converting at every step).
    Cost: O(n_points * N * d) time, O(N) extra memory (a running minimum distance per row).
    The products are memory-bound and short, so they run on one BLAS thread (threads cost more
    in hand-offs than they save, many times more on a busy machine).

    Returns the ``min(n_points, N)`` chosen row indices (int64, unique) in selection order.
    """
    n_rows = len(X)
    n_points = min(int(n_points), n_rows)
    chosen = np.empty(n_points, dtype=np.int64)
    if n_points == 0:
        return chosen
    sqnorms = row_sqnorms(X, block_rows)
    min_dist = np.full(n_rows, np.inf, dtype=np.float32)
    current = int(start)
    with threadpool_limits(limits=1, user_api="blas"):
        _fps_steps(X, chosen, sqnorms, min_dist, current, block_rows)
    return chosen


def _fps_steps(
    X: np.ndarray,
    chosen: np.ndarray,
    sqnorms: np.ndarray,
    min_dist: np.ndarray,
    current: int,
    block_rows: int,
) -> None:
    n_rows = len(X)
    for step in range(len(chosen)):
        chosen[step] = current
        centre = np.asarray(X[current], dtype=np.float32)
        centre_sq = np.float32(centre @ centre)
        for lo in range(0, n_rows, block_rows):
            hi = min(lo + block_rows, n_rows)
            block = np.asarray(X[lo:hi], dtype=np.float32)
            dist = block @ centre
            dist *= -2.0
            dist += sqnorms[lo:hi]
            dist += centre_sq
            np.minimum(min_dist[lo:hi], dist, out=min_dist[lo:hi])
        # Chosen rows never win again, even when every remaining distance is zero.
        min_dist[current] = -np.inf
        current = int(np.argmax(min_dist))


def knn_similarity_graph(X: np.ndarray, n_neighbors: int) -> sparse.csr_matrix:
    """Sparse k-NN similarity graph: row i holds ``exp(-d_ij^2 / s^2)`` for its
    ``n_neighbors`` nearest neighbours j and 1 on the diagonal, where ``s^2`` is the mean squared
    distance to the k-th neighbour.

    Uses scikit-learn's ``NearestNeighbors`` (brute force in chunks for high d). Cost: O(N^2 d)
    time but O(N k) memory, so callers cap N (tens of thousands of rows).
    """
    X = np.asarray(X, dtype=np.float32)
    n_rows = len(X)
    k = min(int(n_neighbors), n_rows - 1)
    if k <= 0:
        return sparse.identity(n_rows, dtype=np.float32, format="csr")
    dist, ind = NearestNeighbors(n_neighbors=k + 1).fit(X).kneighbors(X)
    dist = dist.astype(np.float32) ** 2
    scale = float(np.mean(dist[:, -1]))
    scale = scale if scale > 0 else 1.0
    sim = np.exp(-dist / scale)
    rows = np.repeat(np.arange(n_rows), k + 1)
    graph = sparse.csr_matrix((sim.ravel(), (rows, ind.ravel())), shape=(n_rows, n_rows))
    graph.sum_duplicates()
    graph.setdiag(1.0)
    graph.eliminate_zeros()
    return graph.tocsr()


def facility_location(
    graph: sparse.spmatrix, n_select: int, *, initial: np.ndarray | None = None
) -> np.ndarray:
    """Lazy greedy maximisation of the facility-location function
    ``f(S) = sum_i max_{j in S} graph[i, j]`` over a sparse similarity graph.

    ``initial`` rows count as already chosen (they cover their neighbours but are not returned).
    Submodularity makes stale gains upper bounds, so the lazy priority queue gives exactly the
    greedy answer. Cost: O(nnz) memory; each gain re-evaluation touches one sparse column.

    Returns up to ``n_select`` new row indices (int64) in selection order; stops early when no
    row adds coverage.
    """
    cols = sparse.csc_matrix(graph)
    n_rows = cols.shape[0]
    indptr, indices, data = cols.indptr, cols.indices, cols.data
    cover = np.zeros(n_rows, dtype=np.float64)
    taken = np.zeros(n_rows, dtype=bool)
    if initial is not None and len(initial):
        for j in np.asarray(initial, dtype=np.int64):
            seg = slice(indptr[j], indptr[j + 1])
            np.maximum.at(cover, indices[seg], data[seg])
            taken[j] = True

    def gain(j: int) -> float:
        seg = slice(indptr[j], indptr[j + 1])
        return float(np.maximum(data[seg] - cover[indices[seg]], 0.0).sum())

    col_of = np.repeat(np.arange(n_rows), np.diff(indptr))
    gains = np.bincount(col_of, weights=np.maximum(data - cover[indices], 0.0), minlength=n_rows)
    heap = [(-float(gains[j]), j) for j in np.flatnonzero(~taken).tolist()]
    heapq.heapify(heap)
    chosen: list[int] = []
    while heap and len(chosen) < n_select:
        _, j = heapq.heappop(heap)
        fresh = gain(j)
        if heap and fresh < -heap[0][0]:
            heapq.heappush(heap, (-fresh, j))
            continue
        if fresh <= 0.0:
            break
        chosen.append(j)
        seg = slice(indptr[j], indptr[j + 1])
        np.maximum.at(cover, indices[seg], data[seg])
    return np.asarray(chosen, dtype=np.int64)
