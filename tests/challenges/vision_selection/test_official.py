"""Importing the original DataPerf v0.5 vision selection files, and the ``official`` profile.

Source files are tiny but in exactly the original layout (see ``official_layout``). The official
profile is checked number for number against a straightforward re-implementation of the
original scorer that reads the original files itself.
"""

from __future__ import annotations

import csv
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score

from dataperf.challenges.vision_selection import challenge
from dataperf.challenges.vision_selection.official import import_official
from dataperf.editions import Edition, embedding_array
from dataperf.exceptions import SourceDataError, SubmissionError
from dataperf.submission_files import read_submission
from official_layout import (
    CONCEPTS,
    LABELS_FILE,
    OTHER_LABEL,
    POOL_PATH,
    OfficialLayout,
    concept_test_path,
    dataperf,
    sample_selection,
    write_csv_submission,
    write_json_submission,
    write_official_layout,
)

TASKS = ("Cupcake", "Hawk", "Sushi")
UNKNOWN_IDS = ["ffffffffffff0001", "ffffffffffff0002"]


@pytest.fixture(scope="module")
def layout(tmp_path_factory: pytest.TempPathFactory) -> OfficialLayout:
    return write_official_layout(tmp_path_factory.mktemp("original") / "data")


@pytest.fixture(scope="module")
def edition(layout: OfficialLayout, tmp_path_factory: pytest.TempPathFactory) -> Edition:
    return import_official(layout.root, tmp_path_factory.mktemp("imported") / "official")


def table(edition: Edition, name: str) -> dict[str, list]:
    return edition.read_table(name).to_pydict()


def score(edition: Edition, directory: Path, profile: str):
    parsed = challenge.parse_submission(read_submission(directory), edition, profile=profile)
    return challenge.score(parsed, edition, profile=profile)


# Import ------------------------------------------------------------------------------------


def test_cli_import_writes_the_same_edition_as_the_library(
        layout: OfficialLayout, edition: Edition, tmp_path: Path) -> None:
    home = tmp_path / "home"
    result = dataperf("data", "import", "vision-selection", layout.root,
                      "--out", tmp_path / "official", home=home)
    assert result.returncode == 0, result
    assert "imported vision-selection edition official" in result.out
    assert "with tasks Cupcake, Hawk, Sushi" in result.out
    imported = Edition.open(tmp_path / "official")
    assert imported.tasks == TASKS
    assert imported.content_hash == edition.content_hash
    assert not home.exists(), "--out must not write anything under DATAPERF_HOME"


def test_edition_has_the_concepts_as_tasks_and_names_its_source(edition: Edition) -> None:
    assert edition.name == "official"
    assert edition.challenge == "vision-selection"
    assert edition.tasks == TASKS
    assert [t.name for t in challenge.tasks(edition)] == list(TASKS)
    assert edition.manifest.parameters == {"pool_rows": 360, "dim": 16}
    assert "Open Images" in edition.manifest.sources[0].licence
    assert sorted(edition.manifest.files) == [
        "hidden/test.parquet", "public/examples.parquet", "public/pool.parquet",
        "public/weak_labels.parquet"]


def test_pool_embeddings_are_the_source_float32_values(
        layout: OfficialLayout, edition: Edition) -> None:
    source = pq.read_table(layout.root / POOL_PATH)  # the Spark directory of part files
    expected = dict(zip(source["ImageID"].to_pylist(),
                        embedding_array(source["embedding"]), strict=True))
    pool = edition.read_table("public/pool.parquet")
    embeddings = embedding_array(pool["embedding"])
    assert embeddings.dtype == np.float32
    assert embeddings.shape == (360, 16)
    ids = pool["id"].to_pylist()
    assert sorted(ids) == sorted(expected)
    for image_id, row in zip(ids, embeddings, strict=True):
        assert np.array_equal(row, expected[image_id])


@pytest.mark.parametrize("concept", TASKS)
def test_test_sets_keep_labels_and_float32_embeddings(
        layout: OfficialLayout, edition: Edition, concept: str) -> None:
    source = pq.read_table(layout.root / concept_test_path(concept))
    test = edition.read_table("hidden/test.parquet")
    rows = test.filter(pc.equal(test["task"], concept))
    assert rows["id"].to_pylist() == source["ImageID"].to_pylist()
    assert rows["label"].to_pylist() == source["Confidence"].to_pylist()
    embeddings = embedding_array(rows["embedding"])
    assert embeddings.dtype == np.float32
    assert np.array_equal(embeddings, embedding_array(source["embedding"]))


