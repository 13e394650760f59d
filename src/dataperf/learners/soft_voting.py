"""The speech selection frozen model: soft voting of an RBF SVM with Platt-scaled probabilities
and a logistic regression, as in the original DataPerf speech evaluator, fitted for many seeds.

Refitting the ensemble once per seed repeats work that the seed does not touch. Only the SVM's
Platt scaling depends on the seed (libsvm's internal 5-fold split); its support vectors, dual
coefficients and intercepts do not, and neither does the logistic regression (lbfgs ignores
``random_state``). :func:`predict_seeds` therefore fits the logistic regression and computes the
SVM's pairwise decision values on the test rows (the kernel with every support vector, the
costly part) once; per seed it refits only the SVM on the small training set and turns the
decision values into probabilities with libsvm's own procedure (pairwise sigmoids, then the
Wu-Lin-Weng coupling), compiled by numba with the same double operations in the same order.
The predictions equal those of the ensemble refitted per seed, bit for bit (tests compare
them); a seed whose SVM came out different would get its own decision values.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numba
import numpy as np

__all__ = ["libsvm_probabilities", "predict_seeds", "soft_voting"]

# Solvers whose result does not depend on random_state (the others shuffle the data).
_SEED_FREE_SOLVERS = ("lbfgs", "newton-cg", "newton-cholesky")


def soft_voting(random_state: int, svc: Mapping[str, Any] | None = None,
                lr: Mapping[str, Any] | None = None) -> Any:
    """``VotingClassifier(voting="soft")`` of ``SVC(probability=True)`` and
    ``LogisticRegression``, both with ``random_state``; ``svc`` and ``lr`` override their other
    hyper-parameters (defaults otherwise, as in the original)."""
    from sklearn.ensemble import VotingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.svm import SVC

    return VotingClassifier(
        estimators=[("svm", SVC(**{**(svc or {}), "probability": True,
                                   "random_state": random_state})),
                    ("lr", LogisticRegression(**{**(lr or {}), "random_state": random_state}))],
        voting="soft")


def predict_seeds(params: Mapping[str, Any], x_train: np.ndarray, y_train: np.ndarray,
                  x_test: np.ndarray, seeds: Sequence[int]) -> list[tuple[np.ndarray, bool]]:
    """For each seed, ``(labels, converged)`` of the ensemble fitted with that seed: what
    ``soft_voting(seed, **params).fit(x_train, y_train).predict(x_test)`` gives.

    The data reach the ensemble in their stored precision, float16 widened to float32, as the
    original's float32 vectors did: the SVM computes in float64 either way, but scikit-learn's
    logistic regression fits float32 data in float32.
    """
    from sklearn.base import clone
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.preprocessing import LabelEncoder

    x, x_test = _stored_precision(x_train), _stored_precision(x_test)
    encoder = LabelEncoder().fit(np.asarray(y_train))
    y = encoder.transform(np.asarray(y_train))
    template = soft_voting(seeds[0], **params)
    svc_template, lr_template = (estimator for _, estimator in template.estimators)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        warnings.filterwarnings("ignore", category=FutureWarning)  # SVC(probability=True)
        seed_free = lr_template.get_params()["solver"] in _SEED_FREE_SOLVERS
        lr_proba = clone(lr_template).fit(x, y).predict_proba(x_test) if seed_free else None
        lr_converged = not _converge_warnings(caught)
        first = None
        decisions = np.empty((0, 0))
        out = []
        for seed in seeds:
            caught.clear()
            svm = clone(svc_template).set_params(random_state=seed).fit(x, y)
            if first is None or not _same_machine(svm, first):
                first, decisions = svm, _decision_values(svm, x_test)
            svm_proba = libsvm_probabilities(decisions, svm._probA, svm._probB)
            proba = lr_proba
            if proba is None:
                proba = clone(lr_template).set_params(random_state=seed).fit(x, y) \
                    .predict_proba(x_test)
            converged = lr_converged and not _converge_warnings(caught)
            votes = np.average(np.asarray([svm_proba, proba]), axis=0)
            out.append((encoder.inverse_transform(np.argmax(votes, axis=1)), converged))
    return out


# Test rows widened to float64 at a time for libsvm (32 MB at 1024-d): the whole evaluation set
# widened at once would be the scorer's largest allocation.
_DECISION_ROWS = 4096


def _decision_values(svm: Any, x_test: np.ndarray) -> np.ndarray:
    """``svm._dense_decision_function(x_test)``, a block of rows at a time: libsvm computes
    every row on its own (the kernel with each support vector), so the values are the same."""
    if len(x_test) <= _DECISION_ROWS:
        return np.asarray(svm._dense_decision_function(x_test))
    return np.concatenate([svm._dense_decision_function(x_test[start:start + _DECISION_ROWS])
                           for start in range(0, len(x_test), _DECISION_ROWS)])


def _stored_precision(x: np.ndarray) -> np.ndarray:
    """``x`` as a C-ordered float32 or float64 array (float16 widened to float32)."""
    x = np.asarray(x)
    return np.ascontiguousarray(x, dtype=np.float64 if x.dtype == np.float64 else np.float32)


def _converge_warnings(caught: list[warnings.WarningMessage]) -> bool:
    from sklearn.exceptions import ConvergenceWarning

    return any(issubclass(w.category, ConvergenceWarning) for w in caught)


def _same_machine(svm: Any, other: Any) -> bool:
    """True when two fitted SVMs have the same support vectors, coefficients and intercepts."""
    return all(np.array_equal(getattr(svm, a), getattr(other, a))
               for a in ("support_", "_dual_coef_", "_intercept_", "_n_support"))


def libsvm_probabilities(decisions: np.ndarray, prob_a: np.ndarray,
                         prob_b: np.ndarray) -> np.ndarray:
    """Class probabilities from one-vs-one decision values (n, k(k-1)/2) and Platt parameters,
    computed as libsvm's ``svm_predict_probability`` computes them."""
    pairs = decisions.shape[1]
    k = round((1 + math.sqrt(1 + 8 * pairs)) / 2)
    return _couple(np.ascontiguousarray(decisions, dtype=np.float64),
                   np.asarray(prob_a, dtype=np.float64), np.asarray(prob_b, dtype=np.float64), k)


