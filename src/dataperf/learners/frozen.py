"""Frozen models: the fixed learners that scorers train on participants' data.

A challenge names its model and hyper-parameters declaratively (``model: logistic_regression``);
this module turns that into a fitted estimator. Hyper-parameters are the original DataPerf ones
unless a challenge overrides them; ``random_state`` comes from the scorer's seed.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from dataperf.exceptions import SpecError

# name -> "module:class"; imported only when a model is trained, so that reading specs is cheap.
FROZEN_MODELS: dict[str, str] = {
    "logistic_regression": "sklearn.linear_model:LogisticRegression",
    "svc_lr_soft_voting": "dataperf.learners.soft_voting:soft_voting",
}
# name -> "module:function" fitting the model for many seeds at once, with the same predictions
# as fitting it once per seed (see dataperf.learners.soft_voting).
BATCHED: dict[str, str] = {
    "svc_lr_soft_voting": "dataperf.learners.soft_voting:predict_seeds",
}


@dataclass(frozen=True)
class Prediction:
    labels: np.ndarray
    converged: bool


def make_model(name: str, params: Mapping[str, Any], *, seed: int) -> Any:
    try:
        module, _, attribute = FROZEN_MODELS[name].partition(":")
    except KeyError:
        known = ", ".join(sorted(FROZEN_MODELS))
        raise SpecError(f"unknown frozen model {name!r}; known models: {known}") from None
    factory = getattr(importlib.import_module(module), attribute)
    try:
        return factory(**{**params, "random_state": seed})
    except TypeError as err:
        raise SpecError(f"bad parameters for frozen model {name!r}: {err}") from None


def train_and_predict(
    name: str,
    params: Mapping[str, Any],
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    *,
    seed: int,
) -> Prediction:
    """Fit the frozen model on float64 copies of the data and predict the test rows."""
    from sklearn.exceptions import ConvergenceWarning

    model = make_model(name, params, seed=seed)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        warnings.filterwarnings("ignore", category=FutureWarning)  # SVC(probability=True)
        model.fit(np.asarray(x_train, dtype=np.float64), np.asarray(y_train))
    converged = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
    labels = model.predict(np.asarray(x_test, dtype=np.float64))
    return Prediction(labels=np.asarray(labels), converged=converged)


def predict_seeds(
    name: str,
    params: Mapping[str, Any],
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    *,
    seeds: Sequence[int],
) -> list[Prediction]:
    """:func:`train_and_predict` for each seed, in one batched pass where the model has one."""
    if name not in BATCHED:
        return [train_and_predict(name, params, x_train, y_train, x_test, seed=s) for s in seeds]
    module, _, attribute = BATCHED[name].partition(":")
    batched = getattr(importlib.import_module(module), attribute)
    try:
        results = batched(params, x_train, y_train, x_test, seeds)
    except TypeError as err:
        raise SpecError(f"bad parameters for frozen model {name!r}: {err}") from None
    return [Prediction(labels=np.asarray(labels), converged=ok) for labels, ok in results]