def test_examples_are_imported_per_concept(layout: OfficialLayout, edition: Edition) -> None:
    examples = table(edition, "public/examples.parquet")
    for concept in TASKS:
        ids = [i for t, i in zip(examples["task"], examples["id"], strict=True) if t == concept]
        assert ids == layout.examples[concept]
    task = challenge.selection_task(edition, "Hawk")
    pool_ids = edition.read_table("public/pool.parquet")["id"].to_pylist()
    assert sorted(pool_ids[i] for i in task.examples) == sorted(layout.examples["Hawk"])
    assert set(task.example_labels.tolist()) == {1}


def test_weak_labels_come_from_the_open_images_label_file(
        layout: OfficialLayout, edition: Edition) -> None:
    weak = table(edition, "public/weak_labels.parquet")
    imported = {(i, t): c for i, t, c in zip(weak["id"], weak["task"], weak["confidence"],
                                               strict=True)}
    assert layout.weak_labels is not None
    assert imported == layout.weak_labels  # the concepts' rows only, not OTHER_LABEL's
    assert OTHER_LABEL in (layout.root / LABELS_FILE).read_text()
    # Algorithms see them as P(class 1) of the concept.
    task = challenge.selection_task(edition, "Sushi")
    pool_ids = edition.read_table("public/pool.parquet")["id"].to_pylist()
    row = next(i for i, image_id in enumerate(pool_ids) if (image_id, "Sushi") in imported)
    assert task.weak_proba[row, 1] == imported[(pool_ids[row], "Sushi")]


def test_without_the_label_file_there_are_no_weak_labels(tmp_path: Path) -> None:
    layout = write_official_layout(tmp_path / "data", weak_labels=False)
    edition = import_official(layout.root, tmp_path / "official")
    assert "public/weak_labels.parquet" not in edition.manifest.files
    assert edition.tasks == TASKS
    task = challenge.selection_task(edition, "Cupcake")
    assert np.all(task.weak_proba == 0.5)


# Submissions in the original formats ------------------------------------------------------------


@pytest.mark.parametrize("profile", ["default", "official"])
def test_csv_and_json_of_one_selection_score_identically(
        layout: OfficialLayout, edition: Edition, tmp_path: Path, profile: str) -> None:
    selection = sample_selection(layout)
    from_csv = score(edition, write_csv_submission(tmp_path / "csv", selection), profile)
    from_json = score(edition, write_json_submission(tmp_path / "json", selection), profile)
    assert from_csv.to_dict() == from_json.to_dict()
    assert [t.task for t in from_csv.tasks] == list(TASKS)
    assert from_csv.profile == profile
    assert from_csv.warnings == ()
    assert all(t.details["train_rows"] == 75 for t in from_csv.tasks)
    # The data is learnable: a clean selection is far above chance.
    assert from_csv.aggregate.value > 60


def original_scores(source: Path, submission: Path) -> dict[str, float]:
    """The original DataPerf v0.5 procedure, written out from scratch for comparison.

    Per concept: read ``{Concept}.csv`` (labels as text, as Spark reads CSV), inner-join its
    ImageIDs to the pool embeddings, fit ``LogisticRegression(random_state=0)``, predict the
    original test parquet and take ``f1_score(pos_label='1')``, reported x 100.
    """
    pool = pq.read_table(source / POOL_PATH, columns=["ImageID", "embedding"])
    embedding_of = dict(zip(pool["ImageID"].to_pylist(), pool["embedding"].to_pylist(),
                            strict=True))
    scores = {}
    for concept in CONCEPTS:
        with open(submission / f"{concept}.csv", newline="", encoding="utf-8") as handle:
            rows = [r for r in csv.DictReader(handle) if r["ImageID"] in embedding_of]
        x_train = [embedding_of[r["ImageID"]] for r in rows]
        y_train = [r["Confidence"] for r in rows]
        model = LogisticRegression(random_state=0).fit(x_train, y_train)
        test = pq.read_table(source / concept_test_path(concept))
        y_true = [str(v) for v in test["Confidence"].to_pylist()]
        y_pred = model.predict(test["embedding"].to_pylist())
        scores[concept] = f1_score(y_true, y_pred, pos_label="1") * 100
    return scores


