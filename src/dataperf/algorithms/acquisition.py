"""Participant-side data-acquisition strategies.

In an acquisition challenge a buyer with a budget faces S sellers. Seller s offers n_s labelled,
embedded rows at a linear price: k rows cost ``max_price_s * k / n_s``. The buyer sees only
summaries (per-feature histograms, feature-label correlations, a few sample rows) and its own
small labelled set; it decides how many rows to buy from each seller, a frozen model is trained
on random draws of the bought rows and scored on the buyer's hidden test rows, and money left
over earns a small bonus. Strategies see an :class:`AcquisitionTask` and return the (S,) int64
row counts, always within the budget and the sellers' sizes.

Sellers differ in ways a strategy has to find out: their topic mix against the buyer's, their
label noise, their class balance, duplicated rows, size and price (a price says nothing about
quality). Every strategy follows the scikit-learn contract: the constructor only stores
hyper-parameters, :meth:`Strategy.purchase` validates them, turns ``random_state`` into a
:class:`numpy.random.Generator` and does the work; the result is deterministic for a given
``random_state``. Each strategy plans how many rows it wants from every seller (a float,
possibly more than the budget allows) and :func:`affordable_counts` turns the plan into integer
counts. Every strategy runs in well under a second for 20 sellers of 64 features.

:data:`STRATEGIES` maps command-line names to the classes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from sklearn.base import BaseEstimator

from dataperf.algorithms._linear import fit_logistic
from dataperf.algorithms._params import _Constraint, _Float, _Int, _Seed, _Validated
from dataperf.algorithms._threads import one_thread
from dataperf.budget import BUDGET_TOLERANCE, purchase_cost, within_budget

__all__ = [
    "STRATEGIES",
    "AcquisitionTask",
    "EarlyStopStrategy",
    "ProportionalStrategy",
    "SampleValueStrategy",
    "SellerSummary",
    "SimilarityStrategy",
    "Strategy",
    "UniformStrategy",
    "affordable_counts",
    "seller_statistics",
    "summarize",
]


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
# Shared estimates


def _label_correlation(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(d,) Pearson correlation of every column of ``x`` with ``y`` (0 where one is constant)."""
    xc = np.asarray(x, np.float64) - np.mean(x, axis=0, dtype=np.float64)
    yc = np.asarray(y, np.float64) - np.mean(y, dtype=np.float64)
    scale = np.sqrt(np.sum(xc * xc, axis=0) * np.sum(yc * yc))
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(scale > 0, (yc @ xc) / np.where(scale > 0, scale, 1.0), 0.0)
    return np.asarray(out, dtype=np.float64)


def _moments(seller: SellerSummary) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and variance of a seller's rows estimated from its histograms (bin
    centres weighted by counts, plus the within-bin variance of a uniform bin)."""
    centres = 0.5 * (seller.edges[:, :-1] + seller.edges[:, 1:])
    widths = np.diff(seller.edges, axis=1)
    weights = seller.counts / np.maximum(seller.counts.sum(axis=1, keepdims=True), 1)
    mean = np.sum(weights * centres, axis=1)
    var = np.sum(weights * ((centres - mean[:, None]) ** 2 + widths**2 / 12.0), axis=1)
    return mean, var


def _domain_distance(task: AcquisitionTask) -> np.ndarray:
    """(S,) mean over features of the squared difference between a seller's and the buyer's
    feature means, in units of the feature's variance, less what the buyer's finite sample
    explains (1 / nb); 0 for a seller that looks like the buyer."""
    x = task.x_buyer.astype(np.float64)
    mean_b, var_b = x.mean(axis=0), x.var(axis=0)
    out = np.empty(task.n_sellers)
    for s, seller in enumerate(task.sellers):
        mean_s, var_s = _moments(seller)
        scale = np.maximum(0.5 * (var_b + var_s), 1e-12)
        out[s] = np.mean((mean_s - mean_b) ** 2 / scale) - 1.0 / len(x)
    return np.maximum(out, 0.0)


def _label_agreement(task: AcquisitionTask) -> np.ndarray:
    """(S,) projection of each seller's feature-label correlations on the buyer's: about 1 for
    a seller whose labels relate to the features as the buyer's do, less for noisy labels,
    about 0 (or below) for labels unrelated (or opposed) to the buyer's."""
    buyer = _label_correlation(task.x_buyer, task.y_buyer)
    norm = float(buyer @ buyer)
    if norm == 0:
        return np.ones(task.n_sellers)
    return np.array([s.label_correlation @ buyer / norm for s in task.sellers])


