"""An organizer creates a challenge from their own files and a small YAML file, no Python.

Everything goes through the real ``dataperf`` command with ``DATAPERF_HOME`` in a temporary
directory: ``data create``, then ``list``, ``show``, ``run`` and ``evaluate`` on the new
challenge; broken files must give one clear message, exit code 2, and leave nothing behind.
"""

from __future__ import annotations

import csv
import importlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from dataperf.editions import Edition, embedding_array
from dataperf.exceptions import SourceDataError, SpecError
from official_layout import CliResult, dataperf, finish, start_dataperf

try:
    importlib.import_module("dataperf.algorithms.selection")
except Exception as error:  # written in parallel; only the run steps depend on it
    ALGORITHMS_UNAVAILABLE = f"dataperf.algorithms.selection does not import: {error!r}"
else:
    ALGORITHMS_UNAVAILABLE = ""
needs_algorithms = pytest.mark.skipif(bool(ALGORITHMS_UNAVAILABLE),
                                      reason=ALGORITHMS_UNAVAILABLE or "algorithms import")

NAME = "bird-selection"
TASKS = ("Heron", "Robin")
DIM = 8
POOL = 200
BUDGET = 40


def spec() -> dict[str, Any]:
    """The organizer's YAML file, as a mapping."""
    return {
        "name": NAME,
        "kind": "selection",
        "title": "Training data for bird detectors",
        "description": "Pick at most 40 camera-trap frames per bird and label them.",
        "classes": ["other", "bird"],
        "budget": BUDGET,
        "id_column": "image_id",
        "label_column": "label",
        "data": {
            "pool": {"path": "pool.parquet", "id": "image_id", "embedding": "emb"},
            "test": {"path": "test.parquet", "id": "image_id", "task": "concept",
                     "embedding": "emb", "label": "label"},
            "examples": {"path": "examples.csv", "id": "image_id", "task": "concept"},
            "weak_labels": {"path": "weak.csv", "id": "image_id", "task": "concept",
                            "confidence": "p"},
        },
        "sources": [{"name": "Our bird photos", "licence": "CC BY 4.0",
                     "origin": "field cameras of the organizers"}],
    }


