"""Import the original DataPerf v0.5 vision selection files as an ``official`` edition.

The original layout (the challenge repository's ``data/`` directory)::

    embeddings/train_emb_256_dataperf.parquet    pool: a parquet file or a directory of part
                                                 files, columns ImageID, embedding
    test_sets/alpha_test_set_{Concept}_256.parquet   ImageID, Confidence (the label), embedding
    examples/alpha_example_set_{Concept}.csv     LabelName, ImageID, Confidence, ... (positives)
    *imagelabels*.csv (optional)                 Open Images labels: ImageID, LabelName,
                                                 Confidence -> weak labels of the concepts

Embeddings keep their precision (float32, or float64 if so given), so scores match the original
scorer number for number.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from dataperf.challenge import Progress, no_progress
from dataperf.editions import Edition, Source, checked_embeddings, embedding_column, write_edition
from dataperf.exceptions import SourceDataError

TEST_PATTERN = re.compile(r"test_set_(?P<task>[A-Za-z0-9][A-Za-z0-9_.-]*?)(?:_\d+)?\.parquet$")
EXAMPLE_PATTERN = re.compile(r"example_set_(?P<task>[A-Za-z0-9][A-Za-z0-9_.-]*?)\.csv$")
SOURCE = Source(
    name="DataPerf v0.5 vision selection (Open Images)",
    licence="Open Images: annotations CC BY 4.0; embeddings as distributed by DataPerf",
    origin="original challenge files supplied by the user",
)


def source_directory(source: Path) -> Path:
    """``source`` as a Path; a SourceDataError unless it is a directory."""
    source = Path(source)
    if not source.is_dir():
        raise SourceDataError(f"{source} is not a directory with the original DataPerf files")
    return source


def read_parquet_columns(path: Path, columns: Iterable[str]) -> pa.Table:
    """The named columns of an original parquet file; a SourceDataError naming the file if it is
    unreadable or lacks one of them."""
    columns = list(columns)
    try:
        names = pq.read_schema(path).names
        missing = [c for c in columns if c not in names]
        if missing:
            raise SourceDataError(f"{path} has no column {', '.join(missing)} (expected columns "
                                  f"{', '.join(columns)})")
        return pq.read_table(path, columns=columns)
    except (pa.ArrowException, OSError) as err:
        raise SourceDataError(f"cannot read {path} as parquet: {err}") from None


def import_official(source: Path, out_dir: Path, *, overwrite: bool = False,
                    progress: Progress = no_progress) -> Edition:
    """Read the original layout under ``source`` and write an edition to ``out_dir``."""
    source = source_directory(source)
    progress("reading pool", 0, 3)
    pool_ids, pool_embeddings = _read_pool(source)
    progress("reading test sets", 1, 3)
    tests = _find(source, "test_sets", TEST_PATTERN, "test set parquet files "
                  "(test_sets/alpha_test_set_{Concept}_256.parquet)")
    test_table = pa.concat_tables(_read_test(path, task, pool_embeddings.shape[1])
                                  for task, path in tests.items())
    tasks = sorted(tests)
    progress("reading examples", 2, 3)
    examples = _find(source, "examples", EXAMPLE_PATTERN, None)
    example_rows = [(task, image_id, label_name)
                    for task, path in sorted(examples.items()) if task in tests
                    for image_id, label_name in _read_examples(path)]
    tables = {
        "public/pool.parquet": pa.table({
            "id": pool_ids, "embedding": embedding_column(pool_embeddings, pool_embeddings.dtype)}),
        "public/examples.parquet": pa.table({
            "task": pa.array([r[0] for r in example_rows], pa.string()),
            "id": pa.array([r[1] for r in example_rows], pa.string())}),
        "hidden/test.parquet": test_table,
    }
    weak = _read_weak_labels(source, {r[2]: r[0] for r in example_rows})
    if weak is not None:
        tables["public/weak_labels.parquet"] = weak
    edition = write_edition(
        out_dir, challenge="vision-selection", edition="official",
        builder="dataperf.challenges.vision_selection.official", builder_version="1",
        tasks=tasks, sources=[SOURCE], tables=tables,
        parameters={"pool_rows": len(pool_ids), "dim": int(pool_embeddings.shape[1])},
        overwrite=overwrite)
    progress("done", 3, 3)
    return edition


def _find(source: Path, folder: str, pattern: re.Pattern[str],
          required: str | None) -> dict[str, Path]:
    root = source / folder if (source / folder).is_dir() else source
    found: dict[str, Path] = {}
    for path in sorted(root.iterdir()):
        match = pattern.search(path.name)
        if match:
            found[match["task"]] = path
    if not found and required:
        raise SourceDataError(f"no {required} under {source}")
    return found


def _read_pool(source: Path) -> tuple[pa.Array, np.ndarray]:
    candidates = sorted((source / "embeddings").glob("*.parquet")) \
        if (source / "embeddings").is_dir() else []
    if len(candidates) != 1:
        raise SourceDataError(
            f"expected one pool at {source}/embeddings/*.parquet (a file or a directory of part "
            f"files), found {len(candidates)}")
    try:
        table = ds.dataset(candidates[0], format="parquet").to_table(
            columns=["ImageID", "embedding"])
        ids = table.column("ImageID").combine_chunks().cast(pa.string())
    except (pa.ArrowException, OSError) as err:
        raise SourceDataError(f"cannot read the pool {candidates[0]}: {err}") from None
    if ids.null_count:
        raise SourceDataError(f"the pool {candidates[0]} has {ids.null_count} row(s) without "
                              "an ImageID")
    if pc.count_distinct(ids).as_py() != len(ids):
        raise SourceDataError(f"the pool {candidates[0]} lists some ImageID more than once")
    return ids, checked_embeddings(table.column("embedding"), str(candidates[0]))


def _read_test(path: Path, task: str, dim: int) -> pa.Table:
    try:
        table = ds.dataset(path, format="parquet").to_table(
            columns=["ImageID", "Confidence", "embedding"])
    except (pa.ArrowException, OSError) as err:
        raise SourceDataError(f"cannot read the test set {path}: {err}") from None
    try:
        values = np.asarray([float(v) for v in table.column("Confidence").to_pylist()])
    except (TypeError, ValueError):  # empty or non-numeric values
        values = np.asarray([np.nan])
    if not np.isin(values, [0, 1]).all():
        raise SourceDataError(f"{path}: Confidence must be 0 or 1")
    labels = values.astype(np.int64)
    embeddings = checked_embeddings(table.column("embedding"), str(path))
    if embeddings.shape[1] != dim:
        raise SourceDataError(f"{path}: embeddings have {embeddings.shape[1]} dimensions; the "
                              f"pool has {dim}")
    return pa.table({
        "task": pa.array([task] * len(labels), pa.string()),
        "id": table.column("ImageID").combine_chunks().cast(pa.string()),
        "embedding": embedding_column(embeddings, embeddings.dtype),
        "label": pa.array(labels.astype(np.int8)),
    })


def _read_examples(path: Path) -> Iterable[tuple[str, str]]:
    try:
        table = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(
            column_types={"ImageID": pa.string(), "LabelName": pa.string()}))
        columns = table.column_names  # decoding the header can fail too
    except (pa.ArrowException, UnicodeDecodeError) as err:
        raise SourceDataError(f"cannot read the examples {path}: {err}") from None
    if "ImageID" not in columns:
        raise SourceDataError(f"{path} has no ImageID column")
    names = table.column("LabelName").to_pylist() if "LabelName" in columns \
        else [""] * table.num_rows
    return list(zip(table.column("ImageID").to_pylist(), names, strict=True))


def _read_weak_labels(source: Path, task_of_label: dict[str, str]) -> pa.Table | None:
    """Open Images machine/human label confidences for the concepts, if the CSV is present."""
    files = sorted(source.glob("*imagelabels*.csv"))
    if not files or not task_of_label:
        return None
    try:
        table = pacsv.read_csv(files[0], convert_options=pacsv.ConvertOptions(
            include_columns=["ImageID", "LabelName", "Confidence"],
            column_types={"ImageID": pa.string(), "LabelName": pa.string(),
                          "Confidence": pa.float32()}))
    except (pa.ArrowException, UnicodeDecodeError) as err:
        raise SourceDataError(f"cannot read the image labels {files[0]} (columns ImageID, "
                              f"LabelName, Confidence): {err}") from None
    table = table.filter(pc.is_in(table.column("LabelName"),
                                  value_set=pa.array(list(task_of_label), pa.string())))
    tasks = [task_of_label[name] for name in table.column("LabelName").to_pylist()]
    return pa.table({"id": table.column("ImageID"), "task": pa.array(tasks, pa.string()),
                     "confidence": table.column("Confidence")})
