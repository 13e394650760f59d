"""Organizer acquisition challenges from a declarative file, no Python.

The file holds an acquisition spec (the keys of
:class:`~dataperf.kinds.acquisition_spec.AcquisitionSpec`, as in
``challenges/data_acquisition/challenge.yaml``), a ``data`` section with one entry per market,
and ``sources`` with licences::

    name: wine-market
    kind: acquisition
    title: Buy wine analyses
    classes: [barolo, grignolino, barbera]
    data:
      summaries: {bins: 10, samples: 5}        # what the buyer sees of each seller
      markets:
        - name: restaurant
          budget: 60
          price_per_row: 1.0                   # a seller's price: its own, or this x its rows
          buyer: {path: buyer.csv, id: id, features: [alcohol, hue], label: cultivar}
          test: {path: test.csv, id: id, features: [alcohol, hue], label: cultivar}
          sellers:
            - {path: seller-a.csv, id: id, features: [alcohol, hue], label: cultivar}
            - {path: seller-b.csv, id: id, features: [alcohol, hue], label: cultivar,
               price: 80}
    sources:
      - {name: ..., licence: CC BY 4.0, origin: ...}

Participants see, per market, the budget, the buyer's rows (public part) and each seller's row
count, price, per-feature histograms (``bins``) with each feature's correlation with the label,
and ``samples`` sample rows (0: none); the sellers' rows and the buyer's test rows stay hidden.
Every key, file, column, type, label, name, price and overlap is checked and every problem is
reported at once; nothing is written unless all pass. The edition is the kind's layout (see
:mod:`dataperf.kinds.acquisition`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from dataperf.algorithms.acquisition import seller_statistics
from dataperf.challenges.declarative_tables import (
    Problems,
    VectorTableRef,
    checked_sources,
    duplicates,
    feature_matrix,
    missing_columns,
    quoted,
    read_table,
    shared_ids,
    task_name_problems,
    text_values,
)
from dataperf.editions import Edition, embedding_column, sha256_file, write_edition
from dataperf.home import editions_dir
from dataperf.kinds.acquisition_spec import AcquisitionSpec
from dataperf.registry import _from_entry_points

__all__ = ["AcquisitionData", "create_acquisition"]

BUILDER = "dataperf.challenges.declarative_acquisition"
EDITION_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,40}$"
MIN_TEST_ROWS = 2
# What the kind cannot show or hide, with the reason given to the organizer.
UNSUPPORTED_SUMMARIES = {
    "label_histograms": "the acquisition kind publishes no label histograms; each feature's "
    "correlation with the label is shown instead",
    "row_counts": "a seller's row count is always public: its price is per row bought",
    "feature_statistics": "the per-feature histograms are always public (the kind's "
    "strategies read them); choose their bins",
}


class SummarySettings(BaseModel):
    """What the buyer sees of each seller besides its row count and price."""

    model_config = ConfigDict(extra="forbid")

    bins: int = Field(default=10, ge=2, le=100)  # per-feature histogram bins
    samples: int = Field(default=5, ge=0, le=1000)  # sample rows per seller (fewer if smaller)
    seed: int = Field(default=0, ge=0)  # which rows are the samples


class SellerRef(VectorTableRef):
    """One seller's rows, and its price for all of them (or the market's price rule)."""

    price: float | None = Field(default=None, ge=0, allow_inf_nan=False)


class MarketData(BaseModel):
    """One market: the buyer's budget, public rows and hidden test rows, and the sellers."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    budget: float = Field(gt=0, allow_inf_nan=False)
    price_per_row: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    buyer: VectorTableRef
    test: VectorTableRef
    sellers: list[SellerRef] = Field(min_length=1)


class AcquisitionData(BaseModel):
    """The ``data`` section of an acquisition challenge file."""

    model_config = ConfigDict(extra="forbid")

    edition: str = Field(default="organizer", pattern=EDITION_PATTERN)
    summaries: SummarySettings = SummarySettings()
    markets: list[MarketData] = Field(min_length=1)


