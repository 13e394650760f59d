"""Participant-side data-cleaning ("debugging") algorithms by their public names, and ``CLEANERS``.

In a cleaning challenge a binary training set of N embedded rows carries noisy labels (a share
of them flipped). Participants return an ordering of all N row indices, most suspicious first;
the scorer fixes labels in that order and retrains the frozen linear model, and fewer fixes to
reach 95% of the fully-fixed accuracy is better. Algorithms see a :class:`CleaningTask`
(training embeddings, their noisy labels and a small clean validation set) and return a
permutation of ``range(N)``.

Every algorithm follows the scikit-learn contract: the constructor only stores hyper-parameters,
:meth:`Cleaner.rank` validates them, turns ``random_state`` into a
:class:`numpy.random.Generator` and does the work; the result is deterministic for a given
``random_state``. Each cleaner first computes a per-row value (:meth:`Cleaner.values`, low =
suspicious) and ranks by increasing value, ties broken at random. Nothing here builds a dense
N x N matrix; costs are stated in each class docstring (N training rows, M validation rows,
d dimensions).

:data:`CLEANERS` maps command-line names to the classes.
"""

from __future__ import annotations

from dataperf.algorithms.cleaning.base import Cleaner
from dataperf.algorithms.cleaning.influence import InfluenceCleaner
from dataperf.algorithms.cleaning.knn import KNNShapleyCleaner, knn_shapley
from dataperf.algorithms.cleaning.loss import ConfidentLearningCleaner, LossCleaner
from dataperf.algorithms.cleaning.oob import DataOOBCleaner
from dataperf.algorithms.cleaning.random_order import RandomCleaner
from dataperf.algorithms.cleaning.task import CleaningTask
from dataperf.algorithms.cleaning.tmc_shapley import TMCShapleyCleaner

__all__ = [
    "CLEANERS",
    "Cleaner",
    "CleaningTask",
    "ConfidentLearningCleaner",
    "DataOOBCleaner",
    "InfluenceCleaner",
    "KNNShapleyCleaner",
    "LossCleaner",
    "RandomCleaner",
    "TMCShapleyCleaner",
    "knn_shapley",
]


CLEANERS: dict[str, type[Cleaner]] = {
    "random": RandomCleaner,
    "loss": LossCleaner,
    "confident-learning": ConfidentLearningCleaner,
    "knn-shapley": KNNShapleyCleaner,
    "data-oob": DataOOBCleaner,
    "influence": InfluenceCleaner,
    "tmc-shapley": TMCShapleyCleaner,
}
