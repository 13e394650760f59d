"""An organizer's keyword-spotting challenge from a declarative file: candidates with words,
test rows labelled by word, then an algorithm run and scored like the built-in speech one."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from dataperf.challenges.declarative import create_from_file
from dataperf.exceptions import SourceDataError, SpecError
from dataperf.kinds.selection import SelectionChallenge

WORDS = {"de_20": ["ja", "nein", "halt"], "fr_20": ["oui", "non", "stop"]}
DIM = 6


def spec() -> dict[str, Any]:
    return {
        "name": "doorbell-words", "kind": "selection", "title": "Doorbell keywords",
        "classes": ["other"], "formats": ["keywords"], "metric": "macro_f1", "budget": 20,
        "model": {"name": "svc_lr_soft_voting"}, "seeds": [1, 2], "scale": 1,
        "data": {
            "pool": {"path": "pool.parquet", "id": "clip", "embedding": "vec"},
            "candidates": {"path": "candidates.csv", "id": "clip", "task": "task",
                           "label": "word"},
            "test": {"path": "test.parquet", "id": "clip", "task": "task", "embedding": "vec",
                     "label": "word"},
        },
        "sources": [{"name": "Recorded doorbell words", "licence": "CC BY 4.0",
                     "origin": "the organizers"}],
    }


def write_files(directory: Path, mapping: dict[str, Any]) -> Path:
    rng = np.random.default_rng(0)
    pool, candidates, test = [], [], []
    for task, words in WORDS.items():
        centres = {w: rng.normal(size=DIM) * 3 for w in [*words, "other"]}
        for word in [*words, "other"]:
            for i in range(12):
                clip = f"{task}/{word}/{i:05d}"
                pool.append((clip, centres[word] + rng.normal(size=DIM)))
                candidates.append((clip, task, word))
                test.append((f"eval/{clip}", task, centres[word] + rng.normal(size=DIM), word))
    pq.write_table(pa.table({"clip": [p[0] for p in pool], "vec": pa.array(
        [p[1].astype(np.float32) for p in pool], pa.list_(pa.float32()))}),
        directory / "pool.parquet")
    with open(directory / "candidates.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["clip", "task", "word"])
        writer.writerows(candidates)
    pq.write_table(pa.table({
        "clip": [t[0] for t in test], "task": [t[1] for t in test],
        "vec": pa.array([t[2].astype(np.float32) for t in test], pa.list_(pa.float32())),
        "word": [t[3] for t in test]}), directory / "test.parquet")
    path = directory / "spec.yaml"
    path.write_text(yaml.safe_dump(mapping, sort_keys=False), encoding="utf-8")
    return path


def test_a_keyword_challenge_is_created_run_and_scored(tmp_path):
    edition = create_from_file(write_files(tmp_path, spec()), out_dir=tmp_path / "edition")
    challenge = SelectionChallenge.from_mapping(edition.manifest.spec, origin="manifest")
    assert challenge.task_classes(edition, "fr_20") == ["other", "non", "oui", "stop"]
    files = challenge.run_algorithm("random", edition)
    assert sorted(files) == ["de_20_train.json", "fr_20_train.json"]
    document = json.loads(files["de_20_train.json"])
    assert set(document["targets"]) <= {"ja", "nein", "halt"}
    score = challenge.score(challenge.parse_submission(files, edition), edition)
    assert all(0.5 < t.value <= 1 for t in score.tasks)  # well separated words


def test_keyword_challenges_need_candidates_and_only_they(tmp_path):
    mapping = spec()
    del mapping["data"]["candidates"]
    with pytest.raises(SpecError, match=r"data\.candidates"):
        create_from_file(write_files(tmp_path, mapping), out_dir=tmp_path / "edition")
    assert not (tmp_path / "edition").exists()


def test_test_labels_must_be_words_of_their_task(tmp_path):
    path = write_files(tmp_path, spec())
    table = pq.read_table(tmp_path / "test.parquet")
    words = table.column("word").to_pylist()
    words[0] = "oui"  # a French word in a German task
    pq.write_table(table.set_column(3, "word", pa.array(words)), tmp_path / "test.parquet")
    with pytest.raises(SourceDataError, match=r"de_20: oui"):
        create_from_file(path, out_dir=tmp_path / "edition")