@dataclass
class Labelled:
    """One table as read: IDs, vectors and label indices (None: unreadable)."""

    where: str
    ids: list[str] | None = None
    vectors: np.ndarray | None = None
    labels: np.ndarray | None = None

    @property
    def complete(self) -> bool:
        return self.ids is not None and self.vectors is not None and self.labels is not None


@dataclass
class Market:
    spec: MarketData
    buyer: Labelled
    test: Labelled
    sellers: list[Labelled]


def create_acquisition(path: Path, document: dict[str, Any], *, out_dir: Path | None = None,
                       overwrite: bool = False) -> Edition:
    """Check an acquisition challenge file (read as ``document``) and its tables, then write the
    edition (default ``$DATAPERF_HOME/editions/{name}/{edition}``); a SpecError or
    SourceDataError listing every problem, and nothing written, if anything is wrong."""
    problems = Problems(path.name)
    document = dict(document)
    data_section = document.pop("data", None)
    sources = checked_sources(document.pop("sources", None), problems)
    spec = _checked_spec(document, problems)
    data = _checked_data(data_section, problems)
    markets: list[Market] = []
    if data is not None:
        classes = spec.classes if spec is not None else _classes_as_given(document)
        for m, market in enumerate(data.markets):
            def read(ref: VectorTableRef, where: str) -> Labelled:
                return _read_labelled(path.parent, ref, classes, where, problems)

            markets.append(Market(
                market, read(market.buyer, f"markets.{m}.buyer"),
                read(market.test, f"markets.{m}.test"),
                [read(s, f"markets.{m}.sellers.{i}") for i, s in enumerate(market.sellers)]))
        _market_problems(markets, data.summaries, problems)
    target = None
    if spec is not None and data is not None:
        target = Path(out_dir) if out_dir else editions_dir() / spec.name / data.edition
        if target.exists() and not overwrite:
            problems.data(str(target), "already exists; pass --overwrite to replace it")
    problems.raise_if_any()
    if spec is None or data is None or target is None:
        raise RuntimeError("a problem of the challenge file was not reported")  # never
    files = {ref.path: sha256_file((path.parent / ref.path).resolve()) for market in data.markets
             for ref in (market.buyer, market.test, *market.sellers)}
    parameters = {"summaries": data.summaries.model_dump(), "files": files,
                  "markets": {m.spec.name: {"sellers": len(m.sellers),
                                            "buyer_rows": len(m.buyer.ids or ()),
                                            "test_rows": len(m.test.ids or ())}
                              for m in markets}}
    return write_edition(target, challenge=spec.name, edition=data.edition, builder=BUILDER,
                         builder_version="1", tasks=[m.spec.name for m in markets],
                         sources=sources, tables=_tables(markets, data.summaries),
                         parameters=parameters, spec=spec.model_dump(mode="json"),
                         overwrite=overwrite)


def _checked_spec(document: dict[str, Any], problems: Problems) -> AcquisitionSpec | None:
    try:
        spec = AcquisitionSpec.model_validate(document)
    except ValidationError as err:
        problems.validation(err)
        return None
    if any(c.name == spec.name for _, c in _from_entry_points()):
        problems.spec("name", f"{spec.name!r} is taken by an installed challenge; choose "
                      "another name")
    return spec


def _checked_data(section: Any, problems: Problems) -> AcquisitionData | None:
    if not isinstance(section, dict):
        problems.spec("data", "name the markets (a mapping with markets: a list of name, "
                      "budget, buyer, test and sellers)")
        return None
    summaries = section.get("summaries")
    if isinstance(summaries, dict):
        summaries = dict(summaries)
        for key, reason in UNSUPPORTED_SUMMARIES.items():
            if key in summaries:
                problems.spec(f"data.summaries.{key}", reason)
                summaries.pop(key)
        section = {**section, "summaries": summaries}
    try:
        return AcquisitionData.model_validate(section)
    except ValidationError as err:
        problems.validation(err, "data")
        return None


