import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score

from dataperf import metrics


@pytest.fixture
def labels():
    rng = np.random.default_rng(1)
    y_true = rng.integers(0, 3, size=400)
    y_pred = np.where(rng.random(400) < 0.7, y_true, rng.integers(0, 3, size=400))
    return y_true, y_pred


def test_metrics_equal_scikit_learn(labels):
    y_true, y_pred = labels
    cm = metrics.confusion_matrix(y_true, y_pred, 3)
    assert metrics.macro_f1(cm) == pytest.approx(f1_score(y_true, y_pred, average="macro"))
    assert metrics.accuracy(cm) == pytest.approx(accuracy_score(y_true, y_pred))
    binary_true, binary_pred = (y_true == 1).astype(int), (y_pred == 1).astype(int)
    cm2 = metrics.confusion_matrix(binary_true, binary_pred, 2)
    assert metrics.binary_f1(cm2) == pytest.approx(f1_score(binary_true, binary_pred))


def test_f1_is_zero_without_positives():
    cm = metrics.confusion_matrix(np.zeros(5, int), np.zeros(5, int), 2)
    assert metrics.binary_f1(cm) == 0.0


def test_bootstrap_equals_straightforward_row_resampling(labels):
    """The counting bootstrap gives exactly the F1s of resampling rows one set at a time."""
    y_true, y_pred = labels
    y_true, y_pred = (y_true == 1).astype(int), (y_pred == 1).astype(int)
    fast = metrics.binary_f1(
        metrics.bootstrap_confusions(y_true, y_pred[None], 2, n_resamples=200, seed=7, block=33)
    )[0]
    rows = np.random.default_rng(7).integers(0, len(y_true), size=(200, len(y_true)))
    slow = [f1_score(y_true[r], y_pred[r], zero_division=0) for r in rows]
    np.testing.assert_allclose(fast, slow, rtol=0, atol=1e-12)


def test_bootstrap_resamples_seeds_jointly(labels):
    y_true, y_pred = labels
    both = metrics.bootstrap_confusions(y_true, np.stack([y_pred, y_pred]), 3, n_resamples=50,
                                        seed=3)
    np.testing.assert_array_equal(both[0], both[1])
    assert both.shape == (2, 50, 3, 3)
    assert (both.sum(axis=(-2, -1)) == len(y_true)).all()


def test_percentile_interval_brackets_the_median():
    samples = np.arange(1001, dtype=float)
    interval = metrics.percentile_interval(samples)
    assert interval.low == pytest.approx(25.0)
    assert interval.high == pytest.approx(975.0)
