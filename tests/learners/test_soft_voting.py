"""The soft-voting frozen model fitted for many seeds at once equals the ensemble refitted per
seed, prediction for prediction, and libsvm's probabilities are reproduced bit for bit."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dataperf.exceptions import SpecError
from dataperf.learners.frozen import make_model, predict_seeds, train_and_predict
from dataperf.learners.soft_voting import libsvm_probabilities

SEEDS = [5, 69, 98, 70, 95, 64, 37, 11, 4, 32]


def blobs(seed: int, n: int, d: int, labels: list[int], n_test: int = 300,
          spread: float = 2.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(max(labels) + 1, d))
    y = np.array([labels[i % len(labels)] for i in range(n)])
    x = centres[y] + rng.normal(size=(n, d)) * spread
    y_test = rng.choice(labels, n_test)
    x_test = centres[y_test] + rng.normal(size=(n_test, d)) * spread
    return x.astype(np.float16), y, x_test.astype(np.float16)


def one_by_one(params, x, y, x_test, seeds):
    """The original procedure: the VotingClassifier built and fitted anew for every seed, on
    float32 vectors (as the original read them from parquet)."""
    out = []
    for seed in seeds:
        model = make_model("svc_lr_soft_voting", params, seed=seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(np.asarray(x, dtype=np.float32), y)
        out.append(model.predict(np.asarray(x_test, dtype=np.float32)))
    return out


@pytest.mark.parametrize(("n", "d", "labels"), [
    (25, 16, [0, 1, 2, 3, 4, 5]),
    (60, 96, [0, 1, 2, 3, 4, 5]),
    (12, 8, [0, 3]),            # two classes: libsvm's binary branch
    (40, 32, [0, 2, 5]),        # classes missing from the training set
])
def test_batched_seeds_equal_the_ensemble_refitted_per_seed(n, d, labels):
    x, y, x_test = blobs(n + d, n, d, labels)
    batched = predict_seeds("svc_lr_soft_voting", {}, x, y, x_test, seeds=SEEDS)
    for got, want in zip(batched, one_by_one({}, x, y, x_test, SEEDS), strict=True):
        assert np.array_equal(got.labels, want)


def test_a_seed_dependent_solver_is_refitted_per_seed():
    x, y, x_test = blobs(3, 30, 12, [0, 1, 2])
    params = {"lr": {"solver": "saga", "max_iter": 50}}
    batched = predict_seeds("svc_lr_soft_voting", params, x, y, x_test, seeds=SEEDS[:3])
    for got, want in zip(batched, one_by_one(params, x, y, x_test, SEEDS[:3]), strict=True):
        assert np.array_equal(got.labels, want)


def test_other_models_fall_back_to_one_fit_per_seed():
    x, y, x_test = blobs(4, 30, 12, [0, 1])
    batched = predict_seeds("logistic_regression", {}, x, y, x_test, seeds=[0, 1])
    single = train_and_predict("logistic_regression", {}, x, y, x_test, seed=1)
    assert np.array_equal(batched[1].labels, single.labels)


def test_bad_parameters_are_a_spec_error():
    x, y, x_test = blobs(5, 20, 4, [0, 1])
    with pytest.raises(SpecError, match="svc_lr_soft_voting"):
        predict_seeds("svc_lr_soft_voting", {"trees": 3}, x, y, x_test, seeds=[0])


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), k=st.integers(2, 6), n=st.integers(12, 40),
       spread=st.floats(0.2, 5.0))
def test_probabilities_equal_libsvm_bit_for_bit(seed, k, n, spread):
    from sklearn.svm import SVC

    x, y, x_test = blobs(seed, n, 6, list(range(k)), n_test=80, spread=spread)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        svm = SVC(probability=True, random_state=seed % 1000).fit(np.float64(x), y)
    x_test = np.float64(x_test)
    mine = libsvm_probabilities(svm._dense_decision_function(x_test), svm._probA, svm._probB)
    assert np.array_equal(mine, svm.predict_proba(x_test))


def test_decision_values_in_blocks_equal_libsvms_own_bit_for_bit() -> None:
    from sklearn.svm import SVC

    from dataperf.learners.soft_voting import _DECISION_ROWS, _decision_values

    rng = np.random.default_rng(3)
    x = rng.normal(size=(60, 8)).astype(np.float32)
    y = np.arange(60) % 3
    svm = SVC(probability=True, random_state=0).fit(x, y)
    x_test = rng.normal(size=(2 * _DECISION_ROWS + 17, 8)).astype(np.float32)
    expected = svm._dense_decision_function(x_test)
    assert np.array_equal(_decision_values(svm, x_test), expected)
