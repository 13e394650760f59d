"""Cached embeddings on disk: chunk files of row indices and their embeddings, written
atomically (shared with the other builders).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np


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


