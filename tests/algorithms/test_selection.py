"""Participant-side selection algorithms: the contract every selector keeps, quality against the
class-balanced random baseline on synthetic data, the geometric primitives against
straightforward references, and memory safety on a large pool."""

from __future__ import annotations

import re
import time
import tracemalloc
from collections.abc import Callable

import numpy as np
import pytest
from scipy import sparse

from dataperf.algorithms._neighbors import (
    facility_location,
    farthest_point_sampling,
    knn_similarity_graph,
)
from dataperf.algorithms.selection import (
    FPSCVSelector,
    PseudoLabelSelector,
    RandomSelector,
    Selection,
    SelectionTask,
    _allocate,
    _example_anchored,
    _prior_matched,
    make_synthetic_task,
    score_selection,
)
from dataperf.algorithms.selectors import SELECTORS

NAMES = sorted(SELECTORS)


def _binary_task(budget: int = 150, seed: int = 0) -> SelectionTask:
    task, _, _ = make_synthetic_task(3_000, 32, budget=budget, n_test=10, random_state=seed)
    # Coarse confidences create ties, so even tie-breaking depends on the seed.
    proba = np.round(task.weak_proba.astype(np.float64), 1).astype(np.float32)
    return SelectionTask(task.embeddings, proba, task.examples, task.example_labels, budget)


def _multiclass_task(n_classes: int = 4, budget: int = 120) -> SelectionTask:
    rng = np.random.default_rng(1)
    truth = rng.integers(n_classes, size=2_000)
    centres = rng.normal(0.0, 3.0, size=(n_classes, 16))
    X = (centres[truth] + rng.normal(size=(2_000, 16))).astype(np.float16)
    logits = 2.0 * np.eye(n_classes)[truth] + rng.normal(size=(2_000, n_classes))
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    # Five examples per class but the last: those classes get example-anchored models.
    examples = np.concatenate(
        [np.flatnonzero(truth == c)[: 5 if c < n_classes - 1 else 2] for c in range(n_classes)]
    )
    return SelectionTask(X, proba.astype(np.float32), examples, truth[examples], budget)


@pytest.fixture(scope="module")
def binary_task() -> SelectionTask:
    return _binary_task()


@pytest.fixture(scope="module")
def multiclass_task() -> SelectionTask:
    return _multiclass_task()


def _check_valid(selection: Selection, task: SelectionTask) -> None:
    assert isinstance(selection, Selection)
    assert selection.indices.dtype == np.int64
    assert selection.labels.dtype == np.int64
    assert selection.indices.shape == selection.labels.shape
    assert selection.indices.ndim == 1
    assert 0 < len(selection.indices) <= task.budget
    assert len(np.unique(selection.indices)) == len(selection.indices)
    assert selection.indices.min() >= 0
    assert selection.indices.max() < task.n_items
    assert selection.labels.min() >= 0
    assert selection.labels.max() < task.n_classes


def _same(a: Selection, b: Selection) -> bool:
    return np.array_equal(a.indices, b.indices) and np.array_equal(a.labels, b.labels)


# ------------------------------------------------------------------------------------ contract


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("kind", ["binary", "multiclass"])
def test_output_is_a_valid_selection(name: str, kind: str, request: pytest.FixtureRequest) -> None:
    task = request.getfixturevalue(f"{kind}_task")
    selection = SELECTORS[name]().select(task)
    _check_valid(selection, task)
    assert len(np.unique(selection.labels)) == task.n_classes


@pytest.mark.parametrize("name", NAMES)
def test_deterministic_for_a_seed(name: str, binary_task: SelectionTask) -> None:
    first = SELECTORS[name](random_state=3).select(binary_task)
    again = SELECTORS[name](random_state=3).select(binary_task)
    assert _same(first, again)


@pytest.mark.parametrize("name", NAMES)
def test_seeds_change_the_random_choices(name: str, binary_task: SelectionTask) -> None:
    selections = [SELECTORS[name](random_state=s).select(binary_task) for s in range(3)]
    assert not all(_same(selections[0], other) for other in selections[1:])


@pytest.mark.parametrize("name", NAMES)
def test_budget_is_respected(name: str) -> None:
    task = _binary_task(budget=7)
    selection = SELECTORS[name]().select(task)
    _check_valid(selection, task)


@pytest.mark.parametrize("name", NAMES)
def test_zero_budget_selects_nothing(name: str) -> None:
    task = _binary_task(budget=0)
    selection = SELECTORS[name]().select(task)
    assert selection.indices.shape == (0,)
    assert selection.labels.shape == (0,)


