"""Vision cleaning: the original debugging evaluator (``app/main.py`` of
dataperf-vision-debugging, unmodified) next to ``dataperf evaluate --profile official`` on the
same files in the original layout: every number it prints or writes must be equal.

One task of the original's size (300 training rows with 30% of the labels flipped, 100
validation and 500 test rows, 2048-d encodings), a random cleaning order submitted under the
original name ``{task}_random.txt`` beside its ``time_{task}_random.txt``. The original needs
torch, pandas, pyarrow, pyyaml, tqdm, loguru and xgboost; ``DATAPERF_ORIGINALS_PYTHON`` names
an interpreter that has them (default: the one running the tests).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

TASK = "01g317-flipped"
DIM, TRAIN, VAL, TEST, FLIPPED = 2048, 300, 100, 500, 90
RANK = 32  # the encodings' latent dimension
ORIGINAL_IMPORTS = "loguru, pandas, pyarrow, torch, tqdm, xgboost, yaml"
SETUP = f"""paths:
  embedding_folder: embeddings/
  groundtruth_folder: data/
  submission_folder: submissions/
  results_folder: results/
tasks:
  - data_id: {TASK}
    train_size: {TRAIN}
    noise_level: 0.3
    test_size: {TEST}
    val_size: {VAL}
"""


def write_original_layout(root: Path, seed: int = 0) -> None:
    """Two overlapping classes of non-negative, low-rank 2048-d encodings (like pooled CNN
    features), written as the original's files. They are not separable, so the training
    accuracies of the thresholds differ and the threshold rule matters."""
    rng = np.random.default_rng(seed)
    projection = rng.normal(size=(RANK, DIM)) / np.sqrt(RANK)
    direction = rng.normal(size=RANK)
    direction /= np.linalg.norm(direction)

    def rows(n: int, split: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
        labels = rng.integers(0, 2, n)
        latent = rng.normal(size=(n, RANK)) + np.outer(2 * labels - 1, direction)
        x = np.maximum(0.5 * latent @ projection + 0.1 * rng.normal(size=(n, DIM)) + 0.3, 0)
        return x.astype(np.float32), labels, [f"{split}/{k:08x}.jpg" for k in range(n)]

    def write(name: str, x: np.ndarray, labels: np.ndarray, filenames: list[str]) -> None:
        pq.write_table(pa.table({
            "encoding": pa.array(list(x), pa.list_(pa.float32())),
            "label": pa.array(labels, pa.int64()),
            "filename": pa.array(filenames, pa.string()),
        }), root / "embeddings" / name)

    (root / "embeddings").mkdir(parents=True)
    (root / "data").mkdir()
    x, truth, names = rows(TRAIN, "train")
    noisy = truth.copy()
    noisy[rng.choice(TRAIN, FLIPPED, replace=False)] ^= 1
    write(f"{TASK}_train_0.3_{TRAIN}.parquet", x, noisy, names)
    write(f"{TASK}_val_{VAL}.parquet", *rows(VAL, "val"))
    write(f"{TASK}_test_{TEST}.parquet", *rows(TEST, "test"))
    ground_truth = ["ImageID,hv_label", *(f"{n},{t}" for n, t in zip(names, truth, strict=True))]
    (root / "data" / f"dataset_{TASK}_train.csv").write_text("\n".join(ground_truth) + "\n")
    (root / "submissions").mkdir()
    order = rng.permutation(TRAIN)
    (root / "submissions" / f"{TASK}_random.txt").write_text("\n".join(map(str, order)) + "\n")
    (root / "submissions" / f"time_{TASK}_random.txt").write_text("0.001\n")
    (root / "results").mkdir()
    (root / "task_setup.yml").write_text(SETUP)


def run_original(python: str, checkout: Path, root: Path) -> tuple[float, dict]:
    """The accuracy it prints before cleaning and the evaluation file it writes."""
    done = subprocess.run([python, str(checkout / "app" / "main.py")], cwd=root,
                          capture_output=True, text=True, timeout=3600,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    prefix = f"On task [{TASK}]: Accuracy before cleaning: "
    printed = [line for line in done.stdout.splitlines() if line.startswith(prefix)]
    assert len(printed) == 1, done.stdout
    evaluation = json.loads((root / "results" / f"{TASK}_evaluation.json").read_text())
    return float(printed[0][len(prefix):]), evaluation


def run_dataperf(root: Path, tmp_path: Path) -> dict:
    """``dataperf data import`` of the original files, then ``dataperf evaluate`` (official)."""
    cli = [sys.executable, "-c", "from dataperf.cli import main; main()"]
    edition = tmp_path / "edition"
    subprocess.run([*cli, "data", "import", "vision-cleaning", str(root), "--out",
                    str(edition)], check=True, capture_output=True)
    done = subprocess.run([*cli, "evaluate", "vision-cleaning", str(root / "submissions"),
                           "--edition", str(edition), "--profile", "official", "--json"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert f"time_{TASK}_random.txt" in done.stderr  # the run-time file: ignored, with a warning
    score: dict = json.loads(done.stdout)
    return score


def test_official_profile_prints_the_original_numbers(original, original_python, tmp_path):
    checkout = original("dataperf-vision-debugging")
    root = tmp_path / "original"
    write_original_layout(root)
    before, evaluation = run_original(original_python(ORIGINAL_IMPORTS), checkout, root)
    ours = run_dataperf(root, tmp_path)
    (task,) = ours["tasks"]
    curve = task["details"]["curve"]  # rounded test accuracy after 0..300 fixes
    steps = evaluation["submitted_evaluations"]
    print(f"{TASK}: original fraction_fixes "
          f"{evaluation['auc_score']['random']['fraction_fixes']}, ours {task['value']}; "
          f"accuracy before cleaning: original {before}, ours {curve[0]}")
    assert [s["submission"] for s in steps] == ["random"] * TRAIN
    assert [s["fixes"] for s in steps] == list(range(1, TRAIN + 1))
    assert before == evaluation["before_acc"] == curve[0] == task["details"]["noisy_accuracy"]
    assert [s["accuracy"] for s in steps] == curve[1:]
    assert evaluation["auc_score"]["random"]["fraction_fixes"] == task["value"]
    assert task["details"]["method"] == "random"
    assert 0 < task["value"] < 1
