"""Reading one market's original files (budget, prices, IDs, rows, summaries), all checked."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from dataperf.exceptions import SourceDataError


@dataclass
class Seller:
    """One seller as its files give it: full price, rows, summary and sample rows."""

    max_price: float
    x: np.ndarray  # (n, d) float64
    y: np.ndarray  # (n,) raw label values
    counts: np.ndarray  # (d, B) int64
    edges: np.ndarray  # (d, B + 1) float64
    correlation: np.ndarray  # (d,)
    samples_x: np.ndarray
    samples_y: np.ndarray


@dataclass
class Market:
    """One market: the buyer's budget and rows, and the sellers in ID order."""

    name: str
    budget: float
    buyer_x: np.ndarray
    buyer_y: np.ndarray
    sellers: list[Seller]


def read_market(info: Path, features: Path, name: str) -> Market:
    """Market ``name``: its folder ``info`` under marketinfo, its sellers' rows in ``features``."""
    budget = _one_number(info / "price" / "budget.txt")
    prices = _prices(info / "price" / "price.txt")
    ids = _seller_ids(info / "sellerid.txt")
    if len(prices) < len(ids):
        raise SourceDataError(
            f"{info / 'price' / 'price.txt'} has {len(prices)} price line(s) "
            f"but {info / 'sellerid.txt'} lists {len(ids)} seller(s); "
            "every seller needs one line Lin,<price>"
        )
    buyer = _numbers(info / "data_buyer" / "20.csv", delimiter=",")
    d = buyer.shape[1] - 1
    sellers = []
    for s in range(len(ids)):
        rows_path = _seller_file(features, ids[s], ".csv", "data")
        rows = _numbers(rows_path, delimiter=",")
        samples_path = _seller_file(info / "summary", ids[s], ".csvsamples.csv", "samples")
        samples = _numbers(samples_path, delimiter=" ")
        for path, table in ((rows_path, rows), (samples_path, samples)):
            if table.shape[1] != d + 1:
                raise SourceDataError(
                    f"{path}: rows have {table.shape[1]} columns, the buyer's rows "
                    f"({info / 'data_buyer' / '20.csv'}) {d + 1}; every file needs the same "
                    "features followed by the label"
                )
        summary_path = _seller_file(info / "summary", ids[s], ".csv.json", "summary")
        counts, edges, correlation = _summary(summary_path, len(rows), d)
        sellers.append(
            Seller(
                max_price=prices[s],
                x=rows[:, :-1],
                y=rows[:, -1],
                counts=counts,
                edges=edges,
                correlation=correlation,
                samples_x=samples[:, :-1],
                samples_y=samples[:, -1],
            )
        )
    return Market(name, budget, buyer[:, :-1], buyer[:, -1], sellers)


def _text(path: Path) -> str:
    if not path.is_file():
        raise SourceDataError(f"{path} is missing")
    try:
        return path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as err:
        raise SourceDataError(f"cannot read {path}: {err}") from None


def _float(text: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise SourceDataError(f"{where}: {text.strip()!r} is not a number") from None
    if not math.isfinite(value):
        raise SourceDataError(f"{where}: {text.strip()!r} is not a finite number")
    return value


def _lines(path: Path) -> list[str]:
    return [line.strip() for line in _text(path).splitlines() if line.strip()]


def _one_number(path: Path) -> float:
    lines = _lines(path)
    if len(lines) != 1:
        raise SourceDataError(
            f"{path} must hold one number (the budget); it has {len(lines)} non-empty line(s)"
        )
    value = _float(lines[0], str(path))
    if value < 0:
        raise SourceDataError(f"{path}: the budget must not be negative, got {lines[0]}")
    return value


def _prices(path: Path) -> list[float]:
    """The full price of each line ``Lin,<price>`` (the word in any case)."""
    prices = []
    for number, line in enumerate(_lines(path), start=1):
        fields = [f.strip() for f in line.split(",")]
        if len(fields) != 2 or fields[0].lower() != "lin":
            raise SourceDataError(
                f"{path}, line {number}: expected Lin,<price> (linear pricing, the only one "
                f"the original evaluator applies; lin in any case), got {line!r}"
            )
        price = _float(fields[1], f"{path}, line {number}")
        if price < 0:
            raise SourceDataError(f"{path}, line {number}: the price must not be negative")
        prices.append(price)
    if not prices:
        raise SourceDataError(f"{path} lists no seller prices")
    return prices


def _seller_ids(path: Path) -> list[str]:
    """The seller IDs as written (``0.0`` or ``0``), checked to be the integers 0..S-1."""
    lines = _lines(path)
    values = [_float(line, f"{path}, line {k}") for k, line in enumerate(lines, start=1)]
    if sorted(values) != list(range(len(values))) or not values:
        raise SourceDataError(
            f"{path} must list the seller IDs 0, 1, ..., S-1 (one per line), "
            f"got {', '.join(lines[:6]) or 'nothing'}"
            f"{', ...' if len(lines) > 6 else ''}"
        )
    written = dict(zip((int(v) for v in values), lines, strict=True))
    return [written[s] for s in range(len(values))]


def _seller_file(folder: Path, written_id: str, suffix: str, what: str) -> Path:
    """``<id><suffix>`` with the ID as an integer (``3``) or as written (``3.0``)."""
    number = str(int(float(written_id)))
    for name in dict.fromkeys([number, written_id]):
        if (folder / f"{name}{suffix}").is_file():
            return folder / f"{name}{suffix}"
    raise SourceDataError(
        f"{folder / (number + suffix)} is missing (the {what} of seller {number})"
    )


def _numbers(path: Path, *, delimiter: str) -> np.ndarray:
    """A numeric file without a header line (as the original's ``read_csv(header=None)``) as
    a (rows, columns) float64 array: at least one row and two columns, every row with the same
    number of numbers."""
    if not path.is_file():
        raise SourceDataError(f"{path} is missing")
    try:
        table = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(autogenerate_column_names=True),
            parse_options=pacsv.ParseOptions(delimiter=delimiter),
        )
    except (pa.ArrowException, OSError) as err:
        raise SourceDataError(f"cannot read {path}: {err}") from None
    if table.num_rows == 0:
        raise SourceDataError(f"{path} has no rows")
    if table.num_columns < 2:
        raise SourceDataError(f"{path}: rows need features and a label, found one column")
    for k, column in enumerate(table.columns):
        if not (pa.types.is_integer(column.type) or pa.types.is_floating(column.type)):
            if table.num_rows > 1 and _numeric(table.slice(1)):
                raise SourceDataError(
                    f"{path}: line 1 is not numbers; the original files have no header "
                    "line (every line is a row), so remove it"
                )
            raise SourceDataError(f"{path}: column {k + 1} holds values that are not numbers")
        if column.null_count:
            raise SourceDataError(f"{path}: column {k + 1} has {column.null_count} empty value(s)")
    array = np.column_stack([c.to_numpy().astype(np.float64) for c in table.columns])
    if not np.isfinite(array).all():
        raise SourceDataError(f"{path} holds NaN or infinite values")
    return array


