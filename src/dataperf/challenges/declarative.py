"""Organizer challenges from a small declarative file, no Python.

A file (YAML) holds the challenge spec (the same keys as a built-in challenge's
``challenge.yaml``) plus a ``data`` section naming the organizer's files and columns, and
``sources`` with licences. ``create_from_file`` validates everything, reads the files, and writes
an edition whose manifest carries the spec, so the registry finds the new challenge::

    name: bird-selection
    kind: selection
    title: Training data for bird detectors
    budget: 500
    data:
      pool: {path: pool.parquet, id: image_id, embedding: emb}
      test: {path: test.parquet, id: image_id, task: concept, embedding: emb, label: label}
      examples: {path: examples.csv, id: image_id, task: concept}           # optional
      weak_labels: {path: weak.csv, id: image_id, task: concept, confidence: p}  # optional
    sources:
      - {name: My bird photos, licence: CC BY 4.0, origin: our field cameras}

Keyword challenges (``formats: [keywords]``, ``classes: [nontarget]``) name each task's
candidates instead, with the word each was extracted for, and label test rows by word::

      candidates: {path: candidates.csv, id: clip, task: task, label: word}

Tabular files may be CSV or parquet; embeddings must be parquet list columns.

Cleaning (``kind: cleaning``) and acquisition (``kind: acquisition``) challenges are checked
and written by :mod:`dataperf.challenges.declarative_cleaning` and
:mod:`dataperf.challenges.declarative_acquisition`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from dataperf.editions import (
    TASK_PATTERN,
    Edition,
    Source,
    checked_embeddings,
    embedding_column,
    write_edition,
)
from dataperf.exceptions import SourceDataError, SpecError, describe
from dataperf.home import editions_dir
from dataperf.kinds.selection import SelectionChallenge
from dataperf.registry import _from_entry_points

BUILDER = "dataperf.challenges.declarative"


class TableRef(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str
    id: str = "id"
    task: str = "task"
    embedding: str = "embedding"
    label: str = "label"
    confidence: str = "confidence"


class SelectionData(BaseModel):
    model_config = ConfigDict(extra="forbid")

    edition: str = Field(default="organizer", pattern=r"^[a-z0-9][a-z0-9_-]{0,40}$")
    pool: TableRef
    test: TableRef
    examples: TableRef | None = None
    weak_labels: TableRef | None = None
    candidates: TableRef | None = None


def load_spec_file(path: Path) -> dict[str, Any]:
    try:
        document = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise SpecError(f"cannot read challenge file {path}: {err}") from None
    if not isinstance(document, dict):
        raise SpecError(f"{path} must be a mapping of keys (name, kind, title, budget, data, ...)")
    return document


def create_from_file(path: Path, *, out_dir: Path | None = None,
                     overwrite: bool = False) -> Edition:
    """Validate an organizer's challenge file and write its edition (default under
    ``$DATAPERF_HOME/editions/{name}/{edition}``)."""
    path = Path(path)
    document = load_spec_file(path)
    if document.get("kind") == "cleaning":
        from dataperf.challenges.declarative_cleaning import create_cleaning

        return create_cleaning(path, document, out_dir=out_dir, overwrite=overwrite)
    if document.get("kind") == "acquisition":
        from dataperf.challenges.declarative_acquisition import create_acquisition

        return create_acquisition(path, document, out_dir=out_dir, overwrite=overwrite)
    data_section = document.pop("data", None)
    sources_section = document.pop("sources", [])
    if document.get("kind") != "selection":
        raise SpecError(f"{path}: declarative challenges are of kind 'selection', 'cleaning' "
                        f"or 'acquisition', not {document.get('kind')!r}")
    challenge = SelectionChallenge.from_mapping(document, origin=str(path))
    if any(c.name == challenge.name for _, c in _from_entry_points()):
        raise SpecError(f"{path}: the name {challenge.name!r} is taken by an installed "
                        "challenge; choose another name")
    try:
        data = SelectionData.model_validate(data_section or {})
        sources = [Source.model_validate(s) for s in sources_section]
    except ValidationError as err:
        raise SpecError(f"{path}: invalid data or sources section: {describe(err)}") from None
    if not sources:
        raise SpecError(f"{path}: list the data's sources with their licences under 'sources'")
    if challenge.spec.keywords != (data.candidates is not None):
        raise SpecError(f"{path}: data.candidates (task, id, label: the word) is needed by "
                        "keyword challenges (formats: [keywords]) and only by them")
    base = path.parent
    pool = _read(base, data.pool)
    ids = _column(pool, data.pool.id, data.pool, pa.string())
    if pc.count_distinct(ids).as_py() != len(ids):
        raise SourceDataError(f"{data.pool.path}: some {data.pool.id} appears more than once")
    embeddings = _embeddings(pool, data.pool.embedding, data.pool)
    tables = {"public/pool.parquet": pa.table(
        {"id": ids, "embedding": embedding_column(embeddings, np.float32)})}
    words = None
    if data.candidates:
        table = _read(base, data.candidates)
        candidates = pa.table({name: _column(table, column, data.candidates, pa.string())
                               for name, column in [("task", data.candidates.task),
                                                    ("id", data.candidates.id),
                                                    ("label", data.candidates.label)]})
        words = _task_words(candidates, challenge.spec.classes[0], data.candidates)
        tables["public/candidates.parquet"] = candidates
    tables["hidden/test.parquet"] = _test_table(base, data.test, challenge, ids, embeddings,
                                                words)
    tasks = sorted(set(tables["hidden/test.parquet"].column("task").to_pylist()))
    if data.candidates:
        tables["public/candidates.parquet"] = _public_rows(
            tables["public/candidates.parquet"], data.candidates, ids, tasks)
        missing = sorted(set(tasks) - set(words or {}))
        if missing:
            raise SourceDataError(f"{data.candidates.path}: tasks {missing[:5]} have no "
                                  "candidates")
    if data.examples:
        table = _read(base, data.examples)
        tables["public/examples.parquet"] = _public_rows(pa.table({
            "task": _column(table, data.examples.task, data.examples, pa.string()),
            "id": _column(table, data.examples.id, data.examples, pa.string())}),
            data.examples, ids, tasks)
    if data.weak_labels:
        table = _read(base, data.weak_labels)
        tables["public/weak_labels.parquet"] = _public_rows(pa.table({
            "id": _column(table, data.weak_labels.id, data.weak_labels, pa.string()),
            "task": _column(table, data.weak_labels.task, data.weak_labels, pa.string()),
            "confidence": _column(table, data.weak_labels.confidence, data.weak_labels,
                                  pa.float32())}),
            data.weak_labels, ids, tasks)
    target = out_dir or editions_dir() / challenge.name / data.edition
    return write_edition(target, challenge=challenge.name, edition=data.edition, builder=BUILDER,
                 builder_version="1", tasks=tasks, sources=sources, tables=tables,
                 spec=challenge.spec.model_dump(mode="json"), overwrite=overwrite)


def _public_rows(table: pa.Table, ref: TableRef, pool_ids: pa.Array,
                 tasks: list[str]) -> pa.Table:
    """Examples or weak labels: every ID must be in the pool and every task a test task."""
    outside = pc.invert(pc.is_in(table.column("id"), value_set=pool_ids))
    if pc.any(outside).as_py():
        missing = table.filter(outside).column("id").to_pylist()
        raise SourceDataError(f"{ref.path}: {len(missing)} ID(s) are not in the pool, e.g. "
                              f"{', '.join(missing[:3])}")
    unknown = sorted(set(table.column("task").to_pylist()) - set(tasks))
    if unknown:
        raise SourceDataError(f"{ref.path}: tasks {unknown[:5]} have no test rows; the tasks "
                              f"are {', '.join(tasks)}")
    return table


def _task_words(candidates: pa.Table, background: str, ref: TableRef) -> dict[str, set[str]]:
    """Each task's class names (the background class and its words); a task needs a word."""
    words: dict[str, set[str]] = {}
    for task, word in zip(candidates.column("task").to_pylist(),
                          candidates.column("label").to_pylist(), strict=True):
        words.setdefault(task, {background}).add(word)
    lonely = sorted(t for t, found in words.items() if len(found) < 2)
    if lonely:
        raise SourceDataError(f"{ref.path}: tasks {lonely[:5]} have no candidate labelled with "
                              f"a word other than {background!r}")
    return words


