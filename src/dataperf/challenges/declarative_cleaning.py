"""Organizer cleaning challenges from a declarative file, no Python.

The file holds a cleaning spec (the keys of :class:`~dataperf.kinds.cleaning.CleaningSpec`, as
in ``challenges/vision_cleaning/challenge.yaml``), a ``data`` section naming three tables and
their columns, and ``sources`` with licences::

    name: digits-cleaning
    kind: cleaning
    title: Fix the labels of handwritten digits
    classes: ["0", "1"]          # the two labels as the files write them (label 0, label 1)
    target: 0.95
    model: {name: debug_linear}  # retrained after every fix
    seed: 42
    data:
      train: {path: train.parquet, id: id, task: task, embedding: emb, label: noisy,
              true_label: truth}
      validation: {path: validation.parquet, id: id, task: task, embedding: emb, label: label}
      test: {path: test.parquet, id: id, task: task, embedding: emb, label: label}
    sources:
      - {name: ..., licence: CC BY 4.0, origin: ...}

Each task name in the files is a task. Participants get the training rows with their noisy
labels (``label``) and the clean validation rows; the training rows' true labels
(``true_label``) and the test rows stay hidden. A row's vector is one list column
(``embedding``, parquet) or numeric columns (``features: [a, b, ...]``, CSV or parquet).

Every key, file, column, type, label, task, size and overlap is checked, and every problem is
reported at once (:class:`~dataperf.challenges.declarative_tables.Problems`); nothing is written
unless all pass. The edition is the kind's layout (see :mod:`dataperf.kinds.cleaning`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from dataperf.challenges.declarative_tables import (
    Problems,
    VectorTableRef,
    checked_sources,
    duplicates,
    feature_matrix,
    missing_columns,
    quoted,
    read_table,
    shared_ids,
    task_name_problems,
    text_values,
)
from dataperf.editions import Edition, embedding_column, sha256_file, write_edition
from dataperf.home import editions_dir
from dataperf.kinds.cleaning import CleaningSpec
from dataperf.registry import _from_entry_points

__all__ = ["MAX_TRAIN_ROWS", "MIN_TRAIN_ROWS", "CleaningData", "create_cleaning"]

BUILDER = "dataperf.challenges.declarative_cleaning"
EDITION_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,40}$"
#: Training rows per task: enough to order, and few enough to score (the frozen model is
#: trained n + 1 times per submission and task).
MIN_TRAIN_ROWS = 10
MAX_TRAIN_ROWS = 10_000
MIN_ROWS = 2  # validation and test rows per task


class CleaningTableRef(VectorTableRef):
    """One of the organizer's tables and the names of its columns."""

    task: str = "task"

    def columns(self) -> list[str]:
        return [self.task, self.id, *self.vector_columns(), self.label]


class TrainRef(CleaningTableRef):
    """The training table: noisy labels for participants, and the true labels (hidden)."""

    true_label: str = "true_label"

    def columns(self) -> list[str]:
        return [*super().columns(), self.true_label]


class CleaningData(BaseModel):
    """The ``data`` section of a cleaning challenge file."""

    model_config = ConfigDict(extra="forbid")

    edition: str = Field(default="organizer", pattern=EDITION_PATTERN)
    train: TrainRef
    validation: CleaningTableRef
    test: CleaningTableRef


@dataclass
class Rows:
    """One table as read: each row's task, ID, vector and label index (None: unreadable)."""

    where: str
    tasks: list[str] | None
    ids: list[str] | None
    vectors: np.ndarray | None
    labels: np.ndarray | None
    truth: np.ndarray | None = None

    def of(self, task: str) -> np.ndarray:
        """Positions of the rows of ``task``, in file order."""
        return np.flatnonzero(np.asarray(self.tasks, dtype=object) == task)


