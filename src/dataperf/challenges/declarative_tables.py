"""Reading an organizer's tables for a declarative challenge, with every problem collected.

The cleaning (and later acquisition) specs are checked as a whole: each broken rule of the file,
each missing column, wrong type, unknown label or overlap is noted in a :class:`Problems` list,
the checks go on with what could be read, and :meth:`Problems.raise_if_any` reports them all in
one error before anything is written. The helpers here return ``None`` where a piece cannot be
read, after noting why.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from dataperf.editions import TASK_PATTERN, Source, checked_embeddings
from dataperf.exceptions import SourceDataError, SpecError

__all__ = ["Problems", "VectorTableRef", "checked_sources", "duplicates", "feature_matrix",
           "missing_columns", "quoted", "read_table", "shared_ids", "task_name_problems",
           "text_values"]

#: At most this many values are quoted in one problem; the rest are counted.
SHOWN = 5


def quoted(values: Sequence[Any]) -> str:
    """The first few of ``values``, quoted, with a count of the others."""
    shown = ", ".join(repr(v) for v in values[:SHOWN])
    return shown + (f" and {len(values) - SHOWN} more" if len(values) > SHOWN else "")


@dataclass
class Problems:
    """The problems of one challenge file: ``(where, message)``, where ``where`` is the spec
    file, a key of it, or one of the organizer's tables."""

    origin: str
    found: list[tuple[str, str]] = field(default_factory=list)
    in_spec: bool = False  # a problem of the file itself (SpecError), not only of the data

    def spec(self, where: str, message: str) -> None:
        self.in_spec = True
        self.found.append((where, message))

    def data(self, where: str, message: str) -> None:
        self.found.append((where, message))

    def validation(self, error: ValidationError, prefix: str = "") -> None:
        """Each broken field of a pydantic error as a problem of the spec file."""
        for item in error.errors():
            where = ".".join(str(p) for p in (*((prefix,) if prefix else ()), *item["loc"]))
            self.spec(where or "(top level)", str(item["msg"]).removeprefix("Value error, "))

    def raise_if_any(self) -> None:
        if not self.found:
            return
        count = f"{len(self.found)} problem{'s' if len(self.found) > 1 else ''}"
        lines = [f"{self.origin}: {count}; nothing was written:"]
        lines += [f"  - {where}: {message}" for where, message in self.found]
        error = SpecError if self.in_spec else SourceDataError
        raise error("\n".join(lines))


class VectorTableRef(BaseModel):
    """One of the organizer's tables: its path, ID column, vector (one list column or numeric
    feature columns) and label column."""

    model_config = ConfigDict(extra="forbid")

    path: str = Field(min_length=1)
    id: str = "id"
    embedding: str | None = None  # one list column; "embedding" unless features are given
    features: list[str] | None = Field(default=None, min_length=1)
    label: str = "label"

    @model_validator(mode="after")
    def _one_kind_of_vector(self) -> VectorTableRef:
        if self.embedding is not None and self.features is not None:
            raise ValueError("give either embedding (one list column) or features (numeric "
                             "columns), not both")
        if self.features is None and self.embedding is None:
            self.embedding = "embedding"
        if self.features is not None and len(set(self.features)) != len(self.features):
            raise ValueError("features must not name a column twice")
        return self

    def vector_columns(self) -> list[str]:
        return [self.embedding] if self.embedding is not None else list(self.features or ())


def checked_sources(section: Any, problems: Problems) -> list[Source]:
    """The ``sources`` list: each with a name, a licence and an origin, none left blank."""
    if not isinstance(section, list) or not section:
        problems.spec("sources", "list the data's sources, each with a name, a licence and "
                      "an origin (e.g. {name: ..., licence: CC BY 4.0, origin: ...})")
        return []
    sources = []
    for i, entry in enumerate(section):
        try:
            source = Source.model_validate(entry)
        except ValidationError as err:
            problems.validation(err, f"sources.{i}")
            continue
        blank = [key for key in ("name", "licence", "origin") if not getattr(source, key).strip()]
        if blank:
            problems.spec(f"sources.{i}", f"{', '.join(blank)} must not be blank")
        sources.append(source)
    return sources


def read_table(base: Path, path: str, text_columns: Sequence[str],
               problems: Problems) -> pa.Table | None:
    """A CSV or parquet file relative to the challenge file; ``text_columns`` of a CSV file stay
    text ("00123" must not become the number 123)."""
    full = (base / path).resolve()
    try:
        if full.suffix.lower() == ".csv":
            types = {name: pa.string() for name in text_columns}
            table = pacsv.read_csv(full, convert_options=pacsv.ConvertOptions(
                column_types=types))
        elif full.suffix.lower() in (".parquet", ".pq"):
            table = pq.read_table(full)
        else:
            problems.data(path, "must be a .csv or .parquet file")
            return None
        table.column_names  # noqa: B018  (decoding the header can fail too)
    except (OSError, pa.ArrowInvalid, UnicodeDecodeError) as err:
        problems.data(path, f"cannot be read: {err}")
        return None
    return table


