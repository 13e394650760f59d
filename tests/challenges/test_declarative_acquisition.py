"""An organizer creates an acquisition market from their own tables and a YAML file, no Python.

The organizer guide's example (UCI wine, shipped with scikit-learn) runs as the guide says,
through the real ``dataperf`` command: its Python block writes the buyer's, the test and three
sellers' CSV files, its YAML block is the challenge file, and every line of its shell block runs
(``data create``, ``show``, ``run`` with a built-in strategy, ``evaluate``). The guide's broken
file must print exactly the report the guide shows; other broken files are refused in-process,
each with its message, nothing written.
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
import pytest
import yaml

from dataperf.algorithms.acquisition import seller_statistics
from dataperf.editions import Edition, embedding_array, sha256_file
from dataperf.exceptions import SourceDataError, SpecError
from dataperf.kinds.acquisition import AcquisitionChallenge
from guide_sections import assert_refused_as_shown, section_blocks, write_section_files
from official_layout import dataperf
from test_docs import prompt_lines, run

SECTION = "## An acquisition market from your own data"
NAME = "wine-market"
FEATURES = ["alcohol", "malic_acid", "ash", "flavanoids", "color_intensity", "hue"]
CLASSES = ["class_0", "class_1", "class_2"]


@pytest.fixture(scope="module")
def guide_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("wine")
    write_section_files(SECTION, directory, NAME)
    return directory


def read_csv(path: Path) -> pa.Table:
    return pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(
        column_types={"id": pa.string(), "cultivar": pa.string()}))


# The guide's example, as the guide runs it --------------------------------------------------


@pytest.mark.slow
def test_the_guide_example_runs(guide_dir: Path, tmp_path: Path) -> None:
    cwd = tmp_path / "organizer"
    shutil.copytree(guide_dir, cwd)
    home = tmp_path / "home"
    lines = prompt_lines(section_blocks(SECTION)["shell"])
    assert [line.split()[1] for line in lines] == ["data", "show", "run", "evaluate"]
    outputs = [run(line.split(), cwd, home).stdout for line in lines]
    assert f"created challenge {NAME} (edition organizer, tasks restaurant)" in outputs[0]
    assert "logistic_regression" in outputs[1]
    assert "UCI Machine Learning Repository" in outputs[1]
    assert [p.name for p in (cwd / "wine-uniform").iterdir()] == ["restaurant.txt"]
    assert "mean" in outputs[3]
    for strategy in ("uniform", "sample-value"):
        folder = cwd / f"wine-{strategy}"
        if strategy != "uniform":
            ran = dataperf("run", NAME, "--edition", "organizer", "--algorithm", strategy,
                           "--out", folder, home=home)
            assert ran.returncode == 0, ran
        scored = dataperf("evaluate", NAME, folder, "--edition", "organizer", "--json",
                          home=home)
        assert scored.returncode == 0, scored
        (task,) = json.loads(scored.stdout)["tasks"]
        assert task["task"] == "restaurant"
        assert task["details"]["cost"] <= 50
        assert task["details"]["test_rows"] == 58
        assert 0.5 < task["details"]["accuracy"] <= 1, "three cultivars: chance is 1/3"
        assert task["ci_low"] <= task["value"] <= task["ci_high"]


def test_the_guide_shows_the_report_of_its_broken_file(guide_dir: Path, tmp_path: Path) -> None:
    """A typo in draws, label histograms, two sellers without a price, the test set pointing
    at a seller's file, a misnamed label column, a blank licence: all reported at once."""
    cwd = tmp_path / "organizer"
    shutil.copytree(guide_dir, cwd)
    spec = yaml.safe_load(section_blocks(SECTION)["yml"])
    spec["draw"] = spec.pop("draws")
    spec["data"]["summaries"]["label_histograms"] = True
    market = spec["data"]["markets"][0]
    del market["price_per_row"], market["sellers"][1]["price"]
    market["test"]["path"] = "wine-lab-a.csv"
    market["sellers"][2]["label"] = "grape"
    spec["sources"][0]["licence"] = ""
    assert_refused_as_shown(SECTION, spec, cwd, NAME, tmp_path / "home")


# What the edition holds --------------------------------------------------------------------


