"""The word files of the original DataPerf speech layout, written as the original's pandas does."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq


def write_word_file(path: Path, rows: list[tuple[str, np.ndarray]]) -> None:
    """A word file as pandas writes it: clip_id, mswc_embedding_vector (list<float>), index."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({
        "clip_id": pa.array([clip for clip, _ in rows], pa.string()),
        "mswc_embedding_vector": pa.array([v.tolist() for _, v in rows],
                                          pa.list_(pa.float32())),
        "__index_level_0__": pa.array(range(len(rows)), pa.int64()),
    }), path)
