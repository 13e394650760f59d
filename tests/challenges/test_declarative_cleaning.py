"""An organizer creates a cleaning challenge from their own tables and a YAML file, no Python.

The organizer guide's example (UCI handwritten digits, shipped with scikit-learn) runs as the
guide says, through the real ``dataperf`` command: its Python block writes the files, its YAML
block is the challenge file, and every line of its shell block runs (``data create``, ``show``,
``run`` with a built-in cleaning algorithm, ``evaluate``). The guide's example of a broken file
must print exactly the report the guide shows. Other broken files (made from the UCI wine
data, as CSV feature columns) are refused in-process, each with its message, nothing written.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
import yaml

from dataperf.editions import Edition, embedding_array, sha256_file
from dataperf.exceptions import SourceDataError, SpecError
from dataperf.kinds.cleaning import CleaningChallenge
from guide_sections import assert_refused_as_shown, section_blocks, write_section_files
from official_layout import dataperf
from test_docs import prompt_lines, run

SECTION = "## A cleaning challenge from your own data"
NAME = "digits-cleaning"


@pytest.fixture(scope="module")
def guide_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("digits")
    write_section_files(SECTION, directory, NAME)
    return directory


# The guide's example, as the guide runs it --------------------------------------------------


@pytest.mark.slow
def test_the_guide_example_runs(guide_dir: Path, tmp_path: Path) -> None:
    cwd = tmp_path / "organizer"
    shutil.copytree(guide_dir, cwd)
    home = tmp_path / "home"
    lines = prompt_lines(section_blocks(SECTION)["shell"])
    assert [line.split()[:2] for line in lines] == [["dataperf", "data"], ["dataperf", "show"],
                                                    ["dataperf", "run"],
                                                    ["dataperf", "evaluate"]]
    outputs = [run(line.split(), cwd, home).stdout for line in lines]
    assert f"created challenge {NAME} (edition organizer, tasks 1-or-7, 3-or-8)" in outputs[0]
    assert "debug_linear" in outputs[1]
    assert "UCI Machine Learning Repository" in outputs[1]
    assert sorted(p.name for p in (cwd / "digits-knn").iterdir()) == ["1-or-7.txt",
                                                                      "3-or-8.txt"]
    assert "mean" in outputs[3]
    scored = dataperf("evaluate", NAME, cwd / "digits-knn", "--edition", "organizer",
                      "--json", home=home)
    assert scored.returncode == 0, scored
    score = json.loads(scored.stdout)
    assert [t["task"] for t in score["tasks"]] == ["1-or-7", "3-or-8"]
    for task in score["tasks"]:
        assert task["details"]["train_rows"] == 200
        assert task["details"]["wrong_labels"] == 60
        assert 0 <= task["ci_low"] <= task["value"] <= task["ci_high"] <= 1
        # k-NN Shapley values find the wrong labels: far fewer fixes than a random order
        # (about 0.4 and 0.7 of the rows here)
        assert task["value"] < 0.3, task


def test_the_guide_shows_the_report_of_its_broken_file(guide_dir: Path, tmp_path: Path) -> None:
    """The guide's broken file: a typo in target, checkpoints, another model, the true labels'
    column misnamed, no licence; all five reported at once, nothing written."""
    cwd = tmp_path / "organizer"
    shutil.copytree(guide_dir, cwd)
    spec = yaml.safe_load(section_blocks(SECTION)["yml"])
    spec["taget"] = spec.pop("target")
    spec["checkpoints"] = [10, 50, 100]
    spec["model"] = {"name": "logistic_regression"}
    spec["data"]["train"]["true_label"] = "truth"
    del spec["sources"][0]["licence"]
    assert_refused_as_shown(SECTION, spec, cwd, NAME, tmp_path / "home")


# What the edition holds --------------------------------------------------------------------


@pytest.fixture(scope="module")
def digits_edition(guide_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Edition:
    from dataperf.challenges.declarative import create_from_file

    return create_from_file(guide_dir / f"{NAME}.yaml",
                            out_dir=tmp_path_factory.mktemp("edition") / "organizer")


def test_the_edition_has_the_kinds_layout(digits_edition: Edition, guide_dir: Path) -> None:
    edition = digits_edition
    assert edition.tasks == ("1-or-7", "3-or-8")
    assert sorted(edition.manifest.files) == [
        "hidden/test.parquet", "hidden/truth.parquet", "public/train.parquet",
        "public/validation.parquet"]
    source = pq.read_table(guide_dir / "digits-train.parquet")
    train = edition.read_table("public/train.parquet")
    truth = edition.read_table("hidden/truth.parquet")
    for task in edition.tasks:
        mine = source.filter(pc.equal(source["task"], task))
        rows = train.filter(pc.equal(train["task"], task))
        assert rows["index"].to_pylist() == list(range(200))
        assert rows["id"].to_pylist() == mine["digit"].to_pylist(), "the file's order"
        assert rows["label"].to_pylist() == mine["label"].to_pylist()
        assert np.array_equal(embedding_array(rows["embedding"]),
                              embedding_array(mine["pixels"]))
        hidden = truth.filter(pc.equal(truth["task"], task))
        assert hidden["label"].to_pylist() == mine["true_label"].to_pylist()
    assert "true_label" not in train.column_names
    assert train.schema.field("label").type == pa.int8()
    test_ids = set(edition.read_table("hidden/test.parquet")["id"].to_pylist())
    assert not test_ids & set(train["id"].to_pylist())
    manifest = edition.manifest
    assert manifest.spec is not None
    assert manifest.spec["kind"] == "cleaning"
    assert manifest.spec["model"] == {"name": "debug_linear"}
    assert manifest.sources[0].licence == "CC BY 4.0"
    assert "UCI" in manifest.sources[0].origin
    assert manifest.parameters["rows"]["3-or-8"]["train"] == 200
    assert manifest.parameters["rows"]["3-or-8"]["validation"] == 40
    assert manifest.parameters["files"]["test"] == {
        "path": "digits-test.parquet", "sha256": sha256_file(guide_dir / "digits-test.parquet")}


def test_the_challenge_reads_the_edition(digits_edition: Edition) -> None:
    assert digits_edition.manifest.spec is not None
    challenge = CleaningChallenge.from_mapping(digits_edition.manifest.spec, origin="test")
    assert challenge.train_sizes(digits_edition) == {"1-or-7": 200, "3-or-8": 200}
    task = challenge.cleaning_task(digits_edition, "3-or-8")
    assert task.x_train.shape == (200, 64)
    assert task.x_val.shape == (40, 64)
    noisy = task.noisy_labels
    truth = challenge.true_labels(digits_edition, "3-or-8", 200)
    assert np.count_nonzero(noisy != truth) == 60


# Feature columns in CSV files: the UCI wine data ------------------------------------------

WINE_FEATURES = ["alcohol", "malic_acid", "ash", "magnesium", "flavanoids", "hue"]


def wine_spec() -> dict[str, Any]:
    ref = {"id": "wine", "task": "task", "features": WINE_FEATURES, "label": "cultivar"}
    return {
        "name": "wine-cleaning", "kind": "cleaning", "title": "Wine cultivars, relabelled",
        "classes": ["other", "barolo"],
        "data": {"train": {"path": "train.csv", **ref, "true_label": "true_cultivar"},
                 "validation": {"path": "validation.csv", **ref},
                 "test": {"path": "test.csv", **ref}},
        "sources": [{"name": "Wine (sklearn.datasets.load_wine)", "licence": "CC BY 4.0",
                     "origin": "M. Forina et al., UCI Machine Learning Repository"}],
    }


def write_wine(directory: Path) -> Path:
    """UCI wine (178 rows) as three CSV files, one task ("barolo": cultivar 0 or not), IDs with
    leading zeros, 20% of the training labels wrong; and ``spec.yaml``."""
    from sklearn.datasets import load_wine

    wine = load_wine(as_frame=False)
    columns = {n: wine.data[:, wine.feature_names.index(n)] for n in WINE_FEATURES}
    rng = np.random.default_rng(1)
    rows = rng.permutation(len(wine.target))
    label = np.where(wine.target == 0, "barolo", "other")
    for part, chosen in zip(["train", "validation", "test"], np.split(rows, [100, 130]),
                            strict=True):
        table = {"wine": [f"{i:05d}" for i in chosen], "task": ["barolo"] * len(chosen),
                 **{n: columns[n][chosen] for n in WINE_FEATURES},
                 "cultivar": label[chosen]}
        if part == "train":
            wrong = rng.permutation(len(chosen)) < 20
            table["true_cultivar"] = label[chosen]
            table["cultivar"] = np.where(wrong, np.where(label[chosen] == "other", "barolo",
                                                         "other"), label[chosen])
        pacsv.write_csv(pa.table(table), directory / f"{part}.csv")
    return write_spec(directory, wine_spec())


def write_spec(directory: Path, mapping: dict[str, Any]) -> Path:
    path = directory / "spec.yaml"
    path.write_text(yaml.safe_dump(mapping, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def wine_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("wine")
    write_wine(directory)
    return directory


def test_feature_columns_of_csv_files(wine_dir: Path, tmp_path: Path) -> None:
    from dataperf.challenges.declarative import create_from_file

    edition = create_from_file(wine_dir / "spec.yaml", out_dir=tmp_path / "organizer")
    assert edition.tasks == ("barolo",)
    train = edition.read_table("public/train.parquet")
    assert embedding_array(train["embedding"]).shape == (100, len(WINE_FEATURES))
    assert train["id"].to_pylist()[0].startswith("0"), "IDs stay text"
    source = pacsv.read_csv(wine_dir / "train.csv",
                            convert_options=pacsv.ConvertOptions(column_types={
                                "wine": pa.string()}))
    assert train["id"].to_pylist() == source["wine"].to_pylist()
    assert np.allclose(embedding_array(train["embedding"])[:, 0], source["alcohol"].to_numpy())
    assert train["label"].to_pylist() == [["other", "barolo"].index(v)
                                          for v in source["cultivar"].to_pylist()]


# Broken files --------------------------------------------------------------------------------


def _edit_csv(directory: Path, part: str, change: Callable[[dict[str, list]], None]) -> None:
    table = pacsv.read_csv(directory / f"{part}.csv", convert_options=pacsv.ConvertOptions(
        column_types={"wine": pa.string()}))
    columns = table.to_pydict()
    change(columns)
    pacsv.write_csv(pa.table(columns), directory / f"{part}.csv")


def _set(part: str, column: str, at: int, value: Any) -> Callable[[dict, Path], None]:
    def breaks(spec: dict[str, Any], directory: Path) -> None:
        def change(columns: dict[str, list]) -> None:
            if isinstance(value, str):  # "pale" among numbers: the column becomes text
                columns[column] = [None if v is None else str(v) for v in columns[column]]
            columns[column][at] = value
        _edit_csv(directory, part, change)
    return breaks


def _spec(change: Callable[[dict[str, Any]], None]) -> Callable[[dict, Path], None]:
    def breaks(spec: dict[str, Any], directory: Path) -> None:
        change(spec)
    return breaks


def _copy_id(source: str, target: str, at: int = 0) -> Callable[[dict, Path], None]:
    def breaks(spec: dict[str, Any], directory: Path) -> None:
        first = pacsv.read_csv(directory / f"{source}.csv", convert_options=pacsv.ConvertOptions(
            column_types={"wine": pa.string()}))["wine"][0].as_py()
        _set(target, "wine", at, first)(spec, directory)
    return breaks


def _truth_all_other(spec: dict[str, Any], directory: Path) -> None:
    def change(columns: dict[str, list]) -> None:
        columns["true_cultivar"] = ["other"] * len(columns["true_cultivar"])
        columns["cultivar"] = ["barolo"] + ["other"] * (len(columns["cultivar"]) - 1)
    _edit_csv(directory, "train", change)


def _no_wrong_label(spec: dict[str, Any], directory: Path) -> None:
    def change(columns: dict[str, list]) -> None:
        columns["cultivar"] = list(columns["true_cultivar"])
    _edit_csv(directory, "train", change)


def _keep_rows(part: str, count: int) -> Callable[[dict, Path], None]:
    def breaks(spec: dict[str, Any], directory: Path) -> None:
        def change(columns: dict[str, list]) -> None:
            for name in columns:
                columns[name] = columns[name][:count]
        _edit_csv(directory, part, change)
    return breaks


def _fewer_test_features(spec: dict[str, Any], directory: Path) -> None:
    spec["data"]["test"]["features"] = WINE_FEATURES[:4]


BROKEN: dict[str, tuple[Callable[[dict, Path], None], type[Exception], list[str]]] = {
    "unknown-spec-key": (_spec(lambda s: s.update(traget=0.9)), SpecError,
                         ["traget: Extra inputs are not permitted"]),
    "unknown-data-key": (_spec(lambda s: s["data"]["train"].update(lable="x")), SpecError,
                         ["data.train.lable: Extra inputs are not permitted"]),
    "embedding-and-features": (_spec(lambda s: s["data"]["test"].update(embedding="v")),
                               SpecError, ["give either embedding (one list column) or "
                                           "features (numeric columns), not both"]),
    "three-classes": (_spec(lambda s: s.update(classes=["a", "b", "c"])), SpecError,
                      ["classes: the frozen model (debug_linear) tells two classes apart; "
                       "give exactly two, not 3"]),
    "model-parameters": (_spec(lambda s: s.update(model={"name": "debug_linear",
                                                         "params": {"epochs": 5}})),
                         SpecError, ["model.params: Extra inputs are not permitted"]),
    "installed-name": (_spec(lambda s: s.update(name="vision-cleaning")), SpecError,
                       ["name: 'vision-cleaning' is taken by an installed challenge"]),
    "no-data": (_spec(lambda s: s.pop("data")), SpecError,
                ["data: name the train, validation and test tables"]),
    "no-sources": (_spec(lambda s: s.pop("sources")), SpecError,
                   ["sources: list the data's sources, each with a name, a licence"]),
    "blank-licence": (_spec(lambda s: s["sources"][0].update(licence=" ")), SpecError,
                      ["sources.0: licence must not be blank"]),
    "missing-file": (_spec(lambda s: s["data"]["test"].update(path="test-2024.csv")),
                     SourceDataError, ["test-2024.csv: cannot be read", "No such file"]),
    "not-csv-or-parquet": (_spec(lambda s: s["data"]["test"].update(path="spec.yaml")),
                           SourceDataError, ["spec.yaml: must be a .csv or .parquet file"]),
    "missing-columns": (_spec(lambda s: s["data"]["validation"].update(
        features=["alcohol", "colour"], label="grape")), SourceDataError,
        ["validation.csv: has no column 'colour', 'grape' (columns: wine, task, alcohol"]),
    "text-feature": (_set("train", "hue", 3, "pale"), SourceDataError,
                     ["train.csv: feature column 'hue' must hold numbers, not string"]),
    "empty-id": (_set("test", "wine", 2, None), SourceDataError,
                 ["test.csv: column 'wine' has 1 empty value(s)"]),
    "label-outside-classes": (_set("train", "true_cultivar", 5, "grignolino"),
                              SourceDataError, ["train.csv: column 'true_cultivar' has values "
                                                "'grignolino' that are not among the classes "
                                                "['other', 'barolo']"]),
    "bad-task-name": (_set("test", "task", 0, "bar olo"), SourceDataError,
                      ["test.csv: task names 'bar olo' must be letters, digits"]),
    "task-without-validation": (_set("train", "task", 0, "nebbiolo"), SourceDataError,
                                ["validation.csv: tasks 'nebbiolo' have no validation rows",
                                 "test.csv: tasks 'nebbiolo' have no test rows",
                                 "train.csv: tasks 'nebbiolo (1)' have fewer than 10 training"]),
    "task-without-training": (_set("validation", "task", 0, "nebbiolo"), SourceDataError,
                              ["validation.csv: tasks 'nebbiolo' have no training rows"]),
    "tasks-differing-in-case": (_set("train", "task", 0, "Barolo"), SourceDataError,
                                ["train.csv: task names ['Barolo', 'barolo'] differ only in "
                                 "upper/lower case"]),
    "dimensions-differ": (_fewer_test_features, SourceDataError,
                          ["the vectors must have one dimension in every table; they have 6 "
                           "in train.csv, 6 in validation.csv, 4 in test.csv"]),
    "id-twice-in-a-task": (_copy_id("train", "train", at=1), SourceDataError,
                           ["train.csv: 1 ID(s) appear more than once in one task"]),
    "test-id-is-public": (_copy_id("train", "test"), SourceDataError,
                          ["test.csv: 1 test ID(s) are also in train.csv or validation.csv"]),
    "training-row-is-validation-row": (_copy_id("train", "validation"), SourceDataError,
                                       ["validation.csv: 1 row(s) are both training and "
                                        "validation rows of a task"]),
    "too-few-training-rows": (_keep_rows("train", 8), SourceDataError,
                              ["train.csv: tasks 'barolo (8)' have fewer than 10 training"]),
    "one-test-row": (_keep_rows("test", 1), SourceDataError,
                     ["test.csv: tasks 'barolo (1)' have fewer than 2 rows"]),
    "true-labels-of-one-class": (_truth_all_other, SourceDataError,
                                 ["the true labels of tasks 'barolo' are all of one class"]),
    "no-wrong-label": (_no_wrong_label, SourceDataError,
                       ["tasks 'barolo' have no wrong label", "nothing to clean"]),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_broken_files_are_refused_before_writing(
        case: str, wine_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dataperf.challenges.declarative import create_from_file

    breaks, error, fragments = BROKEN[case]
    home = tmp_path / "home"
    monkeypatch.setenv("DATAPERF_HOME", str(home))
    directory = tmp_path / "organizer"
    shutil.copytree(wine_dir, directory)
    spec = wine_spec()
    breaks(spec, directory)
    with pytest.raises(error) as caught:
        create_from_file(write_spec(directory, spec))
    message = str(caught.value)
    assert message.startswith("spec.yaml: "), message
    assert "nothing was written" in message
    for fragment in fragments:
        assert fragment in message, message
    assert not home.exists() or not any(home.rglob("*"))


def test_every_problem_is_reported_at_once(wine_dir: Path, tmp_path: Path) -> None:
    from dataperf.challenges.declarative import create_from_file

    directory = tmp_path / "organizer"
    shutil.copytree(wine_dir, directory)
    spec = wine_spec()
    cases = ("unknown-spec-key", "blank-licence", "text-feature", "test-id-is-public",
             "label-outside-classes", "missing-columns")
    for case in cases:
        BROKEN[case][0](spec, directory)
    with pytest.raises(SpecError) as caught:
        create_from_file(write_spec(directory, spec), out_dir=tmp_path / "edition")
    message = str(caught.value)
    assert message.startswith("spec.yaml: 6 problems; nothing was written:\n  - "), message
    for case in cases:
        assert BROKEN[case][2][0] in message
    assert not (tmp_path / "edition").exists()


def test_an_existing_edition_is_kept_unless_overwritten(wine_dir: Path, tmp_path: Path) -> None:
    from dataperf.challenges.declarative import create_from_file

    target = tmp_path / "organizer"
    first = create_from_file(wine_dir / "spec.yaml", out_dir=target)
    with pytest.raises(SourceDataError, match="already exists; pass --overwrite"):
        create_from_file(wine_dir / "spec.yaml", out_dir=target)
    again = create_from_file(wine_dir / "spec.yaml", out_dir=target, overwrite=True)
    assert again.content_hash == first.content_hash
