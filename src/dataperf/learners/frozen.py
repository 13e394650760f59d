"""Frozen models: the fixed learners that scorers train on participants' data.

A challenge names its model and hyper-parameters declaratively (``model: logistic_regression``);
this module turns that into a fitted estimator. Hyper-parameters are the original DataPerf ones
unless a challenge overrides them; ``random_state`` comes from the scorer's seed.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from dataperf.exceptions import SpecError

# name -> "module:class"; imported only when a model is trained, so that reading specs is cheap.
FROZEN_MODELS: dict[str, str] = {
    "logistic_regression": "sklearn.linear_model:LogisticRegression",
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
        model.fit(np.asarray(x_train, dtype=np.float64), np.asarray(y_train))
    converged = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
    labels = model.predict(np.asarray(x_test, dtype=np.float64))
    return Prediction(labels=np.asarray(labels), converged=converged)
