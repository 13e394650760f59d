"""Nested cross-validation over target and background subsets: the original DataPerf speech
baseline, generalised to any selection task.

The original (``selection/implementations/baseline_selection.py`` of
harvard-edge/dataperf-speech-example) spends 60% of the budget on target clips and 40% on
nontarget clips, draws 10 stratified target subsets and, for each, the same 10 nontarget
subsets, fits the frozen soft-voting ensemble on every pair (100 fits), scores macro F1 on the
clips the pair left out and keeps the best pair. :class:`NestedCVSelector` does the same on a
:class:`~dataperf.algorithms.selection.SelectionTask`, with caps so that it stays fast on large
pools and fallbacks so that it does not crash on degenerate ones.
"""

from __future__ import annotations

import warnings
from numbers import Integral
from typing import ClassVar

import numpy as np
from sklearn.ensemble import VotingClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.model_selection import ShuffleSplit, StratifiedShuffleSplit
from sklearn.svm import SVC
from threadpoolctl import threadpool_limits

from dataperf.algorithms._params import _Constraint, _Float, _Int, _Seed
from dataperf.algorithms.selection import (
    SelectionTask,
    Selector,
    _argmax_labels,
    _rows,
    _unique_examples,
)

__all__ = ["NestedCVSelector", "given_labels"]

_Split = tuple[np.ndarray, np.ndarray]


def given_labels(task: SelectionTask) -> np.ndarray:
    """Each pool row's given label: the argmax of ``weak_proba`` (for speech tasks the one-hot
    of the clip's extracted word), the known examples' labels where they are known."""
    labels = _argmax_labels(task.weak_proba)
    ex, ex_labels = _unique_examples(task)
    labels[ex] = ex_labels
    return labels


class NestedCVSelector(Selector):
    """Nested cross-validation of target and background subsets with the frozen ensemble (speech).

    Labels are the given ones (argmax of ``weak_proba``; known examples with their labels).
    Class ``background`` (0: the speech nontargets, the vision negatives) is the background;
    every other class is a target. ``int(budget * target_frac)`` rows go to the targets, the
    rest of the budget to the background (the original took ``int(budget * (1 - target_frac))``
    background rows, one fewer when both products round down; for budgets 25 and 60 the two
    agree). The outer loop draws ``n_folds`` target subsets with
    ``StratifiedShuffleSplit(train_size=...)``, the inner loop ``n_folds`` background subsets
    the same way, both with the same seed as in the original (so every outer subset meets the
    same background subsets); each pair trains the speech frozen model (the original
    baseline's soft-voting SVM + logistic regression, here seeded) and is scored by macro F1
    (``f1_score(average="macro")``) on the union of the rows both splits left out. The first
    pair with the highest score wins. An int ``random_state`` is the seed itself; otherwise a
    seed is drawn from it.

    Caps: the validation rows of a pair are the at most ``max_validation`` held-out rows
    first in one seeded random order of the pool (so pairs are compared on overlapping rows).
    When ``n_folds ** 2 * budget`` exceeds ``max_fit_rows`` both loops use
    ``floor(sqrt(max_fit_rows / budget))`` folds (at least 1): the default keeps the
    original's 100 fits for budgets up to 60 and 4 fits for a budget of 1,000. Cost: at most
    ``n_folds ** 2`` ensemble fits on ``budget`` rows, each predicting ``max_validation`` rows.

    Degenerate tasks: a group with fewer rows than its share is taken whole and the other group
    gets the rest of the budget (no background rows: the whole budget goes to the targets, and
    the other way round); a split that ``StratifiedShuffleSplit`` refuses (a class with a
    single row, fewer held-out rows than classes) is drawn by ``ShuffleSplit`` instead; a pair
    with one class only, or nothing held out, scores 0.
    """

    _constraints: ClassVar[dict[str, _Constraint]] = {
        "target_frac": _Float(0.0, 1.0),
        "n_folds": _Int(1),
        "background": _Int(0),
        "max_validation": _Int(1),
        "max_fit_rows": _Int(1),
        "random_state": _Seed(),
    }

    def __init__(
        self,
        target_frac: float = 0.6,
        n_folds: int = 10,
        background: int = 0,
        max_validation: int = 2_000,
        max_fit_rows: int = 6_000,
        random_state: int | None = 0,
    ) -> None:
        self.target_frac = target_frac
        self.n_folds = n_folds
        self.background = background
        self.max_validation = max_validation
        self.max_fit_rows = max_fit_rows
        self.random_state = random_state

    def _select(
        self, task: SelectionTask, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        if self.background >= task.n_classes:
            raise ValueError(
                self._param_message(
                    "background", f"an int in [0, {task.n_classes - 1}]", self.background
                )
            )
        state = self.random_state
        seed = int(state) if isinstance(state, Integral) else int(rng.integers(2**31 - 1))
        labels = given_labels(task)
        is_background = labels == self.background
        targets, background = np.flatnonzero(~is_background), np.flatnonzero(is_background)
        n_targets, n_background = _shares(
            task.budget, self.target_frac, len(targets), len(background)
        )
        if n_targets + n_background == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)

        folds = self.n_folds
        if folds**2 * task.budget > self.max_fit_rows:
            folds = max(1, int(np.sqrt(self.max_fit_rows / task.budget)))
        outer = _splits(labels[targets], n_targets, folds, seed)
        inner = _splits(labels[background], n_background, folds, seed)
        priority = np.random.default_rng(seed).random(task.n_items)

        best_score, best = -1.0, (outer[0][0], inner[0][0])
        with threadpool_limits(limits=1, user_api="blas"), warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            warnings.simplefilter("ignore", FutureWarning)  # SVC(probability=True)
            for t_train, t_val in outer:
                for b_train, b_val in inner:
                    train = np.concatenate([targets[t_train], background[b_train]])
                    held = np.concatenate([targets[t_val], background[b_val]])
                    if len(held) > self.max_validation:
                        order = np.argsort(priority[held], kind="stable")
                        held = held[order[: self.max_validation]]
                    score = _pair_score(task, labels, train, held, seed)
                    if score > best_score:
                        best_score, best = score, (t_train, b_train)
        rows = np.concatenate([targets[best[0]], background[best[1]]])
        return rows, labels[rows]


