"""Editions on disk: parquet tables plus a JSON manifest with the sha256 of every file.

Layout of an edition directory::

    manifest.json          challenge, edition name, builder, sources and licences, file hashes
    public/...             what participants get (pool, examples, weak labels, ...)
    hidden/...             what only the scoring side has (test labels)

A copy made for participants (:func:`export_public`) has no ``hidden/`` files and its manifest
says ``public_only``. Every file is checked against its recorded hash when an edition is opened,
so a changed or truncated file is refused before anything is scored with it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from dataperf.exceptions import (
    EditionError,
    HiddenDataUnavailableError,
    IntegrityError,
    SourceDataError,
    describe,
)

MANIFEST_NAME = "manifest.json"
FORMAT_VERSION = 1
READ_BATCH_ROWS = 2048  # rows a table is decoded at a time (8 MB of 1024-d float32 embeddings)
PUBLIC = "public"
HIDDEN = "hidden"
# Task names become file names (``{task}.csv``), so they are restricted to safe characters.
TASK_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


class Source(BaseModel):
    """Where data in an edition came from, under which licence."""

    model_config = ConfigDict(extra="forbid")

    name: str
    licence: str
    origin: str
    note: str = ""


class FileEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sha256: str
    bytes: int


class Manifest(BaseModel):
    """The JSON manifest of an edition."""

    model_config = ConfigDict(extra="forbid")

    format_version: int = FORMAT_VERSION
    challenge: str
    edition: str
    builder: str
    builder_version: str
    tasks: list[str]
    sources: list[Source]
    parameters: dict[str, Any] = {}
    spec: dict[str, Any] | None = None
    public_only: bool = False
    files: dict[str, FileEntry]

    @field_validator("tasks")
    @classmethod
    def _safe_task_names(cls, tasks: list[str]) -> list[str]:
        problem = task_names_problem(tasks)
        if problem:
            raise ValueError(problem)
        return tasks

    @property
    def content_hash(self) -> str:
        """Identity of the edition: a hash over the public and hidden files' hashes."""
        listing = json.dumps(
            {name: entry.sha256 for name, entry in sorted(self.files.items())}, sort_keys=True
        )
        return hashlib.sha256(listing.encode()).hexdigest()


