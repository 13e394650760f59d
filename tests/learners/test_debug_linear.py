"""The vision cleaning frozen model: batched curve (fused optimizer) against one-by-one training
(plain numpy operations), duplicate prefixes skipped, and (when torch is installed) initial
weights, trained weights and predictions against the original PyTorch procedure."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from dataperf.learners import debug_linear
from dataperf.learners.debug_linear import cleaning_curve, initial_weights, train, train_many


def make_data(
    n: int, dim: int, n_test: int, *, noise: float = 0.3, seed: int = 0
) -> tuple[np.ndarray, ...]:
    """Two Gaussian classes, a fraction ``noise`` of the training labels flipped."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n + n_test)
    mean = rng.normal(size=dim)
    mean *= 0.6 / np.linalg.norm(mean)
    x = (rng.normal(size=(n + n_test, dim)) / np.sqrt(dim) + np.outer(2 * labels - 1, mean)) * 3
    y = labels[:n]
    noisy = np.where(rng.random(n) < noise, 1 - y, y)
    order = rng.permutation(n)
    return x[:n].astype(np.float32), noisy, y, order, x[n:].astype(np.float32), labels[n:]


def one_by_one(x, noisy, true, order, x_test, y_test) -> tuple[np.ndarray, np.ndarray]:
    labels = noisy.copy()
    correct = []
    for k in range(len(order) + 1):
        if k:
            labels[order[k - 1]] = true[order[k - 1]]
        correct.append(train(x, labels, fused=False).predict(x_test) == y_test)
    stacked = np.array(correct)
    return stacked.mean(axis=1), stacked


@pytest.mark.parametrize(("n", "dim"), [(40, 16), pytest.param(300, 64, marks=pytest.mark.slow)])
def test_batched_curve_equals_one_by_one(n: int, dim: int) -> None:
    x, noisy, true, order, x_test, y_test = make_data(n, dim, 200)
    curve = cleaning_curve(x, noisy, true, order, x_test, y_test)
    accuracy, correct = one_by_one(x, noisy, true, order, x_test, y_test)
    assert curve.accuracy.dtype == np.float64
    assert curve.accuracy.shape == (n + 1,)
    assert curve.correct.shape == (n + 1, 200)
    np.testing.assert_array_equal(curve.correct, correct)
    np.testing.assert_array_equal(curve.accuracy, accuracy)


def test_train_many_equals_train_bit_for_bit() -> None:
    x, noisy, true, *_ = make_data(150, 32, 10)
    labels = np.array([noisy, true, 1 - true])
    for batched, label in zip(train_many(x, labels), labels, strict=True):
        for alone in (train(x, label), train(x, label, fused=False)):
            for name in ("w1", "b1", "w2", "b2"):
                np.testing.assert_array_equal(getattr(batched, name), getattr(alone, name))
            assert batched.threshold == alone.threshold


@pytest.mark.parametrize("step", [1, 2, 7, 100])
def test_fused_optimizer_step_equals_plain_numpy(step: int) -> None:
    """One first-layer AdamW step on values spread over many magnitudes, zeros included."""
    rng = np.random.default_rng(step)
    shape = (3, debug_linear.HIDDEN, 33)

    def spread(size: tuple[int, ...]) -> np.ndarray:
        values = rng.standard_normal(size) * 10.0 ** rng.integers(-30, 10, size)
        return np.where(rng.random(size) < 0.05, 0, values).astype(np.float32)

    p, exp_avg = spread(shape), spread(shape)
    exp_avg_sq = np.abs(spread(shape))
    w2, through_x = spread((3, 1, shape[1])), spread((3, 1, shape[2]))
    constants = debug_linear._adamw_constants(step)
    expected = [a.copy() for a in (p, exp_avg, exp_avg_sq)]
    grad = w2.transpose(0, 2, 1) * through_x
    want_p, want_avg, want_avg_sq = expected
    debug_linear._adamw_step(want_p, grad, want_avg, want_avg_sq, np.empty_like(p), constants)
    debug_linear._fused_adamw_w1(p, exp_avg, exp_avg_sq, w2, through_x, constants)
    for got, want in zip((p, exp_avg, exp_avg_sq), expected, strict=True):
        np.testing.assert_array_equal(got, want)