def _classes_as_given(document: dict[str, Any]) -> list[str] | None:
    """The file's classes when the rest of its spec is invalid, so that labels are checked."""
    classes = document.get("classes", ["0", "1"])
    if isinstance(classes, list) and len(classes) >= 2 and all(
            isinstance(c, str) for c in classes) and len(set(classes)) == len(classes):
        return classes
    return None


def _read_labelled(base: Path, ref: VectorTableRef, classes: list[str] | None, key: str,
                   problems: Problems) -> Labelled:
    """A table's IDs (unique), vectors and labels (among ``classes``); ``key`` names it in the
    spec, for messages that would otherwise name the same file twice."""
    where = ref.path
    found = Labelled(where)
    table = read_table(base, ref.path, [ref.id, ref.label], problems)
    if table is None:
        return found
    missing_columns(table, [ref.id, *ref.vector_columns(), ref.label], where, problems)
    if table.num_rows == 0:
        problems.data(where, f"has no rows ({key})")
        return found
    if ref.id in table.column_names:
        found.ids = text_values(table, ref.id, where, problems)
        twice = duplicates(found.ids or [])
        if twice:
            problems.data(where, f"{len(twice)} ID(s) appear more than once ({quoted(twice)}); "
                          "each row needs its own ID")
    if all(c in table.column_names for c in ref.vector_columns()):
        vectors = feature_matrix(table, embedding=ref.embedding, features=ref.features,
                                 where=where, problems=problems)
        # as stored (float32): the summaries describe the very numbers that are sold
        found.vectors = None if vectors is None else vectors.astype(np.float32)
    if ref.label in table.column_names:
        values = text_values(table, ref.label, where, problems)
        if values is not None and classes is not None:
            unknown = sorted(set(values) - set(classes))
            if unknown:
                problems.data(where, f"column {ref.label!r} has values {quoted(unknown)} that "
                              f"are not among the classes {classes}")
            else:
                index = {label: i for i, label in enumerate(classes)}
                found.labels = np.array([index[v] for v in values], dtype=np.int8)
    return found


def _market_problems(markets: list[Market], summaries: SummarySettings,
                     problems: Problems) -> None:
    """Across tables: market names, one dimension, enough test rows, hidden rows hidden."""
    names = [m.spec.name for m in markets]
    task_name_problems(names, "data.markets", problems, noun="market")
    twice = duplicates(names)
    if twice:
        problems.spec("data.markets", f"market names {quoted(twice)} are given twice")
    dims = sorted({(t.vectors.shape[1], t.where) for m in markets
                   for t in (m.buyer, m.test, *m.sellers) if t.vectors is not None})
    if len({d for d, _ in dims}) > 1:
        problems.data("data.markets", "the vectors must have one dimension in every table "
                      f"(the sellers' rows share one table); they have "
                      f"{', '.join(f'{d} in {w}' for d, w in dims)}")
    for t, m in enumerate(markets):
        unpriced = [i for i, s in enumerate(m.spec.sellers) if s.price is None]
        if unpriced and m.spec.price_per_row is None:
            problems.spec(f"data.markets.{t}", f"sellers {unpriced} have no price; give each "
                          "a price or the market a price_per_row")
        if m.test.ids is not None and len(m.test.ids) < MIN_TEST_ROWS:
            problems.data(m.test.where, f"market {m.spec.name} needs at least {MIN_TEST_ROWS} "
                          "test rows")
        public = [i for t in (m.buyer, *m.sellers) for i in t.ids or ()]
        leaked = shared_ids(m.test.ids or [], public)
        if leaked:
            problems.data(m.test.where, f"{len(leaked)} test ID(s) of market {m.spec.name} are "
                          f"also buyer or seller rows ({quoted(leaked)}); the test rows must "
                          "be hidden and not for sale")