@pytest.mark.parametrize("name", NAMES)
def test_without_examples_or_weak_labels(name: str, binary_task: SelectionTask) -> None:
    """No examples and an uninformative annotator (the layer fills 1/C when it has none)."""
    uniform = np.full_like(binary_task.weak_proba, 0.5)
    empty = np.zeros(0, dtype=np.int64)
    task = SelectionTask(binary_task.embeddings, uniform, empty, empty, 40)
    selection = SELECTORS[name]().select(task)
    assert len(selection.indices) <= 40
    if len(selection.indices):
        _check_valid(selection, task)


@pytest.mark.parametrize("name", [n for n in NAMES if n != "random"])
def test_known_examples_keep_their_labels(name: str, multiclass_task: SelectionTask) -> None:
    selection = SELECTORS[name]().select(multiclass_task)
    known = dict(
        zip(multiclass_task.examples.tolist(), multiclass_task.example_labels.tolist(), strict=True)
    )
    for index, label in zip(selection.indices.tolist(), selection.labels.tolist(), strict=True):
        if index in known:
            assert label == known[index]


@pytest.mark.parametrize("name", NAMES)
def test_follows_the_scikit_learn_contract(name: str, check_contract: Callable) -> None:
    check_contract(name, SELECTORS[name], max_summary=None)


BAD_PARAMETERS = [
    (
        "random",
        "size",
        0,
        "The 'size' parameter of RandomSelector must be an int >= 1 or None. Got 0 instead.",
    ),
    (
        "random",
        "random_state",
        -1,
        "The 'random_state' parameter of RandomSelector must be an int >= 0, a numpy Generator"
        " or None. Got -1 instead.",
    ),
    (
        "confidence",
        "class_mix",
        "even",
        "The 'class_mix' parameter of ConfidenceSelector must be 'balanced', 'prior', 'sqrt' or"
        " a sequence of non-negative per-class weights with a positive sum. Got 'even' instead.",
    ),
    (
        "confidence",
        "class_mix",
        [1.0, 1.0, 1.0],
        "The 'class_mix' parameter of ConfidenceSelector must be a sequence of 2 weights (one per"
        " class). Got [1.0, 1.0, 1.0] instead.",
    ),
    (
        "fps-cv",
        "n_per_class",
        0,
        "The 'n_per_class' parameter of FPSCVSelector must be an int >= 1. Got 0 instead.",
    ),
    (
        "fps-cv",
        "n_folds",
        2.5,
        "The 'n_folds' parameter of FPSCVSelector must be an int >= 1. Got 2.5 instead.",
    ),
    (
        "uncertainty",
        "trusted_fraction",
        0.0,
        "The 'trusted_fraction' parameter of UncertaintySelector must be a float in (0, 1]."
        " Got 0.0 instead.",
    ),
    (
        "facility-location",
        "n_neighbors",
        True,
        "The 'n_neighbors' parameter of FacilityLocationSelector must be an int >= 1."
        " Got True instead.",
    ),
    (
        "pseudo-label",
        "boundary_fraction",
        1.5,
        "The 'boundary_fraction' parameter of PseudoLabelSelector must be a float in [0, 1]."
        " Got 1.5 instead.",
    ),
    (
        "pseudo-label",
        "boundary_oversample",
        0.5,
        "The 'boundary_oversample' parameter of PseudoLabelSelector must be a float >= 1."
        " Got 0.5 instead.",
    ),
    (
        "pseudo-label",
        "n_folds",
        1,
        "The 'n_folds' parameter of PseudoLabelSelector must be an int >= 2. Got 1 instead.",
    ),
]


@pytest.mark.parametrize(("name", "param", "value", "message"), BAD_PARAMETERS)
def test_bad_parameters_get_a_clear_message(
    name: str, param: str, value: object, message: str, binary_task: SelectionTask
) -> None:
    selector = SELECTORS[name](**{param: value})  # the constructor only stores
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        selector.select(binary_task)


@pytest.mark.parametrize("name", NAMES)
def test_every_int_parameter_is_checked(name: str, binary_task: SelectionTask) -> None:
    """The message names the parameter and the class, whatever the parameter."""
    selector = SELECTORS[name]()
    for param, value in selector.get_params().items():
        if isinstance(value, int) and not isinstance(value, bool):
            bad = SELECTORS[name](**{param: "many"})
            pattern = rf"^The '{param}' parameter of {type(selector).__name__} must be .*\."
            with pytest.raises(ValueError, match=pattern + r" Got 'many' instead\.$"):
                bad.select(binary_task)