def missing_columns(table: pa.Table, names: Sequence[str], where: str,
                    problems: Problems) -> bool:
    """True (after noting them all) if any of ``names`` is not a column of ``table``."""
    missing = [name for name in dict.fromkeys(names) if name not in table.column_names]
    if missing:
        problems.data(where, f"has no column {quoted(missing)} (columns: "
                      f"{', '.join(table.column_names)}); name the right ones in the spec")
    return bool(missing)


def text_values(table: pa.Table, name: str, where: str, problems: Problems) -> list[str] | None:
    """A column as text, with no empty value; numbers are written as they read (1 -> "1")."""
    column = table.column(name).combine_chunks()
    if column.null_count:
        problems.data(where, f"column {name!r} has {column.null_count} empty value(s)")
        return None
    kind = column.type
    if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)
            or pa.types.is_integer(kind) or pa.types.is_floating(kind)
            or pa.types.is_boolean(kind)):
        problems.data(where, f"column {name!r} must hold text or numbers, not {kind}")
        return None
    values = [str(v) for v in column.cast(pa.string()).to_pylist()]
    blank = sum(1 for v in values if not v.strip())  # an empty CSV cell reads as ""
    if blank:
        problems.data(where, f"column {name!r} has {blank} empty value(s)")
        return None
    return values


def feature_matrix(table: pa.Table, *, embedding: str | None, features: Sequence[str] | None,
                   where: str, problems: Problems) -> np.ndarray | None:
    """The rows' vectors: one list column (``embedding``) or several numeric ``features``
    columns; finite numbers, one dimension for every row."""
    if embedding is not None:
        try:
            matrix = checked_embeddings(table.column(embedding),
                                        f"{where}: column {embedding!r}")
        except SourceDataError as err:
            problems.data(where, str(err).removeprefix(f"{where}: "))
            return None
    else:
        columns = []
        for name in features or ():
            column = table.column(name).combine_chunks()
            if not (pa.types.is_integer(column.type) or pa.types.is_floating(column.type)):
                problems.data(where, f"feature column {name!r} must hold numbers, not "
                              f"{column.type}")
            elif column.null_count:
                problems.data(where, f"feature column {name!r} has {column.null_count} empty "
                              "value(s)")
            else:
                columns.append(column.to_numpy(zero_copy_only=False).astype(np.float64))
        if len(columns) != len(features or ()):
            return None
        matrix = np.stack(columns, axis=1) if columns else np.zeros((table.num_rows, 0))
        if not np.isfinite(matrix).all():
            problems.data(where, "some features are NaN or infinite")
            return None
    if np.abs(matrix).max(initial=0.0) > np.finfo(np.float32).max:
        problems.data(where, "some values are too large to store as float32 numbers")
        return None
    return matrix


def task_name_problems(tasks: Sequence[str], where: str, problems: Problems, *,
                       noun: str = "task") -> None:
    """Task (or market) names become file names: letters, digits, '_', '.', '-', distinct
    ignoring case."""
    bad = [t for t in tasks if not TASK_PATTERN.match(t)]
    if bad:
        problems.data(where, f"{noun} names {quoted(bad)} must be letters, digits, '_', '.' "
                      "and '-' (at most 63; they become file names)")
    lowered: dict[str, list[str]] = {}
    for task in dict.fromkeys(tasks):
        lowered.setdefault(task.lower(), []).append(task)
    clashes = [names for names in lowered.values() if len(names) > 1]
    if clashes:
        problems.data(where, f"{noun} names {quoted(clashes)} differ only in upper/lower case "
                      "(they become file names)")


def duplicates(keys: Sequence[Any]) -> list[Any]:
    """The keys that appear more than once, in first-seen order."""
    return [key for key, count in Counter(keys).items() if count > 1]


def shared_ids(ids: Sequence[str], others: Sequence[str]) -> list[str]:
    """The IDs of ``ids`` that are also in ``others``, in order, each once."""
    if not ids or not others:
        return []
    inside = pc.is_in(pa.array(ids, pa.string()), value_set=pa.array(others, pa.string()))
    return list(dict.fromkeys(np.asarray(ids, dtype=object)[
        inside.to_numpy(zero_copy_only=False)].tolist()))
