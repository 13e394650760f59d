"""Importing the original DataPerf v0.5 data-acquisition (DAM) files.

The source files are tiny (2 markets, 3 sellers, 4 features) but in exactly the original
layout: ``marketinfo/<i>/{price/budget.txt, price/price.txt, sellerid.txt, data_buyer/20.csv,
summary/<id>.csv.json, summary/<id>.csvsamples.csv}`` and ``features/<i>/<id>.csv``.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from build_harness import acquisition_schemas, official_fixtures, rows_where
from dataperf.challenges.data_acquisition.official import import_official
from dataperf.editions import Edition, embedding_array
from dataperf.exceptions import SourceDataError

MARKETS = ("0", "1")
SELLERS, DIM, BUYER, SAMPLES = 3, 4, 6, 5
LABELS = (0.0, 1.0, 2.0)


@dataclass
class Original:
    root: Path
    budgets: dict[str, float] = field(default_factory=dict)
    prices: dict[str, list[float]] = field(default_factory=dict)
    buyer: dict[str, np.ndarray] = field(default_factory=dict)  # rows: features..., label
    sellers: dict[str, list[np.ndarray]] = field(default_factory=dict)
    samples: dict[str, list[np.ndarray]] = field(default_factory=dict)


def _rows(rng: np.random.Generator, n: int) -> np.ndarray:
    x = rng.normal(size=(n, DIM)).astype(np.float32).astype(np.float64)
    y = rng.choice(LABELS, size=n)
    return np.column_stack([x, y])


@contextmanager
def edited_json(path: Path) -> Iterator[dict]:
    """The JSON of ``path`` to change in place; written back (``json.dumps``) at the end."""
    data = json.loads(path.read_text())
    yield data
    path.write_text(json.dumps(data))


def _summary(rows: np.ndarray) -> dict:
    hist, correlation = {}, {}
    for j in range(DIM):
        counts, edges = np.histogram(rows[:, j], bins=10)
        hist[str(j)] = {f"{b}_size": int(c) for b, c in enumerate(counts)} | {
            f"{b}_range": float(e) for b, e in enumerate(edges)
        }
        correlation[str(j)] = float(np.corrcoef(rows[:, j], rows[:, -1])[0, 1])
    return {
        "row_number": len(rows),
        "column_number": DIM + 1,
        "hist": hist,
        "label_correlation": correlation,
    }


def write_original(root: Path) -> Original:
    rng = np.random.default_rng(11)
    original = Original(root)
    for market in MARKETS:
        info = root / "marketinfo" / market
        (info / "price").mkdir(parents=True)
        (info / "data_buyer").mkdir()
        (info / "summary").mkdir()
        (root / "features" / market).mkdir(parents=True)
        budget = float(rng.uniform(50, 150))
        prices = [float(p) for p in rng.uniform(20, 100, SELLERS)]
        original.budgets[market], original.prices[market] = budget, prices
        (info / "price" / "budget.txt").write_text(f"{budget!r}\n")
        (info / "price" / "price.txt").write_text("".join(f"lin,{p!r}\n" for p in prices))
        (info / "sellerid.txt").write_text("".join(f"{float(s)!r}\n" for s in range(SELLERS)))
        buyer = _rows(rng, BUYER)
        original.buyer[market] = buyer
        np.savetxt(info / "data_buyer" / "20.csv", buyer, delimiter=",")
        original.sellers[market], original.samples[market] = [], []
        for s in range(SELLERS):
            rows = _rows(rng, 10 + 5 * s)
            samples = rows[rng.choice(len(rows), SAMPLES, replace=False)]
            original.sellers[market].append(rows)
            original.samples[market].append(samples)
            header = ",".join([*(f"f{j}" for j in range(DIM)), "label"])
            np.savetxt(
                root / "features" / market / f"{s}.csv",
                rows,
                delimiter=",",
                header=header,
                comments="",
            )
            np.savetxt(info / "summary" / f"{s}.csvsamples.csv", samples, delimiter=" ")
            (info / "summary" / f"{s}.csv.json").write_text(json.dumps(_summary(rows)))
    return original


original, edition = official_fixtures(write_original, import_official)
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
    for name, schema in acquisition_schemas(pa.list_(pa.float32(), DIM)).items():
        assert edition.read_table(name).schema.equals(schema), name


@pytest.mark.parametrize("market", MARKETS)
def test_budget_prices_and_buyer(original: Original, edition: Edition, market: str) -> None:
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
def test_offers_summaries_and_samples(original: Original, edition: Edition, market: str) -> None:
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


def test_existing_output_needs_overwrite(original: Original, edition: Edition) -> None:
    from dataperf.exceptions import EditionError

    with pytest.raises(EditionError, match="already exists"):
        import_official(original.root, edition.path)
    again = import_official(original.root, edition.path, overwrite=True)
    assert again.content_hash == edition.content_hash


def test_other_label_values_become_classes(original: Original, copy: Path) -> None:
    """Labels -1, 0, 1 map to class indices in sorted order, named as written."""
    for path in copy.rglob("*.csv"):  # data, buyer and samples files
        lines = path.read_text().splitlines()
        header = lines[:1] if path.parent.parent.name == "features" else []
        sep = " " if path.name.endswith("samples.csv") else ","
        shifted = []
        for line in lines[len(header) :]:
            fields = line.split(sep)
            shifted.append(sep.join([*fields[:-1], repr(float(fields[-1]) - 1.0)]))
        path.write_text("\n".join(header + shifted) + "\n")
    edition = import_official(copy, copy.parent / "out")
    assert edition.manifest.parameters["classes"] == ["-1", "0", "1"]
    labels = rows_of(edition, "public/buyer.parquet", "0")["label"].to_pylist()
    assert labels == original.buyer["0"][:, -1].astype(int).tolist()


def test_cli_import(original: Original, tmp_path: Path) -> None:
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
def copy(original: Original, tmp_path: Path) -> Path:
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
    _fails(copy, r"price\.txt, line 2: expected lin,<price> .* got 'exp,30'")


def test_one_price_per_seller(copy: Path) -> None:
    path = copy / "marketinfo/1/price/price.txt"
    path.write_text("\n".join(path.read_text().splitlines()[:2]) + "\n")
    _fails(copy, r"has 2 price line\(s\) but .*sellerid\.txt lists 3 seller\(s\)")


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
