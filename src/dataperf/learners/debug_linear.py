"""The frozen model of the vision cleaning challenge (DataPerf v0.5 "debugging"), in numpy.

The original trains, in PyTorch, ``nn.Sequential(nn.Linear(d, 128), nn.Linear(128, 1))`` (no
activation) with ``BCEWithLogitsLoss`` and ``AdamW(lr=0.01, weight_decay=0.9)`` for 20 epochs
over batches of 64 rows in order (no shuffling, the last batch smaller), in float32, after
``torch.manual_seed(seed)``. A row is predicted positive when ``sigmoid(logit) > t`` for a
threshold ``t`` chosen on the training set by one of two rules (``threshold_rule``):

- ``"best"`` (our default profile): the ``t`` in 0.10, 0.15, ..., 0.95 with the most training
  rows right (ties: the lowest such ``t``).
- ``"original"`` (the official profile): the original's loop over ``np.arange(0.1, 1, 0.05)``
  keeping each ``t`` whose training accuracy *rounded to 2 decimals* (numpy's round) is
  strictly above the best so far, starting from accuracy 0 and ``t = 0`` (so ``t`` stays 0 if
  no accuracy rounds above 0); probabilities compared with ``t`` in float32, as torch does.
  Accuracies that round alike tie, so it often keeps a lower ``t`` than ``"best"``.

Exactness:

- **Initial weights are torch's, bit for bit.** ``manual_seed(s)`` seeds torch's CPU mt19937
  as ``init_genrand(s)``, the same as numpy's legacy ``RandomState(s)``; ``nn.Linear`` draws
  its weight (kaiming uniform, a=sqrt(5)), then its bias (uniform +-1/sqrt(fan_in)), one 32-bit
  draw per float32 in memory order: ``from + (r & 0xFFFFFF) * 2**-24 * (to - from)`` rounded
  once (torch's AVX2/AVX-512 kernels fuse the multiply-add; computed exactly in float64 here).
  Checked against torch 2.13 for d from 1 to 4096 and several seeds.
- **Training is torch's procedure in float32, not its exact rounding.** The network is linear,
  so ``logit = x @ (w2 @ W1) + (w2 . b1 + b2)`` and the first layer's gradient is the outer
  product ``w2 (x) (dlogit @ x)``: each step costs O(128 d) instead of a (64 x d x 128) matrix
  product. Losses, the gradient of the mean, and AdamW (decoupled decay ``p *= 1 - lr * wd``
  first, ``lerp`` for the first moment, bias corrections in float64, eps=1e-8 added after
  dividing by the corrected square root) follow torch's single-tensor AdamW operation by
  operation, but sums run in another order than torch's BLAS, so trained weights agree with
  torch to float32 rounding amplified by training (see the tests), not bit for bit.
- **Batched training equals one-by-one training bit for bit.** :func:`train_many` trains a
  stack of label vectors with per-model BLAS calls of the same shapes and elementwise
  operations, so each model in the stack is exactly :func:`train` on its labels (same numpy,
  BLAS and thread settings). :func:`cleaning_curve` trains only the distinct label vectors of
  the prefixes of a cleaning order and reuses them.
- **The first layer's optimizer step is one compiled pass** (numba): forming the gradient
  ``w2 (x) through_x`` and AdamW's fifteen elementwise operations on the 128 x d weights and
  moments in a single loop, the same float32 operations in the same order, so the result equals
  the plain numpy operations (``fused=False``) bit for bit. That pass is most of the cost.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

import numba
import numpy as np

HIDDEN = 128
EPOCHS = 20
BATCH_SIZE = 64
LEARNING_RATE = 0.01
WEIGHT_DECAY = 0.9
BETA1, BETA2 = 0.9, 0.999
EPS = 1e-8
THRESHOLDS = np.arange(10, 100, 5) / 100  # 0.10, 0.15, ..., 0.95
# The original's grid as it computes it (0.1, 0.15000000000000002, ...), compared in float32.
ORIGINAL_THRESHOLDS = np.arange(0.1, 1, 0.05).astype(np.float32)
ThresholdRule = Literal["best", "original"]

# Bytes of first-layer state (weights, two moments, two scratch arrays) that cleaning_curve
# trains together: enough models to amortise numpy's per-call overhead at small d, few enough
# to stay in the caches at large d (2 models at d=2048, 25 at d=256).
_CHUNK_BYTES = 16 * 2**20

_f32 = np.float32


@dataclass(frozen=True)
class LinearDebugModel:
    """A trained model: ``logit = w2 . (w1 @ x + b1) + b2``; positive when above ``threshold``."""

    w1: np.ndarray  # (HIDDEN, d) float32
    b1: np.ndarray  # (HIDDEN,) float32
    w2: np.ndarray  # (HIDDEN,) float32
    b2: np.ndarray  # (1,) float32
    threshold: float

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """float32 ``sigmoid(logit)`` of each row of ``x``."""
        stack = _Stack(self.w1[None], self.b1[None], self.w2[None, None], self.b2[None])
        return stack.probabilities(_as_features(x, self.w1.shape[1]))[0]

    def predict(self, x: np.ndarray) -> np.ndarray:
        """0/1 labels (int64)."""
        return (self.predict_proba(x) > self.threshold).astype(np.int64)


@dataclass(frozen=True)
class Curve:
    """The cleaning curve: one entry per prefix k = 0..n of the order."""

    accuracy: np.ndarray  # (n + 1,) float64, test accuracy after fixing the first k rows
    correct: np.ndarray  # (n + 1, n_test) bool, test rows that the prefix-k model gets right
    model_index: np.ndarray  # (n + 1,) int64, the distinct training that prefix k reuses

    @property
    def trainings(self) -> int:
        return int(self.model_index[-1]) + 1


def initial_weights(dim: int, seed: int = 42) -> tuple[np.ndarray, ...]:
    """``(w1, b1, w2, b2)`` as torch's ``nn.Linear`` layers hold them after ``manual_seed``."""
    if not 0 <= seed < 2**32:
        raise ValueError(f"seed must be in [0, 2**32), got {seed}")
    bits = np.random.MT19937()  # given the state of init_genrand(seed), numpy's legacy seeding
    bits.state = cast(Any, np.random.RandomState(seed).get_state(legacy=False))
    shapes = [(HIDDEN, dim), (HIDDEN,), (1, HIDDEN), (1,)]

    def kaiming(fan_in: int) -> float:  # kaiming_uniform_(a=sqrt(5)): sqrt(3) * gain / sqrt(fan)
        return math.sqrt(3.0) * (math.sqrt(2.0 / (1 + 5)) / math.sqrt(fan_in))

    bounds = [kaiming(dim), 1 / math.sqrt(dim), kaiming(HIDDEN), 1 / math.sqrt(HIDDEN)]
    out = []
    for shape, bound in zip(shapes, bounds, strict=True):
        raw = bits.random_raw(math.prod(shape)) & 0xFFFFFF
        low, high = _f32(-bound), _f32(bound)
        # (raw * 2**-24) * (high - low) is exact in float64 (24 x 24 bits), the sum too, so the
        # one rounding to float32 is that of torch's fused multiply-add.
        values = raw * 2.0**-24 * np.float64(high - low) + np.float64(low)
        out.append(values.astype(np.float32).reshape(shape))
    w1, b1, w2, b2 = out
    return w1, b1, w2.ravel(), b2