def test_selection_task_checks_its_data() -> None:
    X = np.zeros((5, 3), dtype=np.float32)
    proba = np.full((5, 2), 0.5, dtype=np.float32)
    none = np.zeros(0, dtype=np.int64)
    with pytest.raises(ValueError, match="weak_proba must have shape"):
        SelectionTask(X, proba[:4], none, none, 3)
    with pytest.raises(ValueError, match="examples must be pool row indices"):
        SelectionTask(X, proba, np.array([5]), np.array([1]), 3)
    with pytest.raises(ValueError, match="example_labels must be class indices"):
        SelectionTask(X, proba, np.array([0]), np.array([2]), 3)
    with pytest.raises(ValueError, match="budget must be an int >= 0"):
        SelectionTask(X, proba, none, none, -1)
    assert SelectionTask(X, proba, none, none, 3).n_classes == 2


def test_random_baseline_is_class_balanced_on_weak_labels(binary_task: SelectionTask) -> None:
    selection = RandomSelector(size=100).select(binary_task)
    assert len(selection.indices) == 100
    assert np.bincount(selection.labels).tolist() == [50, 50]
    weak = np.argmax(binary_task.weak_proba[selection.indices], axis=1)
    assert np.array_equal(selection.labels, weak)


def test_allocate_splits_by_weight_within_capacity() -> None:
    assert _allocate(10, np.array([1.0, 1.0]), np.array([100, 100])).tolist() == [5, 5]
    assert _allocate(10, np.array([1.0, 1.0]), np.array([3, 100])).tolist() == [3, 7]
    assert _allocate(10, np.array([1.0, 3.0]), np.array([100, 100])).tolist() == [3, 7]
    assert _allocate(10, np.array([1.0, 0.0]), np.array([4, 100])).tolist() == [4, 0]


@pytest.mark.parametrize("n_classes", [2, 5])
def test_prior_matching_hits_the_class_frequencies(n_classes: int) -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(20_000, n_classes)) + np.linspace(0.0, 2.0, n_classes)
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    priors = np.linspace(1.0, 2.0, n_classes)
    priors /= priors.sum()
    labels = _prior_matched(proba, priors)
    frequencies = np.bincount(labels, minlength=n_classes) / len(labels)
    assert np.allclose(frequencies, priors, atol=0.01)


def test_known_examples_undo_a_look_alike_confusion() -> None:
    """The annotator rates a look-alike cluster almost as high as the concept; the examples
    (all from the concept) pull the estimated frequency and the ranking back."""
    rng = np.random.default_rng(0)
    sizes = {"concept": 500, "look-alike": 500, "other": 4000}
    centres = {"concept": np.eye(16)[0] * 4, "look-alike": np.eye(16)[1] * 4, "other": 0.0}
    means = {"concept": 0.8, "look-alike": 0.6, "other": 0.05}
    X = np.concatenate([rng.normal(size=(n, 16)) + centres[k] for k, n in sizes.items()]).astype(
        np.float32
    )
    truth = np.repeat([1, 0, 0], list(sizes.values()))
    look_alike = np.repeat([False, True, False], list(sizes.values()))
    confidence = np.concatenate(
        [np.clip(rng.normal(means[k], 0.15, size=n), 0.0, 1.0) for k, n in sizes.items()]
    )
    examples = rng.choice(np.flatnonzero(truth == 1), size=20, replace=False)
    order = np.r_[np.setdiff1d(np.arange(len(X)), examples), examples]
    proba = np.stack([1.0 - confidence, confidence], axis=1)[order]
    scores, priors = _example_anchored(X[order], proba, np.ones(20, dtype=np.int64), rng)
    assert priors[1] < 0.8 * proba[:, 1].mean()
    assert priors.sum() == pytest.approx(1.0)
    top_weak = np.argsort(-proba[:, 1])[:500]
    top_fixed = np.argsort(-scores[:, 1])[:500]
    assert look_alike[order][top_fixed].sum() < 0.5 * look_alike[order][top_weak].sum()


# ------------------------------------------------------------------------------------ quality


@pytest.fixture(scope="module")
def quality_tasks() -> list[tuple[SelectionTask, np.ndarray, np.ndarray]]:
    return [make_synthetic_task(20_000, 64, budget=1000, random_state=seed) for seed in range(3)]


def test_pseudo_labelling_beats_random_on_every_task(
    quality_tasks: list[tuple[SelectionTask, np.ndarray, np.ndarray]],
) -> None:
    gains = []
    for task, X_test, y_test in quality_tasks:
        base = score_selection(RandomSelector().select(task), task, X_test, y_test)
        score = score_selection(PseudoLabelSelector().select(task), task, X_test, y_test)
        gains.append(score - base)
    assert min(gains) > 0.0
    assert np.mean(gains) > 0.10


