"""Tiny, seeded files in exactly the layout of the original DataPerf v0.5 vision selection data.

The original ``data/`` directory of the challenge repository holds::

    embeddings/train_emb_256_dataperf.parquet/     a Spark output directory: part files
        part-00000-<uuid>-c000.snappy.parquet      ImageID (16 hex digits), embedding
        ...                                        (list<float32>), plus _SUCCESS
    test_sets/alpha_test_set_{Concept}_256.parquet ImageID, Confidence (0/1), embedding
    examples/alpha_example_set_{Concept}.csv       LabelName,ImageID,Confidence,OriginalURL,
                                                   DisplayName (positives from the pool)

and Open Images publishes ``oidv6-train-annotations-human-imagelabels.csv``
(ImageID,Source,LabelName,Confidence), from which weak labels of the concepts are imported.

The data is learnable: every concept is a Gaussian cluster around its own centre, background
images cluster around the origin, so a logistic regression on a sensible selection scores well
above chance, and a poor selection scores visibly worse.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

# Concept -> Open Images label name (the real MIDs of the three v0.5 concepts).
CONCEPTS: dict[str, str] = {"Cupcake": "/m/03p1r4", "Hawk": "/m/0fp7c", "Sushi": "/m/07030"}
# A label that is not a concept: its rows in the label file must not become weak labels.
OTHER_LABEL = "/m/01g317"
POOL_PATH = "embeddings/train_emb_256_dataperf.parquet"
LABELS_FILE = "oidv6-train-annotations-human-imagelabels.csv"
EXAMPLE_HEADER = ["LabelName", "ImageID", "Confidence", "OriginalURL", "DisplayName"]


def concept_test_path(concept: str) -> str:
    return f"test_sets/alpha_test_set_{concept}_256.parquet"


def concept_example_path(concept: str) -> str:
    return f"examples/alpha_example_set_{concept}.csv"


@dataclass(frozen=True)
class OfficialLayout:
    """What was written, for tests to compare against (they should still read the files)."""

    root: Path
    dim: int
    pool_ids: list[str]  # in part-file order
    pool_embeddings: np.ndarray  # (N, dim) float32
    pool_concept: np.ndarray  # (N,) index into CONCEPTS, -1 for background
    examples: dict[str, list[str]]  # concept -> example ImageIDs
    weak_labels: dict[tuple[str, str], int] | None  # (ImageID, concept) -> Confidence

    def positives(self, concept: str) -> list[str]:
        index = list(CONCEPTS).index(concept)
        return [i for i, c in zip(self.pool_ids, self.pool_concept, strict=True) if c == index]

    def negatives(self, concept: str) -> list[str]:
        index = list(CONCEPTS).index(concept)
        return [i for i, c in zip(self.pool_ids, self.pool_concept, strict=True) if c != index]


def _hex_ids(rng: np.random.Generator, n: int, taken: set[str]) -> list[str]:
    ids: list[str] = []
    while len(ids) < n:
        candidate = f"{int(rng.integers(0, 2**63)):016x}"
        if candidate not in taken:
            taken.add(candidate)
            ids.append(candidate)
    return ids


def _embedding_table(columns: dict[str, pa.Array], embeddings: np.ndarray) -> pa.Table:
    flat = pa.array(np.asarray(embeddings, dtype=np.float32).reshape(-1), pa.float32())
    offsets = pa.array(np.arange(0, embeddings.size + 1, embeddings.shape[1], dtype=np.int32))
    listed = pa.ListArray.from_arrays(offsets, flat)  # list<float32>, as Spark writes arrays
    return pa.table({**columns, "embedding": listed})


def write_official_layout(
    root: Path,
    *,
    seed: int = 0,
    dim: int = 16,
    pool_rows: int = 360,
    parts: int = 3,
    test_rows: int = 80,
    n_examples: int = 10,
    weak_labels: bool = True,
) -> OfficialLayout:
    """Write the original layout under ``root`` (created) and describe what was written."""
    if not 5 <= n_examples <= 20:
        raise ValueError("the original example sets hold 5-20 positives per concept")
    rng = np.random.default_rng(seed)
    root = Path(root)
    concepts = list(CONCEPTS)
    centres = rng.normal(size=(len(concepts), dim))
    centres *= 2.5 / np.linalg.norm(centres, axis=1, keepdims=True)
    taken: set[str] = set()

    def sample(membership: np.ndarray) -> np.ndarray:
        noise = rng.normal(size=(len(membership), dim))
        shift = np.where(membership[:, None] >= 0, centres[np.maximum(membership, 0)], 0.0)
        return (shift + noise).astype(np.float32)

    # Pool: 55% background, 15% per concept, in Spark part files.
    membership = rng.choice([-1, 0, 1, 2], size=pool_rows, p=[0.55, 0.15, 0.15, 0.15])
    pool_ids = _hex_ids(rng, pool_rows, taken)
    pool_embeddings = sample(membership)
    pool_dir = root / POOL_PATH
    pool_dir.mkdir(parents=True)
    job = uuid.UUID(int=int(rng.integers(0, 2**63)))
    for part, rows in enumerate(np.array_split(np.arange(pool_rows), parts)):
        table = _embedding_table({"ImageID": pa.array([pool_ids[i] for i in rows])},
                                 pool_embeddings[rows])
        pq.write_table(table, pool_dir / f"part-{part:05d}-{job}-c000.snappy.parquet",
                       compression="snappy")
    (pool_dir / "_SUCCESS").write_bytes(b"")

    # Test sets: half positives of the concept, half other images; IDs not in the pool.
    (root / "test_sets").mkdir()
    for c, concept in enumerate(concepts):
        positives = test_rows // 2
        others = rng.choice([-1, *[o for o in range(len(concepts)) if o != c]],
                            size=test_rows - positives, p=[0.7, 0.15, 0.15])
        test_membership = np.concatenate([np.full(positives, c), others])
        order = rng.permutation(test_rows)
        test_membership = test_membership[order]
        table = _embedding_table(
            {"ImageID": pa.array(_hex_ids(rng, test_rows, taken)),
             "Confidence": pa.array((test_membership == c).astype(np.int64))},
            sample(test_membership))
        pq.write_table(table, root / concept_test_path(concept), compression="snappy")

    # Example sets: positives from the pool.
    (root / "examples").mkdir()
    examples: dict[str, list[str]] = {}
    for c, concept in enumerate(concepts):
        candidates = np.flatnonzero(membership == c)
        chosen = rng.choice(candidates, size=n_examples, replace=False)
        examples[concept] = [pool_ids[i] for i in chosen]
        path = root / concept_example_path(concept)
        with open(path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(EXAMPLE_HEADER)
            for image_id in examples[concept]:
                writer.writerow([CONCEPTS[concept], image_id, 1,
                                 f"https://farm1.staticflickr.com/1/{image_id}_o.jpg", concept])

    # Open Images human labels: about 3/4 of the pool is labelled for each concept, with 10%
    # of the answers wrong; a label that is not a concept is mixed in.
    labels: dict[tuple[str, str], int] | None = None
    if weak_labels:
        labels = {}
        with open(root / LABELS_FILE, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(["ImageID", "Source", "LabelName", "Confidence"])
            for i, image_id in enumerate(pool_ids):
                if rng.random() < 0.2:
                    writer.writerow([image_id, "crowdsource-verification", OTHER_LABEL, 1])
                for c, concept in enumerate(concepts):
                    if rng.random() < 0.25:
                        continue
                    answer = int(membership[i] == c) ^ int(rng.random() < 0.1)
                    labels[(image_id, concept)] = answer
                    writer.writerow([image_id, "verification", CONCEPTS[concept], answer])

    return OfficialLayout(root=root, dim=dim, pool_ids=pool_ids,
                          pool_embeddings=pool_embeddings, pool_concept=membership,
                          examples=examples, weak_labels=labels)


def write_csv_submission(directory: Path, selections: dict[str, dict[str, int]]) -> Path:
    """The original CSV format: ``{Concept}.csv`` with header ``ImageID,Confidence``."""
    directory.mkdir(parents=True, exist_ok=True)
    for concept, rows in selections.items():
        with open(directory / f"{concept}.csv", "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(["ImageID", "Confidence"])
            writer.writerows(rows.items())
    return directory


def write_json_submission(directory: Path, selections: dict[str, dict[str, int]]) -> Path:
    """The original JSON format: ``{Concept}.json`` holding ``{ImageID: 0|1}``."""
    directory.mkdir(parents=True, exist_ok=True)
    for concept, rows in selections.items():
        (directory / f"{concept}.json").write_text(json.dumps(rows, indent=1), encoding="utf-8")
    return directory


def sample_selection(layout: OfficialLayout, *, seed: int = 1, positives: int = 25,
                     negatives: int = 50, noise: float = 0.0) -> dict[str, dict[str, int]]:
    """A plausible selection per concept, in shuffled order: true positives and negatives of
    the pool, with a fraction ``noise`` of the labels flipped."""
    rng = np.random.default_rng(seed)
    selections: dict[str, dict[str, int]] = {}
    for concept in CONCEPTS:
        pos = list(rng.choice(layout.positives(concept), size=positives, replace=False))
        neg = list(rng.choice(layout.negatives(concept), size=negatives, replace=False))
        rows = [(str(i), 1) for i in pos] + [(str(i), 0) for i in neg]
        rows = [rows[k] for k in rng.permutation(len(rows))]
        selections[concept] = {
            image_id: label ^ int(rng.random() < noise) for image_id, label in rows}
    return selections


# --------------------------------------------------------------------------------------------
# Running the real ``dataperf`` command


def dataperf_command() -> list[str]:
    """The installed console script of the environment running the tests."""
    script = Path(sys.executable).with_name("dataperf")
    if script.is_file():
        return [str(script)]
    found = shutil.which("dataperf")
    if found is None:
        raise RuntimeError("the dataperf command is not installed in this environment")
    return [found]


def cli_env(home: Path, columns: int = 500) -> dict[str, str]:
    """The environment of a user whose DataPerf data lives in ``home``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATAPERF_")}
    env.update({"DATAPERF_HOME": str(home), "COLUMNS": str(columns), "NO_COLOR": "1",
                "TERM": "dumb"})
    return env


