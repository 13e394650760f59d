"""The vision edition's weak labels: a deliberately imperfect annotator trained on pooled
pixels of noisily labelled images, its confidence per concept.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

from dataperf.challenges.vision_selection.build.sources import (
    CLASS_NAMES,
    CONCEPT_CLASSES,
    CONCEPTS,
    IMAGE_SIDE,
    N_CLASSES,
)

ANNOTATOR_TRAIN_SIZE = 1_500
ANNOTATOR_POOLING = 4
ANNOTATOR_LABEL_NOISE = 0.10
#: Confusable-class noise: in the annotator's training labels this share of each look-alike
#: class is labelled as the concept, so the annotator systematically tags dresses as trousers
#: and sandals as sneakers, the way machine labellers confuse similar concepts. Participants'
#: known examples are true positives, which is what lets good methods undo the confusion.
ANNOTATOR_CONFUSIONS: dict[str, tuple[str, float]] = {
    "Trouser": ("Dress", 0.6),
    "Sneaker": ("Sandal", 0.6),
}
ANNOTATOR_C = 1.0
ANNOTATOR_MAX_ITER = 1_000


# --------------------------------------------------------------------------- annotator


def pooled_pixels(images: np.ndarray, pooling: int = ANNOTATOR_POOLING) -> np.ndarray:
    """Features of the annotator: average pooling to 7x7, scaled to [0, 1]."""
    side = IMAGE_SIDE // pooling
    blocks = images.reshape(len(images), side, pooling, side, pooling).astype(np.float64)
    return blocks.mean(axis=(2, 4)).reshape(len(images), -1) / 255.0


def noisy_labels(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Labels with a share ``ANNOTATOR_LABEL_NOISE`` replaced by random classes, then the
    confusable classes of ``ANNOTATOR_CONFUSIONS`` partly relabelled as their concepts."""
    noisy = labels.astype(np.int64)
    flip = rng.random(len(noisy)) < ANNOTATOR_LABEL_NOISE
    noisy[flip] = rng.integers(0, N_CLASSES, int(flip.sum()))
    for concept, (look_alike, share) in ANNOTATOR_CONFUSIONS.items():
        confused = (labels == CLASS_NAMES.index(look_alike)) & (rng.random(len(labels)) < share)
        noisy[confused] = CONCEPT_CLASSES[concept]
    return noisy


def train_annotator(images: np.ndarray, labels: np.ndarray) -> LogisticRegression:
    """A deliberately weak multinomial classifier on pooled pixels of a few images."""
    model = LogisticRegression(C=ANNOTATOR_C, max_iter=ANNOTATOR_MAX_ITER)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(pooled_pixels(images), labels)
    return model


def annotator_confidences(model: LogisticRegression, images: np.ndarray) -> dict[str, np.ndarray]:
    """Per concept, the annotator's probability that each image shows it (float32)."""
    probabilities = model.predict_proba(pooled_pixels(images))
    columns = {int(c): i for i, c in enumerate(model.classes_)}
    confidences = {}
    for concept in CONCEPTS:
        column = columns.get(CONCEPT_CLASSES[concept])
        values = probabilities[:, column] if column is not None else np.zeros(len(images))
        confidences[concept] = np.clip(values, 0.0, 1.0).astype(np.float32)
    return confidences


