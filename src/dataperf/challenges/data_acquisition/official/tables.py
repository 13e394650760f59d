"""The edition's tables from the markets read: rows as float64, labels as class indices."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from dataperf.challenges.data_acquisition.official.market import Market
from dataperf.editions import embedding_column


def make_tables(markets: list[Market], values: np.ndarray) -> dict[str, pa.Table]:
    """The edition's tables; class ``i`` is the raw label ``values[i]`` (sorted)."""
    def label(raw: np.ndarray) -> pa.Array:
        return pa.array(np.searchsorted(values, raw).astype(np.int8), pa.int8())

    def rows(
        market: str, ids: list[str], x: np.ndarray, raw: np.ndarray, seller: int | None = None
    ) -> pa.Table:
        columns: dict[str, pa.Array] = {"market": pa.array([market] * len(ids), pa.string())}
        if seller is not None:
            columns["seller"] = pa.array(np.full(len(ids), seller, np.int32))
        columns |= {
            "id": pa.array(ids, pa.string()),
            "embedding": embedding_column(x, np.float64),
            "label": label(raw),
        }
        return pa.table(columns)

    def numbered(market: str, seller: int, n: int, index: str) -> dict[str, pa.Array]:
        """The market and seller columns of ``n`` rows and ``index`` numbering them 0..n-1."""
        return {
            "market": pa.array([market] * n, pa.string()),
            "seller": pa.array(np.full(n, seller, np.int32)),
            index: pa.array(np.arange(n, dtype=np.int32)),
        }

    parts: dict[str, list[pa.Table]] = {
        k: [] for k in ("markets", "sellers", "buyer", "summaries", "samples", "offers")
    }
    embeddings: list[np.ndarray] = []
    next_row = 0
    for m in markets:
        parts["markets"].append(
            pa.table(
                {
                    "market": pa.array([m.name], pa.string()),
                    "budget": pa.array([m.budget], pa.float64()),
                }
            )
        )
        n_sellers = len(m.sellers)
        parts["sellers"].append(
            pa.table(
                {
                    "market": pa.array([m.name] * n_sellers, pa.string()),
                    "seller": pa.array(np.arange(n_sellers, dtype=np.int32)),
                    "rows": pa.array([len(s.y) for s in m.sellers], pa.int64()),
                    "max_price": pa.array([s.max_price for s in m.sellers], pa.float64()),
                    "pricing": pa.array(["lin"] * n_sellers, pa.string()),
                }
            )
        )
        parts["buyer"].append(
            rows(m.name, [str(k) for k in range(len(m.buyer_y))], m.buyer_x, m.buyer_y)
        )
        for s, seller in enumerate(m.sellers):
            d = len(seller.counts)
            parts["summaries"].append(
                pa.table(
                    {
                        **numbered(m.name, s, d, "feature"),
                        "counts": pa.array(list(seller.counts), pa.list_(pa.int64())),
                        "edges": pa.array(list(seller.edges), pa.list_(pa.float64())),
                        "label_correlation": pa.array(seller.correlation, pa.float64()),
                    }
                )
            )
            parts["samples"].append(
                rows(
                    m.name,
                    [f"{s}-{k}" for k in range(len(seller.samples_y))],
                    seller.samples_x,
                    seller.samples_y,
                    seller=s,
                )
            )
            n = len(seller.y)
            parts["offers"].append(
                pa.table(
                    {
                        **numbered(m.name, s, n, "position"),
                        "row": pa.array(np.arange(next_row, next_row + n, dtype=np.int32)),
                        "label": label(seller.y),
                    }
                )
            )
            embeddings.append(seller.x)
            next_row += n
    table_rows = np.concatenate(embeddings)
    buyer = pa.concat_tables(parts["buyer"])
    return {
        "public/markets.parquet": pa.concat_tables(parts["markets"]),
        "public/sellers.parquet": pa.concat_tables(parts["sellers"]),
        "public/buyer.parquet": buyer,
        "public/summaries.parquet": pa.concat_tables(parts["summaries"]),
        "public/samples.parquet": pa.concat_tables(parts["samples"]),
        "hidden/rows.parquet": pa.table(
            {
                "row": pa.array(np.arange(len(table_rows), dtype=np.int32)),
                "embedding": embedding_column(table_rows, np.float64),
            }
        ),
        "hidden/offers.parquet": pa.concat_tables(parts["offers"]),
        "hidden/test.parquet": buyer,
    }
