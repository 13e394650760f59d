"""Scoring time and memory of a data-acquisition submission at the original scale, against the
original evaluator's loop.

Markets like the original DAM's: 20 sellers of 1,500 to 30,000 rows each, 768-d embeddings,
3 classes, 1,000 hidden test rows; sellers share rows (drawn from one pool per market). The
submission spends the budget evenly (every seller bought in part, so all 10 draws differ: the
worst case for reuse); ``--whole`` buys whole sellers instead (every draw the same).

- **original loop**: what the original evaluator does, once per draw: load every seller's file
  (``numpy.loadtxt`` of a CSV with a header, the label last, as ``features/<i>/<id>.csv``),
  draw each seller's rows with ``rng.choice``, concatenate, fit
  ``LogisticRegression(random_state=0)``, score. Timed with and without the loading.
- **plain in-memory loop**: the same, with every seller's float64 array loaded once.
- **ours**: ``kinds.acquisition_procedure.market_correct``: one float16 table shared by all
  sellers, row indices per seller, only the bought rows gathered, identical draws fitted once.

All three must give the same test predictions in every draw (checked). Everything runs on one
BLAS thread, as in a scoring slot. Memory is the peak of numpy's allocations during scoring
(tracemalloc, with the data each loop holds), not counting the CSV files.

    python bench/bench_acquisition_scorer.py [--markets 5] [--draws 10] [--scale 1.0] [--whole]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import tracemalloc
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits

from dataperf.kinds.acquisition_procedure import SellerOffers, drawn_positions, market_correct

DIM, CLASSES, SELLERS, TEST_ROWS, MAX_ROWS, MIN_ROWS = 768, 3, 20, 1000, 30_000, 1_500


def make_market(index: int, scale: float) -> dict[str, Any]:
    """A pool of rows (float16), sellers as overlapping row sets with some wrong labels."""
    rng = np.random.default_rng(index)
    sizes = np.linspace(MIN_ROWS, MAX_ROWS, SELLERS) * scale
    sizes = np.maximum(sizes.round().astype(np.int64), 10)
    pool = int(sizes.sum() * 0.8)  # about a fifth of the offered rows are shared
    centres = rng.normal(size=(CLASSES, DIM)) * 0.08
    labels = rng.integers(0, CLASSES, pool + TEST_ROWS)
    x = (rng.normal(size=(pool + TEST_ROWS, DIM)) * 0.5 + centres[labels]).astype(np.float16)
    offers = []
    for n in sizes:
        rows = rng.choice(pool, int(n), replace=False)
        given = labels[rows].copy()
        wrong = rng.random(len(rows)) < rng.uniform(0.0, 0.4)
        given[wrong] = rng.integers(0, CLASSES, int(wrong.sum()))
        offers.append(SellerOffers(rows.astype(np.int64), given.astype(np.int64)))
    return {
        "table": x[:pool],
        "offers": offers,
        "x_test": x[pool:].astype(np.float64),
        "y_test": labels[pool:],
        "sizes": sizes,
    }


def purchase(market: dict[str, Any], whole: bool) -> np.ndarray:
    sizes = market["sizes"]
    if whole:  # the two largest sellers, whole
        counts = np.zeros(SELLERS, dtype=np.int64)
        counts[np.argsort(sizes)[-2:]] = sizes[np.argsort(sizes)[-2:]]
        return counts
    return (sizes * 0.1).astype(np.int64)  # a tenth of every seller


def write_seller_files(market: dict[str, Any], folder: Path) -> list[Path]:
    """Each seller's rows as the original stores them: a CSV with a header, the label last."""
    paths = []
    for s, offer in enumerate(market["offers"]):
        data = np.column_stack([market["table"][offer.rows].astype(np.float64), offer.labels])
        columns = {f"c{i}": data[:, i] for i in range(data.shape[1])}
        path = folder / f"{s}.csv"
        pacsv.write_csv(pa.table(columns), path)
        paths.append(path)
    return paths


def fit_and_check(
    x: np.ndarray, y: np.ndarray, x_test: np.ndarray, y_test: np.ndarray
) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = LogisticRegression(random_state=0).fit(x, y)
    return model.predict(x_test) == y_test


