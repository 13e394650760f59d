"""Every built-in algorithm of every challenge writes the same files whatever the thread count.

Each algorithm runs on its challenge's bundled offline edition in two fresh processes at the
same time, one with one BLAS/OpenMP thread (as the hosted worker runs) and one with two (as a
laptop does by default); the submission files must be byte-identical. Multi-threaded BLAS adds
partial sums in an order set by the thread count, which used to change the rows that
``pseudo-label`` picks on vision selection (mean F1 83.61 with one thread, 83.20 with two).

Slow algorithms run with cheaper hyper-parameters (``CHEAP``); ``pseudo-label`` keeps its
defaults, the settings of the published results.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dataperf.registry import challenges

#: Cheaper hyper-parameters for the slow runs: (challenge, algorithm) -> params.
CHEAP: dict[tuple[str, str], dict[str, object]] = {
    **{(c, "fps-cv"): {"n_fps": 200, "n_folds": 2, "max_trials": 10}
       for c in ("vision-selection", "speech-selection")},
    **{(c, "nested-cv"): {"n_folds": 2, "max_validation": 500}
       for c in ("vision-selection", "speech-selection")},
    **{(c, "noise-aware"): {"n_folds": 2, "n_init": 1}
       for c in ("vision-selection", "speech-selection")},
    ("vision-selection", "facility-location"): {"max_candidates": 2_000},
    ("vision-cleaning", "data-oob"): {"n_estimators": 20},
    ("vision-cleaning", "tmc-shapley"): {"n_permutations": 1, "max_newton": 3,
                                             "tolerance": 0.2, "patience": 0},
}

#: Runs every algorithm given as JSON [[challenge, algorithm, params], ...] and writes its
#: files under OUT/challenge/algorithm/.
DRIVER = """
import json, sys
from pathlib import Path
from dataperf.registry import get_challenge

runs, out = json.loads(sys.argv[1]), Path(sys.argv[2])
for name, algorithm, params in runs:
    challenge = get_challenge(name)
    files = challenge.run_algorithm(algorithm, challenge.edition("offline"), params=params)
    for file, data in files.items():
        path = out / name / algorithm / file
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
"""

RUNS = [(name, algorithm, CHEAP.get((name, algorithm), {}))
        for name, challenge in sorted(challenges().items())
        for algorithm in challenge.algorithms()]
THREADS = (1, 2)


def thread_env(threads: int, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[variable] = str(threads)
    env["DATAPERF_HOME"] = str(home)  # the bundled editions, not a user's own
    return env


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    """The files of every run, by thread count (both processes run side by side)."""
    root = tmp_path_factory.mktemp("runs")
    started = {}
    for threads in THREADS:
        out = root / f"threads-{threads}"
        started[threads] = (out, subprocess.Popen(
            [sys.executable, "-c", DRIVER, json.dumps(RUNS), str(out)],
            env=thread_env(threads, root / "home"), stderr=subprocess.PIPE, text=True))
    for threads, (_, process) in started.items():
        _, error = process.communicate(timeout=600)
        assert process.returncode == 0, f"the run with {threads} thread(s) failed:\n{error}"
    return {threads: out for threads, (out, _) in started.items()}


def files_of(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def test_every_challenge_and_algorithm_is_run() -> None:
    names = {name for name, _, _ in RUNS}
    assert {"vision-selection", "speech-selection", "vision-cleaning",
            "data-acquisition"} <= names
    assert ("vision-selection", "pseudo-label", {}) in RUNS
    assert all(key in {(n, a) for n, a, _ in RUNS} for key in CHEAP)


@pytest.mark.parametrize(("challenge", "algorithm"), [(n, a) for n, a, _ in RUNS],
                         ids=[f"{n}-{a}" for n, a, _ in RUNS])
def test_files_do_not_depend_on_the_thread_count(
        outputs: dict[int, Path], challenge: str, algorithm: str) -> None:
    one, two = (files_of(outputs[t] / challenge / algorithm) for t in THREADS)
    assert one, f"{algorithm} wrote no files on {challenge}"
    assert one.keys() == two.keys()
    differ = [name for name in one if one[name] != two[name]]
    assert not differ, f"{algorithm} on {challenge}: other files with 2 threads: {differ}"