@pytest.mark.parametrize(
    ("seed", "positives", "negatives", "noise", "unknown"),
    [
        pytest.param(1, 25, 50, 0.0, False, id="clean-labels"),
        pytest.param(2, 40, 120, 0.2, False, id="20pct-flipped-labels"),
        pytest.param(3, 5, 200, 0.0, False, id="few-positives"),
        pytest.param(4, 30, 30, 0.1, True, id="with-ids-not-in-the-pool"),
    ],
)
def test_official_profile_equals_the_original_procedure(
        layout: OfficialLayout, edition: Edition, tmp_path: Path, seed: int, positives: int,
        negatives: int, noise: float, unknown: bool) -> None:
    selection = sample_selection(layout, seed=seed, positives=positives, negatives=negatives,
                                 noise=noise)
    if unknown:
        for rows in selection.values():
            rows.update(dict.fromkeys(UNKNOWN_IDS, 1))
    submission = write_csv_submission(tmp_path / "submission", selection)
    expected = original_scores(layout.root, submission)
    scored = score(edition, submission, "official")
    for concept in TASKS:
        assert scored.task(concept).value == expected[concept], concept  # exactly equal
        assert scored.task(concept).ci_low is None
    assert scored.aggregate.value == pytest.approx(np.mean(list(expected.values())), abs=1e-12)


def test_official_profile_drops_unknown_ids_with_a_warning(
        layout: OfficialLayout, edition: Edition, tmp_path: Path) -> None:
    selection = sample_selection(layout)
    clean = score(edition, write_csv_submission(tmp_path / "clean", selection), "official")
    selection["Hawk"].update(dict.fromkeys(UNKNOWN_IDS, 0))
    dirty = write_csv_submission(tmp_path / "dirty", selection)
    scored = score(edition, dirty, "official")
    assert scored.warnings == (
        "Hawk.csv: 2 ID(s) not in the pool were dropped, as the original scorer does: "
        + ", ".join(UNKNOWN_IDS),)
    assert [t.value for t in scored.tasks] == [t.value for t in clean.tasks]
    assert scored.task("Hawk").details["train_rows"] == 75


def test_default_profile_rejects_unknown_ids(
        layout: OfficialLayout, edition: Edition, tmp_path: Path) -> None:
    selection = sample_selection(layout)
    selection["Hawk"].update(dict.fromkeys(UNKNOWN_IDS, 0))
    files = read_submission(write_json_submission(tmp_path / "json", selection))
    with pytest.raises(SubmissionError) as caught:
        challenge.parse_submission(files, edition, profile="default")
    assert [(p.file, p.rule) for p in caught.value.problems] == [("Hawk.json", "unknown-id")]
    assert "Hawk.json: lists 2 ID(s) that are not in the pool [unknown-id]" in str(caught.value)
    assert caught.value.problems[0].ids == tuple(UNKNOWN_IDS)


# Malformed sources ----------------------------------------------------------------------------


def _pool_parts(root: Path) -> list[Path]:
    return sorted((root / POOL_PATH).glob("part-*.parquet"))


def _rewrite(path: Path, column: str, values: list, kind: pa.DataType | None = None) -> None:
    table = pq.read_table(path)
    at = table.column_names.index(column)
    pq.write_table(table.set_column(at, column, pa.array(values, kind)), path)


def remove_test_sets(root: Path) -> None:
    shutil.rmtree(root / "test_sets")


def repeat_a_pool_id_across_parts(root: Path) -> None:
    first, second = _pool_parts(root)[:2]
    ids = pq.read_table(second)["ImageID"].to_pylist()
    ids[3] = pq.read_table(first)["ImageID"][5].as_py()
    _rewrite(second, "ImageID", ids)


def shorten_hawk_test_embeddings(root: Path) -> None:
    path = root / concept_test_path("Hawk")
    rows = pq.read_table(path)["embedding"].to_pylist()
    _rewrite(path, "embedding", [r[:8] for r in rows], pa.list_(pa.float32()))