def task_names_problem(tasks: Sequence[str]) -> str | None:
    """Why these task names are unusable (they become file names), or None."""
    for task in tasks:
        if not TASK_PATTERN.match(task):
            return f"task name {task!r} must be letters, digits, '_', '.', '-'"
    if len({t.lower() for t in tasks}) != len(tasks):
        return "task names must be unique, ignoring case"
    return None


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class Edition:
    """A verified edition directory. Open with :meth:`Edition.open`."""

    def __init__(self, path: Path, manifest: Manifest):
        self.path = path
        self.manifest = manifest
        self._tables: dict[tuple[str, tuple[str, ...] | None], pa.Table] = {}

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, verify: bool = True) -> Edition:
        path = Path(path)
        manifest_path = path / MANIFEST_NAME
        if not manifest_path.is_file():
            raise EditionError(
                f"{path} is not an edition: it has no {MANIFEST_NAME}. "
                "Build one with `dataperf data build` or import one with `dataperf data import`."
            )
        try:
            manifest = Manifest.model_validate_json(manifest_path.read_bytes())
        except ValidationError as err:
            raise EditionError(
                f"{manifest_path} is not a valid edition manifest: {describe(err)}"
            ) from None
        if manifest.format_version != FORMAT_VERSION:
            raise EditionError(
                f"{manifest_path} has format version {manifest.format_version}; this version of "
                f"dataperf reads version {FORMAT_VERSION}. Rebuild or re-import the edition."
            )
        edition = cls(path, manifest)
        if verify:
            edition.verify()
        return edition

    @property
    def challenge(self) -> str:
        return self.manifest.challenge

    @property
    def name(self) -> str:
        return self.manifest.edition

    @property
    def content_hash(self) -> str:
        return self.manifest.content_hash

    @property
    def tasks(self) -> tuple[str, ...]:
        return tuple(self.manifest.tasks)

    @property
    def has_hidden(self) -> bool:
        return not self.manifest.public_only

    def verify(self) -> None:
        """Check every file against the manifest; raise IntegrityError naming the first bad one."""
        for name, entry in sorted(self.manifest.files.items()):
            file = self.path / name
            if not file.is_file():
                raise IntegrityError(
                    f"edition {self.path} is incomplete: {name} is missing. "
                    "Restore it or rebuild the edition."
                )
            size = file.stat().st_size
            if size != entry.bytes or sha256_file(file) != entry.sha256:
                raise IntegrityError(
                    f"edition {self.path} was changed: {name} does not match the sha256 in "
                    f"{MANIFEST_NAME}. Scores on changed data would not be comparable; restore "
                    "the file or rebuild the edition."
                )

    def file(self, name: str) -> Path:
        """Path of a file of the edition, e.g. ``public/pool.parquet``."""
        if name not in self.manifest.files:
            if name.startswith(HIDDEN + "/") and self.manifest.public_only:
                raise HiddenDataUnavailableError(
                    f"edition {self.path} is a participant's copy without hidden data; "
                    f"scoring needs {name}. Use the full edition on the scoring side."
                )
            raise EditionError(f"edition {self.path} has no file {name}")
        return self.path / name

    def read_table(self, name: str, columns: Sequence[str] | None = None) -> pa.Table:
        """A table of the edition, read once per Edition object (tables are immutable), and
        decoded a batch of rows at a time: decoding a whole file's nested embedding lists at
        once costs about 3 times the CPU and holds transient buffers of several times the
        table (the original speech evaluation set: 3.1 s and 1.1 GB at the peak for a 262 MB
        table, against 0.8 s and 0.7 GB in batches)."""
        key = (name, tuple(columns) if columns else None)
        if key not in self._tables:
            file = pq.ParquetFile(self.file(name))
            batches = file.iter_batches(batch_size=READ_BATCH_ROWS,
                                        columns=list(key[1]) if key[1] else None,
                                        use_threads=False)
            schema = file.schema_arrow if key[1] is None else pa.schema(
                [file.schema_arrow.field(c) for c in key[1]])
            self._tables[key] = pa.Table.from_batches(list(batches), schema=schema)
        return self._tables[key]


def embedding_array(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """A (rows, dim) array from a fixed-size-list (or list) column of floats, dtype kept."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if len(column) == 0:
        width = column.type.list_size if pa.types.is_fixed_size_list(column.type) else 0
        return np.zeros((0, width), dtype=column.type.value_type.to_pandas_dtype())
    values = column.flatten().to_numpy(zero_copy_only=False)
    return values.reshape(len(column), -1)


def checked_embeddings(column: pa.ChunkedArray | pa.Array, where: str) -> np.ndarray:
    """Embeddings from a user's file (an import, an organizer's data): a list of numbers per
    row, all of one length, finite; float32, or float64 if so given. ``where`` prefixes each
    message, e.g. the file and column."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    kind = column.type
    if not (pa.types.is_list(kind) or pa.types.is_large_list(kind)
            or pa.types.is_fixed_size_list(kind)) or not (
            pa.types.is_floating(kind.value_type) or pa.types.is_integer(kind.value_type)):
        raise SourceDataError(f"{where}: must be a list of numbers per row (an embedding), "
                              f"not {kind}")
    if column.null_count:
        raise SourceDataError(f"{where}: {column.null_count} row(s) have no embedding")
    if len(column):
        lengths = pc.list_value_length(column)
        low, high = pc.min(lengths).as_py(), pc.max(lengths).as_py()
        if low != high:
            raise SourceDataError(f"{where}: embeddings have different lengths (from {low} to "
                                  f"{high} values); every row needs the same dimension")
    raw = embedding_array(column)
    embeddings = raw.astype(np.result_type(raw.dtype, np.float32))
    if not np.isfinite(embeddings).all():
        raise SourceDataError(f"{where}: some embeddings have empty, NaN or infinite values")
    return embeddings


