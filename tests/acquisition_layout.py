"""Seeded files in exactly the layout of the original DataPerf v0.5 data-acquisition (DAM)
market, written the way the original reads them.

For every market ``i`` the challenge repository (after unzipping ``marketinfo.zip``) and the
organizers' seller data hold::

    marketinfo/i/price/budget.txt            one number
    marketinfo/i/price/price.txt             Lin,<full price> per seller (the repository's own
                                             price.txt has one line more than sellers)
    marketinfo/i/sellerid.txt                the IDs as numpy.savetxt writes them
    marketinfo/i/data_buyer/20.csv           no header: features..., label
    marketinfo/i/summary/<id>.csv.json       row_number, column_number, hist, label_correlation
    marketinfo/i/summary/<id>.csvsamples.csv space-separated sample rows
    features/i/<id>.csv                      no header: features..., label

The original reads every CSV with ``pandas.read_csv(path, header=None)``: no line is a header.
Features are full float64 numbers (``%.18e``), labels 0, 1, 2 written as floats; the data is
learnable (one Gaussian cluster per class) and each seller has its own share of wrong labels.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

LABELS = (0.0, 1.0, 2.0)


@dataclass
class AcquisitionLayout:
    """What was written, by market, for tests to compare against (they read the files)."""

    root: Path
    budgets: dict[str, float] = field(default_factory=dict)
    prices: dict[str, list[float]] = field(default_factory=dict)
    buyer: dict[str, np.ndarray] = field(default_factory=dict)  # rows: features..., label
    sellers: dict[str, list[np.ndarray]] = field(default_factory=dict)
    samples: dict[str, list[np.ndarray]] = field(default_factory=dict)

    def seller_folder(self, market: str) -> Path:
        return self.root / "features" / market


def summary(rows: np.ndarray) -> dict:
    """A seller's summary as the original's files give it (10-bin histograms, correlations)."""
    hist, correlation = {}, {}
    for j in range(rows.shape[1] - 1):
        counts, edges = np.histogram(rows[:, j], bins=10)
        hist[str(j)] = {f"{b}_size": int(c) for b, c in enumerate(counts)} | {
            f"{b}_range": float(e) for b, e in enumerate(edges)
        }
        correlation[str(j)] = float(np.corrcoef(rows[:, j], rows[:, -1])[0, 1])
    return {
        "row_number": len(rows),
        "column_number": rows.shape[1],
        "hist": hist,
        "label_correlation": correlation,
    }


def write_acquisition_layout(
    root: Path,
    *,
    markets: Sequence[str] = ("0", "1"),
    seller_rows: Sequence[int] = (10, 15, 20),
    dim: int = 4,
    buyer_rows: int = 6,
    n_samples: int = 5,
    seed: int = 11,
) -> AcquisitionLayout:
    """Write the original layout of ``markets`` under ``root`` and describe what was written.

    Budgets lie between a third and two thirds of the sellers' summed full prices.
    """
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(len(LABELS), dim)) * 1.5
    layout = AcquisitionLayout(Path(root))

    def rows(n: int, wrong: float) -> np.ndarray:
        label = rng.integers(0, len(LABELS), n)
        x = centres[label] + rng.normal(size=(n, dim))
        flipped = rng.random(n) < wrong
        label[flipped] = rng.integers(0, len(LABELS), int(flipped.sum()))
        return np.column_stack([x, np.asarray(LABELS)[label]])

    for market in markets:
        info = layout.root / "marketinfo" / market
        for folder in (info / "price", info / "data_buyer", info / "summary"):
            folder.mkdir(parents=True)
        layout.seller_folder(market).mkdir(parents=True)
        prices = [round(float(p), 2) for p in rng.uniform(20, 100, len(seller_rows))]
        budget = round(float(rng.uniform(1 / 3, 2 / 3) * sum(prices)), 2)
        layout.budgets[market], layout.prices[market] = budget, prices
        (info / "price" / "budget.txt").write_text(f"{budget}\n")
        lines = [f"Lin,{p}" for p in prices] + ["Lin,100"]  # one line more, as the original's
        (info / "price" / "price.txt").write_text("\n".join(lines))
        np.savetxt(info / "sellerid.txt", np.arange(len(seller_rows), dtype=np.float64))
        layout.buyer[market] = rows(buyer_rows, 0.0)
        np.savetxt(info / "data_buyer" / "20.csv", layout.buyer[market], delimiter=",")
        layout.sellers[market], layout.samples[market] = [], []
        for s, n in enumerate(seller_rows):
            data = rows(n, wrong=0.5 * s / max(len(seller_rows) - 1, 1))
            samples = data[rng.choice(n, min(n_samples, n), replace=False)]
            layout.sellers[market].append(data)
            layout.samples[market].append(samples)
            np.savetxt(layout.seller_folder(market) / f"{s}.csv", data, delimiter=",")
            np.savetxt(info / "summary" / f"{s}.csvsamples.csv", samples, delimiter=" ")
            (info / "summary" / f"{s}.csv.json").write_text(json.dumps(summary(data)))
    return layout


def write_purchases(directory: Path, counts: Mapping[str, Sequence[int]], ext: str = "csv") -> Path:
    """A submission in the original format: ``<market>.<ext>``, one line of counts (the
    original evaluator reads ``<market>.csv``; its README says ``.txt``)."""
    directory.mkdir(parents=True, exist_ok=True)
    for market, row in counts.items():
        (directory / f"{market}.{ext}").write_text(",".join(str(int(k)) for k in row))
    return directory
