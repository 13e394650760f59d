"""Importing the original DataPerf v0.5 vision debugging files.

The source files are tiny but in exactly the original layout: ``embeddings/{id}_train_0.3_300
.parquet`` etc. with columns ``encoding``, ``label``, ``filename`` and ``data/dataset_{id}
_train.csv`` with ``ImageID``, ``hv_label`` (only the sizes in the names are small).
"""

from __future__ import annotations

import csv
import shutil
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from build_harness import official_fixtures, rows_where
from dataperf.challenges.vision_cleaning.official import import_official
from dataperf.editions import Edition, embedding_array
from dataperf.exceptions import SourceDataError

TASKS = ("01g317", "01g317-flipped")
DIM, TRAIN, VAL, TEST = 6, 12, 4, 5


@dataclass
class Original:
    root: Path
    train: dict[str, dict[str, list]]  # task -> columns as written
    truth: dict[str, list[int]]  # task -> true label per training row, in row order
    validation: dict[str, dict[str, list]]
    test: dict[str, dict[str, list]]


def _rows(rng: np.random.Generator, n: int, prefix: str) -> dict[str, list]:
    return {
        "encoding": rng.normal(size=(n, DIM)).astype(np.float32).tolist(),
        "label": rng.integers(0, 2, n).tolist(),
        "filename": [f"{prefix}{k:04x}.jpg" for k in range(n)],
    }


def _write(path: Path, rows: dict[str, list]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({
        "encoding": pa.array(rows["encoding"], pa.list_(pa.float32())),
        "label": pa.array(rows["label"], pa.int64()),
        "filename": pa.array(rows["filename"], pa.string()),
    }), path)


def write_original(root: Path, *, stems: bool = False) -> Original:
    rng = np.random.default_rng(7)
    original = Original(root, {}, {}, {}, {})
    for task in TASKS:
        train = _rows(rng, TRAIN, f"{task}/train/")
        truth = rng.integers(0, 2, TRAIN).tolist()
        train["label"] = [1 - t if k % 3 == 0 else t for k, t in enumerate(truth)]
        original.train[task], original.truth[task] = train, truth
        original.validation[task] = _rows(rng, VAL, f"{task}/val/")
        original.test[task] = _rows(rng, TEST, f"{task}/test/")
        _write(root / "embeddings" / f"{task}_train_0.3_{TRAIN}.parquet", train)
        _write(root / "embeddings" / f"{task}_val_{VAL}.parquet", original.validation[task])
        _write(root / "embeddings" / f"{task}_test_{TEST}.parquet", original.test[task])
        gt = root / "data" / f"dataset_{task}_train.csv"
        gt.parent.mkdir(parents=True, exist_ok=True)
        order = rng.permutation(TRAIN)  # the CSV lists images in another order, plus others
        with gt.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["ImageID", "hv_label", "LabelName"])
            writer.writerow(["someone-else.jpg", 1, "/m/x"])
            for k in order:
                name = train["filename"][k]
                writer.writerow([Path(name).stem if stems else name, truth[k], "/m/x"])
    return original


original, edition = official_fixtures(write_original, import_official)
rows_of = partial(rows_where, column="task")


# Round trip ------------------------------------------------------------------------------------


def test_manifest(edition: Edition) -> None:
    edition = Edition.open(edition.path)
    assert (edition.challenge, edition.name) == ("vision-cleaning", "official")
    assert edition.tasks == TASKS
    assert sorted(edition.manifest.files) == [
        "hidden/test.parquet", "hidden/truth.parquet", "public/train.parquet",
        "public/validation.parquet"]
    assert "Open Images" in edition.manifest.sources[0].licence
    parameters = edition.manifest.parameters
    assert parameters["dim"] == DIM
    assert parameters["tasks"]["01g317"]["noise_level"] == "0.3"
    assert parameters["tasks"]["01g317"]["flipped"] == 4
    assert (parameters["tasks"]["01g317"]["train_size"],
            parameters["tasks"]["01g317"]["validation_size"],
            parameters["tasks"]["01g317"]["test_size"]) == (TRAIN, VAL, TEST)


