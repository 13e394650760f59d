"""Pseudo-labelling: example-anchored noisy labels, confident learning, a teacher distilled."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from dataperf.algorithms._linear import fit_logistic
from dataperf.algorithms._params import _Constraint, _Float, _Int, _Seed
from dataperf.algorithms.selection._helpers import (
    _allocate,
    _prior_matched,
    _proba,
    _rows,
    _unique_examples,
)
from dataperf.algorithms.selection.base import Selector, _ClassMix
from dataperf.algorithms.selection.task import SelectionTask

__all__ = ["PseudoLabelSelector"]


class PseudoLabelSelector(Selector):
    """Pseudo-labelling: clean the weak labels, fit a teacher, distil it into a small labelled set.

    Works on a working set of at most ``max_train`` pool rows drawn uniformly, plus the examples.

    1. Noisy labels. Each class with at least 5 known examples gets an example-anchored model
       (see ``_example_anchored``): it undoes annotators that confuse a look-alike class with a
       concept, by mixing the annotator's ranking with a ranking learnt from the examples, as
       far as held-out examples say the mix ranks true members higher. The labels are then
       matched to the estimated class frequencies (annotator's mean probability, capped by an
       estimate from the examples), which rescues classes the annotator is rarely sure of.
    2. Confident learning: out-of-sample class probabilities from ``n_folds``-fold
       cross-validation of ``LogisticRegression`` on the embeddings; a row is kept if its
       probability of its noisy label is at least the average for that label (per-class
       thresholds, as in Northcutt et al.'s confident learning).
    3. Teacher: ``LogisticRegression(random_state=0)`` (the frozen model's own family and
       defaults, so the frozen model can represent its decision boundary) on the kept rows,
       the examples weighted ``example_weight``.
    4. Distillation: ``min(size, budget)`` rows, the known examples first with their labels,
       then at random per teacher class so that the class mix follows ``class_mix`` ('sqrt':
       shares proportional to the square roots of the annotator's class frequencies, between
       'prior' and 'balanced'); each carries the teacher's label. A ``boundary_fraction`` of
       the rows can instead be drawn from the ``boundary_oversample`` times as many rows
       closest to the teacher's decision boundary; off by default, because near the boundary
       the teacher's labels are the least reliable.

    Cost: per anchored class 6 fits on at most 10,000 + examples rows, then ``n_folds + 1``
    fits on at most ``max_train`` rows held in float32 (``max_train * d * 4`` bytes).
    """

    _constraints: ClassVar[dict[str, _Constraint]] = {
        "size": _Int(1, none_ok=True),
        "class_mix": _ClassMix(),
        "boundary_fraction": _Float(0.0, 1.0),
        "boundary_oversample": _Float(1.0),
        "n_folds": _Int(2),
        "example_weight": _Float(0.0),
        "max_train": _Int(2),
        "random_state": _Seed(),
    }

    def __init__(
        self,
        size: int | None = None,
        class_mix: str | Sequence[float] = "sqrt",
        boundary_fraction: float = 0.0,
        boundary_oversample: float = 3.0,
        n_folds: int = 3,
        example_weight: float = 5.0,
        max_train: int = 50_000,
        random_state: int | None = 0,
    ) -> None:
        self.size = size
        self.class_mix = class_mix
        self.boundary_fraction = boundary_fraction
        self.boundary_oversample = boundary_oversample
        self.n_folds = n_folds
        self.example_weight = example_weight
        self.max_train = max_train
        self.random_state = random_state

    def _select(
        self, task: SelectionTask, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        n = self._target_size(task)
        weights = self._checked_weights(task)
        n_classes = task.n_classes
        ex, ex_labels = _unique_examples(task)

        work = rng.choice(task.n_items, size=min(self.max_train, task.n_items), replace=False)
        work = np.concatenate([np.sort(np.setdiff1d(work, ex)), ex])
        is_example = np.zeros(len(work), dtype=bool)
        is_example[len(work) - len(ex) :] = True
        X = _rows(task.embeddings, work)
        scores, priors = _example_anchored(
            X, np.asarray(task.weak_proba[work], dtype=np.float64), ex_labels, rng
        )
        noisy = _prior_matched(scores, priors)
        noisy[is_example] = ex_labels
        del scores
        weight = np.where(is_example, float(self.example_weight), 1.0)

        keep = _confident_rows(X, noisy, n_classes, self.n_folds, rng) | is_example
        teacher = fit_logistic(X[keep], noisy[keep], sample_weight=weight[keep])
        if teacher is None:  # a single class survives: nothing to distil
            labels, margin = noisy, rng.random(len(work))
        else:
            proba = _proba(teacher, X, n_classes)
            labels = np.argmax(proba, axis=1)
            proba.sort(axis=1)
            margin = proba[:, -1] - proba[:, -2]
        del X
        labels[is_example] = noisy[is_example]

        free = ~is_example
        chosen = [np.flatnonzero(is_example)]
        n_boundary = min(round(self.boundary_fraction * n), max(n - len(ex), 0))
        if n_boundary:
            candidates = np.flatnonzero(free)
            close = candidates[np.argsort(margin[candidates], kind="stable")]
            close = close[: max(n_boundary, round(self.boundary_oversample * n_boundary))]
            picked = rng.choice(close, size=min(n_boundary, len(close)), replace=False)
            free[picked] = False
            chosen.append(picked)
        taken = np.concatenate(chosen)
        have = np.bincount(labels[taken], minlength=n_classes)
        available = np.bincount(labels[free], minlength=n_classes)
        target = _allocate(n, weights, have + available)
        quotas = np.minimum(np.maximum(target - have, 0), available)
        quotas += _allocate(n - len(taken) - int(quotas.sum()), weights, available - quotas)
        for c in range(n_classes):
            members = np.flatnonzero(free & (labels == c))
            chosen.append(rng.choice(members, size=int(quotas[c]), replace=False))
        rows = np.concatenate(chosen)
        return work[rows], labels[rows]


def _ranks(values: np.ndarray) -> np.ndarray:
    """Positions of ``values`` in increasing order, scaled to [0, 1)."""
    out = np.empty(len(values), dtype=np.float64)
    out[np.argsort(values, kind="stable")] = np.arange(len(values)) / max(len(values), 1)
    return out


#: Classes with fewer known examples than this are not anchored (see ``_example_anchored``).
_MIN_ANCHOR_EXAMPLES = 5
#: Negatives drawn for each example-anchored model.
_ANCHOR_NEGATIVES = 10_000
#: Weights of the example-anchored ranking tried against the annotator's.
_ANCHOR_WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)


def _anchor_model(X: np.ndarray, positives: np.ndarray, negatives: np.ndarray) -> Any:
    """Balanced ``LogisticRegression`` of ``positives`` against ``negatives`` (row indices)."""
    y = np.r_[np.ones(len(positives), dtype=np.int64), np.zeros(len(negatives), dtype=np.int64)]
    return fit_logistic(X[np.r_[positives, negatives]], y, class_weight="balanced")


def _example_anchored(
    X: np.ndarray, proba: np.ndarray, ex_labels: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Annotator probabilities corrected with the known examples, and class frequencies.

    ``X`` and ``proba`` are the rows of a working set whose last ``len(ex_labels)`` rows are
    the known examples. An annotator can confuse a look-alike class with a concept; the known
    examples, a random sample of the concept, cannot. For every class with at least
    ``_MIN_ANCHOR_EXAMPLES`` examples, a balanced ``LogisticRegression`` separates its examples
    from (up to ``_ANCHOR_NEGATIVES`` of) the rows the annotator ranks in the lower half for it.
    The class's column is then reordered by a weighted mean of the annotator's rank and this
    model's rank (keeping the column's values). The weight is the one whose ranking puts the
    most held-out examples in its top k rows, k being the tightest plausible class size: the
    examples are a random sample of the class, so at a fixed k more of them means more true
    members (ties favour the annotator). The class size is the annotator's mean probability,
    capped by twice the number of rows that the chosen ranking puts above the median example
    (half of the class should be there): look-alikes inflate the annotator's mean, overlapping
    classes inflate the second estimate, so the smaller is kept. Classes without examples share
    the rest in proportion to their mean probability.
    """
    n_rows, n_classes = proba.shape
    first_example = n_rows - len(ex_labels)
    scores = proba.copy()
    priors = proba[:first_example].mean(axis=0) if first_example else proba.mean(axis=0)
    anchored = np.zeros(n_classes, dtype=bool)
    for c in range(n_classes):
        pos = first_example + np.flatnonzero(ex_labels == c)
        if len(pos) < _MIN_ANCHOR_EXAMPLES or first_example < 2:
            continue
        col = proba[:first_example, c]
        low = np.flatnonzero(col <= np.median(col))
        if len(low) > _ANCHOR_NEGATIVES:
            low = np.sort(rng.choice(low, size=_ANCHOR_NEGATIVES, replace=False))
        # Anchor scores; the examples get out-of-fold ones, so they can judge the ranking.
        score = _anchor_model(X, pos, low).decision_function(X)
        n_folds = min(5, len(pos))
        fold = rng.permutation(len(pos)) % n_folds
        for f in range(n_folds):
            model = _anchor_model(X, pos[fold != f], low)
            score[pos[fold == f]] = model.decision_function(X[pos[fold == f]])
        weak_rank, anchor_rank = _ranks(proba[:, c]), _ranks(score)
        mixes = [(1.0 - w) * weak_rank + w * anchor_rank for w in _ANCHOR_WEIGHTS]
        # Half of the class should rank above the median example: a size estimate per mix.
        estimates = [
            2.0 * float(np.mean(mixed[:first_example] >= np.median(mixed[pos]))) for mixed in mixes
        ]
        # The examples are a random sample of the class, so at a fixed number k of rows taken
        # as the class, the ranking that puts more of them in its top k has more true members
        # there. Compare at the tightest plausible size; ties favour the annotator.
        k = max(1, round(min(float(priors[c]), *estimates) * first_example))
        best_recall, best = -1.0, 0
        for i, mixed in enumerate(mixes):
            threshold = np.partition(mixed[:first_example], first_example - k)[first_example - k]
            recall = float(np.mean(mixed[pos] >= threshold))
            if recall > best_recall:
                best_recall, best = recall, i
        priors[c] = min(priors[c], estimates[best])
        combined = mixes[best]
        combined = _ranks(combined)
        scores[:, c] = np.sort(proba[:, c])[np.minimum((combined * n_rows).astype(int), n_rows - 1)]
        anchored[c] = True
    if anchored.any():
        rest = max(1.0 - float(priors[anchored].sum()), 0.0)
        free = ~anchored
        if free.any():
            mass = priors[free].sum()
            priors[free] = priors[free] * rest / mass if mass > 0 else rest / free.sum()
        if n_classes == 2 and anchored.sum() == 1:
            scores[:, ~anchored] = 1.0 - scores[:, anchored]
        else:
            scores /= np.maximum(scores.sum(axis=1, keepdims=True), 1e-12)
    return scores, priors


def _confident_rows(
    X: np.ndarray, noisy: np.ndarray, n_classes: int, n_folds: int, rng: np.random.Generator
) -> np.ndarray:
    """Rows whose out-of-sample probability of their noisy label reaches that label's average
    (confident learning's per-class thresholds); classes too small to cross-validate are kept."""
    proba = np.zeros((len(noisy), n_classes), dtype=np.float32)
    fold = np.empty(len(noisy), dtype=np.int64)
    for c in range(n_classes):  # stratified folds
        members = rng.permutation(np.flatnonzero(noisy == c))
        fold[members] = np.arange(len(members)) % n_folds
    for f in range(n_folds):
        train, test = fold != f, fold == f
        model = fit_logistic(X[train], noisy[train])
        if model is None or not test.any():
            return np.ones(len(noisy), dtype=bool)
        proba[test] = _proba(model, X[test], n_classes)
    own = proba[np.arange(len(noisy)), noisy]
    counts = np.bincount(noisy, minlength=n_classes)
    means = np.bincount(noisy, weights=own, minlength=n_classes) / np.maximum(counts, 1)
    return (own >= means[noisy]) | (counts[noisy] < n_folds)
