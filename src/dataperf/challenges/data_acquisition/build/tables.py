"""The edition's tables from the plan, the vectors and the labels; the hidden seller facts."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from dataperf.algorithms.acquisition import seller_statistics
from dataperf.challenges.data_acquisition.build.embedding import EMBEDDING_DIM
from dataperf.challenges.data_acquisition.build.plan import MarketPlan
from dataperf.challenges.data_acquisition.build.sources import CLASSES
from dataperf.challenges.vision_selection.build import sorted_table
from dataperf.editions import embedding_column, make_ids

N_SAMPLES = 5
N_BINS = 10


def _market_column(names: list[str], counts: list[int]) -> pa.Array:
    return pa.array(np.repeat(np.array(names, dtype=object), counts).tolist(), pa.string())


class _Tables:
    """Builds the edition's tables; ``vectors`` maps a corpus position to its float16 vector."""

    def __init__(
        self,
        markets: list[MarketPlan],
        vectors: dict[int, np.ndarray],
        labels: np.ndarray,
        rng: np.random.Generator,
    ):
        self.markets, self.vectors, self.labels, self.rng = markets, vectors, labels, rng
        n_ids = sum(len(m.public) + len(m.test) + N_SAMPLES * len(m.sellers) for m in markets)
        self.ids = iter(make_ids(n_ids, rng))
        # Row numbers of the shared table: the sold corpus rows in a random order, so a row
        # number says nothing about the row's sentiment or topic.
        self.sold = np.unique(np.concatenate([s.rows for m in markets for s in m.sellers]))
        self.sold = self.sold[rng.permutation(len(self.sold))]
        self.row_of = {int(c): r for r, c in enumerate(self.sold)}

    def matrix(self, rows: np.ndarray) -> np.ndarray:
        if not len(rows):
            return np.zeros((0, EMBEDDING_DIM), np.float16)
        return np.stack([self.vectors[int(i)] for i in rows])

    def labelled(self, key: str) -> pa.Table:
        """The buyers' public (``key="public"``) or test rows: market, id, embedding, label."""
        parts = [getattr(m, key) for m in self.markets]
        rows = np.concatenate(parts)
        return sorted_table(
            {
                "market": _market_column([m.name for m in self.markets], [len(p) for p in parts]),
                "id": pa.array([next(self.ids) for _ in rows], pa.string()),
                "embedding": embedding_column(self.matrix(rows)),
                "label": pa.array(self.labels[rows], pa.int8()),
            },
            ["market", "id"],
        )

    def all(self) -> dict[str, pa.Table]:
        markets = self.markets
        buyer, test = self.labelled("public"), self.labelled("test")
        pairs = [(m.name, s, seller) for m in markets for s, seller in enumerate(m.sellers)]
        names = [name for name, _, _ in pairs]
        numbers = np.array([s for _, s, _ in pairs], dtype=np.int32)
        sizes = [len(x.rows) for *_, x in pairs]
        summaries = [seller_statistics(self.matrix(x.rows), x.labels, N_BINS) for *_, x in pairs]
        picks = [
            np.sort(self.rng.choice(len(x.rows), min(N_SAMPLES, len(x.rows)), replace=False))
            for *_, x in pairs
        ]
        picked_rows = np.concatenate([x.rows[p] for (*_, x), p in zip(pairs, picks, strict=True)])
        d = EMBEDDING_DIM
        return {
            "public/markets.parquet": sorted_table(
                {
                    "market": pa.array([m.name for m in markets], pa.string()),
                    "budget": pa.array([m.budget for m in markets], pa.float64()),
                },
                ["market"],
            ),
            "public/sellers.parquet": sorted_table(
                {
                    "market": pa.array(names, pa.string()),
                    "seller": pa.array(numbers, pa.int32()),
                    "rows": pa.array(sizes, pa.int64()),
                    "max_price": pa.array([x.max_price for *_, x in pairs], pa.float64()),
                    "pricing": pa.array(["lin"] * len(pairs), pa.string()),
                },
                ["market", "seller"],
            ),
            "public/buyer.parquet": buyer,
            "public/summaries.parquet": sorted_table(
                {
                    "market": _market_column(names, [d] * len(pairs)),
                    "seller": pa.array(np.repeat(numbers, d), pa.int32()),
                    "feature": pa.array(np.tile(np.arange(d), len(pairs)), pa.int32()),
                    "counts": pa.array(
                        [c.tolist() for counts, _, _ in summaries for c in counts],
                        pa.list_(pa.int64()),
                    ),
                    "edges": pa.array(
                        [e.tolist() for _, edges, _ in summaries for e in edges],
                        pa.list_(pa.float64()),
                    ),
                    "label_correlation": pa.array(
                        np.concatenate([c for *_, c in summaries]), pa.float64()
                    ),
                },
                ["market", "seller", "feature"],
            ),
            "public/samples.parquet": sorted_table(
                {
                    "market": _market_column(names, [len(p) for p in picks]),
                    "seller": pa.array(np.repeat(numbers, [len(p) for p in picks]), pa.int32()),
                    "id": pa.array([next(self.ids) for _ in picked_rows], pa.string()),
                    "embedding": embedding_column(self.matrix(picked_rows)),
                    "label": pa.array(
                        np.concatenate(
                            [x.labels[p] for (*_, x), p in zip(pairs, picks, strict=True)]
                        ),
                        pa.int8(),
                    ),
                },
                ["market", "seller", "id"],
            ),
            "hidden/rows.parquet": pa.table(
                {
                    "row": pa.array(np.arange(len(self.sold)), pa.int32()),
                    "embedding": embedding_column(self.matrix(self.sold)),
                }
            ),
            "hidden/offers.parquet": sorted_table(
                {
                    "market": _market_column(names, sizes),
                    "seller": pa.array(np.repeat(numbers, sizes), pa.int32()),
                    "position": pa.array(np.concatenate([np.arange(n) for n in sizes]), pa.int32()),
                    "row": pa.array(
                        [self.row_of[int(c)] for *_, x in pairs for c in x.rows], pa.int32()
                    ),
                    "label": pa.array(np.concatenate([x.labels for *_, x in pairs]), pa.int8()),
                },
                ["market", "seller", "position"],
            ),
            "hidden/test.parquet": test,
            "hidden/seller_facts.parquet": seller_facts_table(markets),
        }


