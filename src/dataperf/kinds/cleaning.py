"""The cleaning kind ("debugging"): order the noisy training rows so that fixing their labels in
that order brings the frozen model's test accuracy up fastest. Written once, configured by each
challenge's spec; generic over the data.

Edition tables (all cleaning challenges)::

    public/train.parquet        task, index (int32, 0..n-1 per task), id, embedding,
                                label (int8 class index: the NOISY label)
    public/validation.parquet   task, id, embedding, label (clean)
    hidden/test.parquet         task, id, embedding, label
    hidden/truth.parquet        task, index, label (the true label of each training row)

Submission: one file per task, ``{task}.txt`` or the original's ``{task}_{method}.txt``: an
ordering of all n training row indices, one per line, most suspicious first (the original
format; one method per submission; see :mod:`.cleaning_files`).

Scoring. For each task the frozen model is retrained after fixing the first k rows of the
ordering, k = 0..n (``dataperf.learners.debug_linear.cleaning_curve``), giving the test
accuracy acc_k. Lower is better.

- default profile: the fraction of fixes k*/n, where k* is the smallest k in 0..n with
  acc_k >= target x acc_n (unrounded accuracies; reaching the target without any fix scores
  0, needing every fix scores 1), with a percentile bootstrap interval over test rows.
- official profile (the original scorer, number for number): the frozen model keeps the
  original's decision-threshold rule (the first threshold with a strictly greater training
  accuracy rounded to 2 decimals; the default takes the most training rows right); test
  accuracies rounded to 2 decimals (numpy's round); for i = 0..n-1 (i+1 labels fixed) the
  first i whose rounded accuracy >= target x rounded acc_n; score i/n. The index is 0-based,
  so reaching the target after 1 fix scores 0, and acc_0 (no fix) is never looked at.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field

from dataperf import metrics
from dataperf.challenge import Challenge, Profile, Progress, Submission, TestSplit, no_progress
from dataperf.editions import Edition, embedding_array
from dataperf.exceptions import (
    AlgorithmError,
    EditionError,
    Problem,
    SpecError,
    SubmissionError,
)
from dataperf.kinds import cleaning_files as files
from dataperf.kinds._common import (
    BootstrapSpec,
    KindSpec,
    adopt_spec,
    algorithm_summaries,
    make_algorithm,
    mean_task_score,
    task_seed,
    validate_spec,
)
from dataperf.scores import Score, TaskScore

if TYPE_CHECKING:  # the algorithms load only when one runs
    from dataperf.algorithms.cleaning import CleaningTask

SCORER_VERSION = "cleaning-1"
TRAIN = "public/train.parquet"
VALIDATION = "public/validation.parquet"
TEST = "hidden/test.parquet"
TRUTH = "hidden/truth.parquet"
BOOTSTRAP_BLOCK = 64  # resamples drawn (and counted) together


class CleaningModelSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Literal["debug_linear"] = "debug_linear"


class CleaningSpec(KindSpec):
    """The declarative definition of a cleaning challenge (YAML or JSON)."""

    kind: Literal["cleaning"] = "cleaning"
    # The share of the fully cleaned accuracy to reach.
    target: float = Field(default=0.95, gt=0.0, le=1.0)
    metric: Literal["fraction_of_fixes"] = "fraction_of_fixes"
    direction: Literal["lower"] = "lower"
    model: CleaningModelSpec = CleaningModelSpec()
    seed: int = Field(default=42, ge=0)  # the frozen model's seed
    formats: list[Literal["txt"]] = Field(default=["txt"], min_length=1, max_length=1)
    bootstrap: BootstrapSpec = BootstrapSpec()


class CurveLike(Protocol):
    """What the frozen model's cleaning curve gives: per prefix k = 0..n of the ordering."""

    @property
    def accuracy(self) -> np.ndarray: ...  # (n+1,) test accuracy after fixing k rows

    @property
    def correct(self) -> np.ndarray: ...  # (n+1, n_test) bool: which test rows are right


# curve(x_train, noisy_labels, true_labels, order, x_test, y_test, *, seed, profile)
CurveFunction = Callable[..., CurveLike]


