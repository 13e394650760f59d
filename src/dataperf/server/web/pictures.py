"""Each kind's own picture of a submission: for selection, the selected rows on a 2-D
projection of the pool and the class balance per task; for acquisition, the rows bought from
each seller; for cleaning, test accuracy as labels are fixed."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from dataperf.challenge import Challenge
from dataperf.editions import Edition
from dataperf.exceptions import DataPerfError
from dataperf.server.platform import LRU
from dataperf.server.web import charts

BACKGROUND = 1500  # pool points drawn behind the selection
_layouts = LRU(8)


@dataclass(frozen=True)
class Picture:
    title: str
    svg: str


def _layout(challenge: Any, edition: Edition) -> tuple[np.ndarray, dict[str, Any]]:
    """The pool on its first two principal components, and each keyword task's candidates
    (:class:`~dataperf.kinds.selection_tables.Candidates`, with their pool rows); computed once per
    edition, from one read of the pool."""
    from dataperf.kinds.selection_tables import load_candidates, load_pool

    def compute() -> tuple[np.ndarray, dict[str, Any]]:
        pool = load_pool(edition)
        x = pool.embeddings.astype(np.float32)
        x = x - x.mean(axis=0)
        _, _, vt = np.linalg.svd(x[:: max(1, len(x) // 5000)], full_matrices=False)
        candidates = {}
        if challenge.spec.keywords:
            candidates = {task: (found, found.positions(pool)) for task, found in
                          load_candidates(edition, challenge.spec.classes[0]).items()}
        return x @ vt[:2].T, candidates

    layout: tuple[np.ndarray, dict[str, Any]] = _layouts.get(edition.content_hash, compute)
    return layout


def cleaning_pictures(mine: dict[str, list[float]],
                      references: dict[str, dict[str, list[float]]]) -> list[Picture]:
    """Per task: test accuracy as labels are fixed in this order, against references (the
    random baseline and the best entry), over the share of rows fixed."""
    out = []
    for task, curve in mine.items():
        series = [("this submission", curve)]
        series += [(name, found[task]) for name, found in references.items() if task in found]
        out.append(Picture(f"{task}: test accuracy as labels are fixed in order",
                           charts.curves(series)))
    return out


def pictures(challenge: Challenge, edition: Edition, files: dict[str, bytes]) -> list[Picture]:
    """The kind's picture made from the submitted files (selection, acquisition); cleaning
    shows its curves instead."""
    draw = _DRAWINGS.get(challenge.kind)
    if draw is None or not files:
        return []
    try:
        submission: Any = challenge.parse_submission(files, edition)
    except DataPerfError:
        return []
    return draw(challenge, edition, submission)


def _selections(challenge: Any, edition: Edition, submission: Any) -> list[Picture]:
    """Per task: the selected rows on the pool's projection (keyword tasks: on the task's
    candidates, targets green), and the class balance."""
    points, candidates = _layout(challenge, edition)
    keywords = challenge.spec.keywords
    out = []
    for task, selection in submission.selections.items():
        classes, background = challenge.spec.classes, np.arange(len(points))
        if keywords:  # on the task's candidates
            found, background = candidates[task]
            classes = found.classes
        rng = np.random.default_rng(0)
        keep = np.zeros(len(points), dtype=bool)
        keep[rng.choice(background, size=min(BACKGROUND, len(background)), replace=False)] = True
        keep[selection.indices] = True
        picked = np.zeros(len(points), dtype=bool)
        picked[selection.indices] = True
        rows = np.flatnonzero(keep)
        labels = np.zeros(len(points), dtype=np.int64)
        labels[selection.indices] = np.minimum(selection.labels, 1)
        counts = np.bincount(selection.labels, minlength=len(classes))
        names = ("a nontarget word", "a target word") if keywords else ("label 0", "label 1")
        on = "the task's candidates" if keywords else "the pool"
        out.append(Picture(
            f"{task}: {len(selection.indices):,} rows selected on the first two principal "
            f"components of {on}, and the class balance",
            charts.scatter(points[rows], picked[rows], labels[rows][picked[rows]])
            + charts.legend([("pool", "not selected"), ("pick0", f"selected, {names[0]}"),
                             ("pick1", f"selected, {names[1]}")])
            + charts.bars([(c if keywords else f"label {c}", int(n))
                           for c, n in zip(classes, counts, strict=True)],
                          colours=[f"pick{min(i, 1)}" for i in range(len(classes))])))
    return out


def _purchases(challenge: Any, edition: Edition, submission: Any) -> list[Picture]:
    """Per market: the rows bought from each seller bought from, and their cost."""
    terms = challenge.market_terms(edition)
    out = []
    for market, counts in submission.purchases.items():
        found = terms[market]
        bought = [(f"seller {s}", int(k)) for s, k in enumerate(counts) if k > 0]
        out.append(Picture(
            f"market {market}: {int(sum(counts)):,} rows from "
            f"{int(np.count_nonzero(counts))} of {found.sellers} sellers for "
            f"{found.cost(counts):,.1f} of a budget of {found.budget:,.1f}",
            charts.bars(bought)))
    return out


# The picture each kind draws from its parsed submission (cleaning draws curves instead).
_DRAWINGS: dict[str, Callable[[Any, Edition, Any], list[Picture]]] = {
    "selection": _selections, "acquisition": _purchases}
