"""The selection kind: pick at most M labelled examples from a pool; the frozen model is trained
on them and scored on hidden test data. Written once, configured by each challenge's spec.

Edition tables (all selection challenges)::

    public/pool.parquet         id: string, embedding: fixed_size_list<float16|float32, d>
    public/examples.parquet     task, id [, label]     known examples (default label: class 1)
    public/weak_labels.parquet  id, task, confidence   annotator's P(class 1) (optional file)
    hidden/test.parquet         task, id, embedding, label (int class index)

Submission: one file per task, ``{task}.csv`` (``ID,label`` columns named by the spec) or
``{task}.json`` (``{ID: label}``).

Keyword tasks (``formats: [keywords]``, speech selection) choose among given candidates whose
labels are fixed: the word each clip was extracted for. Their classes are the spec's single
background class (index 0) then the task's words in sorted order, always mapped by name::

    public/candidates.parquet   task, id, label (a word or the background class)
    hidden/test.parquet         task, id, embedding, label (the word, a string)

Submission: ``{task}_train.json`` = ``{"targets": {word: [ID, ...]}, "nontargets": [ID, ...]}``
(the original DataPerf speech format); the model trains on the chosen clips in pool order,
whatever their order in the file. The official profile trains as the original evaluator did
(:func:`original_training_order`).

A submission may leave tasks out: the tasks with a file are scored (each exactly as in a full
submission) and the others are named in a warning; the platform requires every task
(:meth:`Challenge.parse_leaderboard_submission`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

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
from dataperf.kinds import selection_files as files
from dataperf.kinds._common import (
    adopt_spec,
    algorithm_summaries,
    make_algorithm,
    match_files,
    mean_task_score,
    task_seed,
    validate_spec,
)
from dataperf.kinds.selection_spec import SelectionSpec
from dataperf.kinds.selection_tables import (
    Candidates,
    Pool,
    class_indices,
    load_candidates,
    load_pool,
    original_training_order,
)
from dataperf.scores import Score, TaskScore

if TYPE_CHECKING:  # scikit-learn loads only when an algorithm or the model runs
    from dataperf.algorithms.selection import SelectionTask

SCORER_VERSION = "selection-1"


@dataclass(frozen=True)
class TaskSelection:
    """A validated selection for one task: pool row indices and class indices, in training
    order (pool order; the original's order in the official profile of keyword tasks)."""

    indices: np.ndarray
    labels: np.ndarray


@dataclass(frozen=True)
class SelectionSubmission(Submission):
    selections: Mapping[str, TaskSelection] = field(default_factory=dict)


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
        metric = {"f1": f"binary F1 of label {spec.classes[-1]!r}", "macro_f1": "macro F1",
                  "accuracy": "accuracy"}[spec.metric]
        seeds = ", ".join(map(str, spec.seeds))
        budgets = f"{spec.budget:,}"
        if spec.task_budgets:
            by_budget: dict[int, list[str]] = {}
            for name, size in spec.task_budgets.items():
                by_budget.setdefault(size, []).append(name)
            budgets = " or ".join(f"{size:,} ({', '.join(names)})"
                                  for size, names in sorted(by_budget.items()))
        if spec.keywords:
            task = (f"Choose at most {budgets} clips per task from its candidates "
                    "(public/candidates.parquet); each keeps the word it was extracted for. "
                    f"Classes: {spec.classes[0]!r} = 0, then the task's target words in "
                    "sorted order.")
            submission = ('{task}_train.json = {"targets": {"word": ["ID", ...], ...}, '
                          '"nontargets": ["ID", ...]}; one file per task')
        else:
            task = (f"Choose at most {budgets} rows of the pool per task and give each a "
                    f"label ({' or '.join(spec.classes)}).")
            submission = " or ".join(
                {"csv": f"{{task}}.csv with header {spec.id_column},{spec.label_column}",
                 "json": '{task}.json = {"ID": label, ...}'}[f] for f in spec.formats
            ) + "; one file per task"
        return {
            "task": task,
            "frozen model": f"{model}, random_state = seed ({seeds})",
            "metric": f"{metric}{'' if spec.scale == 1 else f' x {spec.scale:g}'} on the "
            "hidden test set, mean over seeds; "
            "leaderboard: per task and the mean over tasks",
            "interval": f"{spec.bootstrap.confidence:.0%} percentile bootstrap over test rows "
            f"({spec.bootstrap.n_resamples} resamples, seeded)",
            "submission": submission,
        }

    def file_name(self, task: str, fmt: str) -> str:
        """The name of ``task``'s submission file in format ``fmt``."""
        return f"{task}_train.json" if fmt == "keywords" else f"{task}.{fmt}"

    def task_classes(self, edition: Edition, task: str) -> list[str]:
        """The class names of a task, by class index: the spec's classes or, for keyword tasks,
        the background class then the task's target words in sorted order."""
        if not self.spec.keywords:
            return list(self.spec.classes)
        return self._candidates(edition)[task].classes

    def _candidates(self, edition: Edition) -> dict[str, Candidates]:
        """Each keyword task's candidates ({} for other tasks)."""
        return load_candidates(edition, self.spec.classes[0]) if self.spec.keywords else {}

    # Submissions ----------------------------------------------------------------------------

    def parse_submission(
        self, files_by_name: Mapping[str, bytes], edition: Edition, *,
        profile: Profile = "default",
    ) -> SelectionSubmission:
        problems: list[Problem] = []
        patterns = [self.file_name("{task}", f) for f in self.spec.formats]
        by_task = match_files(files_by_name, edition.tasks, patterns=patterns,
                              challenge=self.name, problems=problems, every_task=False)
        missing = {task: patterns[0].format(task=task) for task in edition.tasks
                   if task not in by_task}
        if not files_by_name:
            problems += [Problem(name, "missing-task", f"is missing: no task has a file "
                                 f"(task {task})") for task, name in missing.items()]
        pool = load_pool(edition)
        candidates = self._candidates(edition)
        selections: dict[str, TaskSelection] = {}
        warnings: list[str] = []
        for task, name in by_task.items():
            found = candidates.get(task)
            classes = found.classes if found else self.spec.classes
            rows = self._parse_file(name, files_by_name[name], classes, problems,
                                    self.spec.budget_of(task))
            if rows is None:
                continue
            if found is not None and isinstance(rows, files.KeywordRows):
                selection = self._validate_keywords(name, rows, found, pool, task, profile,
                                                    problems)
            else:
                selection = self._validate_rows(name, rows, pool, task, profile, problems,
                                                warnings)
            if selection is not None:
                selections[task] = selection
        if problems:
            raise SubmissionError(problems)
        if missing:
            warnings.append(f"scored {len(selections)} of {len(edition.tasks)} tasks; no file "
                            f"for {', '.join(missing)} (the mean is over the scored tasks; a "
                            "leaderboard submission needs every task)")
        return SelectionSubmission(self.name, dict(files_by_name), tuple(warnings), selections)

    def missing_tasks(self, files: Mapping[str, bytes], edition: Edition) -> list[Problem]:
        problems: list[Problem] = []
        match_files(files, edition.tasks,
                    patterns=[self.file_name("{task}", f) for f in self.spec.formats],
                    challenge=self.name, problems=problems)
        return [p for p in problems if p.rule == "missing-task"]

    def _parse_file(self, name: str, data: bytes, classes: Sequence[str],
                    problems: list[Problem], budget: int) -> files.LabelledRows | None:
        """A file's rows, or None after recording its problems. Far more rows than the budget
        are its only problem (bounded work, whatever the file): a CSV file is counted before
        it is read, a JSON file before its IDs are looked up."""
        text = files.decode_text(name, data, problems)
        allows = f"the task allows at most {budget:,} rows"
        if text is None or (name.endswith(".csv") and files.far_too_long(
                name, text, budget + 1, f"{allows} and a header", problems)):
            return None
        before = len(problems)
        rows: files.LabelledRows
        if self.spec.keywords:  # unknown target words are reported with the other rules
            rows = files.parse_keywords(name, text, classes=classes, problems=problems)
        elif name.endswith(".json"):
            rows = files.parse_json(name, text, classes=classes, problems=problems)
        else:
            rows = files.parse_csv(name, text, id_column=self.spec.id_column,
                                   label_column=self.spec.label_column,
                                   classes=classes, problems=problems)
        if len(rows.ids) > 2 * budget + 1000:
            del problems[before:]
            problems.append(Problem(name, "far-too-long", f"lists {len(rows.ids):,} IDs; "
                                    f"{allows} (so the rest of the file was not checked)"))
            return None
        fatal = [p for p in problems[before:] if not (self.spec.keywords
                                                       and p.rule == "unknown-target")]
        return None if fatal else rows

    def _common_problems(self, name: str, rows: files.LabelledRows, task: str) -> list[Problem]:
        budget = self.spec.budget_of(task)
        found = files.duplicate_problems(name, rows)
        if len(rows.ids) > budget:
            found.insert(0, Problem(name, "over-budget", f"has {len(rows.ids):,} rows; at most "
                                    f"{budget:,} are allowed (task {task})"))
        return found

    def _single_class(self, name: str, labels: np.ndarray,
                      classes: Sequence[str]) -> list[Problem]:
        if len(np.unique(labels)) >= 2:
            return []
        present = ", ".join(classes[i] for i in np.unique(labels)) or "none"
        return [Problem(name, "single-class", f"has labels {present} only; the frozen model "
                        "needs at least two classes to train")]

    def _validate_rows(self, name: str, rows: files.LabelledRows, pool: Pool, task: str,
                       profile: Profile, problems: list[Problem],
                       warnings: list[str]) -> TaskSelection | None:
        found = self._common_problems(name, rows, task)
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
        if not found:
            found = self._single_class(name, labels, self.spec.classes)
        if found:
            problems.extend(found)
            return None
        order = np.argsort(positions[keep], kind="stable")
        return TaskSelection(indices=positions[keep][order], labels=labels[order])

    def _validate_keywords(self, name: str, rows: files.KeywordRows, candidates: Candidates,
                           pool: Pool, task: str, profile: Profile,
                           problems: list[Problem]) -> TaskSelection | None:
        """Every ID must be one of the task's candidates, listed under the word it was
        extracted for (the original scorer rejects both, in either profile)."""
        found = self._common_problems(name, rows, task)
        at = candidates.locate(rows.ids)
        outside = list(dict.fromkeys(i for i, a in zip(rows.ids, at, strict=True) if a < 0))
        if outside:
            found.append(Problem(name, "not-a-candidate",
                                 f"lists {len(outside)} ID(s) that are not candidates of task "
                                 f"{task} (public/candidates.parquet)", ids=tuple(outside)))
        labels = np.asarray(rows.labels, dtype=np.int64)
        known = at >= 0
        wrong = known & (candidates.labels[np.where(known, at, 0)] != labels)
        if wrong.any():
            first = int(np.flatnonzero(wrong)[0])
            given = candidates.classes[candidates.labels[at[first]]]
            listed = candidates.classes[labels[first]]
            found.append(Problem(
                name, "wrong-word",
                f"lists {int(wrong.sum())} ID(s) under another word than the one they were "
                f"extracted for, e.g. {rows.ids[first]!r} under {listed!r} (it is a "
                f"{given!r} candidate)",
                ids=tuple(i for i, w in zip(rows.ids, wrong, strict=True) if w)))
        if not found and not any(p.file == name for p in problems):
            found = self._single_class(name, labels, candidates.classes)
        if found:
            problems.extend(found)
            return None
        positions = pool.locate(rows.ids)  # every ID is a candidate by now
        if (positions < 0).any():
            raise EditionError(f"edition candidates of task {task} are missing from the pool")
        if profile == "official":
            order, labels = original_training_order(rows, candidates.file_rows[at],
                                                    candidates.classes)
            return TaskSelection(indices=positions[order], labels=labels)
        order = np.argsort(positions, kind="stable")
        return TaskSelection(indices=positions[order], labels=labels[order])

    # Scoring --------------------------------------------------------------------------------

    def score(self, submission: Submission, edition: Edition, *,
              profile: Profile = "default", progress: Progress = no_progress,
              split: TestSplit | None = None) -> Score:
        if not isinstance(submission, SelectionSubmission):
            raise TypeError("expected a SelectionSubmission from parse_submission")
        from dataperf.learners.frozen import predict_seeds

        spec = self.spec
        pool = load_pool(edition)
        test = edition.read_table("hidden/test.parquet")
        metric = metrics.METRICS[spec.metric]
        task_scores: list[TaskScore] = []
        samples: list[np.ndarray] = []
        tasks = self.tasks(edition)
        candidates = self._candidates(edition)
        for t, task in enumerate(tasks):  # t: the task's index among all, as in full scores
            if task.name not in submission.selections:
                continue
            progress(f"scoring {task.name}", t, len(tasks))
            selection = submission.selections[task.name]
            classes = candidates[task.name].classes if candidates else list(spec.classes)
            n_classes = len(classes)
            rows = _task_rows(test, task.name)
            x_test = embedding_array(rows.column("embedding"))
            y_test = class_indices(rows.column("label"), classes, task.name)
            x_train = pool.embeddings[selection.indices]
            keep = None
            if split is not None:  # checked before training: an empty part fails fast
                try:
                    keep = split.mask(len(y_test), t)
                except SpecError as err:
                    raise SpecError(f"task {task.name}: {err}") from None
            predicted = predict_seeds(spec.model.name, spec.model.params, x_train,
                                      selection.labels, x_test, seeds=spec.seeds)
            y_preds = np.stack([p.labels.astype(np.int64) for p in predicted])
            converged = all(p.converged for p in predicted)
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
            if spec.keywords:
                details["classes"] = classes
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
        progress("scoring", len(tasks), len(tasks))
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
        """The public data of one task in the form participant algorithms take. For keyword
        tasks the rows are the task's candidates only (in candidates-table order), with the
        word each was extracted for as a one-hot weak label."""
        self.task(edition, task)
        return self._selection_task(edition, task, pool or load_pool(edition),
                                    self._candidates(edition).get(task))

    def _selection_task(self, edition: Edition, task: str, pool: Pool,
                        found: Candidates | None) -> SelectionTask:
        from dataperf.algorithms.selection import SelectionTask

        if found is not None:
            weak = np.eye(len(found.classes), dtype=np.float32)[found.labels]
            return SelectionTask(embeddings=pool.embeddings[found.positions(pool)],
                                 weak_proba=weak, examples=np.zeros(0, dtype=np.int64),
                                 example_labels=np.zeros(0, dtype=np.int64),
                                 budget=self.spec.budget_of(task))
        n, n_classes = len(pool.ids), len(self.spec.classes)
        weak = np.full((n, n_classes), 1.0 / n_classes, dtype=np.float32)
        if "public/weak_labels.parquet" in edition.manifest.files:
            table = edition.read_table("public/weak_labels.parquet")
            table = table.filter(pc.equal(table.column("task"), task))
            rows = pool.locate(table.column("id").combine_chunks())
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
            rows = pool.locate(table.column("id").combine_chunks())
            if "label" in table.column_names:
                labels = np.asarray(table.column("label").to_numpy(), dtype=np.int64)
            else:
                labels = np.ones(len(rows), dtype=np.int64)
            examples, example_labels = rows[rows >= 0], labels[rows >= 0]
        return SelectionTask(embeddings=pool.embeddings, weak_proba=weak, examples=examples,
                             example_labels=example_labels, budget=self.spec.budget_of(task))

    def run_algorithm(self, name: str, edition: Edition, *,
                      params: Mapping[str, Any] | None = None, random_state: int = 0,
                      progress: Progress = no_progress) -> dict[str, bytes]:
        from dataperf.algorithms.selectors import SELECTORS

        selector = make_algorithm(SELECTORS, name, params, random_state)
        pool = load_pool(edition)
        candidates = self._candidates(edition)
        out: dict[str, bytes] = {}
        tasks = self.tasks(edition)
        for i, task in enumerate(tasks):
            progress(f"{name} on {task.name}", i, len(tasks))
            found = candidates.get(task.name)
            try:
                chosen = selector.select(self._selection_task(edition, task.name, pool, found))
            except ValueError as err:  # selectors raise ValueError for bad hyper-parameters
                raise AlgorithmError(str(err)) from None
            out.update(self._write_selection(task.name, pool, found, chosen.indices,
                                             chosen.labels))
        progress("done", len(tasks), len(tasks))
        return out

    def _write_selection(self, task: str, pool: Pool, found: Candidates | None,
                         rows: np.ndarray, labels: np.ndarray) -> dict[str, bytes]:
        """The submission file of one task; ``rows`` index the algorithm's task rows. Keyword
        tasks list each chosen clip under the word it was extracted for (whatever label the
        algorithm gave it: the given labels are what counts)."""
        if found is not None:
            ids = found.ids.take(pa.array(rows, pa.int64())).to_pylist()
            words = [found.classes[c] for c in found.labels[rows]]
            return {self.file_name(task, "keywords"):
                    files.write_keywords(ids, words, background=self.spec.classes[0])}
        ids = pool.ids.take(pa.array(rows, pa.int64())).to_pylist()
        return {self.file_name(task, "csv"): files.write_csv(
            ids, [self.spec.classes[int(c)] for c in labels],
            id_column=self.spec.id_column, label_column=self.spec.label_column)}


def _task_rows(test: pa.Table, task: str) -> pa.Table:
    """The hidden test rows of ``task``, in table order: a slice of the table (no copy of the
    embeddings) where they lie together, as editions store them; else a filtered copy."""
    mask = pc.equal(test.column("task"), task)
    where = np.flatnonzero(np.asarray(mask.to_numpy(zero_copy_only=False), dtype=bool))
    if len(where) and int(where[-1]) - int(where[0]) + 1 == len(where):
        return test.slice(int(where[0]), len(where))
    return test.filter(mask)