def _test_table(base: Path, ref: TableRef, challenge: SelectionChallenge, pool_ids: pa.Array,
                pool_embeddings: np.ndarray,
                words: dict[str, set[str]] | None = None) -> pa.Table:
    table = _read(base, ref)
    ids = _column(table, ref.id, ref, pa.string())
    tasks = _column(table, ref.task, ref, pa.string())
    for task in set(tasks.to_pylist()):
        if not TASK_PATTERN.match(task):
            raise SourceDataError(f"{ref.path}: task name {task!r} must be letters, digits, "
                                  "'_', '.', '-' (it becomes a file name)")
    names = sorted(set(tasks.to_pylist()))
    if len({t.lower() for t in names}) != len(names):
        raise SourceDataError(f"{ref.path}: task names {names} must differ in more than "
                              "upper/lower case (they become file names)")
    classes = {label: i for i, label in enumerate(challenge.spec.classes)}
    raw = [str(v) for v in _column(table, ref.label, ref).to_pylist()]
    if words is not None:  # keyword tasks: labelled by word, each among its task's classes
        bad = sorted({f"{t}: {v}" for t, v in zip(tasks.to_pylist(), raw, strict=True)
                      if v not in words.get(t, ())})
    else:
        bad = sorted({v for v in raw if v not in classes})
    if bad:
        known = "(its task's words)" if words is not None else challenge.spec.classes
        raise SourceDataError(f"{ref.path}: labels {bad[:5]} are not among the classes "
                              f"{known}")
    embeddings = _embeddings(table, ref.embedding, ref)
    if embeddings.shape[1] != pool_embeddings.shape[1]:
        raise SourceDataError(f"{ref.path}: embeddings have {embeddings.shape[1]} dimensions; "
                              f"the pool has {pool_embeddings.shape[1]}")
    leaked = pc.sum(pc.is_in(ids, value_set=pool_ids)).as_py() or 0
    if leaked:
        raise SourceDataError(f"{ref.path}: {leaked} test IDs are also in the pool; test rows "
                              "must be hidden from participants")
    labels = pa.array(raw, pa.string()) if words is not None \
        else pa.array([classes[v] for v in raw], pa.int8())
    return pa.table({"task": tasks, "id": ids,
                     "embedding": embedding_column(embeddings, np.float32), "label": labels})


