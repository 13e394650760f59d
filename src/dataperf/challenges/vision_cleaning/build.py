"""Build the offline edition of vision cleaning from real images, with known label noise.

The images and their embeddings are those of vision selection (:mod:`..vision_selection.build`,
reused, not copied): Fashion-MNIST from the Debian package ``dataset-fashion-mnist``, embedded
with the Open-NSFW network's 1024-d pooled layer and reduced to 256-d float16 by the PCA that
vision selection fits on its pool for the same seed and pool size. So an image has the same
vector in both challenges, and the raw network embeddings come from the same cache
(``$DATAPERF_HOME/cache/vision-selection``).

Tasks: 4 binary concepts (a Fashion-MNIST class against all others) x 2 kinds of label noise,
named ``{Concept}-{noise}``, plus one larger task ``Shirt-annotator-large``.

* Training rows (``train_size``, noisy labels) and clean validation rows (``validation_size``)
  come from vision selection's pool (the train split); they are disjoint within a task and each
  half positive, the negatives drawn uniformly from the other classes. Test rows
  (``test_size``, half positive) come from the t10k split, so no test image is ever a training
  image. Tasks draw independently: one image may appear in several tasks (with other IDs).
* Noise: exactly ``round(noise_rate * train_size)`` training labels are flipped.

  - ``random``: a uniformly random set of rows.
  - ``annotator``: the rows an imperfect annotator finds most confusable. The annotator is vision
    selection's (multinomial logistic regression on 7x7 pooled pixels, trained on noisy labels
    that confuse dresses with trousers and sandals with sneakers). For each row it gives the
    probability of the concept, ``p``; the probability of the wrong label is ``p`` for a negative
    and ``1 - p`` for a positive. The rows with the highest wrong-label probability are flipped
    (ties broken by a seeded random key). The noise is structured and class-dependent, like a
    machine labeller's mistakes: the look-alike classes it was taught to confuse are mislabelled
    as the concept (with seed 0, every dress in Trouser tasks, every sandal in Sneaker tasks),
    and hard positives it does not recognise are labelled negative (60% of the shirts in Shirt
    tasks and of the bags in Bag tasks, where it flips almost no negatives); most classes are
    never flipped. ``parameters.tasks`` of the manifest records the flips per task.

* IDs: opaque 16-character hex strings from the seeded generator, unique in the edition.

Everything random comes from ``numpy`` generators derived from ``seed``; a build is reproducible
bit for bit on one machine.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from sklearn.linear_model import LogisticRegression

from dataperf import home
from dataperf.challenges.vision_selection import build as vs
from dataperf.editions import Edition, embedding_column, make_ids
from dataperf.exceptions import EditionError

__all__ = [
    "BUILDER_VERSION",
    "CONCEPTS",
    "CONCEPT_CLASSES",
    "LARGE_TASK",
    "NOISE_RATE",
    "NOISE_TYPES",
    "Plan",
    "TaskPlan",
    "TaskSizes",
    "annotator_flips",
    "build",
    "make_plan",
    "random_flips",
    "selection_pool",
    "task_names",
]

CHALLENGE = "vision-cleaning"
EDITION = "offline"
BUILDER = "dataperf.challenges.vision_cleaning.build"
BUILDER_VERSION = "1"

#: Concepts, easy to hard-ish; each task is "this class" (1) against all others (0).
CONCEPTS: tuple[str, ...] = ("Trouser", "Sneaker", "Shirt", "Bag")
CONCEPT_CLASSES: dict[str, int] = {c: vs.CLASS_NAMES.index(c) for c in CONCEPTS}
NOISE_TYPES: tuple[str, ...] = ("random", "annotator")
NOISE_RATE = 0.3
#: The larger task: (concept, noise); named ``{concept}-{noise}-large``.
LARGE_TASK: tuple[str, str] = ("Shirt", "annotator")

# A tag mixed into the seed, so these streams differ from vision selection's of the same seed.
STREAM_TAG = 0x5EC1EA


@dataclass(frozen=True)
class TaskSizes:
    train: int
    validation: int
    test: int


DEFAULT_SIZES = TaskSizes(300, 100, 500)
DEFAULT_LARGE_SIZES = TaskSizes(3_000, 300, 1_000)


def task_names(large: bool = True) -> list[str]:
    """Task names in edition order: concept by concept, each noise type, then the large task."""
    names = [f"{c}-{n}" for c in CONCEPTS for n in NOISE_TYPES]
    return [*names, f"{LARGE_TASK[0]}-{LARGE_TASK[1]}-large"] if large else names


# --------------------------------------------------------------------------- noise


def random_flips(n: int, rate: float, rng: np.random.Generator) -> np.ndarray:
    """Sorted positions of exactly ``round(rate * n)`` rows drawn uniformly."""
    return np.sort(rng.choice(n, round(rate * n), replace=False))


def annotator_flips(
    wrong_probability: np.ndarray, rate: float, rng: np.random.Generator
) -> np.ndarray:
    """Sorted positions of the ``round(rate * n)`` rows with the highest probability of the
    wrong label under the annotator; ties broken by a random key."""
    n = len(wrong_probability)
    tiebreak = rng.random(n)
    order = np.lexsort((tiebreak, -np.asarray(wrong_probability, dtype=np.float64)))
    return np.sort(order[: round(rate * n)])


def wrong_label_probability(
    annotator: LogisticRegression, images: np.ndarray, concept: str, labels: np.ndarray
) -> np.ndarray:
    """Per image, the annotator's probability of the other binary label than ``labels``."""
    probabilities = annotator.predict_proba(vs.pooled_pixels(images))
    columns = {int(c): i for i, c in enumerate(annotator.classes_)}
    column = columns.get(CONCEPT_CLASSES[concept])
    p = probabilities[:, column] if column is not None else np.zeros(len(images))
    return np.where(labels == 1, 1.0 - p, p)


