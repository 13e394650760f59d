"""The acquisition scorer's procedure: the rows each draw buys from each seller (ours, and the
original evaluator's), the original's cost and mean, which test rows the frozen model gets
right per draw (:func:`market_correct`), and the bootstrap of a market's accuracy. See
:mod:`dataperf.kinds.acquisition` for the procedure in words."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from threadpoolctl import threadpool_limits

from dataperf.challenge import Progress, no_progress
from dataperf.kinds.acquisition_files import MarketTerms
from dataperf.learners.frozen import train_and_predict

BOOTSTRAP_BLOCK = 64  # resamples drawn together


@dataclass(frozen=True)
class SellerOffers:
    """What one seller sells, by position 0..n_s-1 (hidden from participants)."""

    rows: np.ndarray  # (n_s,) int64: rows of the shared embedding table
    labels: np.ndarray  # (n_s,) int64: the class index this seller gives each row



def drawn_positions(
    counts: np.ndarray, sizes: Sequence[int], rng: np.random.Generator
) -> list[np.ndarray]:
    """The positions bought from each seller in one draw, sorted: ``rng.choice(n, k,
    replace=False)`` for 0 < k < n (in seller order), every position for k = n, none for 0."""
    out = []
    for k, n in zip(np.asarray(counts, dtype=np.int64).tolist(), sizes, strict=True):
        if k <= 0:
            out.append(np.zeros(0, dtype=np.int64))
        elif k < n:
            out.append(np.sort(rng.choice(int(n), int(k), replace=False)).astype(np.int64))
        else:
            out.append(np.arange(n, dtype=np.int64))
    return out


def original_positions(
    counts: np.ndarray, sizes: Sequence[int], rng: np.random.RandomState
) -> list[np.ndarray]:
    """The positions bought from each seller in one draw of the original evaluator:
    ``rng.choice(n, size=k, replace=True)`` for every seller in order (k = 0 included), in the
    order drawn, so a row may be bought twice."""
    return [
        rng.choice(int(n), size=int(k), replace=True).astype(np.int64)
        for k, n in zip(np.asarray(counts, dtype=np.int64).tolist(), sizes, strict=True)
    ]


def original_cost(counts: np.ndarray, terms: MarketTerms) -> float:
    """The original's cost of one purchase: ``max_price * (k / n)`` per seller, added one after
    the other in seller order (plain float additions, as its ``sum`` of numpy floats does)."""
    total = 0.0
    for k, n, price in zip(
        np.asarray(counts, dtype=np.int64).tolist(),
        terms.rows.tolist(),
        terms.max_prices.tolist(),
        strict=True,
    ):
        total = total + price * (k / n)
    return total


def original_mean(values: Iterable[float]) -> float:
    """The original's average: ``0 + v_1 / n + v_2 / n + ...`` (it adds each share in turn)."""
    values = list(values)
    total = 0.0
    for value in values:
        total += value / len(values)
    return total


def market_correct(
    counts: np.ndarray,
    offers: Sequence[SellerOffers],
    embeddings: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    *,
    market_index: int,
    draws: int,
    seed: int,
    C: float = 1.0,
    max_iter: int = 100,
    progress: Progress = no_progress,
    original_rng: np.random.RandomState | None = None,
) -> np.ndarray:
    """Which test rows the frozen model gets right in each draw: (draws, m) bool.

    Draw j fits ``LogisticRegression(random_state=0, C=C, max_iter=max_iter)`` on the rows
    bought (:func:`drawn_positions` with ``default_rng(SeedSequence([seed, market_index, j]))``;
    with ``original_rng``, :func:`original_positions` from that generator, which the caller
    carries from market to market), their embeddings gathered from the shared ``embeddings``
    table as float64 and their labels from the sellers. Bought rows of a single class predict
    that class; nothing bought gets every test row wrong. Draws that buy the same rows are
    fitted once.
    """
    sizes = [len(o.rows) for o in offers]
    starts = np.concatenate([[0], np.cumsum(sizes)])
    y_test = np.asarray(y_test, dtype=np.int64)
    x_test = np.asarray(x_test, dtype=np.float64)
    out = np.zeros((draws, len(y_test)), dtype=bool)
    fitted: dict[bytes, np.ndarray] = {}
    for j in range(draws):
        progress(f"draw {j + 1} of {draws}", j, draws)
        if original_rng is not None:
            positions = original_positions(counts, sizes, original_rng)
        else:
            rng = np.random.default_rng(np.random.SeedSequence([seed, market_index, j]))
            positions = drawn_positions(counts, sizes, rng)
        key = (
            np.concatenate([p + start for p, start in zip(positions, starts[:-1], strict=True)])
            .astype(np.int64)
            .tobytes()
        )
        if key not in fitted:
            rows = np.concatenate([o.rows[p] for o, p in zip(offers, positions, strict=True)])
            labels = np.concatenate([o.labels[p] for o, p in zip(offers, positions, strict=True)])
            fitted[key] = _correct(embeddings[rows], labels, x_test, y_test, C=C, max_iter=max_iter)
        out[j] = fitted[key]
    progress("done", draws, draws)
    return out


def _correct(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    *,
    C: float,
    max_iter: int,
) -> np.ndarray:
    classes = np.unique(y_train)
    if len(classes) == 0:
        return np.zeros(len(y_test), dtype=bool)
    if len(classes) == 1:
        return y_test == classes[0]
    # One BLAS thread: the same arithmetic on every machine and in every scoring slot, and
    # no threads spinning against each other on a busy host (10x slower there).
    with threadpool_limits(1, user_api="blas"):
        prediction = train_and_predict(
            "logistic_regression",
            {"C": C, "max_iter": max_iter},
            x_train,
            y_train,
            x_test,
            seed=0,
        )
    return np.asarray(prediction.labels, dtype=np.int64) == y_test


def bootstrap_accuracy(
    row_accuracy: np.ndarray, *, n_resamples: int, seed: int, block: int = BOOTSTRAP_BLOCK
) -> np.ndarray:
    """Mean of ``row_accuracy`` (per test row: the share of draws that got it right) over
    ``n_resamples`` test sets drawn with replacement: resample b uses the rows
    ``rng.integers(0, m, size=(size, m))[b - start]`` of its block of ``block`` resamples
    (``rng = default_rng(seed)``, blocks in order, the last one shorter)."""
    row_accuracy = np.asarray(row_accuracy, dtype=np.float64)
    m = len(row_accuracy)
    out = np.zeros(n_resamples, dtype=np.float64)
    if m == 0:
        return out
    rng = np.random.default_rng(seed)
    for start in range(0, n_resamples, block):
        stop = min(start + block, n_resamples)
        out[start:stop] = row_accuracy[rng.integers(0, m, size=(stop - start, m))].mean(axis=1)
    return out
