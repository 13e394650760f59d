"""The nested cross-validation selector (the original DataPerf speech baseline): its 60/40 split,
equality with a plain re-implementation of the original loop, its caps and degenerate tasks."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest
from sklearn.ensemble import VotingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.model_selection import StratifiedShuffleSplit
from sklearn.svm import SVC

from dataperf.algorithms.nested_cv import NestedCVSelector
from dataperf.algorithms.selection import SelectionTask


def _speech_task(
    budget: int = 25, n_rows: int = 240, seed: int = 0, background_rate: float = 0.5
) -> SelectionTask:
    """Six classes (0 = background), one-hot given labels, 15% of them wrong, no examples."""
    rng = np.random.default_rng(seed)
    truth = np.where(rng.random(n_rows) < background_rate, 0, rng.integers(1, 6, size=n_rows))
    centres = rng.normal(0.0, 2.0, size=(6, 12))
    X = (centres[truth] + rng.normal(size=(n_rows, 12))).astype(np.float16)
    given = truth.copy()
    flip = rng.random(n_rows) < 0.15
    given[flip] = rng.integers(6, size=int(flip.sum()))
    none = np.zeros(0, dtype=np.int64)
    return SelectionTask(X, np.eye(6, dtype=np.float32)[given], none, none, budget)


def _original_loop(task: SelectionTask, seed: int, n_folds: int) -> np.ndarray:
    """The original baseline's loop, written out plainly on the task's rows: the chosen rows."""
    labels = np.argmax(task.weak_proba, axis=1)
    X = task.embeddings.astype(np.float64)
    targets, nontargets = np.flatnonzero(labels > 0), np.flatnonzero(labels == 0)
    num_targets = int(task.budget * 0.6)
    nontarget_size = int(task.budget * (1 - 0.6))
    best_score, best = 0.0, None
    outer = StratifiedShuffleSplit(n_splits=n_folds, train_size=num_targets, random_state=seed)
    for t_train, t_val in outer.split(X[targets], labels[targets]):
        inner = StratifiedShuffleSplit(
            n_splits=n_folds, train_size=nontarget_size, random_state=seed
        )
        for n_train, n_val in inner.split(X[nontargets], labels[nontargets]):
            train = np.concatenate([targets[t_train], nontargets[n_train]])
            val = np.concatenate([targets[t_val], nontargets[n_val]])
            clf = VotingClassifier(
                estimators=[
                    ("svm", SVC(probability=True, random_state=seed)),
                    ("lr", LogisticRegression(random_state=seed)),
                ],
                voting="soft",
            )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                clf.fit(X[train], labels[train])
            score = f1_score(labels[val], clf.predict(X[val]), average="macro")
            if score > best_score:
                best_score, best = score, train
    assert best is not None
    return best


@pytest.mark.parametrize(("budget", "n_targets"), [(25, 15), (60, 36)])
def test_sixty_percent_targets_forty_background(budget: int, n_targets: int) -> None:
    task = _speech_task(budget=budget)
    selection = NestedCVSelector(n_folds=2).select(task)
    assert len(selection.indices) == budget
    assert np.count_nonzero(selection.labels > 0) == n_targets
    assert np.array_equal(selection.labels, np.argmax(task.weak_proba[selection.indices], axis=1))


def test_reproduces_the_original_loop() -> None:
    task = _speech_task(budget=25)
    chosen = NestedCVSelector(n_folds=3, random_state=7).select(task)
    assert sorted(chosen.indices.tolist()) == sorted(_original_loop(task, 7, 3).tolist())


def test_fit_cap_reduces_the_folds_of_both_loops() -> None:
    """n_folds ** 2 * budget > max_fit_rows: floor(sqrt(100 / 25)) = 2 folds, and the first
    splits of a seeded StratifiedShuffleSplit do not depend on how many follow."""
    task = _speech_task(budget=25)
    capped = NestedCVSelector(n_folds=10, max_fit_rows=100, random_state=3).select(task)
    plain = NestedCVSelector(n_folds=2, random_state=3).select(task)
    assert np.array_equal(capped.indices, plain.indices)


def test_validation_cap_still_selects_the_budget() -> None:
    task = _speech_task(budget=25, n_rows=600)
    selection = NestedCVSelector(n_folds=2, max_validation=50).select(task)
    assert len(selection.indices) == 25


def _relabelled(task: SelectionTask, labels: np.ndarray, budget: int) -> SelectionTask:
    proba = np.eye(6, dtype=np.float32)[labels]
    return SelectionTask(task.embeddings, proba, task.examples, task.example_labels, budget)


def test_degenerate_tasks_fall_back() -> None:
    base = _speech_task(n_rows=120)
    labels = np.argmax(base.weak_proba, axis=1)

    # A target class with a single row: StratifiedShuffleSplit refuses, ShuffleSplit steps in.
    single = labels.copy()
    single[single == 5] = 4
    single[np.flatnonzero(labels == 0)[0]] = 5
    selection = NestedCVSelector(n_folds=2).select(_relabelled(base, single, 25))
    assert len(selection.indices) == 25

    # No background rows: the whole budget goes to the targets.
    targets_only = np.where(labels == 0, 1, labels)
    selection = NestedCVSelector(n_folds=2).select(_relabelled(base, targets_only, 25))
    assert len(selection.indices) == 25
    assert selection.labels.min() >= 1

    # No target rows: the whole budget goes to the background (one class: nothing to score).
    selection = NestedCVSelector(n_folds=2).select(_relabelled(base, np.zeros(120, int), 25))
    assert len(selection.indices) == 25
    assert selection.labels.max() == 0

    # Fewer rows than the budget: every row.
    selection = NestedCVSelector(n_folds=2).select(_relabelled(base, labels, 500))
    assert sorted(selection.indices.tolist()) == list(range(120))

    # Only 3 target rows: all of them, the rest of the budget from the background.
    few = labels.copy()
    few[np.flatnonzero(labels > 0)[3:]] = 0
    selection = NestedCVSelector(n_folds=2).select(_relabelled(base, few, 25))
    assert np.count_nonzero(selection.labels > 0) == 3
    assert len(selection.indices) == 25


def test_known_examples_count_with_their_labels() -> None:
    task = _speech_task()
    examples = np.flatnonzero(np.argmax(task.weak_proba, axis=1) == 0)[:30]
    with_examples = SelectionTask(
        task.embeddings, task.weak_proba, examples, np.full(30, 2), task.budget
    )
    selection = NestedCVSelector(n_folds=2).select(with_examples)
    known = np.isin(selection.indices, examples)
    assert known.any()
    assert np.all(selection.labels[known] == 2)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {"target_frac": 1.5},
            "The 'target_frac' parameter of NestedCVSelector must be a float in [0, 1]."
            " Got 1.5 instead.",
        ),
        (
            {"n_folds": 0},
            "The 'n_folds' parameter of NestedCVSelector must be an int >= 1. Got 0 instead.",
        ),
        (
            {"max_validation": 0},
            "The 'max_validation' parameter of NestedCVSelector must be an int >= 1."
            " Got 0 instead.",
        ),
        (
            {"background": 6},
            "The 'background' parameter of NestedCVSelector must be an int in [0, 5]."
            " Got 6 instead.",
        ),
    ],
)
def test_bad_parameters_get_a_clear_message(params: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        NestedCVSelector(**params).select(_speech_task())
