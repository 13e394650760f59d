"""Import the original DataPerf v0.5 vision debugging files as an ``official`` edition.

The original layout (the challenge repository after unzipping its resources)::

    embeddings/{id}_train_0.3_300.parquet    noisy training rows: encoding (2048-d list),
                                             label (0/1), filename
    embeddings/{id}_val_100.parquet          clean validation rows, same columns
    embeddings/{id}_test_500.parquet         test rows, same columns
    data/dataset_{id}_train.csv              ground truth: ImageID, hv_label (0/1)

``{id}`` is the task (e.g. ``01g317`` or ``01g317-flipped``); the sizes and noise level in the
names may differ. Files may also lie directly in the source directory.

Ground truth: the original scorer looks up each training row's true label as the first CSV row
whose ``ImageID`` equals the row's ``filename`` (``gt_df[gt_df['ImageID'] == filename]``); we do
the same. If the CSV names images by their file stem instead (``ImageID`` without a directory or
extension), rows are matched by stem. A training row without a match is an error.

The row order of each training file is kept: the ``index`` of a row is its position in the
original file, which is what original submission files list. IDs are the ``filename`` values.
Embeddings keep their precision (float32, or float64 if so given), as in vision selection's
import, so scores match the original scorer number for number.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePath

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from dataperf.challenge import Progress, no_progress
from dataperf.challenges.vision_selection.official import read_parquet_columns, source_directory
from dataperf.editions import (
    Edition,
    Source,
    checked_embeddings,
    embedding_column,
    task_names_problem,
    write_edition,
)
from dataperf.exceptions import SourceDataError

TRAIN_PATTERN = re.compile(
    r"^(?P<task>[A-Za-z0-9][A-Za-z0-9_.-]*?)_train_(?P<noise>[0-9.]+)_(?P<size>[0-9]+)\.parquet$"
)
EMBEDDINGS = "embeddings"
GROUND_TRUTH = "data"
COLUMNS = ("encoding", "label", "filename")
SOURCE = Source(
    name="DataPerf v0.5 vision debugging (Open Images)",
    licence="Open Images: annotations CC BY 4.0, images CC BY 2.0; embeddings as distributed "
    "by DataPerf",
    origin="original challenge files supplied by the user",
)


def import_official(source: Path, out_dir: Path, *, overwrite: bool = False,
                    progress: Progress = no_progress) -> Edition:
    """Read the original layout under ``source`` and write an edition to ``out_dir``."""
    source = source_directory(source)
    embeddings_dir = source / EMBEDDINGS if (source / EMBEDDINGS).is_dir() else source
    truth_dir = source / GROUND_TRUTH if (source / GROUND_TRUTH).is_dir() else source
    found = {m["task"]: m for p in sorted(embeddings_dir.iterdir())
             if (m := TRAIN_PATTERN.match(p.name))}
    if not found:
        raise SourceDataError(
            f"no training files under {embeddings_dir}: expected {EMBEDDINGS}/"
            "{id}_train_0.3_300.parquet (with {id}_val_100.parquet, {id}_test_500.parquet and "
            f"{GROUND_TRUTH}/dataset_{{id}}_train.csv) per task")
    tasks = sorted(found)
    problem = task_names_problem(tasks)
    if problem:
        raise SourceDataError(f"{embeddings_dir}: {problem}")
    parts: dict[str, list[pa.Table]] = {"train": [], "validation": [], "test": [], "truth": []}
    parameters: dict[str, dict[str, object]] = {}
    dim: int | None = None
    for step, task in enumerate(tasks):
        progress("reading tasks", step, len(tasks))
        match = found[task]
        train_path = embeddings_dir / match.string
        train_ids, train_x, train_y = _read_rows(train_path)
        validation_path = _one(embeddings_dir, task, "val")
        test_path = _one(embeddings_dir, task, "test")
        validation = _read_rows(validation_path)
        test = _read_rows(test_path)
        for path, x in ((train_path, train_x), (validation_path, validation[1]),
                        (test_path, test[1])):
            dim = dim if dim is not None else x.shape[1]
            if x.shape[1] != dim:
                raise SourceDataError(
                    f"{path}: embeddings have {x.shape[1]} dimensions, other files {dim}; "
                    "every file needs the same dimension")
        truth_path = truth_dir / f"dataset_{task}_train.csv"
        truth = _match_truth(truth_path, train_path, train_ids)
        n = len(train_ids)
        index = pa.array(np.arange(n, dtype=np.int32))
        parts["train"].append(_rows(task, train_ids, train_x, train_y, index))
        parts["validation"].append(_rows(task, *validation))
        parts["test"].append(_rows(task, *test))
        parts["truth"].append(pa.table({
            "task": pa.array([task] * n, pa.string()), "index": index,
            "label": pa.array(truth, pa.int8())}))
        parameters[task] = {
            "train_size": n, "validation_size": len(validation[0]), "test_size": len(test[0]),
            "noise_level": match["noise"], "flipped": int((truth != train_y).sum()),
            "files": [train_path.name, validation_path.name, test_path.name, truth_path.name]}
    progress("writing edition", len(tasks), len(tasks) + 1)
    edition = write_edition(
        out_dir, challenge="vision-cleaning", edition="official",
        builder="dataperf.challenges.vision_cleaning.official", builder_version="1",
        tasks=tasks, sources=[SOURCE],
        tables={
            "public/train.parquet": pa.concat_tables(parts["train"]),
            "public/validation.parquet": pa.concat_tables(parts["validation"]),
            "hidden/test.parquet": pa.concat_tables(parts["test"]),
            "hidden/truth.parquet": pa.concat_tables(parts["truth"]),
        },
        parameters={"dim": dim, "tasks": parameters},
        overwrite=overwrite)
    progress("done", len(tasks) + 1, len(tasks) + 1)
    return edition


def _one(directory: Path, task: str, split: str) -> Path:
    """The task's ``{task}_{split}_{n}.parquet`` file (any size n), exactly one."""
    pattern = re.compile(rf"^{re.escape(task)}_{split}_[0-9]+\.parquet$")
    matches = [p for p in sorted(directory.iterdir()) if pattern.match(p.name)]
    if len(matches) != 1:
        what = "is missing" if not matches else \
            f"is ambiguous ({', '.join(p.name for p in matches)})"
        raise SourceDataError(
            f"the {split} file of task {task!r} {what}: expected one "
            f"{directory}/{task}_{split}_{{size}}.parquet (e.g. {task}_{split}_"
            f"{100 if split == 'val' else 500}.parquet)")
    return matches[0]


