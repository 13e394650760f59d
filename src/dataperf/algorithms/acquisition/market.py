"""An acquisition task as a strategy sees it (the buyer's data, the sellers' summaries, the
budget), turning a plan into affordable row counts, and summarizing a seller's rows."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from dataperf.algorithms._params import _Constraint, _Float, _Int
from dataperf.budget import BUDGET_TOLERANCE, purchase_cost, within_budget

# --------------------------------------------------------------------------------------------
# Data


def _require(name: str, value: Any, constraint: _Constraint, what: str | None = None) -> None:
    """A ValueError naming ``name`` unless ``constraint`` accepts ``value``."""
    if not constraint.accepts(value):
        raise ValueError(f"{name} must be {what or constraint.description}; got {value!r}.")


def _matrix(name: str, value: Any, kind: str) -> np.ndarray:
    if not isinstance(value, np.ndarray) or value.ndim != 2:
        raise ValueError(
            f"{name} must be a 2-D numpy array; got shape {getattr(value, 'shape', None)}."
        )
    if value.dtype.kind not in kind:
        raise ValueError(
            f"{name} must be a {'float' if kind == 'f' else 'numeric'} array; got dtype"
            f" {value.dtype}."
        )
    return value


def _classes(name: str, value: Any, n_rows: int, n_classes: int) -> np.ndarray:
    array = np.asarray(value)
    if array.shape != (n_rows,):
        raise ValueError(f"{name} must be a 1-D array of {n_rows} labels; got shape {array.shape}.")
    if array.dtype.kind not in "biuf" or not np.all(np.isin(array, np.arange(n_classes))):
        raise ValueError(f"{name} must hold class indices in [0, {n_classes}).")
    return array.astype(np.int64)


@dataclass(frozen=True)
class SellerSummary:
    """What the buyer sees of one seller.

    The seller offers ``rows`` rows (n_s >= 1); buying k of them costs ``max_price * k / rows``
    (``max_price`` >= 0, finite). ``counts`` (d, B) and ``edges`` (d, B + 1) are a histogram of
    every feature over the seller's rows (B = 10 in the challenges), ``label_correlation`` (d,)
    the Pearson correlation of each feature with the (seller's) label index, and ``samples_x``
    (m, d) float32 / ``samples_y`` (m,) int64 a few of its rows with the seller's labels.
    Labels are checked against the task's number of classes by :class:`AcquisitionTask`.
    """

    rows: int
    max_price: float
    counts: np.ndarray
    edges: np.ndarray
    label_correlation: np.ndarray
    samples_x: np.ndarray
    samples_y: np.ndarray

    def __post_init__(self) -> None:
        _require("rows", self.rows, _Int(1))
        price = self.max_price
        _require("max_price", price, _Float(0.0), "a finite float >= 0")
        counts = _matrix("counts", self.counts, "biu")
        if counts.size and counts.min() < 0:
            raise ValueError("counts must be non-negative.")
        d, bins = counts.shape
        if bins < 1:
            raise ValueError("counts must have at least one bin per feature.")
        edges = _matrix("edges", self.edges, "biuf")
        if edges.shape != (d, bins + 1):
            raise ValueError(
                f"edges must have shape {(d, bins + 1)} (one more edge than bins);"
                f" got {edges.shape}."
            )
        if not np.all(np.isfinite(edges)) or np.any(np.diff(edges, axis=1) < 0):
            raise ValueError("edges must be finite and non-decreasing along each feature.")
        correlation = np.asarray(self.label_correlation, dtype=np.float64)
        if correlation.shape != (d,) or not np.all(np.isfinite(correlation)):
            raise ValueError(
                f"label_correlation must be {d} finite numbers (one per feature);"
                f" got shape {correlation.shape}."
            )
        samples = _matrix("samples_x", self.samples_x, "f")
        if samples.shape[1] != d:
            raise ValueError(
                f"samples_x must have {d} columns (the features of counts); got {samples.shape[1]}."
            )
        if not np.all(np.isfinite(samples)):
            raise ValueError("samples_x must be finite.")
        labels = np.asarray(self.samples_y)
        if (
            labels.shape != (len(samples),)
            or labels.dtype.kind not in "biuf"
            or (labels.size and not np.all((labels >= 0) & (labels == np.round(labels))))
        ):
            raise ValueError(
                f"samples_y must be {len(samples)} class indices >= 0 (one per sample row)."
            )
        object.__setattr__(self, "rows", int(self.rows))
        object.__setattr__(self, "max_price", float(price))
        object.__setattr__(self, "counts", counts.astype(np.int64))
        object.__setattr__(self, "edges", edges.astype(np.float64))
        object.__setattr__(self, "label_correlation", correlation)
        object.__setattr__(self, "samples_x", samples.astype(np.float32))
        object.__setattr__(self, "samples_y", labels.astype(np.int64))

    @property
    def n_features(self) -> int:
        """Number of features d."""
        return int(self.counts.shape[0])


@dataclass(frozen=True)
class AcquisitionTask:
    """Public data of one market, as strategies see it.

    ``budget`` (finite, >= 0) is what the buyer may spend, ``sellers`` the S >= 1 sellers'
    summaries (all with the same d features), ``x_buyer`` (nb, d) float32 and ``y_buyer`` (nb,)
    int64 the buyer's small labelled set (nb >= 1) and ``n_classes`` (>= 2) the number of
    classes; every label is a class index below it.
    """

    budget: float
    sellers: tuple[SellerSummary, ...]
    x_buyer: np.ndarray
    y_buyer: np.ndarray
    n_classes: int

    def __post_init__(self) -> None:
        budget, n_classes = self.budget, self.n_classes
        _require("budget", budget, _Float(0.0), "a finite float >= 0")
        _require("n_classes", n_classes, _Int(2))
        sellers = tuple(self.sellers)
        if not sellers or not all(isinstance(s, SellerSummary) for s in sellers):
            raise ValueError("sellers must be a non-empty sequence of SellerSummary.")
        x = _matrix("x_buyer", self.x_buyer, "f")
        if x.shape[0] < 1 or not np.all(np.isfinite(x)):
            raise ValueError("x_buyer must have at least one row, all finite.")
        d = x.shape[1]
        for s, seller in enumerate(sellers):
            if seller.n_features != d:
                raise ValueError(
                    f"seller {s} has {seller.n_features} features; the buyer's rows have {d}."
                )
            if seller.samples_y.size and seller.samples_y.max() >= n_classes:
                raise ValueError(
                    f"the sample labels of seller {s} must be class indices in [0, {n_classes})."
                )
        y = _classes("y_buyer", self.y_buyer, x.shape[0], int(n_classes))
        object.__setattr__(self, "budget", float(budget))
        object.__setattr__(self, "n_classes", int(n_classes))
        object.__setattr__(self, "sellers", sellers)
        object.__setattr__(self, "x_buyer", x.astype(np.float32))
        object.__setattr__(self, "y_buyer", y)

    @property
    def n_sellers(self) -> int:
        """Number of sellers S."""
        return len(self.sellers)

    @property
    def rows(self) -> np.ndarray:
        """(S,) int64 number of rows each seller offers."""
        return np.array([s.rows for s in self.sellers], dtype=np.int64)

    @property
    def max_prices(self) -> np.ndarray:
        """(S,) float64 full price of each seller."""
        return np.array([s.max_price for s in self.sellers], dtype=np.float64)

    def cost(self, counts: Any) -> float:
        """What buying ``counts`` (S non-negative ints, at most each seller's rows) costs."""
        array = np.asarray(counts)
        if array.shape != (self.n_sellers,) or array.dtype.kind not in "biu":
            raise ValueError(
                f"counts must be {self.n_sellers} integers (one per seller); got"
                f" shape {array.shape} and dtype {array.dtype}."
            )
        if np.any(array < 0) or np.any(array > self.rows):
            raise ValueError("counts must lie between 0 and each seller's number of rows.")
        return purchase_cost(self.max_prices, self.rows, array)


def _fits(cost: float, budget: float) -> bool:
    """:func:`within_budget` with half the tolerance: what strategies aim for, so that a sum
    taken in another order still passes the scorer's check."""
    return within_budget(cost, budget, BUDGET_TOLERANCE / 2)


# --------------------------------------------------------------------------------------------
# From a plan to counts


def affordable_counts(
    task: AcquisitionTask, wanted: np.ndarray, order: np.ndarray, limit: float | None = None
) -> np.ndarray:
    """Integer counts from a plan of ``wanted`` rows per seller (floats; inf: all rows).

    The plan is clipped to each seller's rows and floored (a hair of 1e-9 rows forgives float
    round-off). If the floored plan costs more than ``min(budget, limit)``, every count is
    scaled down by the same factor. The money the flooring left over, up to what the clipped
    plan would cost (and at most the budget), then buys whole rows greedily from the sellers in
    ``order`` (a seller absent from ``order`` gets nothing more). The result costs at most
    the budget (up to ``BUDGET_TOLERANCE``) and never exceeds a seller's rows.
    """
    n, prices = task.rows, task.max_prices
    unit = prices / n
    target = np.clip(np.nan_to_num(np.asarray(wanted, np.float64), nan=0.0, posinf=np.inf), 0.0, n)
    counts = np.minimum(np.floor(target + 1e-9), n).astype(np.int64)
    cap = task.budget if limit is None else min(task.budget, max(float(limit), 0.0))
    planned = min(cap, purchase_cost(prices, n, target))
    spent = purchase_cost(prices, n, counts)
    if not _fits(spent, cap):
        counts = np.floor(counts * (cap / spent)).astype(np.int64)
        counts = _trim(task, counts, order)
        spent = purchase_cost(prices, n, counts)
    for s in np.asarray(order, dtype=np.int64):
        room = int(n[s] - counts[s])
        if room <= 0:
            continue
        left = planned - spent
        affordable = math.inf if unit[s] == 0 else left / float(unit[s]) + 1e-9  # inf if tiny
        extra = room if affordable >= room else math.floor(affordable)
        if extra <= 0:
            continue
        counts[s] += extra
        spent = purchase_cost(prices, n, counts)
        while extra > 0 and not _fits(spent, cap):  # round-off of the floor above
            counts[s] -= 1
            extra -= 1
            spent = purchase_cost(prices, n, counts)
    return _trim(task, counts, order)


def _trim(task: AcquisitionTask, counts: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Drop rows, last sellers of ``order`` first, until ``counts`` fits the budget."""
    n, prices = task.rows, task.max_prices
    listed = [int(s) for s in order]
    ranked = listed + [s for s in range(task.n_sellers) if s not in set(listed)]
    for s in reversed(ranked):
        unit = prices[s] / n[s]
        spent = purchase_cost(prices, n, counts)
        if _fits(spent, task.budget):
            break
        if unit == 0:
            continue
        counts[s] -= min(int(counts[s]), math.ceil((spent - task.budget) / unit))
        while counts[s] > 0 and not _fits(purchase_cost(prices, n, counts), task.budget):
            counts[s] -= 1
    return counts



# --------------------------------------------------------------------------------------------
# Seller summaries


def seller_statistics(
    x: np.ndarray, y: np.ndarray, bins: int = 10
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The histograms and label correlations of a seller's rows, as the challenges publish them.

    Per feature of ``x`` (n, d): ``numpy.histogram(bins=bins)`` counts (d, bins) int64 and
    edges (d, bins + 1), and the Pearson correlation with the label index ``y`` (0.0 where
    either is constant).
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    histograms = [np.histogram(x[:, j], bins=bins) for j in range(x.shape[1])]
    counts = np.stack([h[0] for h in histograms]).astype(np.int64)
    edges = np.stack([h[1] for h in histograms])
    correlation = np.zeros(x.shape[1])
    varying = np.ptp(x, axis=0) > 0
    if np.ptp(y) > 0 and varying.any():
        for j in np.flatnonzero(varying):
            correlation[j] = np.corrcoef(x[:, j], y)[0, 1]
    return counts, edges, correlation


def summarize(
    x: np.ndarray,
    y: np.ndarray,
    max_price: float,
    *,
    n_samples: int = 5,
    bins: int = 10,
    rng: np.random.Generator | None = None,
) -> SellerSummary:
    """The summary of a seller's rows ``x`` (n, d) with labels ``y`` as the challenges make it:
    :func:`seller_statistics` and ``n_samples`` rows drawn at random."""
    rng = np.random.default_rng(rng)
    counts, edges, correlation = seller_statistics(x, y, bins)
    picks = np.sort(rng.choice(len(x), size=min(n_samples, len(x)), replace=False))
    return SellerSummary(
        rows=len(x),
        max_price=float(max_price),
        counts=counts,
        edges=edges,
        label_correlation=correlation,
        samples_x=np.asarray(x[picks], dtype=np.float32),
        samples_y=np.asarray(y[picks]),
    )