@pytest.mark.parametrize("name", ["uncertainty", "facility-location", "confidence"])
def test_other_methods_beat_random_on_average(
    name: str, quality_tasks: list[tuple[SelectionTask, np.ndarray, np.ndarray]]
) -> None:
    gains = []
    for task, X_test, y_test in quality_tasks:
        base = score_selection(RandomSelector().select(task), task, X_test, y_test)
        score = score_selection(SELECTORS[name]().select(task), task, X_test, y_test)
        gains.append(score - base)
    assert np.mean(gains) > 0.05


# ------------------------------------------------------------------------------------ primitives


def _reference_fps(X: np.ndarray, n_points: int, start: int) -> np.ndarray:
    """Textbook farthest-point sampling in float64: distance to every chosen point, every step."""
    X = X.astype(np.float64)
    chosen = [start]
    while len(chosen) < n_points:
        dist = np.min(((X[:, None, :] - X[chosen][None, :, :]) ** 2).sum(axis=2), axis=1)
        dist[chosen] = -1.0
        chosen.append(int(np.argmax(dist)))
    return np.array(chosen)


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_fps_matches_the_reference(dtype: type) -> None:
    X = np.random.default_rng(0).normal(size=(700, 8)).astype(dtype)
    fast = farthest_point_sampling(X, 60, start=11, block_rows=128)
    assert np.array_equal(fast, _reference_fps(X, 60, 11))


def test_fps_returns_unique_points_even_with_duplicates() -> None:
    X = np.repeat(np.eye(3, dtype=np.float32), 4, axis=0)
    chosen = farthest_point_sampling(X, 12)
    assert sorted(chosen.tolist()) == list(range(12))
    assert len(farthest_point_sampling(X, 50)) == 12


def _reference_greedy(graph: sparse.csr_matrix, n_select: int) -> list[int]:
    dense = graph.toarray()
    cover = np.zeros(len(dense))
    chosen: list[int] = []
    for _ in range(n_select):
        gains = np.maximum(dense - cover[:, None], 0.0).sum(axis=0)
        gains[chosen] = -1.0
        best = int(np.argmax(gains))
        chosen.append(best)
        cover = np.maximum(cover, dense[:, best])
    return chosen


def test_lazy_facility_location_matches_plain_greedy() -> None:
    X = np.random.default_rng(2).normal(size=(300, 5)).astype(np.float32)
    graph = knn_similarity_graph(X, 8)
    assert graph.shape == (300, 300)
    assert graph.nnz <= 300 * 9
    assert np.allclose(graph.diagonal(), 1.0)
    assert facility_location(graph, 25).tolist() == _reference_greedy(graph, 25)


def test_facility_location_skips_initial_rows() -> None:
    graph = knn_similarity_graph(np.random.default_rng(3).normal(size=(100, 4)), 5)
    chosen = facility_location(graph, 10, initial=np.array([0, 1, 2]))
    assert not set(chosen.tolist()) & {0, 1, 2}
    assert len(chosen) == 10


def test_fps_cv_subsets_have_the_requested_sizes(binary_task: SelectionTask) -> None:
    selection = FPSCVSelector(n_per_class=4, n_background=12, n_fps=200).select(binary_task)
    assert sorted(np.bincount(selection.labels, minlength=2).tolist()) == [4, 12]


# ------------------------------------------------------------------------------------ memory


@pytest.fixture(scope="module")
def large_task() -> SelectionTask:
    rng = np.random.default_rng(0)
    n, d = 200_000, 64
    X = np.empty((n, d), dtype=np.float16)
    for lo in range(0, n, 50_000):
        X[lo : lo + 50_000] = rng.normal(size=(50_000, d))
    confidence = 1.0 / (1.0 + np.exp(-(X[:, 0].astype(np.float32) * 2.0 - 3.0)))
    proba = np.stack([1.0 - confidence, confidence], axis=1).astype(np.float32)
    examples = np.argsort(-X[:, 0].astype(np.float32))[:20].astype(np.int64)
    return SelectionTask(X, proba, examples, np.ones(20, dtype=np.int64), 1000)


@pytest.mark.parametrize("name", NAMES)
def test_large_pool_memory_stays_small(name: str, large_task: SelectionTask) -> None:
    """200,000 x 64 rows: one dense N x N float32 matrix would be 160 GB; the selectors must stay
    within a few times the pool itself (25.6 MB in float16)."""
    tracemalloc.start()
    try:
        started = time.perf_counter()
        selection = SELECTORS[name]().select(large_task)
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    _check_valid(selection, large_task)
    assert peak < 250 * 2**20, f"{name} peaked at {peak / 2**20:.0f} MiB"
    assert elapsed < 60.0
