"""An acquisition budget's arithmetic: what a purchase costs, and whether it fits the budget.
The acquisition kind checks submissions with it and the acquisition algorithms plan with it,
so both agree to the last rounding."""

from __future__ import annotations

import math

import numpy as np

BUDGET_TOLERANCE = 1e-9


def purchase_cost(max_prices: np.ndarray, rows: np.ndarray, counts: np.ndarray) -> float:
    """Sum over sellers of ``max_prices * counts / rows``, exactly rounded (so the same counts
    cost the same wherever they are checked, whatever the order of the sum)."""
    prices = np.asarray(max_prices, np.float64) * np.asarray(counts, np.float64)
    return math.fsum((prices / np.asarray(rows, np.float64)).tolist())


def within_budget(cost: float, budget: float, rtol: float = BUDGET_TOLERANCE) -> bool:
    """Whether ``cost`` fits ``budget``: spending it exactly is allowed whatever the rounding."""
    return cost <= budget * (1.0 + rtol)