def shorten_one_pool_embedding(root: Path) -> None:
    path = _pool_parts(root)[0]
    rows = pq.read_table(path)["embedding"].to_pylist()
    rows[0] = rows[0][:15]
    _rewrite(path, "embedding", rows, pa.list_(pa.float32()))


def blank_a_test_embedding(root: Path) -> None:
    path = root / concept_test_path("Sushi")
    rows = pq.read_table(path)["embedding"].to_pylist()
    rows[4] = None
    _rewrite(path, "embedding", rows, pa.list_(pa.float32()))


def put_nan_in_the_pool(root: Path) -> None:
    path = _pool_parts(root)[1]
    rows = pq.read_table(path)["embedding"].to_pylist()
    rows[2][0] = float("nan")
    _rewrite(path, "embedding", rows, pa.list_(pa.float32()))


def make_a_confidence_fractional(root: Path) -> None:
    path = root / concept_test_path("Cupcake")
    values = [float(v) for v in pq.read_table(path)["Confidence"].to_pylist()]
    values[0] = 0.5
    _rewrite(path, "Confidence", values)


def remove_the_pool(root: Path) -> None:
    shutil.rmtree(root / POOL_PATH)


def truncate_a_part_file(root: Path) -> None:
    path = _pool_parts(root)[0]
    path.write_bytes(path.read_bytes()[:100])


def drop_label_file_confidence(root: Path) -> None:
    path = root / LABELS_FILE
    lines = path.read_text(encoding="utf-8").splitlines()
    path.write_text("\n".join(",".join(line.split(",")[:3]) for line in lines) + "\n",
                    encoding="utf-8")


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        pytest.param(remove_test_sets, r"no test set parquet files \(test_sets/alpha_test_set_"
                     r"\{Concept\}_256\.parquet\) under .*data$", id="missing-test-sets"),
        pytest.param(repeat_a_pool_id_across_parts,
                     r"the pool .*train_emb_256_dataperf\.parquet lists some ImageID more than "
                     "once", id="pool-with-duplicate-ids"),
        pytest.param(shorten_hawk_test_embeddings,
                     r"alpha_test_set_Hawk_256\.parquet: embeddings have 8 dimensions; the pool "
                     "has 16", id="test-set-dims-differ-from-pool"),
        pytest.param(shorten_one_pool_embedding,
                     r"train_emb_256_dataperf\.parquet: embeddings have different lengths "
                     r"\(from 15 to 16 values\)", id="pool-rows-of-different-dims"),
        pytest.param(blank_a_test_embedding,
                     r"alpha_test_set_Sushi_256\.parquet: 1 row\(s\) have no embedding",
                     id="test-row-without-embedding"),
        pytest.param(put_nan_in_the_pool, "some embeddings have empty, NaN or infinite values",
                     id="nan-in-pool"),
        pytest.param(make_a_confidence_fractional,
                     r"alpha_test_set_Cupcake_256\.parquet: Confidence must be 0 or 1",
                     id="test-label-not-0-or-1"),
        pytest.param(remove_the_pool, r"expected one pool at .*/embeddings/\*\.parquet .*found 0",
                     id="missing-pool"),
        pytest.param(truncate_a_part_file, r"cannot read the pool .*train_emb_256_dataperf",
                     id="truncated-pool-part"),
        pytest.param(drop_label_file_confidence,
                     r"cannot read the image labels .*imagelabels\.csv \(columns ImageID, "
                     r"LabelName, Confidence\)", id="label-file-without-confidence"),
    ],
)
def test_malformed_source_gives_a_clear_error(
        tmp_path: Path, mutate: Callable[[Path], None], message: str) -> None:
    root = write_official_layout(tmp_path / "data").root
    mutate(root)
    with pytest.raises(SourceDataError, match=message):
        import_official(root, tmp_path / "official")
    assert not (tmp_path / "official").exists()


@pytest.mark.parametrize("kind", ["a-file", "missing"])
def test_source_that_is_not_a_directory_is_refused(tmp_path: Path, kind: str) -> None:
    source = tmp_path / "data.zip"
    if kind == "a-file":
        source.write_bytes(b"PK\x03\x04")
    with pytest.raises(SourceDataError,
                       match=r"data\.zip is not a directory with the original DataPerf files"):
        import_official(source, tmp_path / "official")