def _buyer_likelihood(task: AcquisitionTask, C: float) -> np.ndarray:
    """(S,) how much better than chance a model of the buyer's labelled rows predicts each
    seller's sample labels: the mean probability it gives the seller's labels, less 1 / C (the
    number of classes), over 1 - 1 / C; 1 for perfect agreement, 0 for chance or worse. A seller
    without samples, or a buyer set with one class, gets the mean of the others (or 1)."""
    chance = 1.0 / task.n_classes
    out = np.full(task.n_sellers, np.nan)
    model = fit_logistic(task.x_buyer.astype(np.float64), task.y_buyer, C=C, max_iter=1000)
    if model is not None:
        columns = {int(c): j for j, c in enumerate(model.classes_)}
        for s, seller in enumerate(task.sellers):
            if not len(seller.samples_y):
                continue
            proba = model.predict_proba(seller.samples_x.astype(np.float64))
            given = np.array(
                [
                    proba[i, columns[int(c)]] if int(c) in columns else 0.0
                    for i, c in enumerate(seller.samples_y)
                ]
            )
            out[s] = max(0.0, (float(given.mean()) - chance) / (1.0 - chance))
    known = np.isfinite(out)
    return np.where(known, out, out[known].mean() if known.any() else 1.0)


def _greedy_plan(
    task: AcquisitionTask, value: np.ndarray, min_ratio: float, money: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Whole sellers in decreasing order of value per unit price, from the sellers whose value
    is positive and at least ``min_ratio`` times the best, until ``money`` (default: the
    budget) runs out; the last one partly (if no value is positive, every seller counts as
    equally good). Returns the wanted rows and the order."""
    value = np.asarray(value, dtype=np.float64)
    best = float(value.max(initial=0.0))
    eligible = np.flatnonzero((value > 0) & (value >= min_ratio * best))
    if not eligible.size:  # nothing looks useful: all sellers alike, cheapest rows first
        value, eligible = np.ones(task.n_sellers), np.arange(task.n_sellers)
    unit = task.max_prices / task.rows
    ratio = np.where(
        unit[eligible] > 0, value[eligible] / np.maximum(unit[eligible], 1e-300), np.inf
    )
    order = eligible[np.lexsort((eligible, -ratio))]
    wanted = np.zeros(task.n_sellers)
    left = task.budget if money is None else min(money, task.budget)
    for s in order:
        take = float(task.rows[s]) if unit[s] == 0 else min(float(task.rows[s]), left / unit[s])
        wanted[s] = take
        left -= take * unit[s]
    return wanted, order


def _fill(money: float, weights: np.ndarray, caps: np.ndarray) -> np.ndarray:
    """Split ``money`` in proportion to ``weights``, no share above its ``cap``; what a capped
    share cannot take goes to the others (water filling)."""
    weights = np.asarray(weights, dtype=np.float64)
    spend = np.zeros(len(weights))
    free = weights > 0
    left = float(money)
    while left > 0 and free.any():
        share = left * np.where(free, weights, 0.0) / weights[free].sum()
        capped = free & (spend + share >= caps)
        if not capped.any():
            return spend + share
        left -= float(np.sum(caps[capped] - spend[capped]))
        spend[capped] = caps[capped]
        free &= ~capped
    return spend


# --------------------------------------------------------------------------------------------
# Base class


class Strategy(_Validated, BaseEstimator):
    """Base class: validates hyper-parameters, seeds a Generator and calls ``_plan``."""

    _constraints: ClassVar[dict[str, _Constraint]] = {}
    random_state: int | np.random.Generator | None

    @one_thread
    def purchase(self, task: AcquisitionTask) -> np.ndarray:
        """(S,) int64 rows to buy from each seller, within the budget and the sellers' sizes."""
        self._validate_params()
        rng = np.random.default_rng(self.random_state)
        wanted, order = self._plan(task, rng)
        return affordable_counts(task, wanted, order)

    def _plan(
        self, task: AcquisitionTask, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """Wanted rows per seller (floats) and the order in which leftovers are spent."""
        raise NotImplementedError


def _spread(
    task: AcquisitionTask, weights: np.ndarray, fraction: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Plan spending ``fraction`` of the budget in proportion to ``weights`` (free sellers are
    bought whole); leftovers go to the sellers in a random order."""
    unit = task.max_prices / task.rows
    spend = _fill(fraction * task.budget, weights, task.max_prices)
    wanted = np.where(unit > 0, spend / np.where(unit > 0, unit, 1.0), np.inf)
    return wanted, rng.permutation(task.n_sellers)


class _SpreadStrategy(Strategy):
    """Base class: spends ``fraction`` of the budget by :func:`_spread`."""

    _constraints: ClassVar[dict[str, _Constraint]] = {
        "fraction": _Float(0.0, 1.0),
        "random_state": _Seed(),
    }

    def __init__(self, fraction: float = 1.0, random_state: int | None = 0) -> None:
        self.fraction = fraction
        self.random_state = random_state


class _ValueStrategy(Strategy):
    """Base class: values the sellers by ``_values`` and buys by :func:`_greedy_plan`."""

    min_ratio: float

    @one_thread
    def values(self, task: AcquisitionTask) -> np.ndarray:
        """(S,) float64 value of each seller's rows (higher is better)."""
        self._validate_params()
        return self._values(task)

    def _values(self, task: AcquisitionTask) -> np.ndarray:
        raise NotImplementedError

    def _plan(
        self, task: AcquisitionTask, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        return _greedy_plan(task, self._values(task), self.min_ratio)


# --------------------------------------------------------------------------------------------
# Strategies


class UniformStrategy(_SpreadStrategy):
    """Uniform: the same spend on every seller (the baseline).

    ``fraction`` of the budget is split equally across sellers; a seller whose whole offer
    costs less than its share is bought whole and the rest is split among the others. Free
    sellers are bought whole. Cost: O(S^2).
    """

    def _plan(
        self, task: AcquisitionTask, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        return _spread(task, np.ones(task.n_sellers), self.fraction, rng)


class ProportionalStrategy(_SpreadStrategy):
    """Proportional: spend on each seller in proportion to the number of rows it offers.

    As ``uniform`` with shares proportional to the sellers' sizes n_s instead of equal ones.
    Cost: O(S^2).
    """

    def _plan(
        self, task: AcquisitionTask, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        return _spread(task, task.rows.astype(np.float64), self.fraction, rng)


class SimilarityStrategy(_ValueStrategy):
    """Summary similarity: sellers whose histograms and label correlations match the buyer's.

    A seller's value is ``max(a, 0) * exp(-D / bandwidth)``. ``a`` projects the seller's
    feature-label correlations on the buyer's (computed from its labelled rows): about 1 when
    its labels follow the features as the buyer's do, lower for noisy or skewed labels. ``D``
    is the mean over features of the squared difference between the seller's feature means
    (from its histograms) and the buyer's, in units of the feature's variance: 0 for the
    buyer's topics, larger for other ones. Sellers with a value of at least ``min_ratio`` times
    the best are bought whole in decreasing order of value per unit price until the budget is
    spent. Cost: O(S d B + nb d).
    """

    _constraints: ClassVar[dict[str, _Constraint]] = {
        "bandwidth": _Float(0.0, low_open=True),
        "min_ratio": _Float(0.0, 1.0),
        "random_state": _Seed(),
    }

    def __init__(
        self, bandwidth: float = 0.05, min_ratio: float = 0.5, random_state: int | None = 0
    ) -> None:
        self.bandwidth = bandwidth
        self.min_ratio = min_ratio
        self.random_state = random_state

    def _values(self, task: AcquisitionTask) -> np.ndarray:
        agreement = np.maximum(_label_agreement(task), 0.0)
        return agreement * np.exp(-_domain_distance(task) / self.bandwidth)


class SampleValueStrategy(_ValueStrategy):
    """Sample value: sellers whose sample rows a model of the buyer's data labels alike.

    A ``LogisticRegression(C=C)`` fitted on the buyer's labelled rows predicts every seller's
    sample rows; ``q`` is the mean probability it gives the seller's labels, rescaled so that
    chance is 0 and certainty 1 (wrong labels and rows unlike the buyer's score low). With
    ``summary_weight`` w > 0 this few-row estimate is averaged, with weight w, with the
    projection of the seller's feature-label correlations on the buyer's (see
    ``similarity``), which the summaries compute over all the seller's rows. The value
    ``q * exp(-D / bandwidth)`` then discounts sellers whose feature means (from their
    histograms) lie far from the buyer's; sellers worth at least ``min_ratio`` times the best
    are bought whole in decreasing order of value per unit price until the budget is spent.
    Cost: one fit on the buyer's rows plus O(S (m + B) d).
    """

    _constraints: ClassVar[dict[str, _Constraint]] = {
        "C": _Float(0.0, low_open=True),
        "summary_weight": _Float(0.0, 1.0),
        "bandwidth": _Float(0.0, low_open=True),
        "min_ratio": _Float(0.0, 1.0),
        "random_state": _Seed(),
    }

    def __init__(
        self,
        C: float = 1.0,
        summary_weight: float = 0.7,
        bandwidth: float = 0.05,
        min_ratio: float = 0.5,
        random_state: int | None = 0,
    ) -> None:
        self.C = C
        self.summary_weight = summary_weight
        self.bandwidth = bandwidth
        self.min_ratio = min_ratio
        self.random_state = random_state

    def _values(self, task: AcquisitionTask) -> np.ndarray:
        w = self.summary_weight
        quality = (1.0 - w) * _buyer_likelihood(task, self.C)
        if w > 0:
            quality += w * np.clip(_label_agreement(task), 0.0, 1.0)
        return quality * np.exp(-_domain_distance(task) / self.bandwidth)


class EarlyStopStrategy(Strategy):
    """Early stop: buy in value order and stop when accuracy gains no longer pay for the money.

    Sellers are valued and ordered as by ``sample-value`` (same ``C``, ``summary_weight``,
    ``bandwidth`` and ``min_ratio``). A learning curve ``acc(n) = a - b * n ** -exponent`` is fitted
    by least squares to the accuracy of ``LogisticRegression(C=C)`` trained on random subsets
    of the buyer's labelled rows (5 sizes from a fifth to three quarters of them,
    ``n_repeats`` draws each) and tested on the rest. The budget is then spent in steps of
    ``step`` times the budget, in value order, each row counting as ``value / best value``
    rows of the buyer's own kind; buying stops before the first step whose predicted accuracy
    gain, times ``accuracy_weight``, is worth less than the share of the budget it costs times
    ``1 - accuracy_weight`` (the scorer's weights: 0.98 and 0.02). A curve flatter than
    ``min_slope`` (``b``) is no evidence either way: a hundred buyer rows cannot show how
    accuracy grows with thousands of bought ones, so the budget is then spent as by
    ``sample-value``; so it is with fewer than 10 buyer rows, or one class.
    Cost: ``5 * n_repeats`` fits on at most nb rows plus that of ``sample-value``.
    """

    _constraints: ClassVar[dict[str, _Constraint]] = {
        "accuracy_weight": _Float(0.0, 1.0),
        "step": _Float(0.0, 1.0, low_open=True),
        "n_repeats": _Int(1),
        "exponent": _Float(0.0, 2.0, low_open=True),
        "min_slope": _Float(0.0),
        **SampleValueStrategy._constraints,  # then the valuer's (sample-value)
    }

    def __init__(
        self,
        accuracy_weight: float = 0.98,
        step: float = 0.05,
        n_repeats: int = 5,
        exponent: float = 0.3,
        min_slope: float = 0.05,
        C: float = 1.0,
        summary_weight: float = 0.7,
        bandwidth: float = 0.05,
        min_ratio: float = 0.5,
        random_state: int | None = 0,
    ) -> None:
        self.accuracy_weight = accuracy_weight
        self.step = step
        self.n_repeats = n_repeats
        self.exponent = exponent
        self.min_slope = min_slope
        self.C = C
        self.summary_weight = summary_weight
        self.bandwidth = bandwidth
        self.min_ratio = min_ratio
        self.random_state = random_state

    @one_thread
    def purchase(self, task: AcquisitionTask) -> np.ndarray:
        self._validate_params()
        rng = np.random.default_rng(self.random_state)
        valuer = SampleValueStrategy(
            C=self.C,
            summary_weight=self.summary_weight,
            bandwidth=self.bandwidth,
            min_ratio=self.min_ratio,
        )
        value = valuer._values(task)
        wanted, order = _greedy_plan(task, value, self.min_ratio)
        curve = self.learning_curve(task, rng)
        if curve is None or curve[1] < self.min_slope or not order.size:
            return affordable_counts(task, wanted, order)
        a, b = curve
        unit = task.max_prices / task.rows
        top = float(value[order].max())
        weight = value / top if top > 0 else np.ones(task.n_sellers)
        bought = np.zeros(task.n_sellers)
        effective, spent = 0.0, 0.0
        chunk = self.step * task.budget
        gain_weight, cost_weight = self.accuracy_weight, 1.0 - self.accuracy_weight
        for s in order:
            while bought[s] < wanted[s]:
                rows = (
                    wanted[s] - bought[s]
                    if unit[s] == 0
                    else min(wanted[s] - bought[s], chunk / unit[s])
                )
                gain = self._curve(a, b, effective + rows * weight[s]) - self._curve(
                    a, b, effective
                )
                money = rows * unit[s]
                if task.budget > 0 and gain_weight * gain < cost_weight * money / task.budget:
                    return affordable_counts(task, bought, order, limit=spent)
                bought[s] += rows
                effective += rows * weight[s]
                spent += money
        return affordable_counts(task, bought, order, limit=spent)

    def learning_curve(
        self, task: AcquisitionTask, rng: np.random.Generator | int | None = None
    ) -> tuple[float, float] | None:
        """``(a, b)`` of ``acc(n) = a - b * n ** -exponent`` fitted on the buyer's rows, or None
        when there are fewer than 10 of them or one class."""
        self._validate_params()
        rng = np.random.default_rng(rng)
        x, y = task.x_buyer.astype(np.float64), task.y_buyer
        nb = len(y)
        if nb < 10 or len(np.unique(y)) < 2:
            return None
        sizes = np.unique(np.round(np.linspace(0.2, 0.75, 5) * nb).astype(np.int64))
        points: list[tuple[float, float]] = []
        for size in sizes:
            for _ in range(self.n_repeats):
                perm = rng.permutation(nb)
                train, test = perm[:size], perm[size:]
                model = fit_logistic(x[train], y[train], C=self.C, max_iter=100)
                if model is None:  # one class
                    accuracy = float(np.mean(y[test] == y[train][0]))
                else:
                    accuracy = float(np.mean(model.predict(x[test]) == y[test]))
                points.append((float(size) ** -self.exponent, accuracy))
        design = np.array([[1.0, -p] for p, _ in points])
        target = np.array([acc for _, acc in points])
        (a, b), *_ = np.linalg.lstsq(design, target, rcond=None)
        return float(min(a, 1.0)), float(max(b, 0.0))

    def _curve(self, a: float, b: float, n: float) -> float:
        """``a - b * n ** -exponent``, floored at 0 (nothing bought: 0)."""
        return 0.0 if n <= 0 else max(0.0, a - b * n**-self.exponent)


STRATEGIES: dict[str, type[Strategy]] = {
    "uniform": UniformStrategy,
    "proportional": ProportionalStrategy,
    "similarity": SimilarityStrategy,
    "sample-value": SampleValueStrategy,
    "early-stop": EarlyStopStrategy,
}


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