def debug_linear_curve(x_train: np.ndarray, noisy_labels: np.ndarray, true_labels: np.ndarray,
                       order: np.ndarray, x_test: np.ndarray, y_test: np.ndarray, *,
                       seed: int, profile: Profile = "default") -> CurveLike:
    """The frozen model's curve: ``dataperf.learners.debug_linear.cleaning_curve``, with the
    original's decision-threshold rule under the official profile (the default profile takes
    the threshold with the most training rows right; see that module)."""
    from dataperf.learners.debug_linear import ThresholdRule, cleaning_curve

    rule: ThresholdRule = "original" if profile == "official" else "best"
    curve: CurveLike = cleaning_curve(x_train, noisy_labels, true_labels, order, x_test, y_test,
                                      seed=seed, threshold_rule=rule)
    return curve


@dataclass(frozen=True)
class CleaningSubmission(Submission):
    orders: Mapping[str, np.ndarray] = field(default_factory=dict)  # task -> permutation of n
    # task -> the method in the original file name {task}_{method}.txt ("" for {task}.txt)
    methods: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class TrainingSet:
    """One task's training rows in ``index`` order."""

    ids: list[str]
    embeddings: np.ndarray  # (n, d)
    labels: np.ndarray  # (n,) int64 noisy class indices


# Pure scoring rules --------------------------------------------------------------------------


def official_fraction(accuracy: np.ndarray, target: float) -> tuple[float, int]:
    """The original score from the accuracies after k = 0..n fixes: ``(i / n, i)``.

    As the original: ``y = round(accuracy[1:], 2)`` (the accuracy after i+1 fixes at i),
    ``goal = target * y[n-1]``, ``i`` = the first index with ``y[i] >= goal``.
    """
    rounded = np.round(np.asarray(accuracy, dtype=np.float64)[1:], 2)
    n = len(rounded)
    if n == 0:
        raise ValueError("a cleaning curve needs at least one training row")
    goal = target * rounded[n - 1]
    reached = np.flatnonzero(rounded >= goal)
    i = int(reached[0]) if len(reached) else n  # n only for a negative goal, never in practice
    return i / n, i


def fixes_needed(accuracy: np.ndarray, target: float) -> np.ndarray:
    """The smallest k in 0..n with ``accuracy[..., k] >= target * accuracy[..., n]``, per row
    of a (..., n+1) array (vectorised; k = n when nothing earlier reaches the target)."""
    accuracy = np.asarray(accuracy, dtype=np.float64)
    reached = accuracy >= target * accuracy[..., -1:]
    reached[..., -1] = True
    return np.argmax(reached, axis=-1)