def train(
    x: np.ndarray,
    y: np.ndarray,
    *,
    seed: int = 42,
    fused: bool = True,
    threshold_rule: ThresholdRule = "best",
) -> LinearDebugModel:
    """Train the frozen model on rows ``x`` (n, d) with 0/1 labels ``y`` (n,).

    ``fused=False`` runs the first layer's optimizer as plain numpy operations, the reference
    the fused kernel is tested against (the result is the same, bit for bit).
    """
    return train_many(
        x, np.asarray(y)[None], seed=seed, fused=fused, threshold_rule=threshold_rule
    )[0]


def train_many(
    x: np.ndarray,
    labels: np.ndarray,
    *,
    seed: int = 42,
    fused: bool = True,
    threshold_rule: ThresholdRule = "best",
) -> list[LinearDebugModel]:
    """Train one model per row of ``labels`` (m, n), together; each equals ``train`` alone."""
    _check_rule(threshold_rule)
    features = _as_features(x)
    targets = _as_labels(labels, len(features))
    stack = _train_stack(features, targets, seed, fused)
    thresholds = choose_thresholds(stack.probabilities(features), targets, threshold_rule)
    return [
        LinearDebugModel(
            stack.w1[i], stack.b1[i], stack.w2[i, 0], stack.b2[i], float(thresholds[i])
        )
        for i in range(len(targets))
    ]


def choose_thresholds(
    probabilities: np.ndarray, labels: np.ndarray, rule: ThresholdRule = "best"
) -> np.ndarray:
    """Per model, the decision threshold from its training ``probabilities`` (m, n) float32
    and 0/1 ``labels`` (m, n) by ``rule`` (see the module doc): float64 for ``"best"``,
    float32 for ``"original"``, the precision each rule compares probabilities in."""
    _check_rule(rule)
    grid = THRESHOLDS if rule == "best" else ORIGINAL_THRESHOLDS
    positive = probabilities[:, None, :] > grid[None, :, None]
    hits = (positive == (np.asarray(labels) == 1)[:, None, :]).sum(axis=2)
    if rule == "best":
        return np.asarray(grid[np.argmax(hits, axis=1)])
    rounded = np.round(hits / probabilities.shape[1], 2)  # round(mean(pred == y), 2)
    first_best = np.argmax(rounded, axis=1)  # where the strict improvements end
    above_zero = rounded[np.arange(len(rounded)), first_best] > 0
    return np.where(above_zero, grid[first_best], np.float32(0))


