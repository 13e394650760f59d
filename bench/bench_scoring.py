"""Scoring time of a 1,000-row vision selection submission, against a straightforward scorer.

The reference does what the original evaluator did, in plain Python: join submitted IDs to pool
embeddings through a dict of Python lists, fit LogisticRegression(random_state=0), compute F1
with scikit-learn, and bootstrap the interval by refitting nothing but re-scoring 1,000
resampled test sets one at a time. Both must give the same point scores.

    python bench/bench_scoring.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import csv
import io
import statistics
import time

import numpy as np
import pyarrow.compute as pc
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score

from dataperf.editions import embedding_array
from dataperf.registry import get_challenge


def make_submission(challenge, edition, rows: int, seed: int) -> dict[str, bytes]:
    rng = np.random.default_rng(seed)
    pool_ids = edition.read_table("public/pool.parquet", ["id"]).column("id").to_pylist()
    files = {}
    for task in edition.tasks:
        weak = challenge.selection_task(edition, task).weak_proba[:, 1]
        chosen = rng.choice(len(pool_ids), size=rows, replace=False)
        labels = (weak[chosen] >= 0.5).astype(int)
        labels[:2] = [0, 1]
        body = "".join(f"{pool_ids[i]},{label}\n" for i, label in zip(chosen, labels, strict=True))
        files[f"{task}.csv"] = ("ImageID,Confidence\n" + body).encode()
    return files


def reference_score(edition, files: dict[str, bytes], n_resamples: int) -> dict[str, float]:
    pool = edition.read_table("public/pool.parquet")
    vectors = dict(
        zip(
            pool.column("id").to_pylist(),
            embedding_array(pool.column("embedding")).astype(float).tolist(),
            strict=True,
        )
    )
    test = edition.read_table("hidden/test.parquet")
    scores = {}
    for task in edition.tasks:
        rows = list(csv.DictReader(io.StringIO(files[f"{task}.csv"].decode())))
        x = [vectors[r["ImageID"]] for r in rows]
        y = [int(r["Confidence"]) for r in rows]
        part = test.filter(pc.equal(test.column("task"), task))
        x_test = embedding_array(part.column("embedding")).astype(float).tolist()
        y_test = np.asarray(part.column("label").to_pylist())
        predicted = LogisticRegression(random_state=0).fit(x, y).predict(x_test)
        scores[task] = 100 * f1_score(y_test, predicted)
        rng = np.random.default_rng(0)
        for _ in range(n_resamples):
            resample = rng.integers(0, len(y_test), size=len(y_test))
            f1_score(y_test[resample], predicted[resample], zero_division=0)
    return scores


def timed(function, repeats: int):
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return result, times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rows", type=int, default=1000)
    args = parser.parse_args()
    challenge = get_challenge("vision-selection")
    edition = challenge.edition("offline")
    files = make_submission(challenge, edition, args.rows, seed=0)
    n_resamples = challenge.spec.bootstrap.n_resamples

    def ours():
        return challenge.score(challenge.parse_submission(files, edition), edition)

    score, our_times = timed(ours, args.repeats)
    reference, ref_times = timed(lambda: reference_score(edition, files, n_resamples), args.repeats)
    for task in edition.tasks:
        if abs(score.task(task).value - reference[task]) > 1e-9:
            raise SystemExit(
                f"scores differ on {task}: {score.task(task).value} vs {reference[task]}"
            )
    ours_median, ref_median = statistics.median(our_times), statistics.median(ref_times)
    print(
        f"submission: {len(edition.tasks)} tasks x {args.rows} rows; test rows per task: "
        f"{score.tasks[0].details['test_rows']}; bootstrap resamples: {n_resamples}"
    )
    print(
        f"dataperf scorer (parse + validate + fit + F1 + interval): median {ours_median:.3f} s "
        f"(min {min(our_times):.3f}, max {max(our_times):.3f})"
    )
    print(
        f"straightforward reference (dict join, lists, per-resample F1): median "
        f"{ref_median:.3f} s (min {min(ref_times):.3f}, max {max(ref_times):.3f})"
    )
    print(f"ratio reference / dataperf: {ref_median / ours_median:.1f}x; point scores identical")


if __name__ == "__main__":
    main()
