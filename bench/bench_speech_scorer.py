"""Scoring time of a speech-selection submission, against refitting the original ensemble once
per seed.

The frozen model is the original's ``VotingClassifier(voting="soft")`` of
``SVC(probability=True, random_state=seed)`` and ``LogisticRegression(random_state=seed)``,
scored over 10 seeds. Two ways to get its 10 predictions of the evaluation set:

- **per-seed loop**: the straightforward procedure, the ensemble built and fitted anew for each
  seed and asked for its predictions (what the original evaluator does, data in memory).
- **ours**: ``dataperf.learners.soft_voting.predict_seeds``: the logistic regression fitted and
  the SVM's decision values on the evaluation rows computed once; per seed only the SVM refitted
  (its Platt scaling is what the seed changes) and libsvm's probability coupling run on the
  stored decision values.

Both must give the same predictions for every seed (checked). Sizes: the original's 1024-d
embeddings and 6 classes with training sets of 25 and 60 clips and ``--eval-rows`` evaluation
clips (the original evaluation sets' sizes are not published with the code; the gain grows with
them, as the evaluation rows' kernel is what is no longer recomputed per seed); then every task
of the bundled offline edition, scored by the kind with a random per-class selection. One BLAS
thread, as in a scoring slot.

    python bench/bench_speech_scorer.py [--eval-rows 4000 12000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections.abc import Callable

import numpy as np
from threadpoolctl import threadpool_limits

from dataperf.learners.soft_voting import predict_seeds, soft_voting

SEEDS = [5, 69, 98, 70, 95, 64, 37, 11, 4, 32]
DIM, CLASSES = 1024, 6


def per_seed_loop(x: np.ndarray, y: np.ndarray, x_test: np.ndarray) -> list[np.ndarray]:
    out = []
    for seed in SEEDS:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out.append(soft_voting(seed).fit(x, y).predict(x_test))
    return out


def batched(x: np.ndarray, y: np.ndarray, x_test: np.ndarray) -> list[np.ndarray]:
    return [labels for labels, _ in predict_seeds({}, x, y, x_test, SEEDS)]


def best_time(run: Callable[[], list[np.ndarray]], repeat: int) -> tuple[float, list[np.ndarray]]:
    times, result = [], []
    for _ in range(repeat):
        start = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - start)
    return min(times), result


def compare(label: str, x: np.ndarray, y: np.ndarray, x_test: np.ndarray, repeat: int) -> float:
    plain, expected = best_time(lambda: per_seed_loop(x, y, x_test), repeat)
    ours, got = best_time(lambda: batched(x, y, x_test), repeat)
    assert all(np.array_equal(a, b) for a, b in zip(expected, got, strict=True)), label
    print(f"{label:<34} per-seed loop {plain:7.3f} s   ours {ours:6.3f} s   "
          f"{plain / ours:5.1f}x   (same predictions, {len(SEEDS)} seeds)")
    return plain / ours


def original_sizes(eval_rows: list[int], repeat: int) -> list[float]:
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(CLASSES, DIM)) * 0.5
    ratios = []
    for rows in eval_rows:
        y_test = rng.integers(0, CLASSES, rows)
        x_test = (centres[y_test] + rng.normal(size=(rows, DIM))).astype(np.float32)
        for budget in (25, 60):
            y = np.arange(budget) % CLASSES
            x = (centres[y] + rng.normal(size=(budget, DIM))).astype(np.float32)
            ratios.append(compare(f"{DIM}-d, {budget} clips, {rows:,} eval", x, y, x_test,
                                  repeat))
    return ratios


def bundled_edition(repeat: int) -> list[float]:
    import pyarrow.compute as pc

    from dataperf.challenges.speech_selection import challenge
    from dataperf.editions import embedding_array
    from dataperf.kinds.selection_tables import load_pool

    edition = challenge.edition("offline")
    submission = challenge.parse_submission(challenge.run_algorithm("random", edition), edition)
    pool = load_pool(edition)
    test = edition.read_table("hidden/test.parquet")
    ratios = []
    for task in edition.tasks:
        selection = submission.selections[task]
        rows = test.filter(pc.equal(test.column("task"), task))
        x_test = embedding_array(rows.column("embedding"))
        x_train = pool.embeddings[selection.indices].astype(np.float32)  # as the scorer reads
        ratios.append(compare(f"offline {task} ({x_test.shape[1]}-d, {len(rows):,} eval)",
                              x_train, selection.labels, x_test.astype(np.float32), repeat))
    start = time.perf_counter()
    challenge.score(submission, edition, profile="official")
    print(f"whole submission, 6 tasks (kind's scorer, official profile): "
          f"{time.perf_counter() - start:.2f} s")
    return ratios


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--eval-rows", type=int, nargs="+", default=[4000, 12000])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with threadpool_limits(1):
        predict_seeds({}, np.eye(6, dtype=np.float32), np.arange(6), np.eye(6), [0])  # compile
        ratios = original_sizes(args.eval_rows, args.repeat) + bundled_edition(args.repeat)
    print(f"speed-up: {min(ratios):.1f}x to {max(ratios):.1f}x (geometric mean "
          f"{float(np.exp(np.mean(np.log(ratios)))):.1f}x)")


if __name__ == "__main__":
    main()