def create_cleaning(path: Path, document: dict[str, Any], *, out_dir: Path | None = None,
                    overwrite: bool = False) -> Edition:
    """Check a cleaning challenge file (read as ``document``) and its tables, then write the
    edition (default ``$DATAPERF_HOME/editions/{name}/{edition}``); a SpecError or
    SourceDataError listing every problem, and nothing written, if anything is wrong."""
    problems = Problems(path.name)
    document = dict(document)
    data_section = document.pop("data", None)
    sources = checked_sources(document.pop("sources", None), problems)
    spec = _checked_spec(document, problems)
    data = None
    if not isinstance(data_section, dict):
        problems.spec("data", "name the train, validation and test tables (a mapping with "
                      "train, validation and test)")
    else:
        try:
            data = CleaningData.model_validate(data_section)
        except ValidationError as err:
            problems.validation(err, "data")
    tables: dict[str, pa.Table] | None = None
    parameters: dict[str, Any] | None = None
    if data is not None:
        classes = spec.classes if spec is not None else _classes_as_given(document)
        train = _read_rows(path.parent, data.train, classes, problems)
        validation = _read_rows(path.parent, data.validation, classes, problems)
        test = _read_rows(path.parent, data.test, classes, problems)
        tables = _edition_tables(train, validation, test, problems)
        parameters = {"files": {role: {"path": ref.path, "sha256": sha256_file(
            (path.parent / ref.path).resolve())} for role, ref in
            [("train", data.train), ("validation", data.validation), ("test", data.test)]
            if (path.parent / ref.path).is_file()}}
    target = None
    if spec is not None and data is not None:
        target = Path(out_dir) if out_dir else editions_dir() / spec.name / data.edition
        if target.exists() and not overwrite:
            problems.data(str(target), "already exists; pass --overwrite to replace it")
    problems.raise_if_any()
    if spec is None or data is None or tables is None or target is None or parameters is None:
        raise RuntimeError("a problem of the challenge file was not reported")  # never
    tasks = sorted(set(tables["public/train.parquet"].column("task").to_pylist()))
    parameters["rows"] = {task: dict(counts) for task, counts in _row_counts(tables).items()}
    return write_edition(target, challenge=spec.name, edition=data.edition, builder=BUILDER,
                         builder_version="1", tasks=tasks, sources=sources, tables=tables,
                         parameters=parameters, spec=spec.model_dump(mode="json"),
                         overwrite=overwrite)


def _checked_spec(document: dict[str, Any], problems: Problems) -> CleaningSpec | None:
    """The cleaning spec, or None after noting why not."""
    if "checkpoints" in document:
        document.pop("checkpoints")
        problems.spec("checkpoints", "the cleaning kind retrains the frozen model after every "
                      "fix (k = 0..n, the whole curve), so there are no checkpoints to choose; "
                      "remove the key")
    try:
        spec = CleaningSpec.model_validate(document)
    except ValidationError as err:
        problems.validation(err)
        return None
    if any(c.name == spec.name for _, c in _from_entry_points()):
        problems.spec("name", f"{spec.name!r} is taken by an installed challenge; choose "
                      "another name")
    if len(spec.classes) != 2:
        problems.spec("classes", f"the frozen model ({spec.model.name}) tells two classes "
                      f"apart; give exactly two, not {len(spec.classes)} (classes[0] is label "
                      "0, classes[1] label 1)")
        return None
    return spec


def _classes_as_given(document: dict[str, Any]) -> list[str] | None:
    """The file's two classes (default "0" and "1") when the rest of its spec is invalid, so
    that the labels are still checked; None if ``classes`` itself is unusable."""
    classes = document.get("classes", ["0", "1"])
    if isinstance(classes, list) and len(classes) == 2 and all(
            isinstance(c, str) for c in classes) and classes[0] != classes[1]:
        return classes
    return None


