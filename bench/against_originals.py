"""Our scorers next to the original DataPerf reference evaluators, unmodified, on the same files:
wall time, CPU time and peak memory of each, their ratios, and whether the scores are equal.

``ORIGINALS`` is a folder of checkouts of the public reference repositories, named as for
``make conformance`` (``dataperf-speech-example``, ``dataperf-vision-debugging``,
``Data_Acquisition_for_ML_Benchmark``, ``dataperf-vision-selection``); nothing of theirs is
copied into this repository. ``--python`` names an interpreter with their requirements (pandas,
fire, tqdm, PyYAML, scikit-learn, pyarrow, torch, xgboost, loguru, pyspark and a Java runtime);
default ``DATAPERF_ORIGINALS_PYTHON``, else this one. The data are generated in the originals'
layouts by the tests' generators (``tests/speech_layout.py``, ``tests/official_layout.py``,
``tests/acquisition_layout.py``, the cleaning layout of ``tests/conformance``) at the sizes below.

Per challenge, on the same submission files:

- **speech selection**: ``eval.py --language en --train_size N`` for each size against
  ``dataperf evaluate speech-selection DIR --profile official`` on a folder holding that task's
  file alone. One language (``en``) of the original's size: 1024-d float32 clips, 5 target words,
  an allowed pool of 2,500 target and 8,000 nontarget clips (200 words), an evaluation set of
  32,000 clips (2,000 of the targets, 30,000 nontargets of 300 words; the original's English
  evaluation set has about 32,000 clips, the other counts are not published).
- **vision cleaning**: ``app/main.py`` against ``dataperf evaluate vision-cleaning`` on one task
  of the original's size (300 training rows, 30% flipped, 100 validation, 500 test rows, 2048-d),
  a random cleaning order: the whole 300-point curve and the AUC must be equal.
- **data acquisition**: ``src/evaluator_submission.py`` (logistic regression) against
  ``dataperf evaluate data-acquisition`` on one market of the original DAM's size (20 sellers of
  1,500 to 30,000 rows, 768-d, float64 CSV, 1,000 buyer rows; ``--acquisition-scale`` shrinks
  the sellers), a tenth of every seller bought: accuracy and cost must be equal.
- **vision selection**: ``main.py`` (Spark, the driver memory of its own ``task_setup.yaml``)
  against ``dataperf evaluate vision-selection`` on 3 concepts, a pool of ``--pool-rows`` 256-d
  images, 5,000 test rows per concept, 1,000 training rows per concept: accuracy, precision and
  recall equal, F1 the original's times 100.

Each command runs as its own process under ``/usr/bin/time`` (when present): wall time, CPU
time (user + system of the process and its children) and peak memory (the larger of the
process's maximum resident set and the process tree's summed RSS, polled every 20 ms, which
counts Spark's JVM). Both sides run with one BLAS/OpenMP/numba thread, as a scoring slot does.
Ours is run once untimed first (numba's compilation cache, as on a deployed worker) and then
``--repeat`` times (median); each original once. Importing the files into an edition
(``dataperf data import``, once per edition, by the organizer) is timed and shown apart.
Targets (at equal scores): speech >= 20x per task with no more memory than the original's;
data acquisition >= 100x under 1 GB; vision selection >= 30x; vision cleaning >= 50x.

    python bench/against_originals.py ORIGINALS [--only speech cleaning acquisition selection]
        [--python PY] [--work DIR] [--repeat 3] [--acquisition-scale 1.0] [--pool-rows N]
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import psutil
import yaml

TESTS = Path(__file__).resolve().parents[1] / "tests"
sys.path[:0] = [str(TESTS), str(TESTS / "conformance")]

from test_vision_cleaning import TASK as CLEANING_TASK  # noqa: E402
from test_vision_cleaning import TRAIN as CLEANING_ROWS  # noqa: E402
from test_vision_cleaning import write_original_layout as write_cleaning_layout  # noqa: E402
from test_vision_selection import with_text_labels  # noqa: E402

from acquisition_layout import write_acquisition_layout, write_purchases  # noqa: E402
from official_layout import (  # noqa: E402
    CONCEPTS,
    POOL_PATH,
    cli_env,
    concept_test_path,
    dataperf_command,
    sample_selection,
    write_csv_submission,
    write_official_layout,
)
from speech_layout import write_word_file  # noqa: E402

ONE_THREAD = {name: "1" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                     "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")}
TIME = shutil.which("time", path="/usr/bin")
CHALLENGES = ("speech", "cleaning", "acquisition", "selection")
TARGETS = {"speech": 20.0, "cleaning": 50.0, "acquisition": 100.0, "selection": 30.0}
ACQUISITION_MEMORY_MB = 1024.0
MB = 1024 * 1024


# --------------------------------------------------------------------------------------------
# Measuring one process


@dataclass(frozen=True)
class Run:
    wall: float
    cpu: float
    peak_mb: float
    stdout: str
    stderr: str


def measure(argv: Sequence[str | Path], *, cwd: Path, env: dict[str, str],
            timeout: float = 3600) -> Run:
    """Run ``argv`` to its end; fails with its stderr when it exits non-zero."""
    with tempfile.TemporaryDirectory() as scratch:
        report = Path(scratch) / "time.txt"
        words = [str(a) for a in argv]
        command = [TIME, "-f", "%M", "-o", str(report), *words] if TIME else words
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        process = subprocess.Popen(command, cwd=cwd, env={**env, **ONE_THREAD},
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        tree = _TreePoller(process.pid, skip_root=TIME is not None)
        tree.start()
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        finally:
            wall = time.perf_counter() - start
            tree.stop()
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if process.returncode:
            raise RuntimeError(f"{' '.join(words)} exited {process.returncode}:\n"
                               f"{stderr[-4000:]}")
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        max_rss = float(report.read_text().split()[-1]) / 1024 if TIME else 0.0  # KiB
    return Run(wall, max(cpu, tree.cpu), max(max_rss, tree.peak / MB), stdout, stderr)


class _TreePoller(threading.Thread):
    """Peak summed RSS and the last CPU times of a process and its descendants (descendants
    that their parent does not wait for, such as Spark's JVM, escape ``getrusage``)."""

    def __init__(self, pid: int, *, skip_root: bool) -> None:
        super().__init__(daemon=True)
        self.pid, self.skip_root = pid, skip_root
        self.peak = 0.0
        self._cpu: dict[int, float] = {}
        self._done = threading.Event()

    @property
    def cpu(self) -> float:
        return sum(self._cpu.values())

    def run(self) -> None:
        try:
            root = psutil.Process(self.pid)
        except psutil.Error:
            return
        while not self._done.is_set():
            try:
                processes = [root, *root.children(recursive=True)]
            except psutil.Error:
                return
            total = 0
            for process in processes:
                if self.skip_root and process.pid == self.pid:
                    continue
                try:
                    total += process.memory_info().rss
                    times = process.cpu_times()
                    self._cpu[process.pid] = times.user + times.system
                except psutil.Error:
                    pass
            self.peak = max(self.peak, total)
            self._done.wait(0.02)

    def stop(self) -> None:
        self._done.set()
        self.join()


def ours_command(*args: str | Path) -> list[str]:
    return [*dataperf_command(), *(str(a) for a in args)]


def measure_ours(args: Sequence[str | Path], *, home: Path, repeat: int) -> tuple[Run, dict]:
    """``dataperf ARGS --json``: once untimed, then ``repeat`` times; the median run and the
    scores it printed (every run must print the same)."""
    env = cli_env(home)
    warm = measure(ours_command(*args, "--json"), cwd=home, env=env)
    runs = [measure(ours_command(*args, "--json"), cwd=home, env=env) for _ in range(repeat)]
    for run in runs:
        if json.loads(run.stdout)["tasks"] != json.loads(warm.stdout)["tasks"]:
            raise RuntimeError("two runs of ours printed different scores")
    runs.sort(key=lambda run: run.wall)
    median = runs[len(runs) // 2]
    return median, json.loads(median.stdout)


WARM_SCORING = """
import json, sys, time
from dataperf.registry import get_challenge
from dataperf.submission_files import read_submission
name, submission, edition, repeat = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
found = get_challenge(name)
opened = found.edition(edition)
times = []
for _ in range(repeat + 1):
    start = time.perf_counter()
    parsed = found.parse_submission(read_submission(submission), opened, profile="official")
    score = found.score(parsed, opened, profile="official")
    times.append(time.perf_counter() - start)
print(json.dumps({"times": times[1:], "tasks": [[t.task, t.value] for t in score.tasks]}))
"""


def measure_warm(challenge: str, submission: Path, edition: Path, *, home: Path,
                 repeat: int) -> float:
    """Median seconds of parsing and scoring the submission in a warm process (imports done,
    the edition opened and scored once), as a scoring slot of the platform does per job."""
    python = Path(dataperf_command()[0]).with_name("python")
    done = measure([python, "-c", WARM_SCORING, challenge, submission, edition, str(repeat)],
                   cwd=home, env=cli_env(home))
    return float(statistics.median(json.loads(done.stdout)["times"]))


def import_edition(challenge: str, source: Path, edition: Path, home: Path) -> Run:
    return measure(ours_command("data", "import", challenge, source, "--out", edition),
                   cwd=home, env=cli_env(home))


# --------------------------------------------------------------------------------------------
# The table


@dataclass
class Row:
    task: str
    original: Run
    ours: Run
    equal: bool
    scores: str
    warm: float | None = None  # ours in a warm process, seconds
    memory_limit: Callable[[Row], bool] = field(default=lambda row: True)


def report(challenge: str, title: str, rows: list[Row], notes: list[str]) -> bool:
    target = TARGETS[challenge]
    print(f"\n## {title} (load average {os.getloadavg()[0]:.2f} / "
          f"{os.getloadavg()[1]:.2f}, {os.cpu_count()} cores)")
    for note in notes:
        print(note)
    head = (f"{'task':<18} {'original wall / CPU / peak':>30} {'ours wall / CPU / peak':>28} "
            f"{'wall':>7} {'CPU':>7} {'memory':>7}  equal  target")
    print(head)
    print("-" * len(head))
    met_all = True
    for row in rows:
        o, u = row.original, row.ours
        ratio = o.wall / u.wall
        met = row.equal and ratio >= target and row.memory_limit(row)
        met_all &= met
        print(f"{row.task:<18} {o.wall:8.2f} s {o.cpu:7.2f} s {o.peak_mb:7.0f} MB "
              f"{u.wall:6.2f} s {u.cpu:6.2f} s {u.peak_mb:6.0f} MB "
              f"{ratio:6.1f}x {o.cpu / u.cpu:6.1f}x {o.peak_mb / u.peak_mb:6.2f}x  "
              f"{'yes' if row.equal else 'NO':<5}  {'met' if met else 'missed'} "
              f"(>= {target:g}x)")
    for row in rows:
        print(f"  {row.task}: {row.scores}")
        if row.warm is not None:
            print(f"  {row.task}: ours in a warm process (what a scoring slot pays per job, "
                  f"imports and the opened edition kept): {row.warm:.3f} s, "
                  f"{row.original.wall / row.warm:.0f}x")
    return met_all


# --------------------------------------------------------------------------------------------
# Speech selection

SPEECH_DIM = 1024
SPEECH_TARGETS = ["left", "right", "stop", "learn", "yes"]
SPEECH_SIZES = (25, 60)
SPEECH_SMOKE = {"target_pool": 60, "target_unlisted": 5, "known_words": 20, "known_pool": 10,
                "target_eval": 20, "known_eval": 10, "unknown_words": 10, "unknown_eval": 10}
SCORE = re.compile(r"^Score:\s+(\S+)\s*$", re.MULTILINE)


def write_speech_language(folder: Path, *, seed: int = 2023, target_pool: int = 500,
                          target_unlisted: int = 60, known_words: int = 200,
                          known_pool: int = 40, target_eval: int = 400, known_eval: int = 100,
                          unknown_words: int = 100, unknown_eval: int = 100) -> dict:
    """``dataperf_en_data`` in the original layout (see the module's docstring for the sizes):
    each word's clips scatter around their own centre, a fifth carry another word's sound. The
    word files' row order is neither the lists' nor the IDs'. Returns the allowed set."""
    rng = np.random.default_rng(seed)
    known = [f"en{i:03d}" for i in range(known_words)]
    unknown = [f"en-eval{i:03d}" for i in range(unknown_words)]
    words = [*SPEECH_TARGETS, *known, *unknown]
    centres = dict(zip(words, rng.normal(size=(len(words), SPEECH_DIM)), strict=True))
    known_centres = np.stack([centres[w] for w in known])
    counter = iter(range(10**8))

    def clips(word: str, n: int) -> list[tuple[str, np.ndarray]]:
        bad = rng.random(n) < 0.2  # a bad cut: another word's sound
        shift = np.where(bad[:, None], known_centres[rng.integers(0, len(known), n)],
                         centres[word])
        vectors = (shift + rng.normal(size=(n, SPEECH_DIM)) * 1.6).astype(np.float32)
        return [(f"{word}/common_voice_en_{next(counter):08d}.opus", v) for v in vectors]

    def write(split: str, word: str, rows: list[tuple[str, np.ndarray]]) -> None:
        order = rng.permutation(len(rows))
        write_word_file(folder / split / f"{word}.parquet", [rows[k] for k in order])

    allowed: dict = {"targets": {}, "nontargets": []}
    evaluation: dict = {"targets": {}, "nontargets": []}
    for word in SPEECH_TARGETS:
        listed = clips(word, target_pool)
        write("train_embeddings", word, [*listed, *clips(word, target_unlisted)])
        allowed["targets"][word] = [clip for clip, _ in listed]
        held_out = clips(word, target_eval)
        write("eval_embeddings", word, held_out)
        evaluation["targets"][word] = [clip for clip, _ in held_out]
    for word in known:
        listed = clips(word, known_pool)
        write("train_embeddings", word, listed)
        allowed["nontargets"] += [clip for clip, _ in listed]
    for word, n in [*((w, known_eval) for w in known), *((w, unknown_eval) for w in unknown)]:
        held_out = clips(word, n)
        write("eval_embeddings", word, held_out)
        evaluation["nontargets"] += [clip for clip, _ in held_out]
    evaluation["nontargets"] = [evaluation["nontargets"][k]
                                for k in rng.permutation(len(evaluation["nontargets"]))]
    for name, data in (("allowed_training_set.yaml", allowed), ("eval.yaml", evaluation)):
        (folder / name).write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return allowed


def speech_selection(allowed: dict, size: int, rng: np.random.Generator) -> dict:
    """The original's random baseline: the budget split evenly over the classes."""
    per_class = size // (len(allowed["targets"]) + 1)
    targets = {w: rng.permutation(ids)[:per_class].tolist()
               for w, ids in allowed["targets"].items()}
    nontargets = rng.permutation(allowed["nontargets"])[:size - per_class * len(targets)]
    return {"targets": targets, "nontargets": nontargets.tolist()}


def bench_speech(checkout: Path, python: str, work: Path, repeat: int, smoke: bool) -> bool:
    data = work / "data"
    folder = data / "dataperf_en_data"
    started = time.perf_counter()
    allowed = write_speech_language(folder, **(SPEECH_SMOKE if smoke else {}))
    written = time.perf_counter() - started
    rng = np.random.default_rng(7)
    home, edition = work / "home", work / "edition"
    home.mkdir()
    imported = import_edition("speech-selection", data, edition, home)
    rows = []
    for size in SPEECH_SIZES:
        task = f"en_{size}"
        submission = work / "submission" / task
        submission.mkdir(parents=True)
        (submission / f"{task}_train.json").write_text(
            json.dumps(speech_selection(allowed, size, rng), sort_keys=True, indent=4))
        original = measure(
            [python, "eval.py", "--language", "en", "--train_size", str(size),
             "--eval_embeddings_dir", folder / "eval_embeddings",
             "--train_embeddings_dir", folder / "train_embeddings",
             "--allowed_training_set", folder / "allowed_training_set.yaml",
             "--eval_file", folder / "eval.yaml",
             "--train_file", submission / f"{task}_train.json",
             "--config_file", "workspace/dataperf_speech_config.yaml"],
            cwd=checkout, env=dict(os.environ))
        (theirs,) = SCORE.findall(original.stdout)
        ours, scored = measure_ours(["evaluate", "speech-selection", submission, "--edition",
                                     edition, "--profile", "official"], home=home,
                                    repeat=repeat)
        (value,) = [t["value"] for t in scored["tasks"] if t["task"] == task]
        warm = measure_warm("speech-selection", submission, edition, home=home, repeat=repeat)
        rows.append(Row(task, original, ours, repr(value) == theirs,
                        f"original {theirs}, ours {value!r}", warm=warm,
                        memory_limit=lambda row: row.ours.peak_mb <= row.original.peak_mb))
    evaluation = yaml.safe_load((folder / "eval.yaml").read_text())
    n_eval = sum(map(len, evaluation["targets"].values())) + len(evaluation["nontargets"])
    n_pool = sum(map(len, allowed["targets"].values())) + len(allowed["nontargets"])
    notes = [f"1 language (en), {SPEECH_DIM}-d, pool {n_pool:,} clips, evaluation "
             f"{n_eval:,} clips; files written in {written:.1f} s; `dataperf data import` "
             f"{imported.wall:.1f} s, {imported.peak_mb:.0f} MB (once per edition). Target: "
             f">= {TARGETS['speech']:g}x and ours' peak <= the original's."]
    return report("speech", "Speech selection: eval.py vs dataperf evaluate --profile official",
                  rows, notes)


# --------------------------------------------------------------------------------------------
# Vision cleaning


def bench_cleaning(checkout: Path, python: str, work: Path, repeat: int) -> bool:
    root = work / "original"
    write_cleaning_layout(root)
    home, edition = work / "home", work / "edition"
    home.mkdir()
    imported = import_edition("vision-cleaning", root, edition, home)
    original = measure([python, checkout / "app" / "main.py"], cwd=root, env=dict(os.environ))
    prefix = f"On task [{CLEANING_TASK}]: Accuracy before cleaning: "
    (before,) = [float(line[len(prefix):]) for line in original.stdout.splitlines()
                 if line.startswith(prefix)]
    evaluation = json.loads((root / "results" / f"{CLEANING_TASK}_evaluation.json").read_text())
    ours, scored = measure_ours(["evaluate", "vision-cleaning", root / "submissions",
                                 "--edition", edition, "--profile", "official"], home=home,
                                repeat=repeat)
    (task,) = scored["tasks"]
    curve = task["details"]["curve"]
    theirs = evaluation["auc_score"]["random"]["fraction_fixes"]
    equal = (before == evaluation["before_acc"] == curve[0]
             and [s["accuracy"] for s in evaluation["submitted_evaluations"]] == curve[1:]
             and theirs == task["value"])
    warm = measure_warm("vision-cleaning", root / "submissions", edition, home=home,
                        repeat=repeat)
    rows = [Row(CLEANING_TASK, original, ours, equal,
                f"fraction_fixes original {theirs!r}, ours {task['value']!r}; the "
                f"{CLEANING_ROWS + 1}-point curve {'equal' if equal else 'DIFFERS'}",
                warm=warm)]
    notes = [f"1 task: {CLEANING_ROWS} training rows (30% flipped), 100 validation, 500 test, "
             f"2048-d, a random order; `dataperf data import` {imported.wall:.1f} s."]
    return report("cleaning", "Vision cleaning: app/main.py vs dataperf evaluate "
                  "--profile official", rows, notes)


# --------------------------------------------------------------------------------------------
# Data acquisition

DAM_SELLERS, DAM_MIN_ROWS, DAM_MAX_ROWS, DAM_DIM, DAM_BUYER_ROWS = 20, 1_500, 30_000, 768, 1_000
DAM_CONFIG = "bilge20230301_rf.json"  # the name its main() reads


def bench_acquisition(checkout: Path, python: str, work: Path, repeat: int,
                      scale: float) -> bool:
    """The market files are written on disk under ``work``; the original runs from a copy of
    its repository on tmpfs whose ``features/0/`` holds links to them, written so that ``glob``
    lists the sellers in ID order (the order in which the import pairs them with the counts)."""
    sizes = np.linspace(DAM_MIN_ROWS, DAM_MAX_ROWS, DAM_SELLERS) * scale
    seller_rows = [max(round(float(n)), 20) for n in sizes]
    data = work / "data"
    started = time.perf_counter()
    write_acquisition_layout(data, markets=("0",), seller_rows=seller_rows, dim=DAM_DIM,
                             buyer_rows=DAM_BUYER_ROWS, seed=5)
    written = time.perf_counter() - started
    shm = Path("/dev/shm") if Path("/dev/shm").is_dir() else work
    run_dir = Path(tempfile.mkdtemp(prefix="dam-", dir=shm))
    try:
        shutil.copytree(checkout, run_dir, dirs_exist_ok=True)
        shutil.copytree(data / "marketinfo", run_dir / "marketinfo")
        features = run_dir / "features" / "0"
        features.mkdir(parents=True)
        for s in reversed(range(len(seller_rows))):  # tmpfs lists the newest first
            (features / f"{s}.csv").symlink_to(data / "features" / "0" / f"{s}.csv")
        listed = [Path(p).name for p in glob.glob(f"{features}/*.csv")]  # as the original
        if listed != [f"{s}.csv" for s in range(len(seller_rows))]:
            raise RuntimeError(f"{features} lists the seller files out of ID order: the "
                               "original would pair the counts with other sellers")
        counts = {"0": [n // 10 for n in seller_rows]}  # a tenth of every seller
        submission = write_purchases(run_dir / "submission" / "mine", counts)
        (run_dir / "config" / DAM_CONFIG).write_text(json.dumps({
            "instance_ids": ["0"], "submission_path": "../submission/mine/",
            "model_name": "lr", "save_path": "../result/mine.json"}))
        (run_dir / "result").mkdir(exist_ok=True)
        original = measure([python, "evaluator_submission.py"], cwd=run_dir / "src",
                           env=dict(os.environ))
        theirs = json.loads((run_dir / "result" / "mine.json").read_text())
        home, edition = work / "home", work / "edition"
        home.mkdir()
        imported = import_edition("data-acquisition", run_dir, edition, home)
        ours, scored = measure_ours(["evaluate", "data-acquisition", submission, "--edition",
                                     edition, "--profile", "official"], home=home,
                                    repeat=repeat)
        warm = measure_warm("data-acquisition", submission, edition, home=home,
                            repeat=repeat)
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
    mine = {t["task"]: {"acc": t["details"]["accuracy"], "cost": t["details"]["cost"]}
            for t in scored["tasks"]}
    csv_mb = sum(p.stat().st_size for p in (data / "features" / "0").iterdir()) / MB
    rows = [Row("market 0", original, ours, mine == theirs,
                f"original {theirs['0']}, ours {mine['0']}", warm=warm,
                memory_limit=lambda row: row.ours.peak_mb < ACQUISITION_MEMORY_MB)]
    notes = [f"1 market: {DAM_SELLERS} sellers of {seller_rows[0]:,} to {seller_rows[-1]:,} "
             f"rows ({sum(seller_rows):,}), {DAM_DIM}-d, {csv_mb:,.0f} MB of CSV written in "
             f"{written:.0f} s; a tenth of every seller bought ({sum(counts['0']):,} rows); "
             f"`dataperf data import` {imported.wall:.1f} s, {imported.peak_mb:.0f} MB. "
             f"Target: >= {TARGETS['acquisition']:g}x and ours' peak < 1 GB."]
    return report("acquisition", "Data acquisition: evaluator_submission.py vs dataperf "
                  "evaluate --profile official", rows, notes)


# --------------------------------------------------------------------------------------------
# Vision selection

SELECTION_DIM = 256
SELECTION_METRICS = ("accuracy", "precision", "recall")


def bench_selection(checkout: Path, python: str, work: Path, repeat: int,
                    pool_rows: int, test_rows: int) -> bool:
    started = time.perf_counter()
    layout = write_official_layout(work / "data", dim=SELECTION_DIM, pool_rows=pool_rows,
                                   parts=8, test_rows=test_rows, n_examples=20)
    for concept in CONCEPTS:
        with_text_labels(layout.root / concept_test_path(concept))
    submission = write_csv_submission(
        work / "submission", sample_selection(layout, seed=4, positives=300, negatives=700,
                                              noise=0.15))
    shutil.copytree(submission, layout.root / "train_sets")
    written = time.perf_counter() - started
    (layout.root / "results").mkdir()
    setup = yaml.safe_load((checkout / "task_setup.yaml").read_text())
    setup |= {"data_dir": str(layout.root), "emb_file": POOL_PATH, "results_dir": "results",
              "dim": SELECTION_DIM, "eval_tasks": list(CONCEPTS),
              "docker_data_dir": str(layout.root)}
    setup |= {c: [f"train_sets/{c}.csv", concept_test_path(c)] for c in CONCEPTS}
    (work / "task_setup.yaml").write_text(yaml.safe_dump(setup))
    original = measure([python, checkout / "main.py", "--setup_yaml_path",
                        work / "task_setup.yaml"], cwd=checkout, env=dict(os.environ))
    (result,) = (layout.root / "results").glob("result_*.json")
    theirs = json.loads(result.read_text())
    home, edition = work / "home", work / "edition"
    home.mkdir()
    imported = import_edition("vision-selection", layout.root, edition, home)
    ours, scored = measure_ours(["evaluate", "vision-selection", submission, "--edition",
                                 edition, "--profile", "official"], home=home, repeat=repeat)
    tasks = {t["task"]: t for t in scored["tasks"]}
    equal = all(tasks[c]["details"][m] == theirs[c][m] for c in CONCEPTS
                for m in SELECTION_METRICS)
    equal &= all(abs(tasks[c]["value"] - 100 * theirs[c]["f1"]) <= 1e-15 * tasks[c]["value"]
                 for c in CONCEPTS)
    f1 = ", ".join(f"{c} {100 * theirs[c]['f1']:.4f} / {tasks[c]['value']:.4f}"
                   for c in CONCEPTS)
    warm = measure_warm("vision-selection", submission, edition, home=home, repeat=repeat)
    rows = [Row("3 concepts", original, ours, equal, f"F1 original / ours: {f1}", warm=warm)]
    notes = [f"pool {pool_rows:,} x {SELECTION_DIM}-d in 8 Spark part files, "
             f"{test_rows:,} test rows and 1,000 training rows per concept; files "
             f"written in {written:.0f} s; Spark driver memory {setup['spark_driver_memory']}; "
             f"`dataperf data import` {imported.wall:.1f} s, {imported.peak_mb:.0f} MB."]
    return report("selection", "Vision selection: main.py (Spark) vs dataperf evaluate "
                  "--profile official", rows, notes)


# --------------------------------------------------------------------------------------------


REPOSITORIES = {"speech": "dataperf-speech-example", "cleaning": "dataperf-vision-debugging",
                "acquisition": "Data_Acquisition_for_ML_Benchmark",
                "selection": "dataperf-vision-selection"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("originals", type=Path, help="folder of checkouts of the originals")
    parser.add_argument("--only", nargs="+", choices=CHALLENGES, default=list(CHALLENGES))
    parser.add_argument("--python", default=os.environ.get("DATAPERF_ORIGINALS_PYTHON",
                                                           sys.executable),
                        help="interpreter with the originals' requirements")
    parser.add_argument("--work", type=Path, help="where to write the data (default: a "
                        "temporary folder, removed afterwards)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of ours (median)")
    parser.add_argument("--acquisition-scale", type=float, default=1.0)
    parser.add_argument("--pool-rows", type=int, default=1_000_000)
    parser.add_argument("--test-rows", type=int, default=5_000, help="per concept")
    parser.add_argument("--smoke", action="store_true", help="tiny data, to try the harness "
                        "(speech, acquisition and selection; cleaning has one size)")
    args = parser.parse_args()
    if args.smoke:
        args.acquisition_scale = min(args.acquisition_scale, 0.01)
        args.pool_rows, args.test_rows = min(args.pool_rows, 5_000), min(args.test_rows, 500)
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; originals "
          f"under {args.python}; one numerical thread each")
    work = Path(tempfile.mkdtemp(prefix="originals-", dir=args.work))
    results = {}
    try:
        for name in args.only:
            checkout = args.originals / REPOSITORIES[name]
            if not checkout.is_dir():
                print(f"\n{name}: no checkout {checkout}, skipped")
                continue
            folder = work / name
            folder.mkdir()
            if name == "speech":
                met = bench_speech(checkout, args.python, folder, args.repeat, args.smoke)
            elif name == "cleaning":
                met = bench_cleaning(checkout, args.python, folder, args.repeat)
            elif name == "acquisition":
                met = bench_acquisition(checkout, args.python, folder, args.repeat,
                                        args.acquisition_scale)
            else:
                met = bench_selection(checkout, args.python, folder, args.repeat,
                                      args.pool_rows, args.test_rows)
            results[name] = met
            shutil.rmtree(folder, ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\nload average {os.getloadavg()[0]:.2f}; targets met: " + ", ".join(
        f"{name} {'yes' if met else 'no'}" for name, met in results.items()))


if __name__ == "__main__":
    main()