def test_duplicate_prefixes_are_not_retrained(monkeypatch: pytest.MonkeyPatch) -> None:
    x, noisy, true, order, x_test, y_test = make_data(60, 8, 50)
    trained: list[np.ndarray] = []
    real = debug_linear._train_stack

    def counting(x: np.ndarray, labels: np.ndarray, seed: int, fused: bool) -> Any:
        trained.extend(labels)
        return real(x, labels, seed, fused)

    monkeypatch.setattr(debug_linear, "_train_stack", counting)
    curve = cleaning_curve(x, noisy, true, order, x_test, y_test)
    flipped = int((noisy != true).sum())
    assert 0 < flipped < 60
    assert len(trained) == curve.trainings == flipped + 1
    assert len({tuple(labels) for labels in trained}) == len(trained)
    # A prefix that fixes a correct label reuses the previous training.
    fixes = noisy[order] != true[order]
    assert np.array_equal(np.diff(curve.model_index), fixes.astype(np.int64))
    assert np.array_equal(curve.correct[1:][~fixes], curve.correct[:-1][~fixes])


def test_threshold_is_the_lowest_with_the_best_training_accuracy() -> None:
    x, noisy, *_ = make_data(100, 8, 10)
    model = train(x, noisy)
    proba = model.predict_proba(x)
    accuracy = [((proba > t) == (noisy == 1)).mean() for t in debug_linear.THRESHOLDS]
    best = [t for t, a in zip(debug_linear.THRESHOLDS, accuracy, strict=True) if a == max(accuracy)]
    assert model.threshold == best[0]
    assert np.array_equal(model.predict(x), (proba > best[0]).astype(np.int64))


def _rule_case() -> tuple[np.ndarray, np.ndarray]:
    """300 training rows: 249 right at t=0.10, 250 (one more) at t=0.15 to 0.85."""
    probabilities = np.array([0.9] * 249 + [0.12] + [0.99] * 50, dtype=np.float32)
    labels = np.array([1] * 249 + [0] + [0] * 50)
    return probabilities[None], labels[None]


def test_original_threshold_rule_keeps_the_first_rounded_best() -> None:
    """The original keeps the first threshold whose *rounded* training accuracy improves:
    249/300 and 250/300 both round to 0.83, so it stays at 0.10 where "best" takes 0.15."""
    probabilities, labels = _rule_case()
    assert debug_linear.choose_thresholds(probabilities, labels, "best").tolist() == [0.15]
    original = debug_linear.choose_thresholds(probabilities, labels, "original")
    assert original.dtype == np.float32
    assert original.tolist() == [np.float32(np.arange(0.1, 1, 0.05)[0])]


def test_original_threshold_rule_falls_back_to_zero() -> None:
    """No training accuracy rounds above 0 (every row wrong at every threshold): the original
    keeps its initial ``best_thres = 0``."""
    probabilities, labels = np.full((1, 300), 0.05, dtype=np.float32), np.ones((1, 300))
    assert debug_linear.choose_thresholds(probabilities, labels, "original").tolist() == [0.0]
    assert debug_linear.choose_thresholds(probabilities, labels, "best").tolist() == [0.1]


def test_original_threshold_compares_in_float32() -> None:
    """A probability equal to float32(0.15000000000000002), the original's second threshold,
    is not above it (torch compares in float32), though it is above the float64 value."""
    grid = np.arange(0.1, 1, 0.05)
    at = np.float32(grid[1])
    assert at > grid[1]  # float32 rounds this threshold up
    probabilities = np.array([[at] * 100 + [0.5] * 200], dtype=np.float32)
    labels = np.array([[0] * 100 + [1] * 200])
    assert debug_linear.choose_thresholds(probabilities, labels, "original").tolist() == [at]


def test_rules_reach_the_trained_model() -> None:
    x, noisy, true, order, x_test, y_test = make_data(300, 8, 50, seed=3)
    for rule in ("best", "original"):
        model = train(x, noisy, threshold_rule=rule)
        chosen = debug_linear.choose_thresholds(model.predict_proba(x)[None], noisy[None], rule)
        assert model.threshold == chosen[0]
        curve = cleaning_curve(x, noisy, true, order, x_test, y_test, threshold_rule=rule)
        assert curve.correct[0].tolist() == (model.predict(x_test) == y_test).tolist()


