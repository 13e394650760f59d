"""Building the edition: the stages in order, and the parameters its manifest records."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from dataperf import home
from dataperf.challenge import Progress
from dataperf.challenges.data_acquisition.build.corpus import (
    Corpus,
    read_corpus,
    source_path,
    unique_rows,
)
from dataperf.challenges.data_acquisition.build.embedding import (
    EMBEDDING_DIM,
    RAW_DIM,
    TextEmbedder,
    reduce,
)
from dataperf.challenges.data_acquisition.build.plan import (
    BUDGET_SELLERS,
    DEFAULT_SIZES,
    MAX_NOISE,
    PRICE_RANGE,
    PROFILES,
    MarketPlan,
    Sizes,
    limit_sizes,
    make_plan,
)
from dataperf.challenges.data_acquisition.build.sources import (
    BUILDER,
    BUILDER_VERSION,
    CHALLENGE,
    CLASSES,
    EDITION,
    SOURCES,
    TOPICS,
)
from dataperf.challenges.data_acquisition.build.tables import make_tables
from dataperf.challenges.vision_selection.build import write_reported
from dataperf.editions import Edition
from dataperf.exceptions import EditionError


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