def original_loop(
    market: dict[str, Any],
    counts: np.ndarray,
    draws: int,
    index: int,
    load: Callable[[], list[np.ndarray]],
) -> tuple[np.ndarray, float]:
    """Per draw: ``load()`` the sellers (float64, label last), draw, concatenate, fit, score."""
    out, loading = [], 0.0
    for j in range(draws):
        started = time.perf_counter()
        sellers = load()
        loading += time.perf_counter() - started
        rng = np.random.default_rng(np.random.SeedSequence([0, index, j]))
        positions = drawn_positions(counts, [len(s) for s in sellers], rng)
        bought = np.concatenate([s[p] for s, p in zip(sellers, positions, strict=True)])
        out.append(
            fit_and_check(
                bought[:, :-1], bought[:, -1].astype(np.int64), market["x_test"], market["y_test"]
            )
        )
    return np.array(out), loading


def measured(run: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, float, float]:
    """(result, seconds, peak MB of numpy allocations) of ``run(*args, **kwargs)``."""
    tracemalloc.start()
    started = time.perf_counter()
    result = run(*args, **kwargs)
    seconds = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return result, seconds, peak


def bench_market(index: int, draws: int, scale: float, whole: bool) -> dict[str, float]:
    market = make_market(index, scale)
    counts = purchase(market, whole)
    with tempfile.TemporaryDirectory() as folder:
        paths = write_seller_files(market, Path(folder))
        (slow, loading), t_slow, m_slow = measured(
            original_loop,
            market,
            counts,
            draws,
            index,
            lambda: [np.loadtxt(p, delimiter=",", skiprows=1) for p in paths],
        )
    sellers = [
        np.column_stack([market["table"][o.rows].astype(np.float64), o.labels])
        for o in market["offers"]
    ]
    held = sum(s.nbytes for s in sellers) / 2**20  # for the whole loop
    (plain, _), t_plain, m_plain = measured(
        original_loop, market, counts, draws, index, sellers.copy
    )
    sellers.clear()
    ours, t_ours, m_ours = measured(
        market_correct,
        counts,
        market["offers"],
        market["table"],
        market["x_test"],
        market["y_test"],
        market_index=index,
        draws=draws,
        seed=0,
    )
    same = np.array_equal(slow, ours) and np.array_equal(plain, ours)
    print(
        f"  market {index}: {int(counts.sum()):,} rows bought of {int(market['sizes'].sum()):,}"
        f"; original loop {t_slow:6.1f} s (loading {loading:5.1f} s), in memory "
        f"{t_plain:6.1f} s, ours {t_ours:6.1f} s; accuracy {ours.mean():.3f}; same "
        f"predictions: {same}"
    )
    return {
        "original": t_slow,
        "loading": loading,
        "in-memory": t_plain,
        "ours": t_ours,
        "original MB": m_slow,
        "in-memory MB": m_plain + held,
        "ours MB": m_ours + market["table"].nbytes / 2**20,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--markets", type=int, default=5)
    parser.add_argument("--draws", type=int, default=10)
    parser.add_argument("--scale", type=float, default=1.0, help="seller sizes x this")
    parser.add_argument("--whole", action="store_true", help="buy whole sellers")
    args = parser.parse_args()
    print(
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; {args.markets} "
        f"markets x {args.draws} draws, {SELLERS} sellers of {MIN_ROWS * args.scale:,.0f} to "
        f"{MAX_ROWS * args.scale:,.0f} rows, d={DIM}"
    )
    with threadpool_limits(1, user_api="blas"):  # as in a scoring slot, for every loop
        runs = [bench_market(i, args.draws, args.scale, args.whole) for i in range(args.markets)]
    total = {key: sum(r[key] for r in runs) for key in ("original", "loading", "in-memory", "ours")}
    peak = {key: max(r[f"{key} MB"] for r in runs) for key in ("original", "in-memory", "ours")}
    print(f"\nwhole submission ({args.markets} markets x {args.draws} draws):")
    print(
        f"  original loop:    {total['original']:7.1f} s (of which loading "
        f"{total['loading']:.1f} s), peak {peak['original']:7.0f} MB"
    )
    print(f"  plain in memory:  {total['in-memory']:7.1f} s, peak {peak['in-memory']:7.0f} MB")
    print(f"  ours:             {total['ours']:7.1f} s, peak {peak['ours']:7.0f} MB")
    print(
        f"  ratio original / ours: x{total['original'] / total['ours']:.1f} time, "
        f"x{peak['original'] / peak['ours']:.1f} memory; in memory / ours: "
        f"x{total['in-memory'] / total['ours']:.1f} time"
    )
    print(f"load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
