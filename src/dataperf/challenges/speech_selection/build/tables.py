"""The speech edition's tables from the plan, the clips' IDs and their embeddings."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pyarrow as pa

from dataperf.challenges.speech_selection.build.plan import Clip
from dataperf.challenges.speech_selection.build.sources import (
    BUDGETS,
    LANGUAGES,
    NONTARGET,
    WordLists,
)
from dataperf.challenges.vision_selection.build import sorted_table
from dataperf.editions import embedding_column

# --------------------------------------------------------------------------- tables


def true_label(clip: Clip, targets: tuple[str, ...]) -> str:
    return clip.word if clip.word in targets else NONTARGET


def make_tables(
    clips: list[Clip], ids: list[str], vectors: np.ndarray, words: dict[str, WordLists]
) -> dict[str, pa.Table]:
    """The edition's tables from the plan, one ID and one float16 vector per clip."""
    pool = [k for k, c in enumerate(clips) if c.split == "pool"]
    test = [k for k, c in enumerate(clips) if c.split == "test"]
    tasks_of = {lang: [f"{lang}_{b}" for b in BUDGETS] for lang in LANGUAGES}
    candidate_rows = [(t, k) for k in pool for t in tasks_of[clips[k].language]]
    test_rows = [(t, k) for k in test for t in tasks_of[clips[k].language]]

    def string(values: Iterable[Any]) -> pa.Array:
        return pa.array(list(values), pa.string())

    return {
        "public/pool.parquet": sorted_table(
            {"id": string(ids[k] for k in pool), "embedding": embedding_column(vectors[pool])},
            ["id"],
        ),
        "public/candidates.parquet": sorted_table(
            {
                "task": string(t for t, _ in candidate_rows),
                "id": string(ids[k] for _, k in candidate_rows),
                "label": string(clips[k].label for _, k in candidate_rows),
            },
            ["task", "label", "id"],
        ),
        "hidden/test.parquet": sorted_table(
            {
                "task": string(t for t, _ in test_rows),
                "id": string(ids[k] for _, k in test_rows),
                "embedding": embedding_column(vectors[[k for _, k in test_rows]]),
                "label": string(
                    true_label(clips[k], words[clips[k].language].targets) for _, k in test_rows
                ),
            },
            ["task", "id"],
        ),
        "hidden/clip_facts.parquet": sorted_table(
            {
                "id": string(ids),
                "language": string(c.language for c in clips),
                "split": string(c.split for c in clips),
                "word": string(c.word for c in clips),
                "label": string(c.label for c in clips),
                "engine": string(c.voice.engine for c in clips),
                "voice": string(c.voice.name for c in clips),
                "speed": pa.array([c.speed for c in clips], pa.float64()),
                "pitch": pa.array([c.pitch for c in clips], pa.int8()),
                "gain_db": pa.array([c.gain_db for c in clips], pa.float64()),
                "shift_s": pa.array([c.shift_s for c in clips], pa.float64()),
                "noise": string(c.noise for c in clips),
                "snr_db": pa.array([c.snr_db for c in clips], pa.float64()),
                "damage": string(c.damage for c in clips),
                "neighbour": string(c.neighbour for c in clips),
            },
            ["language", "split", "id"],
        ),
    }


