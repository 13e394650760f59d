"""Hyper-parameter checks shared by the participant-side algorithms.

Each algorithm class lists its constructor's hyper-parameters in ``_constraints`` (name ->
:class:`_Constraint`) and inherits :class:`_Validated`, whose ``_validate_params`` raises a
``ValueError`` in scikit-learn's words for the first one that is out of range::

    The 'n_folds' parameter of LossCleaner must be an int >= 1. Got 0 instead.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from numbers import Integral, Real
from typing import Any, ClassVar

import numpy as np

__all__ = [
    "_Choice",
    "_Constraint",
    "_Float",
    "_Int",
    "_Seed",
    "_Validated",
    "_is_int",
    "_is_real",
]


class _Constraint:
    description: str

    def accepts(self, value: Any) -> bool:
        raise NotImplementedError


def _is_int(value: Any) -> bool:
    return isinstance(value, Integral) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)


class _Int(_Constraint):
    def __init__(self, low: int, high: int | None = None, *, none_ok: bool = False) -> None:
        self.low, self.high, self.none_ok = low, high, none_ok
        text = f"an int >= {low}" if high is None else f"an int in [{low}, {high}]"
        self.description = text + (" or None" if none_ok else "")

    def accepts(self, value: Any) -> bool:
        if value is None:
            return self.none_ok
        return _is_int(value) and value >= self.low and (self.high is None or value <= self.high)


class _Float(_Constraint):
    def __init__(self, low: float, high: float | None = None, *, low_open: bool = False) -> None:
        self.low, self.high, self.low_open = low, high, low_open
        if high is None:
            self.description = f"a float {'>' if low_open else '>='} {low:g}"
        else:
            self.description = f"a float in {'(' if low_open else '['}{low:g}, {high:g}]"

    def accepts(self, value: Any) -> bool:
        if not _is_real(value):
            return False
        above = value > self.low if self.low_open else value >= self.low
        return above and (self.high is None or value <= self.high)


class _Seed(_Constraint):
    description = "an int >= 0, a numpy Generator or None"

    def accepts(self, value: Any) -> bool:
        return (
            value is None
            or isinstance(value, np.random.Generator)
            or (_is_int(value) and value >= 0)
        )


class _Choice(_Constraint):
    """One of a few strings: ``_Choice(("tree", "logistic"))`` is "'tree' or 'logistic'"."""

    def __init__(self, options: Sequence[str]) -> None:
        self.options = tuple(options)
        quoted = [repr(o) for o in self.options]
        self.description = (
            quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]
        )

    def accepts(self, value: Any) -> bool:
        return value in self.options


class _Validated:
    """Mixin: ``_validate_params`` checks every attribute named in ``_constraints``, in order."""

    _constraints: ClassVar[dict[str, _Constraint]] = {}

    def _validate_params(self) -> None:
        for name, constraint in self._constraints.items():
            value = getattr(self, name)
            if not constraint.accepts(value):
                raise ValueError(self._param_message(name, constraint.description, value))

    def _param_message(self, name: str, description: str, value: Any) -> str:
        return (
            f"The {name!r} parameter of {type(self).__name__} must be {description}."
            f" Got {value!r} instead."
        )