def _shares(budget: int, target_frac: float, n_targets: int, n_background: int) -> tuple[int, int]:
    """Rows for the targets and the background: ``int(budget * target_frac)`` and the rest,
    a group that is too small giving what it cannot take to the other."""
    want_targets = int(budget * target_frac)
    want_background = budget - want_targets
    if want_targets > n_targets:
        return n_targets, min(budget - n_targets, n_background)
    if want_background > n_background:
        return min(budget - n_background, n_targets), n_background
    return want_targets, want_background


def _splits(labels: np.ndarray, size: int, n_splits: int, seed: int) -> list[_Split]:
    """``n_splits`` (train, held-out) position pairs with ``size`` training rows, stratified
    by ``labels`` where ``StratifiedShuffleSplit`` can; one pair when nothing is left to vary."""
    n = len(labels)
    everything, nothing = np.arange(n), np.zeros(0, dtype=np.int64)
    if size <= 0:
        return [(nothing, everything)]
    if size >= n:
        return [(everything, nothing)]
    dummy = np.zeros((n, 1))
    try:
        splitter = StratifiedShuffleSplit(n_splits=n_splits, train_size=size, random_state=seed)
        return list(splitter.split(dummy, labels))
    except ValueError:  # a class with one row, or fewer held-out rows than classes
        plain = ShuffleSplit(n_splits=n_splits, train_size=size, random_state=seed)
        return list(plain.split(dummy))


def _pair_score(
    task: SelectionTask, labels: np.ndarray, train: np.ndarray, held: np.ndarray, seed: int
) -> float:
    """Macro F1 on ``held`` of the original baseline's ensemble (the speech frozen model's,
    seeded) fitted on ``train``; 0 when it cannot be."""
    if len(held) == 0 or len(np.unique(labels[train])) < 2:
        return 0.0
    model = VotingClassifier(estimators=[("svm", SVC(probability=True, random_state=seed)),
                                         ("lr", LogisticRegression(random_state=seed))],
                             voting="soft")
    model.fit(np.asarray(_rows(task.embeddings, train), dtype=np.float64), labels[train])
    pred = model.predict(np.asarray(_rows(task.embeddings, held), dtype=np.float64))
    return float(f1_score(labels[held], pred, average="macro", zero_division=0.0))