def test_schemas(edition: Edition) -> None:
    embedding = pa.list_(pa.float32(), DIM)
    assert edition.read_table("public/train.parquet").schema.equals(pa.schema([
        ("task", pa.string()), ("index", pa.int32()), ("id", pa.string()),
        ("embedding", embedding), ("label", pa.int8())]))
    for name in ("public/validation.parquet", "hidden/test.parquet"):
        assert edition.read_table(name).schema.equals(pa.schema([
            ("task", pa.string()), ("id", pa.string()), ("embedding", embedding),
            ("label", pa.int8())]))
    assert edition.read_table("hidden/truth.parquet").schema.equals(pa.schema([
        ("task", pa.string()), ("index", pa.int32()), ("label", pa.int8())]))


@pytest.mark.parametrize("task", TASKS)
def test_training_rows_keep_order_values_and_truth(
        original: Original, edition: Edition, task: str) -> None:
    train = rows_of(edition, "public/train.parquet", task)
    source = original.train[task]
    assert train["index"].to_pylist() == list(range(TRAIN))
    assert train["id"].to_pylist() == source["filename"]
    assert train["label"].to_pylist() == source["label"]
    embeddings = embedding_array(train["embedding"])
    assert embeddings.dtype == np.float32
    assert np.array_equal(embeddings, np.asarray(source["encoding"], np.float32))
    truth = rows_of(edition, "hidden/truth.parquet", task)
    assert truth["index"].to_pylist() == list(range(TRAIN))
    assert truth["label"].to_pylist() == original.truth[task]


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize(("name", "split"), [("public/validation.parquet", "validation"),
                                             ("hidden/test.parquet", "test")])
def test_validation_and_test_rows(
        original: Original, edition: Edition, task: str, name: str, split: str) -> None:
    rows = rows_of(edition, name, task)
    source = getattr(original, split)[task]
    assert rows["id"].to_pylist() == source["filename"]
    assert rows["label"].to_pylist() == source["label"]
    assert np.array_equal(embedding_array(rows["embedding"]),
                          np.asarray(source["encoding"], np.float32))


def test_ground_truth_by_file_stem(tmp_path: Path) -> None:
    original = write_original(tmp_path / "original", stems=True)
    edition = import_official(original.root, tmp_path / "official")
    truth = rows_of(edition, "hidden/truth.parquet", "01g317-flipped")
    assert truth["label"].to_pylist() == original.truth["01g317-flipped"]


def test_files_directly_in_the_source_directory(original: Original, tmp_path: Path) -> None:
    flat = tmp_path / "flat"
    flat.mkdir()
    for path in [*original.root.glob("embeddings/*"), *original.root.glob("data/*")]:
        shutil.copy(path, flat / path.name)
    assert import_official(flat, tmp_path / "official").tasks == TASKS


def test_existing_output_needs_overwrite(original: Original, edition: Edition) -> None:
    from dataperf.exceptions import EditionError

    with pytest.raises(EditionError, match="already exists"):
        import_official(original.root, edition.path)
    again = import_official(original.root, edition.path, overwrite=True)
    assert again.content_hash == edition.content_hash


def test_cli_import(original: Original, tmp_path: Path) -> None:
    from dataperf import registry

    if "vision-cleaning" not in registry.challenges():
        pytest.skip("the vision-cleaning entry point is not installed")
    from official_layout import dataperf

    result = dataperf("data", "import", "vision-cleaning", original.root,
                      "--out", tmp_path / "official", home=tmp_path / "home")
    assert result.returncode == 0, result
    assert "with tasks 01g317, 01g317-flipped" in result.out


# Errors ----------------------------------------------------------------------------------------


@pytest.fixture
def copy(original: Original, tmp_path: Path) -> Path:
    return Path(shutil.copytree(original.root, tmp_path / "copy"))


def test_not_a_directory(tmp_path: Path) -> None:
    with pytest.raises(SourceDataError, match="is not a directory"):
        import_official(tmp_path / "nothing", tmp_path / "out")


