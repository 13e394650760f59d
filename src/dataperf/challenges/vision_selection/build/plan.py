"""The plan of the vision edition: the pool, the annotator's images, the test sets, the
examples and the IDs, drawn from the seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dataperf.challenges.vision_selection.build.annotator import ANNOTATOR_TRAIN_SIZE, noisy_labels
from dataperf.challenges.vision_selection.build.sources import (
    CLASS_NAMES,
    CONCEPT_CLASSES,
    CONCEPTS,
    N_CLASSES,
    POOL_SPLIT,
    TEST_POSITIVE_SHARE,
    TEST_SPLIT,
)
from dataperf.editions import (
    make_ids,
)

# --------------------------------------------------------------------------- sampling


def sample_pool(labels: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of a class-stratified random pool (classes as equal as ``size`` allows)."""
    quota = np.full(N_CLASSES, size // N_CLASSES)
    quota[rng.choice(N_CLASSES, size % N_CLASSES, replace=False)] += 1
    chosen = []
    for cls in range(N_CLASSES):
        members = np.flatnonzero(labels == cls)
        if quota[cls] > len(members):
            raise ValueError(f"a pool of {size} needs more {CLASS_NAMES[cls]} images than exist")
        chosen.append(rng.choice(members, quota[cls], replace=False))
    return rng.permutation(np.concatenate(chosen))


def sample_tests(
    labels: np.ndarray, size: int, share: float, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Per concept, indices of a test set of ``size`` images; tasks' test sets are disjoint."""
    positives = round(size * share)
    if not 0 < positives < size:
        raise ValueError(f"a test set of {size} with {share:.0%} positives needs both classes")
    free = np.ones(len(labels), dtype=bool)
    tests = {}
    for concept in CONCEPTS:
        is_positive = labels == CONCEPT_CLASSES[concept]
        pos_pool = np.flatnonzero(free & is_positive)
        neg_pool = np.flatnonzero(free & ~is_positive)
        if positives > len(pos_pool) or size - positives > len(neg_pool):
            raise ValueError(f"the {TEST_SPLIT} split has too few images for {size} per task")
        chosen = np.concatenate(
            [
                rng.choice(pos_pool, positives, replace=False),
                rng.choice(neg_pool, size - positives, replace=False),
            ]
        )
        free[chosen] = False
        tests[concept] = rng.permutation(chosen)
    return tests


def sample_examples(
    pool_labels: np.ndarray, n_examples: int, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Per concept, positions (in the pool) of ``n_examples`` random positive pool images."""
    examples = {}
    for concept in CONCEPTS:
        positives = np.flatnonzero(pool_labels == CONCEPT_CLASSES[concept])
        if n_examples > len(positives):
            raise ValueError(
                f"the pool has {len(positives)} {concept} images, fewer than {n_examples} examples"
            )
        examples[concept] = np.sort(rng.choice(positives, n_examples, replace=False))
    return examples


@dataclass(frozen=True)
class Plan:
    """Everything random about a build: which images go where, and their IDs."""

    pool: np.ndarray  # train indices of the pool images
    pool_ids: list[str]
    examples: dict[str, np.ndarray]  # per task, positions in the pool
    annotator_set: np.ndarray  # train indices the annotator learns from (outside the pool)
    annotator_labels: np.ndarray  # their labels, with noise
    tests: dict[str, np.ndarray]  # per task, t10k indices
    test_ids: dict[str, list[str]]


def make_plan(
    train_labels: np.ndarray,
    test_labels: np.ndarray,
    *,
    pool_size: int,
    test_size: int,
    n_examples: int,
    seed: int,
) -> Plan:
    """Draw the pool, annotator set, test sets, examples and IDs from generators of ``seed``."""
    if pool_size < 1 or test_size < 2 or n_examples < 1:
        raise ValueError("pool_size and n_examples must be positive and test_size at least 2")
    if pool_size + ANNOTATOR_TRAIN_SIZE > len(train_labels):
        raise ValueError(
            f"pool_size can be at most {len(train_labels) - ANNOTATOR_TRAIN_SIZE}: the annotator "
            f"is trained on {ANNOTATOR_TRAIN_SIZE} other {POOL_SPLIT} images"
        )
    pool_rng, annotator_rng, test_rng, example_rng, id_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(5)
    )
    pool = sample_pool(train_labels, pool_size, pool_rng)
    outside = np.setdiff1d(np.arange(len(train_labels)), pool)
    annotator_set = np.sort(annotator_rng.choice(outside, ANNOTATOR_TRAIN_SIZE, replace=False))
    annotator_labels = noisy_labels(train_labels[annotator_set], annotator_rng)
    tests = sample_tests(test_labels, test_size, TEST_POSITIVE_SHARE, test_rng)
    examples = sample_examples(train_labels[pool], n_examples, example_rng)
    ids = make_ids(pool_size + len(CONCEPTS) * test_size, id_rng)
    test_ids = {
        c: ids[pool_size + k * test_size : pool_size + (k + 1) * test_size]
        for k, c in enumerate(CONCEPTS)
    }
    return Plan(pool, ids[:pool_size], examples, annotator_set, annotator_labels, tests, test_ids)