def _read_rows(base: Path, ref: CleaningTableRef, classes: list[str] | None,
               problems: Problems) -> Rows:
    """A table's rows, each column checked (types, empty values, labels among ``classes``,
    task names, one row per task and ID); the pieces that cannot be read are None."""
    where = ref.path
    text = [ref.id, ref.task, ref.label, *([ref.true_label] if isinstance(ref, TrainRef)
                                           else [])]
    table = read_table(base, ref.path, text, problems)
    rows = Rows(where, None, None, None, None)
    if table is None:
        return rows
    missing_columns(table, ref.columns(), where, problems)
    if table.num_rows == 0:
        problems.data(where, "has no rows")
        return rows

    def text_of(name: str) -> list[str] | None:
        return text_values(table, name, where, problems) if name in table.column_names \
            else None

    rows.tasks, rows.ids = text_of(ref.task), text_of(ref.id)
    if all(c in table.column_names for c in ref.vector_columns()):
        rows.vectors = feature_matrix(table, embedding=ref.embedding, features=ref.features,
                                      where=where, problems=problems)
    rows.labels = _label_indices(text_of(ref.label), ref.label, classes, where, problems)
    if isinstance(ref, TrainRef):
        rows.truth = _label_indices(text_of(ref.true_label), ref.true_label, classes, where,
                                    problems)
    if rows.tasks is not None:
        task_name_problems(sorted(set(rows.tasks)), where, problems)
        if rows.ids is not None:
            twice = duplicates(list(zip(rows.tasks, rows.ids, strict=True)))
            if twice:
                problems.data(where, f"{len(twice)} ID(s) appear more than once in one task "
                              f"(task, ID: {quoted(twice)}); each row needs its own ID")
    return rows


def _label_indices(values: list[str] | None, name: str, classes: list[str] | None,
                   where: str, problems: Problems) -> np.ndarray | None:
    """Each row's class index; the values must be among ``classes`` (as text)."""
    if values is None or classes is None:
        return None
    index = {label: i for i, label in enumerate(classes)}
    unknown = sorted(set(values) - set(index))
    if unknown:
        problems.data(where, f"column {name!r} has values {quoted(unknown)} that are not "
                      f"among the classes {classes}")
        return None
    return np.array([index[v] for v in values], dtype=np.int8)


def _edition_tables(train: Rows, validation: Rows, test: Rows,
                    problems: Problems) -> dict[str, pa.Table] | None:
    """The checks across the three tables, then the edition's four tables (None if any
    check failed or a piece could not be read)."""
    tables = (train, validation, test)
    train_tasks = set(train.tasks or ())
    for other, part in ((validation, "validation"), (test, "test")):
        if train.tasks is None or other.tasks is None:
            continue
        lacking = sorted(train_tasks - set(other.tasks or ()))
        if lacking:
            problems.data(other.where, f"tasks {quoted(lacking)} have no {part} rows; every "
                          f"task of {train.where} needs some")
        extra = sorted(set(other.tasks or ()) - train_tasks)
        if extra:
            problems.data(other.where, f"tasks {quoted(extra)} have no training rows in "
                          f"{train.where}")
    dims = [(t.where, t.vectors.shape[1]) for t in tables if t.vectors is not None]
    if len({n for _, n in dims}) > 1:
        problems.data(train.where, "the vectors must have one dimension in every table; they "
                      f"have {', '.join(f'{n} in {w}' for w, n in dims)}")
    _size_problems(train, validation, test, problems)
    _overlap_problems(train, validation, test, problems)
    ready = all(t.ids is not None and t.vectors is not None and t.labels is not None
                for t in tables) and train.truth is not None
    if problems.found or not ready:
        return None
    return _tables(train, validation, test)


def _size_problems(train: Rows, validation: Rows, test: Rows, problems: Problems) -> None:
    """Per task: training rows within bounds, both true classes, some wrong labels; enough
    validation and test rows."""
    if train.tasks is None:
        return
    counts = Counter(train.tasks)
    tasks = sorted(counts)
    small = [f"{t} ({n})" for t, n in counts.items() if n < MIN_TRAIN_ROWS]
    large = [f"{t} ({n})" for t, n in counts.items() if n > MAX_TRAIN_ROWS]
    if small:
        problems.data(train.where, f"tasks {quoted(small)} have fewer than {MIN_TRAIN_ROWS} "
                      "training rows")
    if large:
        problems.data(train.where, f"tasks {quoted(large)} have more than {MAX_TRAIN_ROWS:,} "
                      "training rows (the frozen model is retrained after every fix)")
    for other in (validation, test):
        found = Counter(other.tasks or ())
        few = [f"{t} ({found[t]})" for t in tasks if 0 < found[t] < MIN_ROWS]
        if few:
            problems.data(other.where, f"tasks {quoted(few)} have fewer than {MIN_ROWS} rows")
    if train.labels is None or train.truth is None:
        return
    one_class, clean = [], []
    for task in tasks:
        rows = train.of(task)
        if len(np.unique(train.truth[rows])) < 2:
            one_class.append(task)
        if np.array_equal(train.labels[rows], train.truth[rows]):
            clean.append(task)
    if one_class:
        problems.data(train.where, f"the true labels of tasks {quoted(one_class)} are all of "
                      "one class; a task needs both")
    if clean:
        problems.data(train.where, f"tasks {quoted(clean)} have no wrong label (every noisy "
                      "label equals its true label): there is nothing to clean")