def test_no_training_files(tmp_path: Path) -> None:
    (tmp_path / "embeddings").mkdir()
    with pytest.raises(SourceDataError, match=r"no training files .*_train_0\.3_300\.parquet"):
        import_official(tmp_path, tmp_path / "out")


@pytest.mark.parametrize("split", ["val", "test"])
def test_missing_split_file(copy: Path, split: str) -> None:
    next((copy / "embeddings").glob(f"01g317-flipped_{split}_*.parquet")).unlink()
    with pytest.raises(SourceDataError,
                       match=rf"the {split} file of task '01g317-flipped' is missing"):
        import_official(copy, copy.parent / "out")
    assert not (copy.parent / "out").exists()


def test_ambiguous_split_file(copy: Path) -> None:
    shutil.copy(copy / "embeddings" / f"01g317_val_{VAL}.parquet",
                copy / "embeddings" / "01g317_val_999.parquet")
    with pytest.raises(SourceDataError, match="is ambiguous"):
        import_official(copy, copy.parent / "out")


def test_missing_ground_truth(copy: Path) -> None:
    (copy / "data" / "dataset_01g317_train.csv").unlink()
    with pytest.raises(SourceDataError,
                       match=r"ground truth of 01g317_train_0\.3_12\.parquet is missing"):
        import_official(copy, copy.parent / "out")


def test_ground_truth_without_a_training_image(copy: Path) -> None:
    path = copy / "data" / "dataset_01g317_train.csv"
    lines = path.read_text().splitlines()
    path.write_text("\n".join(line for line in lines if "train/0003" not in line) + "\n")
    with pytest.raises(SourceDataError,
                       match=r"no ImageID for 1 training row\(s\) .*'01g317/train/0003\.jpg'"):
        import_official(copy, copy.parent / "out")


def test_ground_truth_without_hv_label(copy: Path) -> None:
    path = copy / "data" / "dataset_01g317_train.csv"
    path.write_text(path.read_text().replace("hv_label", "label"))
    with pytest.raises(SourceDataError, match="has no column hv_label"):
        import_official(copy, copy.parent / "out")


def test_missing_column(copy: Path) -> None:
    path = copy / "embeddings" / f"01g317_test_{TEST}.parquet"
    pq.write_table(pq.read_table(path).drop_columns(["filename"]), path)
    with pytest.raises(SourceDataError, match="has no column filename"):
        import_official(copy, copy.parent / "out")


def test_labels_must_be_binary(copy: Path) -> None:
    path = copy / "embeddings" / f"01g317_train_0.3_{TRAIN}.parquet"
    table = pq.read_table(path)
    labels = table["label"].to_pylist()
    labels[2] = 2
    pq.write_table(table.set_column(1, "label", pa.array(labels, pa.int64())), path)
    with pytest.raises(SourceDataError, match="label must be 0 or 1"):
        import_official(copy, copy.parent / "out")


def test_dimensions_must_agree(copy: Path) -> None:
    path = copy / "embeddings" / f"01g317_val_{VAL}.parquet"
    rows = _rows(np.random.default_rng(0), VAL, "x")
    rows["encoding"] = [[*row, 0.0] for row in rows["encoding"]]
    _write(path, rows)
    with pytest.raises(SourceDataError, match=f"have {DIM + 1} dimensions, other files {DIM}"):
        import_official(copy, copy.parent / "out")


def test_not_parquet(copy: Path) -> None:
    (copy / "embeddings" / f"01g317_test_{TEST}.parquet").write_bytes(b"not parquet")
    with pytest.raises(SourceDataError, match=r"cannot read .* as parquet"):
        import_official(copy, copy.parent / "out")


def test_bad_embeddings(copy: Path) -> None:
    path = copy / "embeddings" / f"01g317_test_{TEST}.parquet"
    rows = _rows(np.random.default_rng(0), TEST, "x")
    rows["encoding"][1][0] = float("nan")
    _write(path, rows)
    with pytest.raises(SourceDataError, match="encoding: some embeddings have empty, NaN"):
        import_official(copy, copy.parent / "out")
