"""The acquisition strategies, their base class, and :data:`STRATEGIES` by command-line
name."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from sklearn.base import BaseEstimator

from dataperf.algorithms._linear import fit_logistic
from dataperf.algorithms._params import _Constraint, _Float, _Int, _Seed, _Validated
from dataperf.algorithms._threads import one_thread
from dataperf.algorithms.acquisition.estimates import (
    buyer_likelihood,
    domain_distance,
    fill,
    greedy_plan,
    label_agreement,
)
from dataperf.algorithms.acquisition.market import AcquisitionTask, affordable_counts

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
    spend = fill(fraction * task.budget, weights, task.max_prices)
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
    """Base class: values the sellers by ``_values`` and buys by :func:`greedy_plan`."""

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
        return greedy_plan(task, self._values(task), self.min_ratio)


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
        agreement = np.maximum(label_agreement(task), 0.0)
        return agreement * np.exp(-domain_distance(task) / self.bandwidth)


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
        quality = (1.0 - w) * buyer_likelihood(task, self.C)
        if w > 0:
            quality += w * np.clip(label_agreement(task), 0.0, 1.0)
        return quality * np.exp(-domain_distance(task) / self.bandwidth)


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
        wanted, order = greedy_plan(task, value, self.min_ratio)
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