def _price(market: MarketData, seller: int, rows: int) -> float:
    """A seller's price for all its rows: its own, or the market's price per row x rows."""
    own = market.sellers[seller].price
    return float(own) if own is not None else float(market.price_per_row or 0.0) * rows


def _tables(markets: list[Market], summaries: SummarySettings) -> dict[str, pa.Table]:
    """The kind's edition layout; the sellers' rows numbered in market and seller order."""
    def part(t: Labelled) -> tuple[list[str], np.ndarray, np.ndarray]:
        if t.ids is None or t.vectors is None or t.labels is None:
            raise RuntimeError(f"{t.where} was not read")  # never: checked before
        return t.ids, t.vectors, t.labels

    columns: dict[str, dict[str, list[Any]]] = {name: {} for name in (
        "markets", "sellers", "buyer", "test", "summaries", "samples", "offers")}

    def add(table: str, **values: Any) -> None:
        for key, value in values.items():
            columns[table].setdefault(key, []).extend(value)

    shared: list[np.ndarray] = []
    row = 0
    for t, m in enumerate(markets):
        name = m.spec.name
        add("markets", market=[name], budget=[m.spec.budget])
        for part_name, labelled in (("buyer", m.buyer), ("test", m.test)):
            ids, x, y = part(labelled)
            add(part_name, market=[name] * len(ids), id=ids, embedding=list(x),
                label=y.tolist())
        for s, seller in enumerate(m.sellers):
            ids, x, y = part(seller)
            n = len(ids)
            add("sellers", market=[name], seller=[s], rows=[n],
                max_price=[_price(m.spec, s, n)], pricing=["lin"])
            counts, edges, correlation = seller_statistics(x, y, summaries.bins)
            add("summaries", market=[name] * x.shape[1], seller=[s] * x.shape[1],
                feature=list(range(x.shape[1])), counts=counts.tolist(), edges=edges.tolist(),
                label_correlation=correlation.tolist())
            rng = np.random.default_rng(np.random.SeedSequence([summaries.seed, t, s]))
            picked = np.sort(rng.choice(n, min(summaries.samples, n), replace=False))
            add("samples", market=[name] * len(picked), seller=[s] * len(picked),
                id=[ids[i] for i in picked], embedding=list(x[picked]),
                label=y[picked].tolist())
            add("offers", market=[name] * n, seller=[s] * n, position=list(range(n)),
                row=list(range(row, row + n)), label=y.tolist())
            shared.append(x)
            row += n
    dim = shared[0].shape[1]
    types = {"market": pa.string(), "id": pa.string(), "budget": pa.float64(),
             "seller": pa.int32(), "rows": pa.int64(), "max_price": pa.float64(),
             "pricing": pa.string(), "feature": pa.int32(), "counts": pa.list_(pa.int64()),
             "edges": pa.list_(pa.float64()), "label_correlation": pa.float64(),
             "position": pa.int32(), "row": pa.int32(), "label": pa.int8()}

    def table(name: str) -> pa.Table:
        arrays = {}
        for key, values in columns[name].items():
            if key == "embedding":
                matrix = np.stack(values) if values else np.zeros((0, dim))
                arrays[key] = embedding_column(matrix, np.float32)
            else:
                arrays[key] = pa.array(values, types[key])
        return pa.table(arrays)

    public = {name: table(name) for name in ("markets", "sellers", "buyer", "summaries",
                                             "samples")}
    return {
        **{f"public/{name}.parquet": found for name, found in public.items()},
        "hidden/rows.parquet": pa.table({
            "row": pa.array(np.arange(row), pa.int32()),
            "embedding": embedding_column(np.concatenate(shared), np.float32)}),
        "hidden/offers.parquet": table("offers"),
        "hidden/test.parquet": table("test"),
    }