def _read_rows(path: Path) -> tuple[list[str], np.ndarray, np.ndarray]:
    """IDs (filenames), embeddings and 0/1 labels of one original parquet file."""
    table = read_parquet_columns(path, COLUMNS)
    if table.num_rows == 0:
        raise SourceDataError(f"{path} has no rows")
    filenames = table.column("filename")
    if filenames.null_count:
        raise SourceDataError(f"{path}: {filenames.null_count} row(s) have no filename")
    ids = [str(v) for v in filenames.to_pylist()]
    labels = _binary(table.column("label").to_pylist(), f"{path}: label")
    return ids, checked_embeddings(table.column("encoding"), f"{path}: encoding"), labels


def _binary(values: list[object], where: str) -> np.ndarray:
    try:
        numbers = np.asarray([float(v) for v in values])  # type: ignore[arg-type]
    except (TypeError, ValueError):  # missing or non-numeric values
        numbers = np.asarray([np.nan])
    if not np.isin(numbers, [0, 1]).all():
        raise SourceDataError(f"{where} must be 0 or 1 in every row")
    return numbers.astype(np.int8)


def _match_truth(path: Path, train_path: Path, train_ids: list[str]) -> np.ndarray:
    """The true label of each training row from the ground-truth CSV (see the module doc)."""
    if not path.is_file():
        raise SourceDataError(f"the ground truth of {train_path.name} is missing: expected "
                              f"{path} with columns ImageID, hv_label")
    try:
        table = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(
            column_types={"ImageID": pa.string()}))
        columns = table.column_names
    except (pa.ArrowException, UnicodeDecodeError) as err:
        raise SourceDataError(f"cannot read the ground truth {path}: {err}") from None
    missing = [c for c in ("ImageID", "hv_label") if c not in columns]
    if missing:
        raise SourceDataError(f"{path} has no column {', '.join(missing)} (expected ImageID, "
                              "hv_label)")
    image_ids = [str(v) for v in table.column("ImageID").to_pylist()]
    labels = _binary(table.column("hv_label").to_pylist(), f"{path}: hv_label")
    exact: dict[str, int] = {}
    for image_id, label in zip(image_ids, labels.tolist(), strict=True):
        exact.setdefault(image_id, label)  # the first match, as the original scorer
    if all(i in exact for i in train_ids):
        return np.asarray([exact[i] for i in train_ids], dtype=np.int8)
    by_stem: dict[str, int] = {}
    for image_id, label in zip(image_ids, labels.tolist(), strict=True):
        by_stem.setdefault(_stem(image_id), label)
    unmatched = [i for i in train_ids if i not in exact and _stem(i) not in by_stem]
    if unmatched:
        shown = ", ".join(repr(i) for i in unmatched[:3])
        raise SourceDataError(
            f"{path} has no ImageID for {len(unmatched)} training row(s) of {train_path.name} "
            f"(filename {shown}{', ...' if len(unmatched) > 3 else ''}); the ImageID must equal "
            "the filename or its stem")
    return np.asarray([exact[i] if i in exact else by_stem[_stem(i)] for i in train_ids],
                      dtype=np.int8)


def _stem(name: str) -> str:
    return PurePath(name.replace("\\", "/")).stem


def _rows(task: str, ids: list[str], x: np.ndarray, y: np.ndarray,
          index: pa.Array | None = None) -> pa.Table:
    columns: dict[str, pa.Array] = {"task": pa.array([task] * len(ids), pa.string())}
    if index is not None:
        columns["index"] = index
    columns |= {"id": pa.array(ids, pa.string()), "embedding": embedding_column(x, x.dtype),
                "label": pa.array(y, pa.int8())}
    return pa.table(columns)