def _numeric(table: pa.Table) -> bool:
    """Whether every column of ``table`` reads as numbers."""
    for column in table.columns:
        try:
            column.cast(pa.float64())
        except pa.ArrowException:
            return False
    return True


def _summary(path: Path, n_rows: int, d: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Counts (d, B), edges (d, B + 1) and label correlations (d,) of one summary file."""
    try:
        summary = json.loads(_text(path))
    except json.JSONDecodeError as err:
        raise SourceDataError(f"{path} is not valid JSON: {err}") from None
    if not isinstance(summary, dict) or not {
        "row_number",
        "column_number",
        "hist",
        "label_correlation",
    } <= set(summary):
        raise SourceDataError(
            f"{path} must be an object with row_number, column_number, hist and label_correlation"
        )
    if summary["row_number"] != n_rows:
        raise SourceDataError(
            f"{path}: row_number is {summary['row_number']!r} but the "
            f"seller's data has {n_rows} rows"
        )
    if summary["column_number"] != d + 1:
        raise SourceDataError(
            f"{path}: column_number is {summary['column_number']!r} but the "
            f"rows have {d + 1} columns (features and the label)"
        )
    hist = _per_feature(path, "hist", summary["hist"], d)
    correlations = _per_feature(path, "label_correlation", summary["label_correlation"], d)
    counts: list[np.ndarray] = []
    edges: list[np.ndarray] = []
    for j, entry in enumerate(hist):
        c, e = _histogram(path, j, entry)
        if c.sum() != n_rows:
            raise SourceDataError(
                f"{path}: the histogram of feature {j} counts {c.sum()} "
                f"rows but the seller has {n_rows}"
            )
        if counts and len(c) != len(counts[0]):
            raise SourceDataError(f"{path}: the histograms have different numbers of bins")
        counts.append(c)
        edges.append(e)
    correlation = np.empty(d)
    for j, value in enumerate(correlations):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise SourceDataError(f"{path}: label_correlation of feature {j} is not a number")
        correlation[j] = value if math.isfinite(value) else 0.0
    return np.array(counts, dtype=np.int64), np.array(edges), correlation


def _per_feature(path: Path, key: str, mapping: Any, d: int) -> list[Any]:
    """The d per-feature entries of ``mapping`` in feature order: keys 0..d-1 (a (d+1)-th
    entry, the label column, is ignored) or, with other names, the order of the file."""
    if not isinstance(mapping, dict) or len(mapping) not in (d, d + 1):
        size = len(mapping) if isinstance(mapping, dict) else "no"
        raise SourceDataError(
            f"{path}: {key} must have one entry per feature ({d}), found {size} entries"
        )
    keys = list(mapping)
    if all(re.fullmatch(r"[0-9]+", k) for k in keys):
        keys.sort(key=int)
    return [mapping[k] for k in keys[:d]]


def _histogram(path: Path, j: int, entry: Any) -> tuple[np.ndarray, np.ndarray]:
    sizes = (
        {int(k[:-5]): v for k, v in entry.items() if re.fullmatch(r"[0-9]+_size", k)}
        if isinstance(entry, dict)
        else {}
    )
    ranges = (
        {int(k[:-6]): v for k, v in entry.items() if re.fullmatch(r"[0-9]+_range", k)}
        if isinstance(entry, dict)
        else {}
    )
    bins = len(sizes)
    if not bins or sorted(sizes) != list(range(bins)) or sorted(ranges) != list(range(bins + 1)):
        raise SourceDataError(
            f"{path}: the histogram of feature {j} needs 0_size..B-1_size "
            "and 0_range..B_range (B bins, B + 1 edges)"
        )
    counts = [sizes[b] for b in range(bins)]
    edges = [ranges[b] for b in range(bins + 1)]
    if not all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in counts):
        raise SourceDataError(
            f"{path}: the histogram of feature {j} has counts that are not non-negative integers"
        )
    if not all(
        isinstance(e, int | float) and not isinstance(e, bool) and math.isfinite(e) for e in edges
    ) or any(b < a for a, b in pairwise(edges)):
        raise SourceDataError(
            f"{path}: the histogram of feature {j} has bin edges that are "
            "not finite increasing numbers"
        )
    return np.array(counts, dtype=np.int64), np.array(edges, dtype=np.float64)
