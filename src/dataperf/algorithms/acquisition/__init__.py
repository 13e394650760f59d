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

from dataperf.algorithms.acquisition.market import (
    AcquisitionTask,
    SellerSummary,
    affordable_counts,
    seller_statistics,
    summarize,
)
from dataperf.algorithms.acquisition.strategies import (
    STRATEGIES,
    EarlyStopStrategy,
    ProportionalStrategy,
    SampleValueStrategy,
    SimilarityStrategy,
    Strategy,
    UniformStrategy,
)

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
