"""One thread for numerical libraries while a participant-side algorithm runs.

Multi-threaded BLAS splits sums (a logistic regression's gradient ``X.T @ r``, dot products)
into per-thread parts and adds them in an order set by the thread count; OpenMP loops in
scikit-learn do the same. Small differences then change which rows an algorithm picks, so the
same algorithm with the same seed would write other files on a laptop than on the hosted
worker (which runs everything on one thread). The public entry point of every algorithm
(``select``, ``values``, ``rank``, ``purchase``) therefore runs under :func:`one_thread`: its
files are the same on every machine, whatever the thread settings or the load.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from threadpoolctl import threadpool_limits

__all__ = ["one_thread"]

P = ParamSpec("P")
R = TypeVar("R")


def one_thread(method: Callable[P, R]) -> Callable[P, R]:
    """``method`` run with every BLAS and OpenMP thread pool limited to one thread."""

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with threadpool_limits(limits=1):
            return method(*args, **kwargs)

    return wrapper