def make_tables(
    markets: list[MarketPlan],
    vectors: dict[int, np.ndarray],
    labels: np.ndarray,
    rng: np.random.Generator,
) -> dict[str, pa.Table]:
    """The edition's tables from the plan, the float16 vector of every corpus row used and the
    true labels; ``rng`` draws the IDs, the row numbers and the sample rows."""
    return _Tables(markets, vectors, labels, rng).all()


def seller_facts_table(markets: list[MarketPlan]) -> pa.Table:
    """What makes each seller good or bad. Hidden: a public copy of the edition (and its
    manifest) must not reveal it."""
    pairs = [(m.name, s, x) for m in markets for s, x in enumerate(m.sellers)]
    return sorted_table(
        {
            "market": pa.array([m for m, _, _ in pairs], pa.string()),
            "seller": pa.array([s for _, s, _ in pairs], pa.int32()),
            "profile": pa.array([x.profile for *_, x in pairs], pa.string()),
            "topic_shares": pa.array(
                [np.round(x.topic_shares, 4).tolist() for *_, x in pairs], pa.list_(pa.float64())
            ),
            "topic_rows": pa.array(
                [x.topic_rows.tolist() for *_, x in pairs], pa.list_(pa.int64())
            ),
            "noise_rate": pa.array([x.noise_rate for *_, x in pairs], pa.float64()),
            "flipped": pa.array([x.flipped for *_, x in pairs], pa.int64()),
            "skew": pa.array([x.skew for *_, x in pairs], pa.float64()),
            "skew_class": pa.array(
                [CLASSES[x.skew_class] if x.skew_class >= 0 else None for *_, x in pairs],
                pa.string(),
            ),
            "duplication": pa.array([x.duplication for *_, x in pairs], pa.float64()),
            "unique_rows": pa.array([x.unique for *_, x in pairs], pa.int64()),
            "rows": pa.array([len(x.rows) for *_, x in pairs], pa.int64()),
        },
        ["market", "seller"],
    )