@dataclass(frozen=True)
class CliResult:
    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def out(self) -> str:
        """stdout with runs of whitespace collapsed (tables and long lines may wrap)."""
        return " ".join(self.stdout.split())

    @property
    def err(self) -> str:
        return " ".join(self.stderr.split())

    def __str__(self) -> str:
        return (f"dataperf {' '.join(self.args)} -> exit {self.returncode}\n"
                f"--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}")


def start_dataperf(*args: str | Path, home: Path, cwd: Path | None = None,
                   columns: int = 500, stdin: bool = False
                   ) -> tuple[tuple[str, ...], subprocess.Popen[str]]:
    """Start ``dataperf ARGS`` without waiting (several can run at once); see :func:`finish`."""
    words = tuple(str(a) for a in args)
    process = subprocess.Popen([*dataperf_command(), *words], cwd=cwd,
                               env=cli_env(home, columns), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, stdin=subprocess.PIPE if stdin else None,
                               text=True)
    return words, process


def finish(started: tuple[tuple[str, ...], subprocess.Popen[str]],
           timeout: float = 180, input: str | None = None) -> CliResult:
    words, process = started
    try:
        stdout, stderr = process.communicate(input=input, timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        stdout, stderr = process.communicate()
    return CliResult(words, process.returncode, stdout, stderr)


def dataperf(*args: str | Path, home: Path, cwd: Path | None = None,
             columns: int = 500, input: str | None = None) -> CliResult:
    """Run ``dataperf ARGS`` as a user would (typing ``input``) and wait for it."""
    started = start_dataperf(*args, home=home, cwd=cwd, columns=columns,
                             stdin=input is not None)
    return finish(started, input=input)