def embedding_column(matrix: np.ndarray, dtype: Any = np.float16) -> pa.FixedSizeListArray:
    """A fixed-size-list column from a (rows, dim) array, stored compactly as ``dtype``."""
    matrix = np.ascontiguousarray(matrix, dtype=dtype)
    flat = pa.array(matrix.reshape(-1))
    return pa.FixedSizeListArray.from_arrays(flat, matrix.shape[1])


def write_edition(
    path: str | os.PathLike[str],
    *,
    challenge: str,
    edition: str,
    builder: str,
    builder_version: str,
    tasks: Sequence[str],
    sources: Sequence[Source],
    tables: Mapping[str, pa.Table],
    parameters: Mapping[str, Any] | None = None,
    spec: Mapping[str, Any] | None = None,
    overwrite: bool = False,
) -> Edition:
    """Write an edition atomically: into a temporary sibling, then renamed into place.

    ``tables`` maps relative paths (``public/...`` or ``hidden/...``) to tables written as
    zstd-compressed parquet.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise EditionError(f"{path} already exists; pass overwrite to replace it")
    problem = task_names_problem(tasks)
    if problem:
        raise EditionError(problem)
    names = list(tables)
    for name in names:
        top = name.split("/", 1)[0]
        if top not in (PUBLIC, HIDDEN) or ".." in Path(name).parts or name.startswith("/"):
            raise EditionError(f"edition file {name!r} must lie under public/ or hidden/")
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = _staging_dir(path)
    try:
        for name, table in tables.items():
            target = staging / name
            target.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(table, target, compression="zstd", write_statistics=False)
        manifest = Manifest(
            challenge=challenge,
            edition=edition,
            builder=builder,
            builder_version=builder_version,
            tasks=list(tasks),
            sources=list(sources),
            parameters=dict(parameters or {}),
            spec=dict(spec) if spec is not None else None,
            files={
                name: FileEntry(
                    sha256=sha256_file(staging / name), bytes=(staging / name).stat().st_size
                )
                for name in sorted(names)
            },
        )
        _write_manifest(staging, manifest)
        if path.exists():
            shutil.rmtree(path)
        staging.rename(path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return Edition(path, manifest)


def export_public(edition: Edition, destination: str | os.PathLike[str]) -> Edition:
    """Copy only the public part of ``edition`` (what participants may have) to ``destination``."""
    destination = Path(destination)
    if destination.exists():
        raise EditionError(f"{destination} already exists; choose a new directory")
    public = {n: e for n, e in edition.manifest.files.items() if n.startswith(PUBLIC + "/")}
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = _staging_dir(destination)
    try:
        for name in public:
            (staging / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(edition.path / name, staging / name)
        manifest = edition.manifest.model_copy(update={"files": public, "public_only": True})
        _write_manifest(staging, manifest)
        staging.rename(destination)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return Edition.open(destination)


def _staging_dir(target: Path) -> Path:
    """A temporary sibling of ``target`` with ordinary directory permissions."""
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    umask = os.umask(0)
    os.umask(umask)
    staging.chmod(0o777 & ~umask)
    return staging


def _write_manifest(directory: Path, manifest: Manifest) -> None:
    text = json.dumps(manifest.model_dump(mode="json"), indent=2, sort_keys=True) + "\n"
    (directory / MANIFEST_NAME).write_text(text, encoding="utf-8")


def make_ids(count: int, rng: np.random.Generator) -> list[str]:
    """``count`` unique opaque IDs: 16 lowercase hex digits each."""
    ids: list[str] = []
    seen: set[str] = set()
    while len(ids) < count:
        block = rng.bytes(8 * (count - len(ids))).hex()
        for start in range(0, len(block), 16):
            candidate = block[start : start + 16]
            if candidate not in seen:
                seen.add(candidate)
                ids.append(candidate)
    return ids
