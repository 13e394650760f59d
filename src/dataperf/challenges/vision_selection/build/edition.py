"""Building the vision edition: the stages in order, the parameters its manifest records, and
the writing and command-line helpers every builder shares.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from dataperf import home
from dataperf.challenges.vision_selection.build.annotator import (
    ANNOTATOR_C,
    ANNOTATOR_CONFUSIONS,
    ANNOTATOR_LABEL_NOISE,
    ANNOTATOR_MAX_ITER,
    ANNOTATOR_POOLING,
    ANNOTATOR_TRAIN_SIZE,
    annotator_confidences,
    train_annotator,
)
from dataperf.challenges.vision_selection.build.embedding import EMBEDDING_DIM, Embedder, fit_pca
from dataperf.challenges.vision_selection.build.plan import make_plan
from dataperf.challenges.vision_selection.build.sources import (
    BUILDER,
    BUILDER_VERSION,
    CHALLENGE,
    CONCEPT_CLASSES,
    CONCEPTS,
    DEFAULT_SOURCE,
    EDITION,
    POOL_SPLIT,
    SOURCES,
    TEST_POSITIVE_SHARE,
    TEST_SPLIT,
    Progress,
    Split,
    read_split,
)
from dataperf.challenges.vision_selection.build.tables import (
    examples_table,
    pool_table,
    test_table,
    weak_labels_table,
)
from dataperf.editions import (
    Edition,
    write_edition,
)
from dataperf.exceptions import EditionError

# --------------------------------------------------------------------------- build



def build(
    out_dir: Path,
    *,
    source: Path = DEFAULT_SOURCE,
    pool_size: int = 20_000,
    test_size: int = 1_000,
    n_examples: int = 20,
    seed: int = 0,
    cache_dir: Path | None = None,
    progress: Progress | None = None,
    overwrite: bool = False,
    limit: int | None = None,
) -> Edition:
    """Build the offline edition into ``out_dir`` and return it.

    ``limit`` builds a quick subset instead: a pool of ``limit`` images with test sets and
    examples scaled down to match. ``test_size`` is per task. ``cache_dir`` holds raw network
    embeddings between builds (default ``$DATAPERF_HOME/cache``). ``progress(step, done,
    total)`` is called during long steps. Raises :class:`SourceDataError` if Fashion-MNIST or
    the build extra is missing or broken, :class:`EditionError` for impossible sizes.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not overwrite:
        raise EditionError(f"{out_dir} already exists; pass overwrite to replace it")
    if limit is not None:
        pool_size, test_size, n_examples = limit, max(20, limit // 10), max(2, min(20, limit // 20))
    train, t10k = read_split(Path(source), POOL_SPLIT), read_split(Path(source), TEST_SPLIT)
    try:
        plan = make_plan(
            train.labels,
            t10k.labels,
            pool_size=pool_size,
            test_size=test_size,
            n_examples=n_examples,
            seed=seed,
        )
    except ValueError as err:
        raise EditionError(f"cannot build the edition with these sizes: {err}") from None
    embedder = Embedder(Path(cache_dir) if cache_dir else home.cache_dir(), progress)
    total = pool_size + len(CONCEPTS) * test_size
    pool_raw = embedder.embed(train, plan.pool, total=total)
    test_indices = np.concatenate([plan.tests[c] for c in CONCEPTS])
    test_raw = embedder.embed(t10k, test_indices, done=pool_size, total=total)
    projection = fit_pca(pool_raw)
    test_embeddings = np.split(projection(test_raw), len(CONCEPTS))

    annotator = train_annotator(train.images[plan.annotator_set], plan.annotator_labels)
    confidences = annotator_confidences(annotator, train.images[plan.pool])

    tables = {
        "public/pool.parquet": pool_table(plan.pool_ids, projection(pool_raw)),
        "public/examples.parquet": examples_table(plan.pool_ids, plan.examples),
        "public/weak_labels.parquet": weak_labels_table(plan.pool_ids, confidences),
        "hidden/test.parquet": test_table(
            plan.test_ids,
            dict(zip(CONCEPTS, test_embeddings, strict=True)),
            {
                c: (t10k.labels[plan.tests[c]] == CONCEPT_CLASSES[c]).astype(np.int8)
                for c in CONCEPTS
            },
        ),
    }
    parameters = _parameters(
        pool_size=pool_size,
        test_size=test_size,
        n_examples=n_examples,
        seed=seed,
        train=train,
        t10k=t10k,
        model_digest=embedder.model_digest,
    )
    return write_reported(
        out_dir,
        progress,
        challenge=CHALLENGE,
        edition=EDITION,
        builder=BUILDER,
        builder_version=BUILDER_VERSION,
        tasks=list(CONCEPTS),
        sources=SOURCES,
        tables=tables,
        parameters=parameters,
        overwrite=overwrite,
    )


def write_reported(out_dir: Path, progress: Progress | None, **fields: Any) -> Edition:
    """:func:`~dataperf.editions.write_edition` of ``fields`` to ``out_dir``, reported to
    ``progress`` as the step "writing edition" (0 of 1 before, 1 of 1 after)."""
    if progress is not None:
        progress("writing edition", 0, 1)
    edition = write_edition(out_dir, **fields)
    if progress is not None:
        progress("writing edition", 1, 1)
    return edition


def build_by_hand(build: Callable[..., Edition], description: str) -> None:
    """A builder's command line: ``out_dir [--seed N] [--limit N] [--overwrite]``."""
    import argparse

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--overwrite", action="store_true")
    arguments = parser.parse_args()
    built = build(arguments.out_dir, seed=arguments.seed, limit=arguments.limit,
                  overwrite=arguments.overwrite)
    print(f"built {built.path} (content hash {built.content_hash})")


def _parameters(
    *,
    pool_size: int,
    test_size: int,
    n_examples: int,
    seed: int,
    train: Split,
    t10k: Split,
    model_digest: str,
) -> dict[str, Any]:
    return {
        "seed": seed,
        "concepts": {c: {"class": CONCEPT_CLASSES[c]} for c in CONCEPTS},
        "pool": {"split": POOL_SPLIT, "size": pool_size, "sampling": "stratified by class"},
        "test": {
            "split": TEST_SPLIT,
            "size_per_task": test_size,
            "positive_share": TEST_POSITIVE_SHARE,
            "negatives": "uniform over all other classes; tasks' test sets are disjoint",
        },
        "examples_per_task": n_examples,
        "embedding": {
            "network": "Open-NSFW (ResNet-50 1by2), global average pool output, 1024-d",
            "input": "28x28 grayscale, bilinear upsampling to 224x224, gray copied to B, G and R, "
            "channel means [104, 117, 123] subtracted",
            "reduction": f"PCA to {EMBEDDING_DIM}-d fitted on the pool (eigenvectors of the "
            "covariance, largest loading positive)",
            "dim": EMBEDDING_DIM,
            "dtype": "float16",
            "network_sha256": model_digest,
        },
        "annotator": {
            "description": "multinomial logistic regression on 7x7 average-pooled pixels, "
            "trained on train-split images outside the pool with some labels replaced by "
            "random classes and look-alike classes partly labelled as the concept; confidence "
            "= predicted probability of the concept's class",
            "train_size": ANNOTATOR_TRAIN_SIZE,
            "pooling": ANNOTATOR_POOLING,
            "label_noise": ANNOTATOR_LABEL_NOISE,
            "confusions": {c: {"look_alike": a, "share": r}
                           for c, (a, r) in ANNOTATOR_CONFUSIONS.items()},
            "C": ANNOTATOR_C,
            "max_iter": ANNOTATOR_MAX_ITER,
        },
        "source_sha256": {"train": train.sha256, "t10k": t10k.sha256},
    }