def _read(base: Path, ref: TableRef) -> pa.Table:
    path = (base / ref.path).resolve()
    try:
        if path.suffix == ".csv":
            # IDs, tasks and labels stay text: "00123" must not become the number 123.
            text = {name: pa.string() for name in (ref.id, ref.task, ref.label)}
            table = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(
                column_types=text))
        else:
            table = pq.read_table(path)
        table.column_names  # noqa: B018  (decoding the header can fail too)
        return table
    except (OSError, pa.ArrowInvalid, UnicodeDecodeError) as err:
        raise SourceDataError(f"cannot read {ref.path}: {err}") from None


def _embeddings(table: pa.Table, name: str, ref: TableRef) -> np.ndarray:
    return checked_embeddings(_column(table, name, ref), f"{ref.path}: column {name!r}")


def _column(table: pa.Table, name: str, ref: TableRef,
            cast: pa.DataType | None = None) -> pa.Array:
    if name not in table.column_names:
        raise SourceDataError(f"{ref.path} has no column {name!r} (columns: "
                              f"{', '.join(table.column_names)})")
    column = table.column(name).combine_chunks()
    if column.null_count:
        raise SourceDataError(f"{ref.path}: column {name!r} has {column.null_count} empty values")
    try:
        return column.cast(cast) if cast is not None else column
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as err:
        raise SourceDataError(f"{ref.path}: column {name!r} has the wrong type: {err}") from None
