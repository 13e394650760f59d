"""Estimates the strategies share: how close each seller is to the buyer's data and labels,
and greedy plans over them."""

from __future__ import annotations

import numpy as np

from dataperf.algorithms._linear import fit_logistic
from dataperf.algorithms.acquisition.market import AcquisitionTask, SellerSummary


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


def domain_distance(task: AcquisitionTask) -> np.ndarray:
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


def label_agreement(task: AcquisitionTask) -> np.ndarray:
    """(S,) projection of each seller's feature-label correlations on the buyer's: about 1 for
    a seller whose labels relate to the features as the buyer's do, less for noisy labels,
    about 0 (or below) for labels unrelated (or opposed) to the buyer's."""
    buyer = _label_correlation(task.x_buyer, task.y_buyer)
    norm = float(buyer @ buyer)
    if norm == 0:
        return np.ones(task.n_sellers)
    return np.array([s.label_correlation @ buyer / norm for s in task.sellers])


def buyer_likelihood(task: AcquisitionTask, C: float) -> np.ndarray:
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


def greedy_plan(
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


def fill(money: float, weights: np.ndarray, caps: np.ndarray) -> np.ndarray:
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