def test_rejects_bad_inputs() -> None:
    x, noisy, true, order, x_test, y_test = make_data(20, 4, 5)
    with pytest.raises(ValueError, match="permutation"):
        cleaning_curve(x, noisy, true, order[:-1], x_test, y_test)
    with pytest.raises(ValueError, match="0/1 labels"):
        train(x, noisy * 2)
    with pytest.raises(ValueError, match="seed"):
        initial_weights(4, seed=-1)
    with pytest.raises(ValueError, match="threshold_rule must be 'best' or 'original'"):
        cleaning_curve(x, noisy, true, order, x_test, y_test, threshold_rule="rounded")


# --- against the original PyTorch procedure -----------------------------------------------------


def torch_train(x: np.ndarray, y: np.ndarray, seed: int = 42) -> tuple[Any, Any]:
    """The original: returns the initial and the trained ``nn.Sequential``."""
    torch = pytest.importorskip("torch")
    nn = torch.nn
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(x.shape[1], 128), nn.Linear(128, 1))
    initial = [p.detach().clone().numpy() for p in model.parameters()]
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.01, weight_decay=0.9)
    loss_fn = nn.BCEWithLogitsLoss()
    features = torch.from_numpy(np.asarray(x, dtype=np.float32))
    targets = torch.from_numpy(np.asarray(y, dtype=np.float32))
    for _ in range(20):
        for start in range(0, len(features), 64):
            optimizer.zero_grad()
            logits = model(features[start : start + 64])[:, 0]
            loss_fn(logits, targets[start : start + 64]).backward()
            optimizer.step()
    return initial, model


def torch_predict(model: Any, x_train: np.ndarray, y_train: np.ndarray, x: np.ndarray) -> Any:
    import torch

    with torch.no_grad():
        train_proba = torch.sigmoid(model(torch.from_numpy(x_train))[:, 0]).numpy()
        proba = torch.sigmoid(model(torch.from_numpy(x))[:, 0]).numpy()
    accuracy = [((train_proba > t) == (y_train == 1)).mean() for t in debug_linear.THRESHOLDS]
    threshold = debug_linear.THRESHOLDS[int(np.argmax(accuracy))]
    return threshold, (proba > threshold).astype(np.int64)


@pytest.mark.parametrize("dim", [1, 16, 300, 2048])
@pytest.mark.parametrize("seed", [0, 42, 2**32 - 1])
def test_initial_weights_are_torchs_bit_for_bit(dim: int, seed: int) -> None:
    torch = pytest.importorskip("torch")
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(dim, 128), torch.nn.Linear(128, 1))
    expected = [p.detach().numpy() for p in model.parameters()]
    ours = initial_weights(dim, seed)
    for got, want in zip(ours, expected, strict=True):
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, want.reshape(got.shape))


# Observed on these data (seeds 0-3): largest absolute difference 1.2e-7 at d=16, 8.7e-6 at
# d=2048, for weights up to 0.3 in size; the tolerance leaves room for other BLAS and CPUs.
TRAINED_ATOL = 1e-4


@pytest.mark.parametrize("dim", [16, pytest.param(2048, marks=pytest.mark.slow)])
@pytest.mark.parametrize("seed", [0, 1])
def test_training_and_predictions_match_torch(dim: int, seed: int) -> None:
    x, noisy, _, _, x_test, y_test = make_data(300, dim, 500, seed=seed)
    initial, model = torch_train(x, noisy)
    ours = train(x, noisy)
    for got, want in zip(initial_weights(dim), initial, strict=True):
        np.testing.assert_array_equal(got, want.reshape(got.shape))
    for got, param in zip((ours.w1, ours.b1, ours.w2, ours.b2), model.parameters(), strict=True):
        want = param.detach().numpy().reshape(got.shape)
        np.testing.assert_allclose(got, want, rtol=0, atol=TRAINED_ATOL)
    threshold, predicted = torch_predict(model, x, noisy, x_test)
    assert ours.threshold == threshold
    np.testing.assert_array_equal(ours.predict(x_test), predicted)
    assert (ours.predict(x_test) == y_test).mean() == (predicted == y_test).mean()
