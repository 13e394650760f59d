"""Raw sentence embeddings of the tweets, cached in chunks, and their PCA to 64-d float16."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from dataperf.challenge import Progress
from dataperf.challenges.data_acquisition.build.sources import CHALLENGE
from dataperf.challenges.vision_selection.build import load_chunks, store_chunk
from dataperf.editions import sha256_file
from dataperf.learners import sentence_embedding

RAW_DIM = 384
EMBEDDING_DIM = 64
EMBED_VERSION = "1"
EMBED_BATCH = 64


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