@pytest.fixture(scope="module")
def wine_edition(guide_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Edition:
    from dataperf.challenges.declarative import create_from_file

    return create_from_file(guide_dir / f"{NAME}.yaml",
                            out_dir=tmp_path_factory.mktemp("edition") / "organizer")


def test_the_edition_has_the_kinds_layout(wine_edition: Edition, guide_dir: Path) -> None:
    edition = wine_edition
    assert edition.tasks == ("restaurant",)
    assert sorted(edition.manifest.files) == [
        "hidden/offers.parquet", "hidden/rows.parquet", "hidden/test.parquet",
        "public/buyer.parquet", "public/markets.parquet", "public/samples.parquet",
        "public/sellers.parquet", "public/summaries.parquet"]
    assert edition.read_table("public/markets.parquet").to_pylist() == [
        {"market": "restaurant", "budget": 50.0}]
    labs = [read_csv(guide_dir / f"wine-lab-{lab}.csv") for lab in "abc"]
    sellers = edition.read_table("public/sellers.parquet").to_pylist()
    assert [(s["seller"], s["rows"], s["max_price"], s["pricing"]) for s in sellers] == [
        (0, 40, 60.0, "lin"), (1, 40, 20.0, "lin"), (2, labs[2].num_rows,
                                                     float(labs[2].num_rows), "lin")]
    offers = edition.read_table("hidden/offers.parquet")
    shared = embedding_array(edition.read_table("hidden/rows.parquet")["embedding"])
    summaries = edition.read_table("public/summaries.parquet")
    samples = edition.read_table("public/samples.parquet")
    for s, lab in enumerate(labs):
        x = np.stack([lab[f].to_numpy() for f in FEATURES], axis=1)
        y = np.array([CLASSES.index(v) for v in lab["cultivar"].to_pylist()])
        mine = offers.filter(pc.equal(offers["seller"], s))
        assert mine["position"].to_pylist() == list(range(lab.num_rows))
        assert mine["label"].to_pylist() == y.tolist()
        rows = mine["row"].to_numpy()
        assert np.allclose(shared[rows], x.astype(np.float32))
        counts, edges, correlation = seller_statistics(x.astype(np.float32), y, 10)
        summary = summaries.filter(pc.equal(summaries["seller"], s))
        assert summary["feature"].to_pylist() == list(range(len(FEATURES)))
        assert summary["counts"].to_pylist() == counts.tolist()
        assert np.allclose(summary["label_correlation"].to_numpy(), correlation)
        assert np.allclose(np.array(summary["edges"].to_pylist()), edges)
        sampled = samples.filter(pc.equal(samples["seller"], s))
        assert sampled.num_rows == 3
        assert set(sampled["id"].to_pylist()) <= set(lab["id"].to_pylist())
    test_ids = set(edition.read_table("hidden/test.parquet")["id"].to_pylist())
    public = set(edition.read_table("public/buyer.parquet")["id"].to_pylist())
    assert len(test_ids) == 58
    assert not test_ids & public
    manifest = edition.manifest
    assert manifest.spec is not None
    assert manifest.spec["kind"] == "acquisition"
    assert manifest.sources[0].licence == "CC BY 4.0"
    assert manifest.parameters["summaries"] == {"bins": 10, "samples": 3, "seed": 0}
    assert manifest.parameters["files"]["wine-test.csv"] == sha256_file(
        guide_dir / "wine-test.csv")


def test_the_challenge_reads_the_edition(wine_edition: Edition) -> None:
    assert wine_edition.manifest.spec is not None
    challenge = AcquisitionChallenge.from_mapping(wine_edition.manifest.spec, origin="test")
    task = challenge.acquisition_task(wine_edition, "restaurant")
    assert task.budget == 50.0
    assert [s.rows for s in task.sellers][:2] == [40, 40]
    assert task.x_buyer.shape == (12, len(FEATURES))
    assert task.n_classes == 3


# Broken files --------------------------------------------------------------------------------


def _spec(change: Callable[[dict[str, Any]], None]) -> Callable[[dict, Path], None]:
    def breaks(spec: dict[str, Any], directory: Path) -> None:
        change(spec)
    return breaks


def _market(change: Callable[[dict[str, Any]], None]) -> Callable[[dict, Path], None]:
    return _spec(lambda s: change(s["data"]["markets"][0]))


def _edit(name: str, column: str, at: int, value: Any) -> Callable[[dict, Path], None]:
    def breaks(spec: dict[str, Any], directory: Path) -> None:
        columns = read_csv(directory / name).to_pydict()
        if isinstance(value, str):
            columns[column] = [None if v is None else str(v) for v in columns[column]]
        columns[column][at] = value
        pacsv.write_csv(pa.table(columns), directory / name)
    return breaks


def _second_market(spec: dict[str, Any], directory: Path) -> None:
    spec["data"]["markets"].append(dict(spec["data"]["markets"][0]))


def _other_dimension(spec: dict[str, Any], directory: Path) -> None:
    spec["data"]["markets"][0]["sellers"][0]["features"] = FEATURES[:3]


def _test_row_for_sale(spec: dict[str, Any], directory: Path) -> None:
    first = read_csv(directory / "wine-test.csv")["id"][0].as_py()
    _edit("wine-lab-b.csv", "id", 4, first)(spec, directory)


BROKEN: dict[str, tuple[Callable[[dict, Path], None], type[Exception], list[str]]] = {
    "unknown-spec-key": (_spec(lambda s: s.update(budget=50)), SpecError,
                         ["budget: Extra inputs are not permitted"]),
    "unknown-market-key": (_market(lambda m: m.update(buget=10)), SpecError,
                           ["data.markets.0.buget: Extra inputs are not permitted"]),
    "another-model": (_spec(lambda s: s.update(model={"name": "svm"})), SpecError,
                      ["model.name: Input should be 'logistic_regression'"]),
    "row-counts-hidden": (_spec(lambda s: s["data"]["summaries"].update(row_counts=False)),
                          SpecError, ["data.summaries.row_counts: a seller's row count is "
                                      "always public"]),
    "one-bin": (_spec(lambda s: s["data"]["summaries"].update(bins=1)), SpecError,
                ["data.summaries.bins: Input should be greater than or equal to 2"]),
    "no-budget": (_market(lambda m: m.pop("budget")), SpecError,
                  ["data.markets.0.budget: Field required"]),
    "negative-price": (_market(lambda m: m["sellers"][0].update(price=-1)), SpecError,
                       ["data.markets.0.sellers.0.price: Input should be greater than or "
                        "equal to 0"]),
    "no-sellers": (_market(lambda m: m.update(sellers=[])), SpecError,
                   ["data.markets.0.sellers: List should have at least 1 item"]),
    "market-name-twice": (_second_market, SpecError,
                          ["data.markets: market names 'restaurant' are given twice"]),
    "bad-market-name": (_market(lambda m: m.update(name="the restaurant")), SourceDataError,
                        ["data.markets: market names 'the restaurant' must be letters"]),
    "installed-name": (_spec(lambda s: s.update(name="data-acquisition")), SpecError,
                       ["name: 'data-acquisition' is taken by an installed challenge"]),
    "no-sources": (_spec(lambda s: s.pop("sources")), SpecError,
                   ["sources: list the data's sources"]),
    "missing-file": (_market(lambda m: m["buyer"].update(path="buyer-2024.csv")),
                     SourceDataError, ["buyer-2024.csv: cannot be read"]),
    "label-outside-classes": (_edit("wine-lab-a.csv", "cultivar", 0, "nebbiolo"),
                              SourceDataError, ["wine-lab-a.csv: column 'cultivar' has values "
                                                "'nebbiolo' that are not among the classes"]),
    "text-feature": (_edit("wine-buyer.csv", "hue", 1, "pale"), SourceDataError,
                     ["wine-buyer.csv: feature column 'hue' must hold numbers, not string"]),
    "empty-id": (_edit("wine-lab-b.csv", "id", 2, None), SourceDataError,
                 ["wine-lab-b.csv: column 'id' has 1 empty value(s)"]),
    "id-twice": (_edit("wine-lab-a.csv", "id", 1, "w999"), SourceDataError, []),
    "dimensions-differ": (_other_dimension, SourceDataError,
                          ["the vectors must have one dimension in every table"]),
    "test-row-for-sale": (_test_row_for_sale, SourceDataError,
                          ["wine-test.csv: 1 test ID(s) of market restaurant are also buyer or "
                           "seller rows"]),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_broken_files_are_refused_before_writing(
        case: str, guide_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dataperf.challenges.declarative import create_from_file

    breaks, error, fragments = BROKEN[case]
    home = tmp_path / "home"
    monkeypatch.setenv("DATAPERF_HOME", str(home))
    directory = tmp_path / "organizer"
    shutil.copytree(guide_dir, directory)
    spec = yaml.safe_load((directory / f"{NAME}.yaml").read_text(encoding="utf-8"))
    if case == "id-twice":  # two rows of one seller with one ID
        _edit("wine-lab-a.csv", "id", 0, "w999")(spec, directory)
        fragments = ["wine-lab-a.csv: 1 ID(s) appear more than once ('w999')"]
    breaks(spec, directory)
    path = directory / f"{NAME}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    with pytest.raises(error) as caught:
        create_from_file(path)
    message = str(caught.value)
    assert message.startswith(f"{NAME}.yaml: "), message
    assert "nothing was written" in message
    for fragment in fragments:
        assert fragment in message, message
    assert not home.exists() or not any(home.rglob("*"))


def test_summaries_without_sample_rows(guide_dir: Path, tmp_path: Path) -> None:
    """``samples: 0`` publishes no sample rows; ``bins`` sets the histograms; every built-in
    strategy still runs and is scored."""
    from dataperf.challenges.declarative import create_from_file

    spec = yaml.safe_load((guide_dir / f"{NAME}.yaml").read_text(encoding="utf-8"))
    spec["data"]["summaries"] = {"samples": 0, "bins": 4}
    directory = tmp_path / "organizer"
    shutil.copytree(guide_dir, directory)
    path = directory / f"{NAME}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    edition = create_from_file(path, out_dir=tmp_path / "edition")
    assert edition.read_table("public/samples.parquet").num_rows == 0
    counts = edition.read_table("public/summaries.parquet")["counts"].to_pylist()
    assert {len(c) for c in counts} == {4}
    assert edition.manifest.spec is not None
    challenge = AcquisitionChallenge.from_mapping(edition.manifest.spec, origin="test")
    for strategy in challenge.algorithms():
        files = challenge.run_algorithm(strategy, edition)
        score = challenge.score(challenge.parse_submission(files, edition), edition)
        assert 0 < score.tasks[0].value <= 1, strategy
