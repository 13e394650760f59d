"""Time and memory of the participant-side selection algorithms on a large synthetic pool, and
their F1 on the bundled vision edition when it is present.

On the synthetic pool each algorithm runs in a forked child process, so peaks do not leak from
one to the next. For each it reports wall time, the ratio to class-balanced random measured in
the same run, the peak of memory allocated while selecting (tracemalloc, which sees numpy
buffers), the child's peak resident set size (``ru_maxrss``, which counts the inherited pool
pages the child touches) and F1 on the synthetic test set. The farthest-point-sampling
primitive is also timed against a straightforward per-step numpy loop on a subsample, and both
must return the same points. On the edition, each algorithm runs per concept with its default
hyper-parameters and is scored like the platform: LogisticRegression(random_state=0) on float64,
F1 with a 95% percentile bootstrap interval over the test rows.

    python bench/bench_selection_algorithms.py [--rows 1000000] [--dim 256] [--budget 1000]
        [--only NAME ...] [--edition DIR | --no-edition]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import time
import tracemalloc
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

from dataperf.algorithms._neighbors import farthest_point_sampling
from dataperf.algorithms.selection import (
    SELECTORS,
    Selection,
    SelectionTask,
    make_synthetic_task,
    score_selection,
)

EDITION = Path(__file__).resolve().parents[1] / "src/dataperf/bundled/vision-selection/offline"
MIB = 2**20

# Set in the parent before forking, read by the children.
_TASK: SelectionTask | None = None


def _maxrss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux reports KiB


def _current_rss_mib() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * resource.getpagesize() / MIB


def _run_child(name: str, conn: Any) -> None:
    assert _TASK is not None
    tracemalloc.start()
    started = time.perf_counter()
    selection = SELECTORS[name]().select(_TASK)
    elapsed = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    conn.send((elapsed, peak / MIB, _maxrss_mib(), selection.indices, selection.labels))
    conn.close()


def run_isolated(name: str) -> tuple[float, float, float, np.ndarray, np.ndarray]:
    ctx = mp.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_run_child, args=(name, child))
    proc.start()
    child.close()
    result = parent.recv()
    proc.join()
    return result  # type: ignore[no-any-return]


def naive_fps(X: np.ndarray, n_points: int, start: int) -> np.ndarray:
    """The straightforward loop: per step, subtract the new point from every row."""
    min_dist = np.full(len(X), np.inf)
    chosen = [start]
    for _ in range(n_points - 1):
        diff = X - X[chosen[-1]]
        np.minimum(min_dist, np.einsum("ij,ij->i", diff, diff), out=min_dist)
        min_dist[chosen] = -np.inf
        chosen.append(int(np.argmax(min_dist)))
    return np.asarray(chosen)


def bench_fps(X: np.ndarray, rows: int, n_points: int) -> None:
    rng = np.random.default_rng(0)
    sub = np.sort(rng.choice(len(X), size=min(rows, len(X)), replace=False))
    Xs = X[sub].astype(np.float32)
    started = time.perf_counter()
    fast = farthest_point_sampling(Xs, n_points, start=0)
    t_fast = time.perf_counter() - started
    started = time.perf_counter()
    slow = naive_fps(Xs, n_points, 0)
    t_slow = time.perf_counter() - started
    same = np.array_equal(fast, slow)
    print(
        f"\nFPS primitive, {len(Xs):,} x {Xs.shape[1]} float32, {n_points} points: "
        f"vectorised {t_fast:.2f} s, naive per-step loop {t_slow:.2f} s "
        f"(speed-up x{t_slow / t_fast:.1f}); same points: {same}"
    )


def bench_synthetic(rows: int, dim: int, budget: int, names: list[str]) -> None:
    global _TASK
    print(f"Synthetic pool: {rows:,} x {dim} float16, budget {budget}")
    started = time.perf_counter()
    task, X_test, y_test = make_synthetic_task(rows, dim, budget=budget, n_test=2000)
    print(
        f"  generated in {time.perf_counter() - started:.1f} s; pool "
        f"{task.embeddings.nbytes / MIB:.0f} MiB, parent RSS {_current_rss_mib():.0f} MiB"
    )
    _TASK = task
    header = (
        f"  {'algorithm':18s} {'time s':>8s} {'x random':>9s} {'alloc peak MiB':>15s}"
        f" {'RSS peak MiB':>13s} {'rows':>5s} {'F1':>6s}"
    )
    print(header)
    base_time = None
    for name in ["random", *[n for n in names if n != "random"]]:
        elapsed, peak, rss, indices, labels = run_isolated(name)
        base_time = base_time or elapsed
        f1 = score_selection(Selection(indices, labels), task, X_test, y_test)
        print(
            f"  {name:18s} {elapsed:8.2f} {elapsed / base_time:9.1f} {peak:15.0f} "
            f"{rss:13.0f} {len(indices):5d} {100 * f1:6.1f}"
        )
    bench_fps(task.embeddings, 100_000, 100)
    _TASK = None


# ------------------------------------------------------------------------------------ edition


def _embeddings(column: Any) -> np.ndarray:
    array = column.combine_chunks()
    width = array.type.list_size
    return np.asarray(array.values.to_numpy(zero_copy_only=False)).reshape(-1, width)


def load_edition(root: Path) -> tuple[np.ndarray, dict[str, Any]]:
    pool = pq.read_table(root / "public/pool.parquet")
    ids = pool.column("id").to_pylist()
    position = {key: i for i, key in enumerate(ids)}
    X = _embeddings(pool.column("embedding"))
    weak = pq.read_table(root / "public/weak_labels.parquet")
    examples = pq.read_table(root / "public/examples.parquet")
    test = pq.read_table(root / "hidden/test.parquet")
    tasks: dict[str, Any] = {}
    for name in sorted(set(test.column("task").to_pylist())):
        w = weak.filter(pc.equal(weak.column("task"), name))
        confidence = np.full(len(ids), 0.5, dtype=np.float32)
        rows = np.array([position[i] for i in w.column("id").to_pylist()], dtype=np.int64)
        confidence[rows] = w.column("confidence").to_numpy().astype(np.float32)
        e = examples.filter(pc.equal(examples.column("task"), name))
        ex = np.array([position[i] for i in e.column("id").to_pylist()], dtype=np.int64)
        if "label" in e.column_names:
            ex_labels = np.asarray(e.column("label").to_numpy(), dtype=np.int64)
        else:
            ex_labels = np.ones(len(ex), dtype=np.int64)
        t = test.filter(pc.equal(test.column("task"), name))
        tasks[name] = {
            "proba": np.stack([1.0 - confidence, confidence], axis=1),
            "examples": ex,
            "example_labels": ex_labels,
            "X_test": _embeddings(t.column("embedding")).astype(np.float64),
            "y_test": np.asarray(t.column("label").to_numpy(), dtype=np.int64),
        }
    return X, tasks


def f1_with_interval(
    X_train: np.ndarray, y_train: np.ndarray, X_test: np.ndarray, y_test: np.ndarray
) -> tuple[float, float, float]:
    """Scorer stand-in: LogisticRegression(random_state=0) on float64, F1 with a 95% percentile
    bootstrap interval over test rows (1,000 resamples, seed 0)."""
    model = LogisticRegression(random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X_train.astype(np.float64), y_train)
    pred = model.predict(X_test)
    rng = np.random.default_rng(0)
    draws = rng.integers(len(y_test), size=(1000, len(y_test)))
    tp = ((pred == 1) & (y_test == 1))[draws].sum(axis=1)
    fp = ((pred == 1) & (y_test == 0))[draws].sum(axis=1)
    fn = ((pred == 0) & (y_test == 1))[draws].sum(axis=1)
    samples = 2 * tp / np.maximum(2 * tp + fp + fn, 1)
    point_tp = np.sum((pred == 1) & (y_test == 1))
    point = 2 * point_tp / max(1, 2 * point_tp + np.sum(pred != y_test))
    low, high = np.percentile(samples, [2.5, 97.5])
    return 100 * point, 100 * low, 100 * high


def bench_edition(root: Path, budget: int, names: list[str]) -> None:
    print(f"\nEdition {root.name}:")
    X, tasks = load_edition(root)
    print(f"  pool {X.shape[0]:,} x {X.shape[1]} {X.dtype}")
    means: dict[str, list[float]] = {}
    for task_name, data in tasks.items():
        task = SelectionTask(X, data["proba"], data["examples"], data["example_labels"], budget)
        print(f"  {task_name}: {'algorithm':18s} {'time s':>7s} {'rows':>5s} {'F1 [95% CI]':>20s}")
        for name in ["random", *[n for n in names if n != "random"]]:
            started = time.perf_counter()
            selection = SELECTORS[name]().select(task)
            elapsed = time.perf_counter() - started
            f1, low, high = f1_with_interval(
                X[selection.indices], selection.labels, data["X_test"], data["y_test"]
            )
            means.setdefault(name, []).append(f1)
            print(
                f"  {'':{len(task_name)}s}  {name:18s} {elapsed:7.2f} {len(selection.indices):5d}"
                f" {f1:6.1f} [{low:5.1f}, {high:5.1f}]"
            )
    print("  mean F1: " + ", ".join(f"{k} {np.mean(v):.1f}" for k, v in means.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--budget", type=int, default=1000)
    parser.add_argument("--only", nargs="*", choices=sorted(SELECTORS), default=None)
    parser.add_argument("--edition", type=Path, default=EDITION)
    parser.add_argument("--no-edition", action="store_true")
    args = parser.parse_args()
    names = args.only or list(SELECTORS)
    bench_synthetic(args.rows, args.dim, args.budget, names)
    if not args.no_edition and (args.edition / "public/pool.parquet").is_file():
        bench_edition(args.edition, args.budget, names)
    elif not args.no_edition:
        print(f"\nNo edition at {args.edition}; skipped.")


if __name__ == "__main__":
    main()