# --------------------------------------------------------------------------- plan


@dataclass(frozen=True)
class TaskPlan:
    """One task: which images, their true labels and which training labels are flipped."""

    name: str
    concept: str
    noise: str
    train: np.ndarray  # train-split indices, in row (index) order
    validation: np.ndarray  # train-split indices
    test: np.ndarray  # t10k indices
    train_labels: np.ndarray  # true 0/1 labels of the training rows
    validation_labels: np.ndarray
    test_labels: np.ndarray
    flipped: np.ndarray  # sorted row positions whose label is flipped
    train_ids: list[str]
    validation_ids: list[str]
    test_ids: list[str]

    @property
    def noisy_labels(self) -> np.ndarray:
        noisy = self.train_labels.copy()
        noisy[self.flipped] = 1 - noisy[self.flipped]
        return noisy


@dataclass(frozen=True)
class Plan:
    pool: np.ndarray  # vision selection's pool (train indices): PCA basis and training images
    tasks: list[TaskPlan]


def selection_pool(
    train_labels: np.ndarray, test_labels: np.ndarray, *, pool_size: int, seed: int
) -> vs.Plan:
    """Vision selection's plan for ``pool_size`` and ``seed``: its pool (on which the PCA is
    fitted) and its annotator's training set. Both come from their own generators, so they do
    not depend on the test and example sizes passed here."""
    return vs.make_plan(
        train_labels, test_labels, pool_size=pool_size, test_size=4, n_examples=1, seed=seed
    )