def prefix_accuracies(correct: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Accuracy of every prefix under each row weighting (how often each test row was drawn):
    ``correct`` (n+1, m) bool, ``weights`` (B, m) counts -> (B, n+1), by one matrix product."""
    total = weights.sum(axis=1, keepdims=True).astype(np.float64)
    # float32 sums of small integers are exact (below 2**24 test rows).
    hits = weights.astype(np.float32) @ correct.T.astype(np.float32)
    return np.asarray(hits, dtype=np.float64) / np.maximum(total, 1.0)


def bootstrap_fractions(correct: np.ndarray, target: float, *, n_resamples: int,
                        seed: int, block: int = BOOTSTRAP_BLOCK) -> np.ndarray:
    """Fraction of fixes (default rule) on ``n_resamples`` test sets drawn with replacement.

    The m test rows of resample b are ``rng.integers(0, m, size=(size, m))[b - start]`` for
    the block of ``block`` consecutive resamples containing b (``rng = default_rng(seed)``,
    blocks drawn in order, the last one shorter), as :func:`metrics.bootstrap_confusions`.
    Every prefix accuracy is recomputed from ``correct`` by counting.
    """
    correct = np.asarray(correct, dtype=bool)
    n = correct.shape[0] - 1
    m = correct.shape[1]
    out = np.zeros(n_resamples, dtype=np.float64)
    if m == 0 or n == 0:
        return out
    rng = np.random.default_rng(seed)
    for start in range(0, n_resamples, block):
        stop = min(start + block, n_resamples)
        rows = rng.integers(0, m, size=(stop - start, m))
        offsets = (np.arange(stop - start) * m)[:, None]
        weights = np.bincount((rows + offsets).ravel(), minlength=(stop - start) * m)
        accuracy = prefix_accuracies(correct, weights.reshape(stop - start, m))
        out[start:stop] = fixes_needed(accuracy, target) / n
    return out


def area_under_curve(accuracy: np.ndarray) -> float:
    """Mean accuracy over the fraction fixed: the trapezoid area of acc_k against k/n."""
    accuracy = np.asarray(accuracy, dtype=np.float64)
    n = len(accuracy) - 1
    if n <= 0:
        return float(accuracy[0]) if len(accuracy) else 0.0
    return float(np.sum(accuracy[1:] + accuracy[:-1]) / (2 * n))


# The challenge -------------------------------------------------------------------------------


class CleaningChallenge(Challenge):
    """A cleaning challenge configured by a :class:`CleaningSpec`.

    ``curve`` replaces the frozen model's curve function (tests use a fake one); by default it
    is :func:`debug_linear_curve`.
    """

    kind = "cleaning"
    scorer_version = SCORER_VERSION

    def __init__(self, spec: CleaningSpec, *, builder: str | None = None,
                 importer: str | None = None, curve: CurveFunction | None = None):
        self.spec = spec
        adopt_spec(self, spec, builder=builder, importer=importer)
        self.curve: CurveFunction = curve or debug_linear_curve
        self.metric = spec.metric
        self.direction = "lower"

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, origin: str, builder: str | None = None,
                     importer: str | None = None,
                     curve: CurveFunction | None = None) -> CleaningChallenge:
        spec = validate_spec(CleaningSpec, data, origin=origin)
        return cls(spec, builder=builder, importer=importer, curve=curve)

    def rules(self) -> dict[str, str]:
        spec = self.spec
        return {
            "task": "Order all training rows of each task, most likely mislabelled first; "
            "their labels are fixed in that order.",
            "frozen model": f"{spec.model.name} (linear d->128->1, BCE, AdamW), seed "
            f"{spec.seed}, retrained after each fix",
            "metric": f"fraction of fixes: the share of the training rows fixed before the "
            f"test accuracy first reaches {spec.target:.0%} of the accuracy with every label "
            "fixed (lower is better); leaderboard: per task and the mean over tasks",
            "official profile": "the decision threshold picked by rounded training "
            "accuracy, test accuracies rounded to 2 decimals and the fix count taken 0-based "
            "(reaching the target after 1 fix scores 0), as the original scorer",
            "interval": f"{spec.bootstrap.confidence:.0%} percentile bootstrap over test rows "
            f"({spec.bootstrap.n_resamples} resamples, seeded)",
            "submission": "{task}.txt (or the original's {task}_{method}.txt) with every "
            "training row index 0..n-1 exactly once, one per line; one file per task (one "
            "method per submission)",
        }

    # Edition data -----------------------------------------------------------------------------

    def train_sizes(self, edition: Edition) -> dict[str, int]:
        """The number of training rows n of each task."""
        table = edition.read_table(TRAIN, ["task"])
        counts = pc.value_counts(table.column("task").combine_chunks().cast(pa.string()))
        found = {str(c["values"]): int(c["counts"]) for c in counts.to_pylist()}
        return {task: found.get(task, 0) for task in edition.tasks}

    def training_set(self, edition: Edition, task: str) -> TrainingSet:
        table = _task_rows(edition.read_table(TRAIN), task)
        index = table.column("index").to_numpy().astype(np.int64)
        n = len(index)
        if n == 0:
            raise EditionError(f"edition {edition.path}: task {task} has no training rows")
        rows = _index_order(index, n, f"{TRAIN}, task {task}", edition)
        return TrainingSet(
            ids=[str(i) for i in np.asarray(table.column("id").to_pylist(), dtype=object)[rows]],
            embeddings=embedding_array(table.column("embedding"))[rows],
            labels=table.column("label").to_numpy().astype(np.int64)[rows])

    def true_labels(self, edition: Edition, task: str, n: int) -> np.ndarray:
        table = _task_rows(edition.read_table(TRUTH), task)
        index = table.column("index").to_numpy().astype(np.int64)
        rows = _index_order(index, n, f"{TRUTH}, task {task}", edition)
        return table.column("label").to_numpy().astype(np.int64)[rows]

    # Submissions ----------------------------------------------------------------------------

    def parse_submission(
        self, files_by_name: Mapping[str, bytes], edition: Edition, *,
        profile: Profile = "default",
    ) -> CleaningSubmission:
        problems: list[Problem] = []
        matched = files.match_order_files(files_by_name, edition.tasks, challenge=self.name,
                                          problems=problems)
        sizes = self.train_sizes(edition)
        orders: dict[str, np.ndarray] = {}
        for task, name in matched.names.items():
            text = files.decode_text(name, files_by_name[name], problems)
            if text is None:
                continue
            order = files.parse_order(name, text, sizes[task], problems)
            if order is not None:
                orders[task] = order
        if problems:
            raise SubmissionError(problems)
        warnings = tuple(f"{name}: a method's run time is not scored; ignored"
                         for name in matched.ignored)
        return CleaningSubmission(self.name, dict(files_by_name), warnings, orders,
                                  matched.methods)

    # Scoring --------------------------------------------------------------------------------

    def score(self, submission: Submission, edition: Edition, *,
              profile: Profile = "default", progress: Progress = no_progress,
              split: TestSplit | None = None) -> Score:
        if not isinstance(submission, CleaningSubmission):
            raise TypeError("expected a CleaningSubmission from parse_submission")
        spec = self.spec
        test = edition.read_table(TEST)
        tasks = self.tasks(edition)
        task_scores: list[TaskScore] = []
        samples: list[np.ndarray] = []
        for t, task in enumerate(tasks):
            progress(f"scoring {task.name}", t, len(tasks))
            train = self.training_set(edition, task.name)
            n = len(train.labels)
            truth = self.true_labels(edition, task.name, n)
            order = np.asarray(submission.orders[task.name], dtype=np.int64)
            if len(order) != n:
                raise SubmissionError([Problem(f"{task.name}.txt", "missing-index",
                                               f"orders {len(order)} rows; the task has {n}")])
            rows = _task_rows(test, task.name)
            x_test = embedding_array(rows.column("embedding"))
            y_test = rows.column("label").to_numpy().astype(np.int64)
            keep = None
            if split is not None:  # checked before training: an empty part fails fast
                try:
                    keep = split.mask(len(y_test), t)
                except SpecError as err:
                    raise SpecError(f"task {task.name}: {err}") from None
            curve = self.curve(train.embeddings, train.labels, truth, order, x_test, y_test,
                               seed=spec.seed, profile=profile)
            correct = np.asarray(curve.correct, dtype=bool)
            if correct.shape != (n + 1, len(y_test)):
                raise RuntimeError(f"the cleaning curve of task {task.name} has shape "
                                   f"{correct.shape}; expected {(n + 1, len(y_test))}")
            reported = np.asarray(curve.accuracy, dtype=np.float64)
            if reported.shape != (n + 1,) or not np.allclose(
                    reported, correct.mean(axis=1) if len(y_test) else 0.0, rtol=0, atol=1e-6):
                raise RuntimeError(f"the cleaning curve of task {task.name} reports accuracies "
                                   "that do not match its per-row results")
            if keep is not None:  # the same predictions, scored on one part of the rows only
                correct = correct[:, keep]
            m = correct.shape[1]
            accuracy = correct.sum(axis=1) / max(m, 1)
            details: dict[str, Any] = {
                "train_rows": n,
                "test_rows": m,
                "wrong_labels": int(np.count_nonzero(train.labels != truth)),
                "target": spec.target,
            }
            if split is not None:
                details["test_part"] = split.part
            if submission.methods.get(task.name):
                details["method"] = submission.methods[task.name]
            low = high = None
            if profile == "official":
                value, i = official_fraction(accuracy, spec.target)
                rounded = np.round(accuracy, 2)
                details |= {
                    "fixes": i + 1,  # labels fixed when the target was first reached
                    "full_accuracy": float(rounded[n]),
                    "target_accuracy": float(spec.target * rounded[n]),
                    "noisy_accuracy": float(rounded[0]),
                    # the original's auc: trapezoid over fixes 1..n, divided by n
                    "auc": float(np.sum(rounded[2:] + rounded[1:-1]) / (2 * n)),
                    "curve": rounded.tolist(),
                }
            else:
                k = int(fixes_needed(accuracy, spec.target))
                value = k / n
                details |= {
                    "fixes": k,
                    "full_accuracy": float(accuracy[n]),
                    "target_accuracy": float(spec.target * accuracy[n]),
                    "noisy_accuracy": float(accuracy[0]),
                    "auc": area_under_curve(accuracy),
                    "curve": accuracy.tolist(),
                }
                task_samples = bootstrap_fractions(
                    correct, spec.target, n_resamples=spec.bootstrap.n_resamples,
                    seed=task_seed(spec.bootstrap.seed, t))
                samples.append(task_samples)
                interval = metrics.percentile_interval(task_samples,
                                                       confidence=spec.bootstrap.confidence)
                low, high = interval.low, interval.high
            task_scores.append(TaskScore(task.name, float(value), low, high, details))
        progress("scoring", len(tasks), len(tasks))
        return Score(challenge=self.name, edition=edition.name,
                     edition_hash=edition.content_hash, scorer_version=SCORER_VERSION,
                     profile=profile, metric=spec.metric, direction="lower",
                     tasks=tuple(task_scores),
                     aggregate=mean_task_score(task_scores, samples,
                                               confidence=spec.bootstrap.confidence),
                     warnings=submission.warnings,
                     part="all" if split is None else split.part)

    # Algorithms -----------------------------------------------------------------------------

    def algorithms(self) -> dict[str, str]:
        from dataperf.algorithms.cleaning import CLEANERS

        return algorithm_summaries(CLEANERS)

    def cleaning_task(self, edition: Edition, task: str) -> CleaningTask:
        """The public data of one task in the form participant algorithms take."""
        from dataperf.algorithms.cleaning import CleaningTask

        self.task(edition, task)
        train = self.training_set(edition, task)
        validation = _task_rows(edition.read_table(VALIDATION), task)
        return CleaningTask(
            x_train=train.embeddings, noisy_labels=train.labels,
            x_val=embedding_array(validation.column("embedding")),
            y_val=validation.column("label").to_numpy().astype(np.int64))

    def run_algorithm(self, name: str, edition: Edition, *,
                      params: Mapping[str, Any] | None = None, random_state: int = 0,
                      progress: Progress = no_progress) -> dict[str, bytes]:
        from dataperf.algorithms.cleaning import CLEANERS

        cleaner = make_algorithm(CLEANERS, name, params, random_state)
        out: dict[str, bytes] = {}
        tasks = self.tasks(edition)
        sizes = self.train_sizes(edition)
        for i, task in enumerate(tasks):
            progress(f"{name} on {task.name}", i, len(tasks))
            data = self.cleaning_task(edition, task.name)
            try:
                order = np.asarray(cleaner.rank(data), dtype=np.int64)
            except ValueError as err:  # cleaners raise ValueError for bad hyper-parameters
                raise AlgorithmError(str(err)) from None
            n = sizes[task.name]
            if order.shape != (n,) or not np.array_equal(np.sort(order), np.arange(n)):
                raise AlgorithmError(f"{name} did not return a permutation of the {n} training "
                                     f"rows of task {task.name}")
            out[f"{task.name}.{self.spec.formats[0]}"] = files.write_order(order)
        progress("done", len(tasks), len(tasks))
        return out


def _task_rows(table: pa.Table, task: str) -> pa.Table:
    return table.filter(pc.equal(table.column("task"), task))


def _index_order(index: np.ndarray, n: int, where: str, edition: Edition) -> np.ndarray:
    """Row positions sorting ``index`` into 0..n-1; an EditionError unless it is exactly that."""
    rows = np.argsort(index, kind="stable")
    if len(index) != n or not np.array_equal(index[rows], np.arange(n)):
        raise EditionError(f"edition {edition.path}: {where}: the index column must hold every "
                           f"training row index 0..{n - 1} exactly once")
    return rows


__all__ = ["CleaningChallenge", "CleaningSpec", "CleaningSubmission", "area_under_curve",
           "bootstrap_fractions", "debug_linear_curve", "fixes_needed", "official_fraction",
           "prefix_accuracies"]
