"""Vision selection: the original evaluator (``main.py`` of dataperf-vision-selection,
unmodified, on Spark) next to ``dataperf evaluate vision-selection --profile official`` on the
same files in the original layout (:mod:`official_layout`): accuracy, precision and recall of
every concept must be equal, and our F1 in percent the original's F1 times 100.

The original reads its ``task_setup.yaml``, written here for the layout's folder and dimension;
it reads the training CSV with Spark (labels as the strings ``"0"``/``"1"``, scored with
``pos_label='1'``), so the test sets hold their labels as those strings too. It needs pyspark
(and a Java runtime), fire, pyyaml, scikit-learn and pandas under ``DATAPERF_ORIGINALS_PYTHON``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from official_layout import (
    CONCEPTS,
    POOL_PATH,
    concept_test_path,
    dataperf,
    sample_selection,
    write_csv_submission,
    write_official_layout,
)

REPOSITORY = "dataperf-vision-selection"
ORIGINAL_IMPORTS = "fire, pandas, pyspark, sklearn, yaml"
METRICS = ("accuracy", "precision", "recall")


def with_text_labels(path: Path) -> None:
    """The test set's ``Confidence`` as the strings "0"/"1", as the original scores them."""
    table = pq.read_table(path)
    at = table.schema.get_field_index("Confidence")
    pq.write_table(table.set_column(at, "Confidence", table.column("Confidence").cast(pa.string())),
                   path)


def run_original(python: str, checkout: Path, data: Path, dim: int, work: Path) -> dict:
    """The scores the original saves in its results folder."""
    (data / "results").mkdir()
    setup = {"spark_driver_memory": "2g", "data_dir": str(data), "emb_file": POOL_PATH,
             "results_dir": "results", "dim": dim, "eval_tasks": list(CONCEPTS),
             "docker_data_dir": str(data)}
    setup |= {c: [f"train_sets/{c}.csv", concept_test_path(c)] for c in CONCEPTS}
    (work / "task_setup.yaml").write_text(yaml.safe_dump(setup))
    done = subprocess.run([python, str(checkout / "main.py"), "--setup_yaml_path",
                           str(work / "task_setup.yaml")], cwd=checkout, capture_output=True,
                          text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    (result,) = (data / "results").glob("result_*.json")
    scores: dict = json.loads(result.read_text())
    return scores


def test_official_profile_prints_the_original_numbers(original, original_python,
                                                     tmp_path: Path) -> None:
    checkout = original(REPOSITORY)
    python = original_python(ORIGINAL_IMPORTS)
    layout = write_official_layout(tmp_path / "data", dim=32, pool_rows=900, test_rows=300)
    for concept in CONCEPTS:
        with_text_labels(layout.root / concept_test_path(concept))
    submission = write_csv_submission(tmp_path / "submission",
                                      sample_selection(layout, seed=4, noise=0.15))
    shutil.copytree(submission, layout.root / "train_sets")
    theirs = run_original(python, checkout, layout.root, layout.dim, tmp_path)

    home, edition = tmp_path / "home", tmp_path / "edition"
    imported = dataperf("data", "import", "vision-selection", layout.root, "--out", edition,
                        home=home)
    assert imported.returncode == 0, imported
    scored = dataperf("evaluate", "vision-selection", submission, "--edition", edition,
                      "--profile", "official", "--json", home=home)
    assert scored.returncode == 0, scored
    tasks = {t["task"]: t for t in json.loads(scored.stdout)["tasks"]}
    ours = {c: {m: tasks[c]["details"][m] for m in METRICS} for c in CONCEPTS}
    print("\n".join(f"{c}: original {theirs[c]}, ours {ours[c]}, F1 {tasks[c]['value']}"
                    for c in CONCEPTS))
    assert ours == {c: {m: theirs[c][m] for m in METRICS} for c in CONCEPTS}
    for c in CONCEPTS:  # F1 in percent: the same digits
        assert tasks[c]["value"] == pytest.approx(100 * theirs[c]["f1"], rel=1e-15, abs=0)
