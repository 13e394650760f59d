"""Data acquisition: the original DAM evaluator (``src/evaluator_submission.py`` of
Data_Acquisition_for_ML_Benchmark, unmodified) next to ``dataperf evaluate data-acquisition
--profile official`` on the same market files in the original layout
(:mod:`acquisition_layout`): the accuracy and the cost of every market must be equal.

The original runs from a copy of its repository with the markets beside its ``src`` folder, as
its relative paths want (``../features/<m>/``, ``../marketinfo/<m>/``), and its ``main`` reads
the configuration it names (``../config/bilge20230301_rf.json``), written here with the
logistic regression (``"model_name": "lr"``), the frozen model of the official profile.

It pairs the s-th count of a submission with the s-th file ``glob`` lists in
``features/<m>/``; the import pairs it with seller ID s. The two agree where the file system
lists the seller files in ID order, which the test arranges (or it skips, saying so).
"""

from __future__ import annotations

import glob
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from acquisition_layout import write_acquisition_layout, write_purchases
from official_layout import dataperf

REPOSITORY = "Data_Acquisition_for_ML_Benchmark"
ORIGINAL_IMPORTS = "numpy, pandas, pyarrow, sklearn"
CONFIG = "bilge20230301_rf.json"  # the name its main() reads
MARKETS = ("0", "1", "2")
SELLER_ROWS = (40, 55, 70, 30)


def listed_in_id_order(folder: Path) -> bool:
    """Whether ``glob`` lists the seller files of ``folder`` as 0.csv, 1.csv, ... (as the
    original's loader does); tries writing them in the reverse order once (tmpfs lists the
    newest first)."""
    def listed() -> list[str]:
        return [Path(p).name for p in glob.glob(str(folder) + "/*.csv")]

    wanted = [f"{s}.csv" for s in range(len(SELLER_ROWS))]
    if listed() == wanted:
        return True
    contents = {name: (folder / name).read_bytes() for name in wanted}
    for name in wanted:
        (folder / name).unlink()
    for name in reversed(wanted):
        (folder / name).write_bytes(contents[name])
    return listed() == wanted


def purchases(rng: np.random.Generator, budget: float, prices: list[float]) -> list[int]:
    """Counts within the budget: a random share of the budget spread over the sellers."""
    share = rng.dirichlet(np.ones(len(prices))) * budget * rng.uniform(0.5, 0.95)
    return [min(n, int(s / (p / n))) for s, p, n in zip(share, prices, SELLER_ROWS, strict=True)]


def test_official_profile_prints_the_original_numbers(original, original_python,
                                                     tmp_path: Path) -> None:
    checkout = original(REPOSITORY)
    python = original_python(ORIGINAL_IMPORTS)
    work = Path("/dev/shm") if Path("/dev/shm").is_dir() else tmp_path  # see listed_in_id_order
    work = Path(shutil.copytree(checkout, work / f"dam-{tmp_path.name}", dirs_exist_ok=True))
    try:
        layout = write_acquisition_layout(work, markets=MARKETS, seller_rows=SELLER_ROWS,
                                          dim=6, buyer_rows=80, seed=5)
        if not all(listed_in_id_order(layout.seller_folder(m)) for m in MARKETS):
            pytest.skip("this file system lists the seller files out of ID order, so the "
                        "original pairs the counts with other sellers than their IDs")
        rng = np.random.default_rng(8)
        counts = {m: purchases(rng, layout.budgets[m], layout.prices[m]) for m in MARKETS}
        submission = write_purchases(work / "submission" / "mine", counts)
        (work / "config").mkdir(exist_ok=True)
        (work / "config" / CONFIG).write_text(json.dumps({
            "instance_ids": list(MARKETS), "submission_path": "../submission/mine/",
            "model_name": "lr", "save_path": "../result/mine.json"}))
        (work / "result").mkdir(exist_ok=True)
        done = subprocess.run([python, "evaluator_submission.py"], cwd=work / "src",
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        theirs = json.loads((work / "result" / "mine.json").read_text())

        home, edition = tmp_path / "home", tmp_path / "edition"
        imported = dataperf("data", "import", "data-acquisition", work, "--out", edition,
                            home=home)
        assert imported.returncode == 0, imported
        scored = dataperf("evaluate", "data-acquisition", submission, "--edition", edition,
                          "--profile", "official", "--json", home=home)
        assert scored.returncode == 0, scored
    finally:
        shutil.rmtree(work, ignore_errors=True)
    ours = {t["task"]: {"acc": t["details"]["accuracy"], "cost": t["details"]["cost"]}
            for t in json.loads(scored.stdout)["tasks"]}
    print("\n".join(f"market {m}: original {theirs[m]}, ours {ours[m]}" for m in MARKETS))
    assert ours == theirs
    assert len({round(m["acc"], 6) for m in ours.values()}) > 1  # the markets really differ
