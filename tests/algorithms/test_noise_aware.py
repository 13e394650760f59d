"""The noise-aware selector: the out-of-fold filter finds injected label flips, the budget is split
across classes as asked, k-medoids covers a class's modes, and bad parameters are named."""

from __future__ import annotations

import re

import numpy as np
import pytest

from dataperf.algorithms.noise_aware import (
    NoiseAwareSelector,
    k_medoids,
    kept_rows,
    out_of_fold_confidence,
)
from dataperf.algorithms.selection import SelectionTask


def _flipped_task(budget: int = 60, seed: int = 0) -> tuple[SelectionTask, np.ndarray]:
    """Six Gaussian classes (0 = background), one-hot given labels with ~15% flipped to another
    class; returns the task and the mask of flipped rows."""
    rng = np.random.default_rng(seed)
    n = 900
    truth = rng.integers(6, size=n)
    centres = rng.normal(0.0, 1.5, size=(6, 16))
    X = (centres[truth] + rng.normal(size=(n, 16))).astype(np.float16)
    given = truth.copy()
    flip = rng.random(n) < 0.15
    given[flip] = (truth[flip] + rng.integers(1, 6, size=int(flip.sum()))) % 6
    none = np.zeros(0, dtype=np.int64)
    return SelectionTask(X, np.eye(6, dtype=np.float32)[given], none, none, budget), flip


@pytest.fixture(scope="module")
def flipped() -> tuple[SelectionTask, np.ndarray]:
    return _flipped_task()


def test_filter_drops_the_flipped_rows_first(flipped: tuple[SelectionTask, np.ndarray]) -> None:
    task, flip = flipped
    labels = np.argmax(task.weak_proba, axis=1)
    X = task.embeddings.astype(np.float32)
    keep = kept_rows(X, labels, 6, np.random.default_rng(0), drop_fraction=0.2)
    dropped = ~keep
    assert abs(dropped.mean() - 0.2) < 0.01
    recall = (dropped & flip).sum() / flip.sum()
    precision = (dropped & flip).sum() / dropped.sum()
    assert recall > 0.85
    assert precision > 0.6  # 15% flipped, 20% dropped: at most 0.75
    confidence = out_of_fold_confidence(X, labels, 6, 5, np.random.default_rng(0))
    assert confidence[flip].mean() < 0.5 * confidence[~flip].mean()


def test_selection_avoids_flipped_rows_and_covers_every_class(
    flipped: tuple[SelectionTask, np.ndarray],
) -> None:
    task, flip = flipped
    selection = NoiseAwareSelector().select(task)
    assert len(selection.indices) == 60
    assert flip[selection.indices].mean() < 0.05
    # Background share 0.5: 30 background rows, 6 for each of the 5 other classes.
    assert np.bincount(selection.labels, minlength=6).tolist() == [30, 6, 6, 6, 6, 6]
    assert np.array_equal(selection.labels, np.argmax(task.weak_proba[selection.indices], axis=1))


def test_budget_split_follows_the_background_share(
    flipped: tuple[SelectionTask, np.ndarray],
) -> None:
    task, _ = flipped
    small = SelectionTask(task.embeddings, task.weak_proba, task.examples, task.example_labels, 25)
    counts = np.bincount(NoiseAwareSelector(background_share=0.4).select(small).labels)
    assert counts.tolist() == [10, 3, 3, 3, 3, 3]
    counts = np.bincount(NoiseAwareSelector(background_share=None).select(task).labels)
    assert counts.tolist() == [10] * 6
    counts = np.bincount(NoiseAwareSelector(size=12, background_share=0.0).select(task).labels)
    assert counts.tolist() == [0, 3, 3, 2, 2, 2]


def test_deterministic_and_seeded(flipped: tuple[SelectionTask, np.ndarray]) -> None:
    task, _ = flipped
    first = NoiseAwareSelector(random_state=4).select(task)
    again = NoiseAwareSelector(random_state=4).select(task)
    other = NoiseAwareSelector(random_state=5).select(task)
    assert np.array_equal(first.indices, again.indices)
    assert not np.array_equal(first.indices, other.indices)


def test_k_medoids_covers_every_mode() -> None:
    """Five blobs of very different sizes: five medoids, one in each (a uniform draw of five
    rows would almost surely miss the small blobs)."""
    rng = np.random.default_rng(0)
    sizes = [400, 200, 50, 20, 10]
    centres = rng.normal(0.0, 20.0, size=(5, 8))
    blob = np.repeat(np.arange(5), sizes)
    X = (centres[blob] + rng.normal(size=(len(blob), 8))).astype(np.float32)
    medoids = k_medoids(X, 5, np.random.default_rng(1))
    assert sorted(blob[medoids].tolist()) == [0, 1, 2, 3, 4]
    # Each medoid is central in its blob: closer to the blob's mean than most of its members.
    for m in medoids:
        members = X[blob == blob[m]]
        spread = np.linalg.norm(members - members.mean(axis=0), axis=1)
        assert np.linalg.norm(X[m] - members.mean(axis=0)) < np.median(spread)
    assert k_medoids(X[:4], 9, rng).tolist() == [0, 1, 2, 3]
    assert k_medoids(X, 0, rng).tolist() == []


def test_known_examples_are_kept_and_chosen_first(
    flipped: tuple[SelectionTask, np.ndarray],
) -> None:
    task, _ = flipped
    examples = np.flatnonzero(np.argmax(task.weak_proba, axis=1) == 3)[:4]
    with_examples = SelectionTask(
        task.embeddings, task.weak_proba, examples, np.full(4, 3), task.budget
    )
    selection = NoiseAwareSelector(drop_fraction=0.9).select(with_examples)
    assert set(examples.tolist()) <= set(selection.indices.tolist())


def test_small_classes_are_not_filtered() -> None:
    """A class with fewer rows than folds gets no out-of-fold confidence and stays whole."""
    task, _ = _flipped_task()
    labels = np.argmax(task.weak_proba, axis=1)
    labels[np.flatnonzero(labels == 5)[3:]] = 4
    proba = np.eye(6, dtype=np.float32)[labels]
    tiny = SelectionTask(task.embeddings, proba, task.examples, task.example_labels, 60)
    selection = NoiseAwareSelector(drop_fraction=0.5).select(tiny)
    assert np.count_nonzero(selection.labels == 5) == 3


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {"drop_fraction": -0.1},
            "The 'drop_fraction' parameter of NoiseAwareSelector must be a float in [0, 1]."
            " Got -0.1 instead.",
        ),
        (
            {"background_share": 1.5},
            "The 'background_share' parameter of NoiseAwareSelector must be a float in [0, 1]"
            " or None. Got 1.5 instead.",
        ),
        (
            {"C": 0.0},
            "The 'C' parameter of NoiseAwareSelector must be a float > 0. Got 0.0 instead.",
        ),
        (
            {"n_folds": 1},
            "The 'n_folds' parameter of NoiseAwareSelector must be an int >= 2. Got 1 instead.",
        ),
        (
            {"background": 6},
            "The 'background' parameter of NoiseAwareSelector must be an int in [0, 5]."
            " Got 6 instead.",
        ),
    ],
)
def test_bad_parameters_get_a_clear_message(
    params: dict[str, object], message: str, flipped: tuple[SelectionTask, np.ndarray]
) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        NoiseAwareSelector(**params).select(flipped[0])