def write_organizer_files(directory: Path, seed: int = 0) -> Path:
    """Pool, test set, examples and weak labels of two bird concepts, plus ``spec.yaml``.

    Pool IDs are digits with leading zeros ("00000042"), which CSV readers like to turn into
    numbers; the examples and weak labels must still match the pool.
    """
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    centres = np.zeros((3, DIM))  # background, heron, robin
    centres[1, 0] = centres[2, 1] = 3.0
    membership = rng.choice(3, size=POOL, p=[0.5, 0.25, 0.25])
    pool = (rng.normal(size=(POOL, DIM)) + centres[membership]).astype(np.float32)
    ids = [f"{i:08d}" for i in range(POOL)]
    pq.write_table(pa.table({"image_id": ids,
                             "emb": pa.array(list(pool), pa.list_(pa.float32()))}),
                   directory / "pool.parquet")
    test_rows = []
    for t, task in enumerate(TASKS, start=1):
        share = np.full(3, 0.3)
        share[t] = 0.4
        truth = rng.choice(3, size=40, p=share)
        x = (rng.normal(size=(len(truth), DIM)) + centres[truth]).astype(np.float32)
        test_rows += [(f"t-{task}-{k:03d}", task, x[k], "bird" if truth[k] == t else "other")
                      for k in range(len(truth))]
    pq.write_table(pa.table({
        "image_id": [r[0] for r in test_rows], "concept": [r[1] for r in test_rows],
        "emb": pa.array([r[2] for r in test_rows], pa.list_(pa.float32())),
        "label": [r[3] for r in test_rows]}), directory / "test.parquet")
    with open(directory / "examples.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["image_id", "concept"])
        for t, task in enumerate(TASKS, start=1):
            writer.writerows((ids[i], task) for i in np.flatnonzero(membership == t)[:5])
    with open(directory / "weak.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["image_id", "concept", "p"])
        for t, task in enumerate(TASKS, start=1):
            for i in range(POOL):
                right = rng.random() > 0.1
                writer.writerow([ids[i], task, 0.85 if (membership[i] == t) == right else 0.15])
    write_spec(directory, spec())
    return directory


def write_spec(directory: Path, mapping: dict[str, Any]) -> Path:
    path = directory / "spec.yaml"
    path.write_text(yaml.safe_dump(mapping, sort_keys=False), encoding="utf-8")
    return path


def nothing_under(home: Path) -> bool:
    return not home.exists() or not any(home.rglob("*"))


# A challenge created from the organizer's files ---------------------------------------------


@pytest.fixture(scope="module")
def organizer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_organizer_files(tmp_path_factory.mktemp("organizer"))


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("dataperf-home")


@pytest.fixture(scope="module")
def created(organizer: Path, home: Path) -> CliResult:
    result = dataperf("data", "create", "spec.yaml", home=home, cwd=organizer)
    assert result.returncode == 0, result
    return result


def test_create_reports_the_new_challenge(created: CliResult, home: Path) -> None:
    target = home / "editions" / NAME / "organizer"
    assert f"created challenge {NAME} (edition organizer, tasks Heron, Robin) at {target}" \
        in created.out
    assert "Traceback" not in created.stderr


def test_created_edition_holds_the_organizer_data(created: CliResult, home: Path,
                                                  organizer: Path) -> None:
    edition = Edition.open(home / "editions" / NAME / "organizer")
    assert edition.challenge == NAME
    assert edition.tasks == TASKS
    assert edition.manifest.spec is not None
    assert edition.manifest.spec["budget"] == BUDGET
    assert edition.manifest.sources[0].licence == "CC BY 4.0"
    source = pq.read_table(organizer / "pool.parquet")
    pool = edition.read_table("public/pool.parquet")
    assert pool["id"].to_pylist() == source["image_id"].to_pylist()
    assert np.array_equal(embedding_array(pool["embedding"]), embedding_array(source["emb"]))
    test = edition.read_table("hidden/test.parquet").to_pydict()
    original = pq.read_table(organizer / "test.parquet").to_pydict()
    assert test["id"] == original["image_id"]
    assert test["label"] == [["other", "bird"].index(v) for v in original["label"]]
    pool_ids = set(pool["id"].to_pylist())
    examples = edition.read_table("public/examples.parquet").to_pydict()
    weak = edition.read_table("public/weak_labels.parquet").to_pydict()
    assert len(examples["id"]) == 10
    assert set(examples["id"]) <= pool_ids, "IDs with leading zeros must stay text"
    assert set(weak["id"]) == pool_ids
    assert sorted(set(weak["task"])) == list(TASKS)


def test_list_shows_the_new_challenge(created: CliResult, home: Path) -> None:
    result = dataperf("list", home=home)
    assert result.returncode == 0, result
    row = next(line for line in result.stdout.splitlines() if NAME in line)
    assert "selection" in row
    assert "Training data for bird detectors" in row
    assert "organizer" in row
    assert "vision-selection" in result.stdout


def test_show_describes_the_organizer_edition(created: CliResult, home: Path) -> None:
    result = dataperf("show", NAME, "--edition", "organizer", home=home)
    assert result.returncode == 0, result
    assert f"Training data for bird detectors ({NAME}, kind selection, version 1)" in result.out
    assert "Choose at most 40 rows of the pool per task and give each a label (other or bird)" \
        in result.out
    assert "{task}.csv with header image_id,label" in result.out
    assert "tasks: Heron, Robin" in result.out
    assert "hidden/test.parquet" in result.out
    assert "source: Our bird photos (CC BY 4.0); field cameras of the organizers" in result.out


@needs_algorithms
def test_run_an_algorithm_then_evaluate_it(created: CliResult, home: Path,
                                           tmp_path: Path) -> None:
    submission = tmp_path / "random"
    ran = dataperf("run", NAME, "--algorithm", "random", "--edition", "organizer",
                   "--out", submission, home=home)
    assert ran.returncode == 0, ran
    assert f"wrote 2 file(s) to {submission}" in ran.err
    for task in TASKS:
        with open(submission / f"{task}.csv", newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
        assert rows[0] == ["image_id", "label"]
        assert 2 <= len(rows) - 1 <= BUDGET
        assert {label for _, label in rows[1:]} == {"other", "bird"}

    scored = dataperf("evaluate", NAME, submission, "--edition", "organizer", "--json",
                      home=home)
    assert scored.returncode == 0, scored
    score = json.loads(scored.stdout)
    assert (score["challenge"], score["edition"], score["profile"]) == (NAME, "organizer",
                                                                       "default")
    assert [t["task"] for t in score["tasks"]] == list(TASKS)
    for task in score["tasks"]:
        assert 0 <= task["ci_low"] <= task["value"] <= task["ci_high"] <= 100
        assert task["details"]["train_rows"] <= BUDGET
    assert score["aggregate"]["value"] == pytest.approx(
        np.mean([t["value"] for t in score["tasks"]]))
    assert score["aggregate"]["value"] > 50, "weak labels of this data are 90% right"


# Broken files ------------------------------------------------------------------------------


def _rewrite_test(directory: Path, column: str, change: Callable[[list], None]) -> None:
    table = pq.read_table(directory / "test.parquet")
    values = table[column].to_pylist()
    change(values)
    at = table.column_names.index(column)
    pq.write_table(table.set_column(at, column, pa.array(values, table.schema.field(at).type)),
                   directory / "test.parquet")


def unknown_key(s: dict[str, Any], d: Path) -> None:
    s["bugdet"] = 40


def budget_of_one(s: dict[str, Any], d: Path) -> None:
    s["budget"] = 1


def weak_confidence_column_misnamed(s: dict[str, Any], d: Path) -> None:
    s["data"]["weak_labels"]["confidence"] = "prob"


def labels_outside_classes(s: dict[str, Any], d: Path) -> None:
    def change(labels: list) -> None:
        labels[3] = labels[7] = "maybe"
    _rewrite_test(d, "label", change)


def pool_ids_in_test(s: dict[str, Any], d: Path) -> None:
    def change(ids: list) -> None:
        ids[0], ids[1] = "00000007", "00000008"
    _rewrite_test(d, "image_id", change)


def no_sources(s: dict[str, Any], d: Path) -> None:
    del s["sources"]


def missing_examples_file(s: dict[str, Any], d: Path) -> None:
    s["data"]["examples"]["path"] = "examples-2024.csv"


def name_of_an_installed_challenge(s: dict[str, Any], d: Path) -> None:
    s["name"] = "vision-selection"


def tasks_differing_in_case(s: dict[str, Any], d: Path) -> None:
    def change(tasks: list) -> None:
        tasks[0] = tasks[0].lower()
    _rewrite_test(d, "concept", change)


def ragged_pool_embeddings(s: dict[str, Any], d: Path) -> None:
    table = pq.read_table(d / "pool.parquet")
    rows = table["emb"].to_pylist()
    rows[10] = rows[10][:5]
    pq.write_table(table.set_column(1, "emb", pa.array(rows, pa.list_(pa.float32()))),
                   d / "pool.parquet")


BROKEN = {
    "unknown-key-in-spec": (unknown_key, [
        "spec.yaml is not a valid selection challenge", "bugdet",
        "Extra inputs are not permitted"]),
    "budget-below-two": (budget_of_one, [
        "spec.yaml is not a valid selection challenge", "budget",
        "Input should be greater than or equal to 2"]),
    "missing-column": (weak_confidence_column_misnamed, [
        "weak.csv has no column 'prob' (columns: image_id, concept, p)"]),
    "labels-outside-classes": (labels_outside_classes, [
        "test.parquet: labels ['maybe'] are not among the classes ['other', 'bird']"]),
    "test-ids-in-the-pool": (pool_ids_in_test, [
        "test.parquet: 2 test IDs are also in the pool; test rows must be hidden"]),
    "no-sources": (no_sources, [
        "spec.yaml: list the data's sources with their licences under 'sources'"]),
    "missing-file": (missing_examples_file, [
        "cannot read examples-2024.csv", "No such file or directory"]),
}


@pytest.fixture(scope="module")
def broken_results(organizer: Path, tmp_path_factory: pytest.TempPathFactory,
                   request: pytest.FixtureRequest) -> dict[str, tuple[CliResult, Path]]:
    """The selected broken cases, all at once (each in its own directory and home)."""
    selected = {item.callspec.params["case"] for item in request.session.items
                if item.originalname == "test_broken_files_give_a_clear_message"}
    started = {}
    for case, (breaks, _) in BROKEN.items():
        if case not in selected:
            continue
        directory = tmp_path_factory.mktemp(case)
        shutil.copytree(organizer, directory, dirs_exist_ok=True)
        mapping = spec()
        breaks(mapping, directory)
        write_spec(directory, mapping)
        home = directory / "home"
        started[case] = (start_dataperf("data", "create", "spec.yaml", home=home,
                                        cwd=directory), home)
    return {case: (finish(process), home) for case, (process, home) in started.items()}


@pytest.mark.parametrize("case", list(BROKEN))
def test_broken_files_give_a_clear_message(
        broken_results: dict[str, tuple[CliResult, Path]], case: str) -> None:
    result, home = broken_results[case]
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr
    assert result.err.startswith("error: ")
    for fragment in BROKEN[case][1]:
        assert fragment in result.err, result
    assert result.stdout == ""
    assert nothing_under(home), sorted(str(p) for p in home.rglob("*"))


# More broken files, checked in-process (the command maps these errors to exit code 2 like the
# ones above).


@pytest.mark.parametrize(
    ("breaks", "error", "message"),
    [
        pytest.param(name_of_an_installed_challenge, SpecError,
                     "spec.yaml: the name 'vision-selection' is taken by an installed challenge; "
                     "choose another name", id="name-of-an-installed-challenge"),
        pytest.param(tasks_differing_in_case, SourceDataError,
                     "test.parquet: task names ['Heron', 'Robin', 'heron'] must differ in more "
                     "than upper/lower case", id="tasks-differing-only-in-case"),
        pytest.param(ragged_pool_embeddings, SourceDataError,
                     "pool.parquet: column 'emb': embeddings have different lengths (from 5 to "
                     "8 values); every row needs the same dimension", id="ragged-pool-embeddings"),
    ],
)
def test_more_broken_files_are_refused_before_writing(
        organizer: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        breaks: Callable[[dict[str, Any], Path], None], error: type[Exception],
        message: str) -> None:
    from dataperf.challenges.declarative import create_from_file

    home = tmp_path / "home"
    monkeypatch.setenv("DATAPERF_HOME", str(home))
    directory = tmp_path / "organizer"
    shutil.copytree(organizer, directory)
    mapping = spec()
    breaks(mapping, directory)
    with pytest.raises(error) as caught:
        create_from_file(write_spec(directory, mapping))
    assert message in str(caught.value)
    assert nothing_under(home)