def _balanced(
    labels: np.ndarray, candidates: np.ndarray, cls: int, sizes: Sequence[int],
    rng: np.random.Generator, where: str,
) -> list[np.ndarray]:
    """Disjoint draws from ``candidates``, one per size, each half of class ``cls`` (rounded
    down) and the rest uniformly from the other classes; each draw in random order."""
    positives = candidates[labels[candidates] == cls]
    negatives = candidates[labels[candidates] != cls]
    n_pos = [s // 2 for s in sizes]
    n_neg = [s - s // 2 for s in sizes]
    if sum(n_pos) > len(positives) or sum(n_neg) > len(negatives):
        raise ValueError(
            f"{where} has {len(positives)} {vs.CLASS_NAMES[cls]} images and {len(negatives)} "
            f"others, too few for {' + '.join(map(str, sizes))} half-positive rows"
        )
    pos = rng.choice(positives, sum(n_pos), replace=False)
    neg = rng.choice(negatives, sum(n_neg), replace=False)
    draws = []
    p_start = n_start = 0
    for p, q in zip(n_pos, n_neg, strict=True):
        chosen = np.concatenate([pos[p_start : p_start + p], neg[n_start : n_start + q]])
        draws.append(rng.permutation(chosen))
        p_start, n_start = p_start + p, n_start + q
    return draws


def make_plan(
    train_images: np.ndarray,
    train_labels: np.ndarray,
    test_labels: np.ndarray,
    *,
    pool_size: int,
    sizes: TaskSizes,
    large_sizes: TaskSizes | None,
    noise_rate: float,
    seed: int,
) -> Plan:
    """Draw every task's rows, noise and IDs from generators of ``seed``."""
    if min(sizes.train, sizes.validation, sizes.test) < 2 or (
        large_sizes and min(large_sizes.train, large_sizes.validation, large_sizes.test) < 2
    ):
        raise ValueError("every task needs at least 2 training, validation and test rows")
    if not 0 < noise_rate < 1:
        raise ValueError(f"the noise rate must be between 0 and 1, got {noise_rate}")
    selection = selection_pool(train_labels, test_labels, pool_size=pool_size, seed=seed)
    annotator = vs.train_annotator(
        train_images[selection.annotator_set], selection.annotator_labels
    )
    sample_rng, noise_rng, id_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence([STREAM_TAG, seed]).spawn(3)
    )
    specs = [(f"{c}-{n}", c, n, sizes) for c in CONCEPTS for n in NOISE_TYPES]
    if large_sizes is not None:
        concept, noise = LARGE_TASK
        specs.append((f"{concept}-{noise}-large", concept, noise, large_sizes))
    total = sum(s.train + s.validation + s.test for *_, s in specs)
    ids = iter(make_ids(total, id_rng))
    all_test = np.arange(len(test_labels))
    tasks = []
    for name, concept, noise, task_sizes in specs:
        cls = CONCEPT_CLASSES[concept]
        train, validation = _balanced(
            train_labels, selection.pool, cls, [task_sizes.train, task_sizes.validation],
            sample_rng, f"the pool of {pool_size}",
        )
        (test,) = _balanced(
            test_labels, all_test, cls, [task_sizes.test], sample_rng, f"the {vs.TEST_SPLIT} split"
        )
        truth = (train_labels[train] == cls).astype(np.int8)
        if noise == "random":
            flipped = random_flips(len(train), noise_rate, noise_rng)
        else:
            wrong = wrong_label_probability(annotator, train_images[train], concept, truth)
            flipped = annotator_flips(wrong, noise_rate, noise_rng)
        tasks.append(
            TaskPlan(
                name=name, concept=concept, noise=noise,
                train=train, validation=validation, test=test,
                train_labels=truth,
                validation_labels=(train_labels[validation] == cls).astype(np.int8),
                test_labels=(test_labels[test] == cls).astype(np.int8),
                flipped=flipped,
                train_ids=[next(ids) for _ in train],
                validation_ids=[next(ids) for _ in validation],
                test_ids=[next(ids) for _ in test],
            )
        )
    return Plan(selection.pool, tasks)


# --------------------------------------------------------------------------- tables


def _tasks_column(tasks: list[TaskPlan], rows: str) -> pa.Array:
    return pa.array([t.name for t in tasks for _ in getattr(t, rows)], pa.string())


def make_tables(
    plan: Plan, train_vectors: dict[int, np.ndarray], test_vectors: dict[int, np.ndarray]
) -> dict[str, pa.Table]:
    """The edition's four tables from the plan and the reduced embeddings by image index."""
    tasks = plan.tasks

    def vectors(lookup: dict[int, np.ndarray], rows: str) -> pa.FixedSizeListArray:
        matrix = np.stack([lookup[int(i)] for t in tasks for i in getattr(t, rows)])
        return embedding_column(matrix)

    index = pa.array(np.concatenate([np.arange(len(t.train)) for t in tasks]), pa.int32())
    return {
        "public/train.parquet": vs.sorted_table(
            {
                "task": _tasks_column(tasks, "train"),
                "index": index,
                "id": pa.array([i for t in tasks for i in t.train_ids], pa.string()),
                "embedding": vectors(train_vectors, "train"),
                "label": pa.array(np.concatenate([t.noisy_labels for t in tasks]), pa.int8()),
            },
            ["task", "index"],
        ),
        "public/validation.parquet": vs.sorted_table(
            {
                "task": _tasks_column(tasks, "validation"),
                "id": pa.array([i for t in tasks for i in t.validation_ids], pa.string()),
                "embedding": vectors(train_vectors, "validation"),
                "label": pa.array(
                    np.concatenate([t.validation_labels for t in tasks]), pa.int8()
                ),
            },
            ["task", "id"],
        ),
        "hidden/test.parquet": vs.sorted_table(
            {
                "task": _tasks_column(tasks, "test"),
                "id": pa.array([i for t in tasks for i in t.test_ids], pa.string()),
                "embedding": vectors(test_vectors, "test"),
                "label": pa.array(np.concatenate([t.test_labels for t in tasks]), pa.int8()),
            },
            ["task", "id"],
        ),
        "hidden/truth.parquet": vs.sorted_table(
            {
                "task": _tasks_column(tasks, "train"),
                "index": index,
                "label": pa.array(np.concatenate([t.train_labels for t in tasks]), pa.int8()),
            },
            ["task", "index"],
        ),
    }


# --------------------------------------------------------------------------- build


def limit_sizes(limit: int) -> tuple[TaskSizes, TaskSizes]:
    """Task sizes of a quick build on a pool of ``limit`` images."""
    small = TaskSizes(max(4, limit // 20), max(2, limit // 60), max(4, limit // 20))
    large = TaskSizes(max(8, limit // 8), max(2, limit // 40), max(8, limit // 10))
    return small, large


def build(
    out_dir: Path,
    *,
    source: Path = vs.DEFAULT_SOURCE,
    pool_size: int = 20_000,
    sizes: TaskSizes = DEFAULT_SIZES,
    large_sizes: TaskSizes | None = DEFAULT_LARGE_SIZES,
    noise_rate: float = NOISE_RATE,
    seed: int = 0,
    cache_dir: Path | None = None,
    progress: vs.Progress | None = None,
    overwrite: bool = False,
    limit: int | None = None,
) -> Edition:
    """Build the offline edition into ``out_dir`` and return it.

    ``pool_size`` is vision selection's pool (PCA basis and source of training and validation
    rows); ``sizes`` are the rows of each of the 8 tasks, ``large_sizes`` those of the large
    task (None: no large task). ``limit`` builds a quick subset instead: a pool of ``limit``
    images and tasks scaled down to match. ``cache_dir`` holds raw network embeddings between
    builds (default ``$DATAPERF_HOME/cache``, shared with vision selection). Raises
    :class:`SourceDataError` if Fashion-MNIST or the build extra is missing or broken,
    :class:`EditionError` for impossible sizes.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not overwrite:
        raise EditionError(f"{out_dir} already exists; pass overwrite to replace it")
    if limit is not None:
        pool_size = limit
        sizes, large_sizes = limit_sizes(limit)
    train, t10k = vs.read_split(Path(source), vs.POOL_SPLIT), vs.read_split(
        Path(source), vs.TEST_SPLIT
    )
    try:
        plan = make_plan(
            train.images, train.labels, t10k.labels,
            pool_size=pool_size, sizes=sizes, large_sizes=large_sizes,
            noise_rate=noise_rate, seed=seed,
        )
    except ValueError as err:
        raise EditionError(f"cannot build the edition with these sizes: {err}") from None

    embedder = vs.Embedder(Path(cache_dir) if cache_dir else home.cache_dir(), progress)
    test_indices = np.unique(np.concatenate([t.test for t in plan.tasks]))
    total = pool_size + len(test_indices)
    pool_raw = embedder.embed(train, plan.pool, total=total)
    test_raw = embedder.embed(t10k, test_indices, done=pool_size, total=total)
    # Exactly vision selection's projection, applied as it does (to the whole pool), so the
    # same image gets the same vector in both editions.
    projection = vs.fit_pca(pool_raw)
    pool_vectors = dict(zip(plan.pool.tolist(), projection(pool_raw), strict=True))
    test_vectors = dict(zip(test_indices.tolist(), projection(test_raw), strict=True))
    tables = make_tables(plan, pool_vectors, test_vectors)

    return vs.write_reported(
        out_dir,
        progress,
        challenge=CHALLENGE,
        edition=EDITION,
        builder=BUILDER,
        builder_version=BUILDER_VERSION,
        tasks=[t.name for t in plan.tasks],
        sources=vs.SOURCES,
        tables=tables,
        parameters=_parameters(
            plan, pool_size=pool_size, noise_rate=noise_rate, seed=seed, train=train,
            t10k=t10k, model_digest=embedder.model_digest,
        ),
        overwrite=overwrite,
    )


def _parameters(
    plan: Plan, *, pool_size: int, noise_rate: float, seed: int, train: vs.Split,
    t10k: vs.Split, model_digest: str,
) -> dict[str, Any]:
    return {
        "seed": seed,
        "tasks": {
            t.name: {
                "concept": t.concept,
                "class": CONCEPT_CLASSES[t.concept],
                "noise": t.noise,
                "train_size": len(t.train),
                "validation_size": len(t.validation),
                "test_size": len(t.test),
                "flipped": len(t.flipped),
                "flipped_positives": int(t.train_labels[t.flipped].sum()),
            }
            for t in plan.tasks
        },
        "noise": {
            "rate": noise_rate,
            "random": "exactly round(rate * n) training labels, chosen uniformly, flipped",
            "annotator": "the round(rate * n) training rows with the highest annotator "
            "probability of the wrong label (p of the concept for a negative, 1 - p for a "
            "positive) flipped; ties broken by a seeded random key. The annotator is vision "
            "selection's (multinomial logistic regression on 7x7 pooled pixels trained on "
            "noisy labels with look-alike confusions)",
            "annotator_confusions": {c: {"look_alike": a, "share": r}
                                     for c, (a, r) in vs.ANNOTATOR_CONFUSIONS.items()},
        },
        "rows": {
            "train_and_validation": f"vision selection's pool of {pool_size} {vs.POOL_SPLIT} "
            "images for this seed; disjoint within a task; half positive, negatives uniform "
            "over the other classes",
            "test": f"the {vs.TEST_SPLIT} split; half positive, negatives uniform over the "
            "other classes",
            "across_tasks": "tasks draw independently; an image may appear in several tasks "
            "under different IDs",
        },
        "embedding": {
            "as": "vision-selection offline edition of the same seed and pool size",
            "network": "Open-NSFW (ResNet-50 1by2), global average pool output, 1024-d",
            "reduction": f"PCA to {vs.EMBEDDING_DIM}-d fitted on the pool",
            "dim": vs.EMBEDDING_DIM,
            "dtype": "float16",
            "network_sha256": model_digest,
        },
        "source_sha256": {"train": train.sha256, "t10k": t10k.sha256},
    }


if __name__ == "__main__":  # pragma: no cover - a convenience for building by hand
    vs.build_by_hand(build, "Build the vision-cleaning offline edition.")
