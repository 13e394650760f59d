"""Time and memory of the participant-side selection algorithms on a large synthetic pool, and
their F1 on the bundled vision edition when it is present.

On the synthetic pool each algorithm runs in a forked child process, so peaks do not leak from
one to the next. For each it reports wall time, the ratio to class-balanced random measured in
the same run, the peak of memory allocated while selecting (tracemalloc, which sees numpy
buffers), the child's peak resident set size (``ru_maxrss``, which counts the inherited pool
pages the child touches) and F1 on the synthetic test set. The farthest-point-sampling
primitive is also timed against a straightforward per-step numpy loop on a subsample, and both
must return the same points. On the bundled edition, each algorithm runs with its default
hyper-parameters and is scored by the platform's own scorer (F1 with its 95% interval), its time
shown as a ratio to class-balanced random.

    python bench/bench_selection_algorithms.py [--rows 1000000] [--dim 256] [--budget 1000]
        [--only NAME ...] [--no-edition]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import time
import tracemalloc
from typing import Any

import numpy as np

from dataperf.algorithms._neighbors import farthest_point_sampling
from dataperf.algorithms.selection import (
    Selection,
    SelectionTask,
    make_synthetic_task,
    score_selection,
)
from dataperf.algorithms.selectors import SELECTORS
from dataperf.registry import get_challenge
from dataperf.reports import compare_algorithms

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


def bench_edition(names: list[str]) -> None:
    """The bundled edition, scored by the platform's own scorer (as `dataperf compare`)."""
    challenge = get_challenge("vision-selection")
    edition = challenge.edition("offline")
    print(f"\nEdition {edition.name} ({edition.content_hash[:12]}), platform scorer:")
    results = compare_algorithms(
        challenge, edition, ["random", *[n for n in names if n != "random"]]
    )
    reference = max(results[0].seconds, 1e-3)
    for result in results:
        cells = "  ".join(
            f"{t.task} {t.value:5.1f} [{t.ci_low:5.1f}, {t.ci_high:5.1f}]"
            for t in result.score.tasks
        )
        ratio = result.seconds / reference
        print(
            f"  {result.algorithm:18s} {result.seconds:6.2f} s  x{ratio:7.1f}  {cells}  "
            f"mean {result.score.aggregate.value:5.1f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--budget", type=int, default=1000)
    parser.add_argument("--only", nargs="*", choices=sorted(SELECTORS), default=None)
    parser.add_argument("--no-edition", action="store_true")
    args = parser.parse_args()
    names = args.only or list(SELECTORS)
    bench_synthetic(args.rows, args.dim, args.budget, names)
    if not args.no_edition:
        bench_edition(names)


if __name__ == "__main__":
    main()
