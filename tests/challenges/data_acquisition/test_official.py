"""Importing the original DataPerf v0.5 data-acquisition (DAM) files.

The source files are tiny (2 markets, 3 sellers, 4 features) but in exactly the original
layout, written as the original reads them (:mod:`acquisition_layout`): no header line in any
CSV file, prices ``Lin,<price>`` with one line more than sellers, float64 features.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from acquisition_layout import AcquisitionLayout, write_acquisition_layout
from build_harness import acquisition_schemas, official_fixtures, rows_where
from dataperf.challenges.data_acquisition.official import import_official
from dataperf.editions import Edition, embedding_array
from dataperf.exceptions import SourceDataError

MARKETS = ("0", "1")
SELLERS, DIM = 3, 4


@contextmanager
def edited_json(path: Path) -> Iterator[dict]:
    """The JSON of ``path`` to change in place; written back (``json.dumps``) at the end."""
    data = json.loads(path.read_text())
    yield data
    path.write_text(json.dumps(data))


original, edition = official_fixtures(write_acquisition_layout, import_official)
rows_of = partial(rows_where, column="market")


# Round trip ------------------------------------------------------------------------------------


def test_manifest(edition: Edition) -> None:
    edition = Edition.open(edition.path)
    assert (edition.challenge, edition.name) == ("data-acquisition", "official")
    assert edition.tasks == MARKETS
    assert sorted(edition.manifest.files) == [
        "hidden/offers.parquet",
        "hidden/rows.parquet",
        "hidden/test.parquet",
        "public/buyer.parquet",
        "public/markets.parquet",
        "public/samples.parquet",
        "public/sellers.parquet",
        "public/summaries.parquet",
    ]
    parameters = edition.manifest.parameters
    assert parameters["dim"] == DIM
    assert parameters["classes"] == ["0", "1", "2"]
    assert parameters["markets"]["1"]["seller_rows"] == [10, 15, 20]


def test_schemas(edition: Edition) -> None:
    for name, schema in acquisition_schemas(pa.list_(pa.float64(), DIM)).items():
        assert edition.read_table(name).schema.equals(schema), name


@pytest.mark.parametrize("market", MARKETS)
def test_budget_prices_and_buyer(
    original: AcquisitionLayout, edition: Edition, market: str
) -> None:
    assert rows_of(edition, "public/markets.parquet", market)["budget"].to_pylist() == [
        original.budgets[market]
    ]
    sellers = rows_of(edition, "public/sellers.parquet", market)
    assert sellers["seller"].to_pylist() == list(range(SELLERS))
    assert sellers["max_price"].to_pylist() == original.prices[market]
    assert sellers["rows"].to_pylist() == [10, 15, 20]
    assert sellers["pricing"].to_pylist() == ["lin"] * SELLERS
    buyer = original.buyer[market]
    for name in ("public/buyer.parquet", "hidden/test.parquet"):
        table = rows_of(edition, name, market)
        assert np.array_equal(embedding_array(table["embedding"]), buyer[:, :-1])
        assert table["label"].to_pylist() == buyer[:, -1].astype(int).tolist()


@pytest.mark.parametrize("market", MARKETS)
def test_offers_summaries_and_samples(
    original: AcquisitionLayout, edition: Edition, market: str
) -> None:
    offers = rows_of(edition, "hidden/offers.parquet", market)
    shared = embedding_array(edition.read_table("hidden/rows.parquet")["embedding"])
    summaries = rows_of(edition, "public/summaries.parquet", market)
    samples = rows_of(edition, "public/samples.parquet", market)
    for s, rows in enumerate(original.sellers[market]):
        mine = offers.filter(pc.equal(offers["seller"], s))
        assert mine["position"].to_pylist() == list(range(len(rows)))
        assert np.array_equal(shared[mine["row"].to_numpy()], rows[:, :-1])
        assert mine["label"].to_pylist() == rows[:, -1].astype(int).tolist()
        summary = summaries.filter(pc.equal(summaries["seller"], s))
        assert summary["feature"].to_pylist() == list(range(DIM))
        counts, edges = np.histogram(rows[:, 2], bins=10)
        assert summary["counts"][2].as_py() == counts.tolist()
        assert summary["edges"][2].as_py() == edges.tolist()
        assert summary["label_correlation"][1].as_py() == pytest.approx(
            np.corrcoef(rows[:, 1], rows[:, -1])[0, 1]
        )
        sample = samples.filter(pc.equal(samples["seller"], s))
        assert np.array_equal(
            embedding_array(sample["embedding"]), original.samples[market][s][:, :-1]
        )
        assert (
            sample["label"].to_pylist() == original.samples[market][s][:, -1].astype(int).tolist()
        )
    rows = offers["row"].to_numpy()
    assert len(np.unique(rows)) == len(rows)


def test_existing_output_needs_overwrite(original: AcquisitionLayout, edition: Edition) -> None:
    from dataperf.exceptions import EditionError

    with pytest.raises(EditionError, match="already exists"):
        import_official(original.root, edition.path)
    again = import_official(original.root, edition.path, overwrite=True)
    assert again.content_hash == edition.content_hash


def test_other_label_values_become_classes(original: AcquisitionLayout, copy: Path) -> None:
    """Labels -1, 0, 1 map to class indices in sorted order, named as written."""
    for path in copy.rglob("*.csv"):  # data, buyer and samples files
        sep = " " if path.name.endswith("samples.csv") else ","
        shifted = []
        for line in path.read_text().splitlines():
            fields = line.split(sep)
            shifted.append(sep.join([*fields[:-1], repr(float(fields[-1]) - 1.0)]))
        path.write_text("\n".join(shifted) + "\n")
    edition = import_official(copy, copy.parent / "out")
    assert edition.manifest.parameters["classes"] == ["-1", "0", "1"]
    labels = rows_of(edition, "public/buyer.parquet", "0")["label"].to_pylist()
    assert labels == original.buyer["0"][:, -1].astype(int).tolist()


def test_cli_import(original: AcquisitionLayout, tmp_path: Path) -> None:
    from dataperf import registry

    if "data-acquisition" not in registry.challenges():
        pytest.skip("the data-acquisition entry point is not installed")
    from official_layout import dataperf

    result = dataperf(
        "data",
        "import",
        "data-acquisition",
        original.root,
        "--out",
        tmp_path / "official",
        home=tmp_path / "home",
    )
    assert result.returncode == 0, result
    assert "with tasks 0, 1" in result.out


# Errors ----------------------------------------------------------------------------------------


@pytest.fixture
def copy(original: AcquisitionLayout, tmp_path: Path) -> Path:
    return Path(shutil.copytree(original.root, tmp_path / "copy"))


def _fails(copy: Path, message: str) -> None:
    with pytest.raises(SourceDataError, match=message):
        import_official(copy, copy.parent / "out")
    assert not (copy.parent / "out").exists()


def test_not_a_directory(tmp_path: Path) -> None:
    with pytest.raises(SourceDataError, match="is not a directory"):
        import_official(tmp_path / "nothing", tmp_path / "out")


def test_missing_features_folder(copy: Path) -> None:
    shutil.rmtree(copy / "features")
    _fails(copy, r"features is missing: expected marketinfo/<market>/")


def test_no_markets(copy: Path) -> None:
    for market in MARKETS:
        shutil.rmtree(copy / "marketinfo" / market)
    _fails(copy, "no markets under .*marketinfo: expected folders 0, 1")


@pytest.mark.parametrize(
    ("relative", "message"),
    [
        ("marketinfo/1/price/budget.txt", r"1/price/budget\.txt is missing"),
        ("marketinfo/0/data_buyer/20.csv", r"0/data_buyer/20\.csv is missing"),
        ("marketinfo/0/summary/2.csv.json", r"2\.csv\.json is missing \(the summary of seller 2"),
        ("marketinfo/0/summary/1.csvsamples.csv", r"is missing \(the samples of seller 1\)"),
        ("features/1/0.csv", r"features/1/0\.csv is missing \(the data of seller 0\)"),
    ],
)
def test_missing_file(copy: Path, relative: str, message: str) -> None:
    (copy / relative).unlink()
    _fails(copy, message)


def test_budget_must_be_one_number(copy: Path) -> None:
    (copy / "marketinfo/0/price/budget.txt").write_text("100\n200\n")
    _fails(copy, r"budget\.txt must hold one number \(the budget\); it has 2")
    (copy / "marketinfo/0/price/budget.txt").write_text("lots\n")
    _fails(copy, r"budget\.txt: 'lots' is not a number")


def test_prices_must_be_linear(copy: Path) -> None:
    path = copy / "marketinfo/1/price/price.txt"
    lines = path.read_text().splitlines()
    lines[1] = "exp,30"
    path.write_text("\n".join(lines) + "\n")
    _fails(
        copy,
        r"price\.txt, line 2: expected Lin,<price> \(linear pricing, the only one the "
        r"original evaluator applies; lin in any case\), got 'exp,30'",
    )


def test_the_pricing_word_in_any_case(original: AcquisitionLayout, copy: Path) -> None:
    # The original's files read "Lin"; its price function ignores the word.
    path = copy / "marketinfo/0/price/price.txt"
    words = ["lin", "LIN", " Lin "]
    lines = [f"{w},{p}" for w, p in zip(words, original.prices["0"], strict=True)]
    path.write_text("\n".join(lines) + "\n")
    edition = import_official(copy, copy.parent / "out")
    sellers = rows_of(edition, "public/sellers.parquet", "0")
    assert sellers["max_price"].to_pylist() == original.prices["0"]


def test_price_lines_after_the_last_seller_are_not_read(original: AcquisitionLayout) -> None:
    # The fixture's price.txt has a line more than sellers, as the original repository's.
    lines = (original.root / "marketinfo/0/price/price.txt").read_text().splitlines()
    assert len(lines) == SELLERS + 1


def test_one_price_per_seller(copy: Path) -> None:
    path = copy / "marketinfo/1/price/price.txt"
    path.write_text("\n".join(path.read_text().splitlines()[:2]) + "\n")
    _fails(copy, r"has 2 price line\(s\) but .*sellerid\.txt lists 3 seller\(s\)")


def test_every_line_of_a_seller_file_is_a_row(
    original: AcquisitionLayout, edition: Edition
) -> None:
    # The original reads features/<m>/<id>.csv with read_csv(header=None): no header line.
    offers = rows_of(edition, "hidden/offers.parquet", "1")
    mine = offers.filter(pc.equal(offers["seller"], 0))
    first = mine.filter(pc.equal(mine["position"], 0))
    shared = embedding_array(edition.read_table("hidden/rows.parquet")["embedding"])
    assert np.array_equal(shared[first["row"][0].as_py()], original.sellers["1"][0][0, :-1])


@pytest.mark.parametrize("relative", ["features/0/1.csv", "marketinfo/1/data_buyer/20.csv"])
def test_a_header_line_is_refused(copy: Path, relative: str) -> None:
    path = copy / relative
    names = ",".join([*(f"f{j}" for j in range(DIM)), "label"])
    path.write_text(names + "\n" + path.read_text())
    _fails(copy, r"line 1 is not numbers; the original files have no header line")


def test_seller_ids_must_be_0_to_s_minus_1(copy: Path) -> None:
    (copy / "marketinfo/0/sellerid.txt").write_text("0.0\n1.0\n5.0\n")
    _fails(copy, r"sellerid\.txt must list the seller IDs 0, 1, \.\.\., S-1 .*got 0\.0, 1\.0, 5\.0")


def test_ragged_rows(copy: Path) -> None:
    path = copy / "features/0/1.csv"
    lines = path.read_text().splitlines()
    lines[3] = ",".join(lines[3].split(",")[:-1])
    path.write_text("\n".join(lines) + "\n")
    _fails(copy, r"cannot read .*features/0/1\.csv: .*columns")


def test_wrong_number_of_columns(copy: Path) -> None:
    path = copy / "marketinfo/1/summary/0.csvsamples.csv"
    rows = np.loadtxt(path)
    np.savetxt(path, rows[:, 1:], delimiter=" ")
    _fails(copy, r"0\.csvsamples\.csv: rows have 4 columns, the buyer's rows .* 5")


def test_not_numbers(copy: Path) -> None:
    path = copy / "marketinfo/0/data_buyer/20.csv"
    lines = path.read_text().splitlines()
    lines[2] = "x," + ",".join(lines[2].split(",")[1:])
    path.write_text("\n".join(lines) + "\n")
    _fails(copy, r"20\.csv: column 1 holds values that are not numbers")


def test_summary_row_number_must_match(copy: Path) -> None:
    with edited_json(copy / "marketinfo/1/summary/2.csv.json") as summary:
        summary["row_number"] = 99
    _fails(copy, r"2\.csv\.json: row_number is 99 but the seller's data has 20 rows")


def test_summary_column_number_must_match(copy: Path) -> None:
    with edited_json(copy / "marketinfo/1/summary/2.csv.json") as summary:
        summary["column_number"] = 3
    _fails(copy, r"column_number is 3 but the rows have 5 columns")


def test_histogram_must_count_every_row(copy: Path) -> None:
    with edited_json(copy / "marketinfo/0/summary/1.csv.json") as summary:
        summary["hist"]["3"]["0_size"] += 1
    _fails(copy, r"1\.csv\.json: the histogram of feature 3 counts 16 rows but the seller has 15")


def test_histogram_needs_its_edges(copy: Path) -> None:
    with edited_json(copy / "marketinfo/0/summary/1.csv.json") as summary:
        del summary["hist"]["2"]["10_range"]
    _fails(copy, r"histogram of feature 2 needs 0_size\.\.B-1_size and 0_range\.\.B_range")


def test_summary_needs_every_feature(copy: Path) -> None:
    with edited_json(copy / "marketinfo/0/summary/0.csv.json") as summary:
        del summary["label_correlation"]["1"]
    _fails(copy, r"label_correlation must have one entry per feature \(4\), found 3")


def test_summary_must_be_json(copy: Path) -> None:
    (copy / "marketinfo/0/summary/0.csv.json").write_text("{not json")
    _fails(copy, r"0\.csv\.json is not valid JSON")


def test_nan_correlation_becomes_zero(copy: Path) -> None:
    # json writes NaN, as the original's json.dump did
    with edited_json(copy / "marketinfo/0/summary/0.csv.json") as summary:
        summary["label_correlation"]["0"] = float("nan")
    edition = import_official(copy, copy.parent / "out")
    table = rows_of(edition, "public/summaries.parquet", "0")
    assert table["label_correlation"][0].as_py() == 0.0


def test_markets_need_the_same_features(copy: Path) -> None:
    path = copy / "marketinfo/1/data_buyer/20.csv"
    rows = np.loadtxt(path, delimiter=",")
    np.savetxt(path, rows[:, 1:], delimiter=",")
    _fails(copy, r"1/0\.csv: rows have 5 columns, the buyer's rows .* 4")