def cleaning_curve(
    x_train: np.ndarray,
    noisy_labels: np.ndarray,
    true_labels: np.ndarray,
    order: Sequence[int] | np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    *,
    seed: int = 42,
    threshold_rule: ThresholdRule = "best",
) -> Curve:
    """Test accuracy after fixing the labels of the first k rows of ``order``, k = 0..n.

    Fixing a row whose noisy label is already right leaves the training set as it was, so only
    the distinct label vectors are trained (``Curve.trainings``), in stacks, and reused.
    """
    _check_rule(threshold_rule)
    features = _as_features(x_train)
    n = len(features)
    noisy = _as_labels(np.asarray(noisy_labels)[None], n)[0]
    true = _as_labels(np.asarray(true_labels)[None], n)[0]
    order = np.asarray(order)
    if order.shape != (n,) or not np.array_equal(np.sort(order), np.arange(n)):
        raise ValueError("order must be a permutation of the training rows")
    test_features = _as_features(x_test, features.shape[1])
    test_labels = _as_labels(np.asarray(y_test)[None], len(test_features))[0]

    changed = noisy[order] != true[order]
    model_index = np.concatenate([[0], np.cumsum(changed)]).astype(np.int64)
    distinct = np.repeat(noisy[None], model_index[-1] + 1, axis=0)
    for j, row in enumerate(order[changed], start=1):
        distinct[j:, row] = true[row]

    correct = np.empty((len(distinct), len(test_features)), dtype=bool)
    chunk = max(1, _CHUNK_BYTES // (5 * HIDDEN * features.shape[1] * 4))
    for start in range(0, len(distinct), chunk):
        targets = distinct[start : start + chunk]
        stack = _train_stack(features, targets, seed, fused=True)
        thresholds = choose_thresholds(stack.probabilities(features), targets, threshold_rule)
        predicted = stack.probabilities(test_features) > thresholds[:, None]
        correct[start : start + len(targets)] = predicted == (test_labels == 1)
    prefix_correct = correct[model_index]
    return Curve(prefix_correct.mean(axis=1), prefix_correct, model_index)


@dataclass(frozen=True)
class _Stack:
    """Parameters of m models: w1 (m, H, d), b1 (m, H), w2 (m, 1, H), b2 (m, 1)."""

    w1: np.ndarray
    b1: np.ndarray
    w2: np.ndarray
    b2: np.ndarray

    def logits(self, x: np.ndarray) -> np.ndarray:
        """(m, rows) float32; every product is one BLAS call per model, of the same shape."""
        direction = self.w2 @ self.w1  # (m, 1, d)
        offset = (self.w2 @ self.b1[:, :, None])[:, 0] + self.b2  # (m, 1)
        return (direction @ x.T)[:, 0] + offset

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        return _sigmoid(self.logits(x))


def _sigmoid(z: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):  # exp(-z) = inf gives 0, as in torch
        return _f32(1) / (_f32(1) + np.exp(-z))


def _train_stack(x: np.ndarray, labels: np.ndarray, seed: int, fused: bool) -> _Stack:
    m, (n, dim) = len(labels), x.shape
    w1_0, b1_0, w2_0, b2_0 = initial_weights(dim, seed)
    params = [
        np.repeat(w1_0[None], m, axis=0),
        np.repeat(b1_0[None], m, axis=0),
        np.repeat(w2_0[None, None], m, axis=0),
        np.repeat(b2_0[None], m, axis=0),
    ]
    stack = _Stack(*params)
    moments = [(np.zeros_like(p), np.zeros_like(p)) for p in params]
    scratch = [(np.empty_like(p), np.empty_like(p)) for p in params]
    grad_w1, grad_b1, grad_w2, grad_b2 = (g for g, _ in scratch)
    step = 0
    for _ in range(EPOCHS):
        for start in range(0, n, BATCH_SIZE):
            xb, yb = x[start : start + BATCH_SIZE], labels[:, start : start + BATCH_SIZE]
            step += 1
            # BCEWithLogits, mean over the batch: d loss / d logit = (sigmoid - y) / rows.
            dlogit = (_sigmoid(stack.logits(xb)) - yb) / _f32(len(xb))  # (m, rows)
            through_x = dlogit[:, None, :] @ xb  # (m, 1, d): sum_i dlogit_i x_i
            total = dlogit.sum(axis=1)[:, None]  # (m, 1): sum_i dlogit_i
            # Every gradient from the parameters before the step, then each parameter's step.
            np.multiply(stack.w2[:, 0], total, out=grad_b1)
            np.add(
                (stack.w1 @ through_x.transpose(0, 2, 1))[:, :, 0],
                total * stack.b1,
                out=grad_w2[:, 0],
            )
            grad_b2[...] = total
            constants = _adamw_constants(step)
            if fused:  # the first layer's gradient w2 (x) through_x is formed element by element
                _fused_adamw_w1(stack.w1, *moments[0], stack.w2, through_x, constants)
            else:
                np.multiply(stack.w2.transpose(0, 2, 1), through_x, out=grad_w1)
                _adamw_step(stack.w1, grad_w1, *moments[0], scratch[0][1], constants)
            for p, (exp_avg, exp_avg_sq), (grad, tmp) in zip(
                params[1:], moments[1:], scratch[1:], strict=True
            ):
                _adamw_step(p, grad, exp_avg, exp_avg_sq, tmp, constants)
    return stack


def _adamw_constants(step: int) -> tuple[np.float32, ...]:
    """AdamW's float32 factors at ``step`` (bias corrections computed in float64, as torch)."""
    return (
        _f32(1 - LEARNING_RATE * WEIGHT_DECAY),
        _f32(1 - BETA1),
        _f32(BETA2),
        _f32(1 - BETA2),
        _f32((1 - BETA2**step) ** 0.5),
        _f32(EPS),
        _f32(-LEARNING_RATE / (1 - BETA1**step)),
    )


def _adamw_step(
    p: np.ndarray,
    grad: np.ndarray,
    exp_avg: np.ndarray,
    exp_avg_sq: np.ndarray,
    tmp: np.ndarray,
    constants: tuple[np.float32, ...],
) -> None:
    """torch's single-tensor AdamW, in place, in float32; ``grad`` and ``tmp`` are overwritten."""
    decay, one_minus_beta1, beta2, one_minus_beta2, correction2_sqrt, eps, neg_step = constants
    p *= decay
    np.subtract(grad, exp_avg, out=tmp)  # exp_avg.lerp_(grad, 1 - beta1)
    tmp *= one_minus_beta1
    exp_avg += tmp
    exp_avg_sq *= beta2  # exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    np.multiply(grad, one_minus_beta2, out=tmp)
    tmp *= grad
    exp_avg_sq += tmp
    np.sqrt(exp_avg_sq, out=tmp)  # denom = exp_avg_sq.sqrt() / sqrt(bias_correction2) + eps
    tmp /= correction2_sqrt
    tmp += eps
    np.multiply(exp_avg, neg_step, out=grad)  # p.addcdiv_(exp_avg, denom, -step_size)
    grad /= tmp
    p += grad


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _fused_adamw_w1(p, exp_avg, exp_avg_sq, w2, through_x, constants):
    """:func:`_adamw_step` on first layers (m, H, d), gradient ``w2 (x) through_x``, in one pass.

    The same float32 operations in the same order, each rounded once (no fused multiply-add:
    numba leaves floating-point contraction off without ``fastmath``), so results are equal.
    """
    decay, one_minus_beta1, beta2, one_minus_beta2, correction2_sqrt, eps, neg_step = constants
    models, hidden, dim = p.shape
    for k in range(models):
        for i in range(hidden):
            weight = w2[k, 0, i]
            for j in range(dim):
                grad = weight * through_x[k, 0, j]
                avg = exp_avg[k, i, j]
                avg = avg + (grad - avg) * one_minus_beta1
                avg_sq = exp_avg_sq[k, i, j] * beta2 + (grad * one_minus_beta2) * grad
                denom = np.sqrt(avg_sq) / correction2_sqrt + eps
                p[k, i, j] = p[k, i, j] * decay + (avg * neg_step) / denom
                exp_avg[k, i, j] = avg
                exp_avg_sq[k, i, j] = avg_sq


def _check_rule(rule: str) -> None:
    if rule not in ("best", "original"):
        raise ValueError(f"threshold_rule must be 'best' or 'original', got {rule!r}")


def _as_features(x: np.ndarray, dim: int | None = None) -> np.ndarray:
    features = np.ascontiguousarray(x, dtype=np.float32)
    if features.ndim != 2 or (dim is not None and features.shape[1] != dim):
        raise ValueError(f"expected rows of {dim or 'd'} features, got shape {features.shape}")
    return features


def _as_labels(labels: np.ndarray, n: int) -> np.ndarray:
    values = np.asarray(labels)
    if values.ndim != 2 or values.shape[1] != n or not np.isin(values, (0, 1)).all():
        raise ValueError(f"expected 0/1 labels for {n} rows, got shape {values.shape}")
    return values.astype(np.float32)
