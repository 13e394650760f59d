"""The selection kind: pick at most M labelled examples from a pool; the frozen model is trained
on them and scored on hidden test data. Written once, configured by each challenge's spec.

Edition tables (all selection challenges)::

    public/pool.parquet         id: string, embedding: fixed_size_list<float16|float32, d>
    public/examples.parquet     task, id [, label]     known examples (default label: class 1)
    public/weak_labels.parquet  id, task, confidence   annotator's P(class 1) (optional file)
    hidden/test.parquet         task, id, embedding, label (int class index)

Submission: one file per task, ``{task}.csv`` (``ID,label`` columns named by the spec) or
``{task}.json`` (``{ID: label}``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from dataperf import metrics
from dataperf.challenge import Challenge, Profile, Progress, Submission, TestSplit, no_progress
from dataperf.editions import Edition, embedding_array
from dataperf.exceptions import AlgorithmError, Problem, SpecError, SubmissionError
from dataperf.kinds import selection_files as files
from dataperf.kinds._common import (
    KindSpec,
    adopt_spec,
    algorithm_summaries,
    make_algorithm,
    mean_task_score,
    task_seed,
    validate_spec,
)
from dataperf.learners.frozen import FROZEN_MODELS
from dataperf.scores import Score, TaskScore

if TYPE_CHECKING:  # scikit-learn loads only when an algorithm or the model runs
    from dataperf.algorithms.selection import SelectionTask

SCORER_VERSION = "selection-1"


class ModelSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = "logistic_regression"
    params: dict[str, Any] = {}

    @field_validator("name")
    @classmethod
    def _known_model(cls, name: str) -> str:
        if name not in FROZEN_MODELS:
            raise ValueError(f"unknown model {name!r}; known: {', '.join(sorted(FROZEN_MODELS))}")
        return name


class BootstrapSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    n_resamples: int = Field(default=1000, ge=100, le=100_000)
    seed: int = Field(default=0, ge=0)
    confidence: float = Field(default=0.95, gt=0.5, lt=1.0)


class SelectionSpec(KindSpec):
    """The declarative definition of a selection challenge (YAML or JSON)."""

    kind: Literal["selection"] = "selection"
    budget: int = Field(ge=2, le=1_000_000)
    metric: Literal["f1", "macro_f1", "accuracy"] = "f1"
    scale: float = Field(default=100.0, gt=0)
    model: ModelSpec = ModelSpec()
    seeds: list[int] = Field(default=[0], min_length=1)
    id_column: str = "ImageID"
    label_column: str = "Confidence"
    formats: list[Literal["csv", "json"]] = Field(default=["csv", "json"], min_length=1)
    bootstrap: BootstrapSpec = BootstrapSpec()

    @model_validator(mode="after")
    def _consistent(self) -> SelectionSpec:
        if self.metric == "f1" and len(self.classes) != 2:
            raise ValueError("metric 'f1' is binary F1 of classes[1]; use 'macro_f1' for more "
                             "than two classes")
        return self


@dataclass(frozen=True)
class TaskSelection:
    """A validated selection for one task: pool row indices (sorted) and class indices."""

    indices: np.ndarray
    labels: np.ndarray


@dataclass(frozen=True)
class SelectionSubmission(Submission):
    selections: Mapping[str, TaskSelection] = field(default_factory=dict)


@dataclass(frozen=True)
class Pool:
    ids: pa.Array  # string ids, row order of public/pool.parquet
    embeddings: np.ndarray  # (N, d)

    def locate(self, ids: tuple[str, ...]) -> np.ndarray:
        """Pool row index of each ID, -1 where unknown (vectorised hash lookup)."""
        found = pc.index_in(pa.array(ids, type=pa.string()), value_set=self.ids)
        return np.asarray(found.fill_null(-1).to_numpy(zero_copy_only=False), dtype=np.int64)


def load_pool(edition: Edition) -> Pool:
    table = edition.read_table("public/pool.parquet")
    ids = table.column("id").combine_chunks().cast(pa.string())
    return Pool(ids=ids, embeddings=embedding_array(table.column("embedding")))


class SelectionChallenge(Challenge):
    """A selection challenge configured by a :class:`SelectionSpec`."""

    kind = "selection"
    scorer_version = SCORER_VERSION

    def __init__(self, spec: SelectionSpec, *, builder: str | None = None,
                 importer: str | None = None):
        self.spec = spec
        adopt_spec(self, spec, builder=builder, importer=importer)
        self.metric = spec.metric
        self.direction = "higher"

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, origin: str, builder: str | None = None,
                     importer: str | None = None) -> SelectionChallenge:
        return cls(validate_spec(SelectionSpec, data, origin=origin), builder=builder,
                   importer=importer)

    def rules(self) -> dict[str, str]:
        spec = self.spec
        model = spec.model.name + (f" {spec.model.params}" if spec.model.params else "")
        metric = {"f1": f"binary F1 of label {spec.classes[1]!r}", "macro_f1": "macro F1",
                  "accuracy": "accuracy"}[spec.metric]
        seeds = ", ".join(map(str, spec.seeds))
        return {
            "task": "Choose at most "
            f"{spec.budget:,} rows of the pool per task and give each a label "
            f"({' or '.join(spec.classes)}).",
            "frozen model": f"{model}, random_state = seed ({seeds})",
            "metric": f"{metric} x {spec.scale:g} on the hidden test set, mean over seeds; "
            "leaderboard: per task and the mean over tasks",
            "interval": f"{spec.bootstrap.confidence:.0%} percentile bootstrap over test rows "
            f"({spec.bootstrap.n_resamples} resamples, seeded)",
            "submission": " or ".join(
                {"csv": f"{{task}}.csv with header {spec.id_column},{spec.label_column}",
                 "json": '{task}.json = {"ID": label, ...}'}[f] for f in spec.formats
            ) + "; one file per task",
        }

    # Submissions ----------------------------------------------------------------------------

    def parse_submission(
        self, files_by_name: Mapping[str, bytes], edition: Edition, *,
        profile: Profile = "default",
    ) -> SelectionSubmission:
        problems: list[Problem] = []
        by_task = self._match_files(files_by_name, edition.tasks, problems)
        pool = load_pool(edition)
        selections: dict[str, TaskSelection] = {}
        warnings: list[str] = []
        for task, name in by_task.items():
            rows = self._parse_file(name, files_by_name[name], problems)
            if rows is None:
                continue
            selection = self._validate_rows(name, rows, pool, profile, problems, warnings)
            if selection is not None:
                selections[task] = selection
        if problems:
            raise SubmissionError(problems)
        return SelectionSubmission(self.name, dict(files_by_name), tuple(warnings), selections)

    def _match_files(self, files_by_name: Mapping[str, bytes], tasks: tuple[str, ...],
                     problems: list[Problem]) -> dict[str, str]:
        """Task name -> file name; unexpected, ambiguous and missing files become problems."""
        by_task: dict[str, list[str]] = {t: [] for t in tasks}
        lowered = {t.lower(): t for t in tasks}
        for name in sorted(files_by_name):
            stem, dot, suffix = name.rpartition(".")
            if dot and suffix in self.spec.formats and stem in by_task:
                by_task[stem].append(name)
                continue
            hint = ""
            if dot and stem.lower() in lowered:
                suffix = suffix.lower() if suffix.lower() in self.spec.formats \
                    else self.spec.formats[0]
                hint = f"; did you mean {lowered[stem.lower()]}.{suffix}?"
            expected = " or ".join(f"{{task}}.{f}" for f in self.spec.formats)
            problems.append(Problem(name, "unexpected-file",
                                    f"is not a submission file of {self.name} (expected "
                                    f"{expected} for the tasks {', '.join(by_task)}){hint}"))
        matched: dict[str, str] = {}
        for task, names in by_task.items():
            if not names:
                problems.append(Problem(f"{task}.{self.spec.formats[0]}", "missing-task",
                                        f"is missing: every task needs a file (task {task})"))
            elif len(names) > 1:
                problems.append(Problem(names[0], "ambiguous-task-file",
                                        f"and {', '.join(names[1:])} are both for task {task};"
                                        " keep one"))
            else:
                matched[task] = names[0]
        return matched

    def _parse_file(self, name: str, data: bytes,
                    problems: list[Problem]) -> files.LabelledRows | None:
        text = files.decode_text(name, data, problems)
        if text is None:
            return None
        before = len(problems)
        if name.endswith(".json"):
            rows = files.parse_json(name, text, classes=self.spec.classes, problems=problems)
        else:
            rows = files.parse_csv(name, text, id_column=self.spec.id_column,
                                   label_column=self.spec.label_column,
                                   classes=self.spec.classes, problems=problems)
        return rows if len(problems) == before else None

    def _validate_rows(self, name: str, rows: files.LabelledRows, pool: Pool, profile: Profile,
                       problems: list[Problem], warnings: list[str]) -> TaskSelection | None:
        budget = self.spec.budget
        found: list[Problem] = []
        if len(rows.ids) > budget:
            found.append(Problem(name, "over-budget",
                                 f"has {len(rows.ids):,} rows; at most {budget:,} are allowed"))
        found += files.duplicate_problems(name, rows)
        positions = pool.locate(rows.ids)
        unknown = list(dict.fromkeys(i for i, p in zip(rows.ids, positions, strict=True) if p < 0))
        if unknown and profile == "official":
            warnings.append(f"{name}: {len(unknown)} ID(s) not in the pool were dropped, as the "
                            f"original scorer does: {', '.join(unknown[:5])}")
        elif unknown:
            line = next(ln for ln, p in zip(rows.lines, positions, strict=True) if p < 0)
            found.append(Problem(name, "unknown-id",
                                 f"lists {len(unknown)} ID(s) that are not in the pool",
                                 line or None, tuple(unknown)))
        keep = positions >= 0
        labels = np.asarray(rows.labels, dtype=np.int64)[keep]
        if not found and len(np.unique(labels)) < 2:
            present = ", ".join(self.spec.classes[i] for i in np.unique(labels)) or "none"
            found.append(Problem(name, "single-class",
                                 f"has labels {present} only; the frozen model needs at least "
                                 "two classes to train"))
        if found:
            problems.extend(found)
            return None
        order = np.argsort(positions[keep], kind="stable")
        return TaskSelection(indices=positions[keep][order], labels=labels[order])

    # Scoring --------------------------------------------------------------------------------

    def score(self, submission: Submission, edition: Edition, *,
              profile: Profile = "default", progress: Progress = no_progress,
              split: TestSplit | None = None) -> Score:
        if not isinstance(submission, SelectionSubmission):
            raise TypeError("expected a SelectionSubmission from parse_submission")
        from dataperf.learners.frozen import train_and_predict

        spec = self.spec
        pool = load_pool(edition)
        test = edition.read_table("hidden/test.parquet")
        metric = metrics.METRICS[spec.metric]
        n_classes = len(spec.classes)
        task_scores: list[TaskScore] = []
        samples: list[np.ndarray] = []
        tasks = self.tasks(edition)
        steps = len(tasks) * len(spec.seeds)
        for t, task in enumerate(tasks):
            selection = submission.selections[task.name]
            rows = test.filter(pc.equal(test.column("task"), task.name))
            x_test = embedding_array(rows.column("embedding"))
            y_test = rows.column("label").to_numpy().astype(np.int64)
            x_train = pool.embeddings[selection.indices]
            keep = None
            if split is not None:  # checked before training: an empty part fails fast
                try:
                    keep = split.mask(len(y_test), t)
                except SpecError as err:
                    raise SpecError(f"task {task.name}: {err}") from None
            predictions = []
            converged = True
            for s, seed in enumerate(spec.seeds):
                progress(f"scoring {task.name}", t * len(spec.seeds) + s, steps)
                predicted = train_and_predict(spec.model.name, spec.model.params, x_train,
                                              selection.labels, x_test, seed=seed)
                predictions.append(predicted.labels.astype(np.int64))
                converged &= predicted.converged
            y_preds = np.stack(predictions)
            if keep is not None:  # the same predictions, scored on one part of the rows only
                y_test, y_preds = y_test[keep], y_preds[:, keep]
            matrices = np.stack([metrics.confusion_matrix(y_test, p, n_classes) for p in y_preds])
            per_seed = metric(matrices) * spec.scale
            details: dict[str, Any] = {
                "train_rows": len(selection.indices),
                "train_class_counts": np.bincount(selection.labels, minlength=n_classes).tolist(),
                "test_rows": len(y_test),
                "per_seed": per_seed.tolist(),
                "confusion_matrix": matrices.sum(axis=0).tolist(),
                "converged": converged,
            }
            if split is not None:
                details["test_part"] = split.part
            if n_classes == 2:
                precision, recall = metrics.precision_recall(matrices.sum(axis=0))
                details |= {"precision": precision, "recall": recall}
            details["accuracy"] = float(metrics.accuracy(matrices).mean())
            low = high = None
            if profile == "default":
                boot = metrics.bootstrap_confusions(
                    y_test, y_preds, n_classes, n_resamples=spec.bootstrap.n_resamples,
                    seed=task_seed(spec.bootstrap.seed, t))
                task_samples = metric(boot).mean(axis=0) * spec.scale
                samples.append(task_samples)
                interval = metrics.percentile_interval(task_samples,
                                                       confidence=spec.bootstrap.confidence)
                low, high = interval.low, interval.high
            task_scores.append(TaskScore(task.name, float(per_seed.mean()), low, high, details))
        progress("scoring", steps, steps)
        aggregate = mean_task_score(task_scores, samples, confidence=spec.bootstrap.confidence)
        return Score(challenge=self.name, edition=edition.name,
                     edition_hash=edition.content_hash, scorer_version=SCORER_VERSION,
                     profile=profile, metric=spec.metric, direction="higher",
                     tasks=tuple(task_scores), aggregate=aggregate,
                     warnings=submission.warnings,
                     part="all" if split is None else split.part)

    # Algorithms -----------------------------------------------------------------------------

    def algorithms(self) -> dict[str, str]:
        from dataperf.algorithms.selectors import SELECTORS

        return algorithm_summaries(SELECTORS)

    def selection_task(self, edition: Edition, task: str, pool: Pool | None = None
                       ) -> SelectionTask:
        """The public data of one task in the form participant algorithms take."""
        from dataperf.algorithms.selection import SelectionTask

        self.task(edition, task)
        pool = pool or load_pool(edition)
        n, n_classes = len(pool.ids), len(self.spec.classes)
        weak = np.full((n, n_classes), 1.0 / n_classes, dtype=np.float32)
        if "public/weak_labels.parquet" in edition.manifest.files:
            table = edition.read_table("public/weak_labels.parquet")
            table = table.filter(pc.equal(table.column("task"), task))
            rows = pool.locate(tuple(table.column("id").to_pylist()))
            confidence = table.column("confidence").to_numpy().astype(np.float32)
            known = rows >= 0
            if n_classes == 2:
                weak[rows[known], 1] = confidence[known]
                weak[rows[known], 0] = 1.0 - confidence[known]
        examples = np.zeros(0, dtype=np.int64)
        example_labels = np.zeros(0, dtype=np.int64)
        if "public/examples.parquet" in edition.manifest.files:
            table = edition.read_table("public/examples.parquet")
            table = table.filter(pc.equal(table.column("task"), task))
            rows = pool.locate(tuple(table.column("id").to_pylist()))
            if "label" in table.column_names:
                labels = np.asarray(table.column("label").to_numpy(), dtype=np.int64)
            else:
                labels = np.ones(len(rows), dtype=np.int64)
            examples, example_labels = rows[rows >= 0], labels[rows >= 0]
        return SelectionTask(embeddings=pool.embeddings, weak_proba=weak, examples=examples,
                             example_labels=example_labels, budget=self.spec.budget)

    def run_algorithm(self, name: str, edition: Edition, *,
                      params: Mapping[str, Any] | None = None, random_state: int = 0,
                      progress: Progress = no_progress) -> dict[str, bytes]:
        from dataperf.algorithms.selectors import SELECTORS

        selector = make_algorithm(SELECTORS, name, params, random_state)
        pool = load_pool(edition)
        ids = pool.ids.to_numpy(zero_copy_only=False)
        out: dict[str, bytes] = {}
        tasks = self.tasks(edition)
        for i, task in enumerate(tasks):
            progress(f"{name} on {task.name}", i, len(tasks))
            try:
                chosen = selector.select(self.selection_task(edition, task.name, pool))
            except ValueError as err:  # selectors raise ValueError for bad hyper-parameters
                raise AlgorithmError(str(err)) from None
            labels = [self.spec.classes[int(c)] for c in chosen.labels]
            out[f"{task.name}.csv"] = files.write_csv(
                [str(x) for x in ids[chosen.indices]], labels,
                id_column=self.spec.id_column, label_column=self.spec.label_column)
        progress("done", len(tasks), len(tasks))
        return out