def _overlap_problems(train: Rows, validation: Rows, test: Rows, problems: Problems) -> None:
    """Hidden rows must stay hidden: no test ID among the public rows, and no training row's
    ID among its task's validation rows (the clean label would give its true label away)."""
    public = [t for t in (train, validation) if t.ids is not None]
    leaked = shared_ids(test.ids or [], [i for t in public for i in t.ids or ()])
    if leaked:
        problems.data(test.where, f"{len(leaked)} test ID(s) are also in "
                      f"{' or '.join(t.where for t in public)} ({quoted(leaked)}); the test "
                      "rows must be hidden from participants")
    if None in (train.ids, train.tasks, validation.ids, validation.tasks):
        return
    both = []
    for task in sorted(set(train.tasks or ()) & set(validation.tasks or ())):
        train_ids = [(train.ids or [])[i] for i in train.of(task)]
        both += [f"{task}: {i}" for i in shared_ids(
            train_ids, [(validation.ids or [])[i] for i in validation.of(task)])]
    if both:
        problems.data(validation.where, f"{len(both)} row(s) are both training and "
                      f"validation rows of a task ({quoted(both)}); the validation label "
                      "would give the true label away")


def _tables(train: Rows, validation: Rows, test: Rows) -> dict[str, pa.Table]:
    """The kind's edition layout: per task, training rows indexed 0..n-1 in file order."""
    def arrays(rows: Rows) -> tuple[list[str], list[str], np.ndarray, np.ndarray]:
        if rows.tasks is None or rows.ids is None or rows.vectors is None or rows.labels is None:
            raise RuntimeError(f"{rows.where} was not read")  # never: checked before
        return rows.tasks, rows.ids, rows.vectors, rows.labels

    tasks, ids, vectors, labels = arrays(train)
    seen: Counter[str] = Counter()
    index = []
    for task in tasks:
        index.append(seen[task])
        seen[task] += 1
    out = {
        "public/train.parquet": pa.table({
            "task": pa.array(tasks, pa.string()), "index": pa.array(index, pa.int32()),
            "id": pa.array(ids, pa.string()),
            "embedding": embedding_column(vectors, np.float32),
            "label": pa.array(labels, pa.int8())}).sort_by([("task", "ascending"),
                                                           ("index", "ascending")]),
        "hidden/truth.parquet": pa.table({
            "task": pa.array(tasks, pa.string()), "index": pa.array(index, pa.int32()),
            "label": pa.array(train.truth, pa.int8())}).sort_by([("task", "ascending"),
                                                                ("index", "ascending")]),
    }
    for name, rows in (("public/validation.parquet", validation), ("hidden/test.parquet", test)):
        tasks, ids, vectors, labels = arrays(rows)
        out[name] = pa.table({
            "task": pa.array(tasks, pa.string()), "id": pa.array(ids, pa.string()),
            "embedding": embedding_column(vectors, np.float32),
            "label": pa.array(labels, pa.int8())}).sort_by([("task", "ascending"),
                                                           ("id", "ascending")])
    return out


def _row_counts(tables: dict[str, pa.Table]) -> dict[str, Counter[str]]:
    """Per task, its rows in each part (train, validation, test), for the manifest."""
    counts: dict[str, Counter[str]] = {}
    for part, name in (("train", "public/train.parquet"),
                       ("validation", "public/validation.parquet"),
                       ("test", "hidden/test.parquet")):
        for task in tables[name].column("task").to_pylist():
            counts.setdefault(task, Counter())[part] += 1
    return counts
