"""The tables a selection challenge reads from its edition: the pool (IDs and embeddings), the
candidates of keyword tasks, hidden test labels as class indices, and the order in which the
original speech evaluator trains on a keyword-sets file."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dataperf.editions import Edition, embedding_array
from dataperf.exceptions import EditionError
from dataperf.kinds import selection_files as files


@dataclass(frozen=True)
class Pool:
    ids: pa.Array  # string ids, row order of public/pool.parquet
    embeddings: np.ndarray  # (N, d)

    def locate(self, ids: Sequence[str] | pa.Array) -> np.ndarray:
        """Pool row index of each ID, -1 where unknown (vectorised hash lookup)."""
        return _index_in(ids, self.ids)


def _index_in(ids: Sequence[str] | pa.Array, values: pa.Array) -> np.ndarray:
    """Position of each of ``ids`` in ``values``, -1 where absent."""
    keys = ids if isinstance(ids, pa.Array) else pa.array(list(ids), type=pa.string())
    found = pc.index_in(keys, value_set=values)
    return np.asarray(found.fill_null(-1).to_numpy(zero_copy_only=False), dtype=np.int64)


def load_pool(edition: Edition) -> Pool:
    table = edition.read_table("public/pool.parquet")
    ids = table.column("id").combine_chunks().cast(pa.string())
    return Pool(ids=ids, embeddings=embedding_array(table.column("embedding")))


@dataclass(frozen=True)
class Candidates:
    """The candidates of one keyword task: IDs, the class index of the word each was extracted
    for, the task's class names (the background class, then the target words sorted) and each
    candidate's row in its word file of the original files (its position in the table where
    the edition does not record one)."""

    ids: pa.Array
    labels: np.ndarray
    classes: list[str]
    file_rows: np.ndarray

    def locate(self, ids: Sequence[str]) -> np.ndarray:
        """Candidate index of each ID, -1 where it is not a candidate."""
        return _index_in(ids, self.ids)

    def positions(self, pool: Pool) -> np.ndarray:
        """The pool row of each candidate."""
        return pool.locate(self.ids)


def load_candidates(edition: Edition, background: str) -> dict[str, Candidates]:
    """Each task's candidates from ``public/candidates.parquet`` (task, id, label: a word)."""
    name = "public/candidates.parquet"
    if name not in edition.manifest.files:
        raise EditionError(f"edition {edition.name!r} has no {name}: keyword tasks need each "
                           "task's candidates")
    table = edition.read_table(name)
    out: dict[str, Candidates] = {}
    for task in edition.tasks:
        rows = table.filter(pc.equal(table.column("task"), task))
        words = rows.column("label").to_pylist()
        classes = [background, *sorted(set(words) - {background})]
        if len(rows) == 0 or len(classes) < 2:
            raise EditionError(f"edition {edition.name!r}: task {task} has no target word "
                               f"among its candidates in {name}")
        index = {word: i for i, word in enumerate(classes)}
        file_rows = (rows.column("file_row").to_numpy() if "file_row" in rows.column_names
                     else np.arange(len(rows)))
        out[task] = Candidates(ids=rows.column("id").combine_chunks().cast(pa.string()),
                               labels=np.array([index[w] for w in words], dtype=np.int64),
                               classes=classes, file_rows=np.asarray(file_rows, np.int64))
    return out


def original_training_order(rows: files.KeywordRows, file_rows: np.ndarray,
                            classes: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """The order in which the original speech evaluator (``eval.py`` and
    ``selection/load_samples.py`` of dataperf-speech-example) trains on a keyword-sets file's
    rows, and the class numbers it gives them.

    It reads the target words in the file's key order and each word's chosen clips in the
    order of the word's parquet file (``file_rows``: each row's row there); then the
    nontargets, grouped by word file (the ID's first path component) in the order the words
    first appear in the list, each group in list order. It numbers the classes by the file's
    own target words, sorted, from 1 (nontarget 0): a file that leaves a word out shifts the
    classes after it (the original's bug, kept here). ``classes`` names the rows' labels.
    """
    labels = np.asarray(rows.labels, dtype=np.int64)
    rank = {word: i for i, word in enumerate(rows.words)}
    groups: dict[str, int] = {}
    primary = np.empty(len(labels), dtype=np.int64)
    for k, (clip, label) in enumerate(zip(rows.ids, labels, strict=True)):
        primary[k] = rank[classes[label]] if label else len(rank) + groups.setdefault(
            files.nontarget_word(clip), len(groups))
    secondary = np.where(labels > 0, file_rows, np.arange(len(labels)))
    order = np.lexsort((secondary, primary))
    number = {word: i + 1 for i, word in enumerate(sorted(rows.words))}
    numbered = np.array([number[classes[c]] if c else 0 for c in labels[order]], dtype=np.int64)
    return order, numbered


def class_indices(labels: pa.ChunkedArray, classes: Sequence[str], task: str) -> np.ndarray:
    """Class indices of hidden test labels: stored as indices, or as class names (keyword
    tasks), which are mapped by name."""
    if not pa.types.is_string(labels.type) and not pa.types.is_large_string(labels.type):
        return labels.to_numpy().astype(np.int64)
    index = {name: i for i, name in enumerate(classes)}
    names = labels.to_pylist()
    unknown = sorted(set(names) - set(index))
    if unknown:
        raise EditionError(f"task {task}: test labels {unknown[:5]} are not among its classes "
                           f"{', '.join(classes)}")
    return np.array([index[n] for n in names], dtype=np.int64)
