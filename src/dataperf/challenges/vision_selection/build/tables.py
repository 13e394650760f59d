"""The vision edition's tables (pool, examples, weak labels, test), each sorted by its keys.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from dataperf.challenges.vision_selection.build.sources import (
    CONCEPTS,
)
from dataperf.editions import (
    embedding_column,
)

# --------------------------------------------------------------------------- tables


def sorted_table(columns: dict[str, Any], keys: list[str]) -> pa.Table:
    """A table of ``columns`` sorted by ``keys`` (ascending)."""
    table = pa.table(columns)
    return table.sort_by([(k, "ascending") for k in keys]) if table.num_rows else table


def pool_table(ids: list[str], embeddings: np.ndarray) -> pa.Table:
    return sorted_table(
        {"id": pa.array(ids, pa.string()), "embedding": embedding_column(embeddings)},
        ["id"],
    )


def examples_table(ids: list[str], examples: dict[str, np.ndarray]) -> pa.Table:
    tasks = [c for c in CONCEPTS for _ in examples[c]]
    chosen = [ids[i] for c in CONCEPTS for i in examples[c]]
    return sorted_table(
        {"task": pa.array(tasks, pa.string()), "id": pa.array(chosen, pa.string())},
        ["task", "id"],
    )


def weak_labels_table(ids: list[str], confidences: dict[str, np.ndarray]) -> pa.Table:
    return sorted_table(
        {
            "id": pa.array([i for _ in CONCEPTS for i in ids], pa.string()),
            "task": pa.array([c for c in CONCEPTS for _ in ids], pa.string()),
            "confidence": pa.array(
                np.concatenate([confidences[c] for c in CONCEPTS]), pa.float32()
            ),
        },
        ["task", "id"],
    )


def test_table(
    ids: dict[str, list[str]], embeddings: dict[str, np.ndarray], labels: dict[str, np.ndarray]
) -> pa.Table:
    return sorted_table(
        {
            "task": pa.array([c for c in CONCEPTS for _ in ids[c]], pa.string()),
            "id": pa.array([i for c in CONCEPTS for i in ids[c]], pa.string()),
            "embedding": embedding_column(np.concatenate([embeddings[c] for c in CONCEPTS])),
            "label": pa.array(np.concatenate([labels[c] for c in CONCEPTS]), pa.int8()),
        },
        ["task", "id"],
    )