@numba.njit(cache=True)
def _couple(dec: np.ndarray, prob_a: np.ndarray, prob_b: np.ndarray,
            k: int) -> np.ndarray:
    n = dec.shape[0]
    out = np.empty((n, k))
    r = np.empty((k, k))
    q = np.empty((k, k))
    qp = np.empty(k)
    min_prob = 1e-7
    max_iter = max(100, k)
    eps = 0.005 / k
    for row in range(n):
        m = 0
        for i in range(k):  # pairwise probabilities: sigmoid_predict, clipped
            for j in range(i + 1, k):
                f = dec[row, m] * prob_a[m] + prob_b[m]
                s = math.exp(-f) / (1.0 + math.exp(-f)) if f >= 0 else 1.0 / (1 + math.exp(f))
                v = min(max(s, min_prob), 1 - min_prob)
                r[i, j] = v
                r[j, i] = 1 - v
                m += 1
        p = out[row]  # multiclass_probability (Wu, Lin and Weng, method 2)
        for t in range(k):
            p[t] = 1.0 / k
            q[t, t] = 0
            for j in range(t):
                q[t, t] += r[j, t] * r[j, t]
                q[t, j] = q[j, t]
            for j in range(t + 1, k):
                q[t, t] += r[j, t] * r[j, t]
                q[t, j] = -r[j, t] * r[t, j]
        for _ in range(max_iter):
            pqp = 0.0
            for t in range(k):
                qp[t] = 0
                for j in range(k):
                    qp[t] += q[t, j] * p[j]
                pqp += p[t] * qp[t]
            max_error = 0.0
            for t in range(k):
                error = abs(qp[t] - pqp)
                if error > max_error:
                    max_error = error
            if max_error < eps:
                break
            for t in range(k):
                diff = (-qp[t] + pqp) / q[t, t]
                p[t] += diff
                pqp = (pqp + diff * (diff * q[t, t] + 2 * qp[t])) / (1 + diff) / (1 + diff)
                for j in range(k):
                    qp[j] = (qp[j] + diff * q[t, j]) / (1 + diff)
                    p[j] /= (1 + diff)
    return out
