"""Checks shared by the algorithm tests of every kind."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from sklearn.base import clone

ContractCheck = Callable[..., None]


def _check_contract(name: str, cls: type, *, max_summary: int | None = 100) -> None:
    """``cls`` (registered as ``name``) is a scikit-learn estimator taking ``random_state``,
    whose docstring starts with a one-line summary (of at most ``max_summary`` characters)."""
    estimator = cls(random_state=5)
    params = estimator.get_params()
    assert params["random_state"] == 5
    assert clone(estimator).get_params() == params
    assert cls.__doc__ is not None
    summary = cls.__doc__.strip().split("\n\n")[0]
    assert "\n" not in summary
    assert summary.endswith(".")
    if max_summary is not None:
        assert len(summary) <= max_summary
    assert re.fullmatch(r"[a-z][a-z-]*", name)


@pytest.fixture
def check_contract() -> ContractCheck:
    """``check_contract(name, cls, max_summary=100)``: see :func:`_check_contract`."""
    return _check_contract
