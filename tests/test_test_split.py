"""Public and private parts of the hidden test rows (hosted leaderboards, Kaggle style).

The split of every task is fixed by ``(private_fraction, seed)``; scoring one part must equal a
plain computation on those rows, and ``dataperf evaluate`` must reproduce the library's number.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import confusion_matrix, f1_score

from dataperf.challenge import TestSplit
from dataperf.editions import Edition, embedding_array
from dataperf.exceptions import DataPerfError, SpecError
from dataperf.kinds.selection import SelectionChallenge
from dataperf.registry import get_challenge
from dataperf.scores import Score
from dataperf.submission_files import write_submission
from official_layout import CliResult, dataperf

CHALLENGE = "vision-selection"
FRACTION = 0.3


def private_rows(fraction: float, seed: int, n_rows: int, task_index: int) -> np.ndarray:
    """The documented rule, written out: the first round(f x n) rows of a seeded permutation."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, task_index]))
    return np.sort(rng.permutation(n_rows)[:round(fraction * n_rows)])


# Masks --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("n_rows", "fraction"), [(1000, 0.5), (1000, 0.3), (7, 0.5), (2, 0.5),
                                                  (999, 0.01), (12345, 0.9)])
@pytest.mark.parametrize("task_index", [0, 3])
def test_parts_are_disjoint_cover_every_row_and_have_the_exact_private_count(
        n_rows: int, fraction: float, task_index: int) -> None:
    public = TestSplit(fraction, "public").mask(n_rows, task_index)
    private = TestSplit(fraction, "private").mask(n_rows, task_index)
    for mask in (public, private):
        assert mask.dtype == np.bool_
        assert mask.shape == (n_rows,)
    assert not np.any(public & private)
    assert np.all(public | private)
    assert int(private.sum()) == round(fraction * n_rows)
    assert int(public.sum()) == n_rows - round(fraction * n_rows)
    assert np.array_equal(np.flatnonzero(private),
                          private_rows(fraction, 0, n_rows, task_index))


def test_masks_are_deterministic_and_depend_on_task_index_and_seed() -> None:
    split = TestSplit(0.5, "private")
    first = split.mask(1000, 2)
    assert np.array_equal(first, TestSplit(0.5, "private").mask(1000, 2))
    assert np.array_equal(first, split.mask(1000, 2))
    assert not np.array_equal(first, split.mask(1000, 1))
    assert not np.array_equal(first, TestSplit(0.5, "private", seed=1).mask(1000, 2))
    assert TestSplit(0.5, "public", seed=7) == TestSplit(0.5, "public", seed=7)


@pytest.mark.parametrize("fraction", [0, 0.0, 1, 1.0, -0.2, 1.5, math.nan, math.inf, True, "0.5"])
def test_an_invalid_fraction_gives_a_clear_error(fraction: object) -> None:
    with pytest.raises(SpecError, match=r"private fraction .* strictly between 0 and 1"):
        TestSplit(fraction, "public")  # type: ignore[arg-type]


def test_an_invalid_part_or_seed_gives_a_clear_error() -> None:
    with pytest.raises(SpecError, match=r"part of a test split must be one of public, private, "
                                        r"got 'hidden'"):
        TestSplit(0.5, "hidden")  # type: ignore[arg-type]
    with pytest.raises(SpecError, match=r"seed of a test split must be a non-negative integer"):
        TestSplit(0.5, "public", seed=-1)
    assert issubclass(SpecError, DataPerfError)


@pytest.mark.parametrize(("fraction", "n_rows", "empty"), [(0.1, 4, "private"),
                                                           (0.9, 4, "public"),
                                                           (0.5, 1, "private")])
@pytest.mark.parametrize("part", ["public", "private"])
def test_a_split_that_leaves_a_part_empty_is_refused(fraction: float, n_rows: int, empty: str,
                                                    part: str) -> None:
    with pytest.raises(SpecError, match=rf"leaves the {empty} part of a task with {n_rows} "
                                        r"test row\(s\) empty"):
        TestSplit(fraction, part).mask(n_rows, 0)  # type: ignore[arg-type]


# Scoring on the bundled offline edition -----------------------------------------------------


@pytest.fixture(scope="module")
def edition() -> Edition:
    return get_challenge(CHALLENGE).edition("offline")


@pytest.fixture(scope="module")
def files(edition: Edition) -> dict[str, bytes]:
    return get_challenge(CHALLENGE).run_algorithm("random", edition, random_state=3)


def multi_seed() -> SelectionChallenge:
    """vision-selection with three seeds of the frozen model, to check the mean over seeds."""
    base = get_challenge(CHALLENGE)
    assert isinstance(base, SelectionChallenge)
    return SelectionChallenge(base.spec.model_copy(update={"seeds": [0, 1, 2]}))


def independent_scores(edition: Edition, files: dict[str, bytes], seeds: list[int],
                       split: TestSplit | None) -> dict[str, dict]:
    """Per task, written plainly: join IDs to the pool, fit LogisticRegression per seed, predict
    every test row, keep the rows of the part, F1 x 100 averaged over seeds."""
    pool = pq.read_table(edition.path / "public/pool.parquet")
    pool_ids = pool.column("id").to_pylist()
    position = {i: p for p, i in enumerate(pool_ids)}
    vectors = embedding_array(pool.column("embedding"))
    test = pq.read_table(edition.path / "hidden/test.parquet")
    found = {}
    for t, task in enumerate(edition.tasks):
        rows = list(csv.DictReader(io.StringIO(files[f"{task}.csv"].decode())))
        rows.sort(key=lambda r: position[r["ImageID"]])
        x_train = np.array([vectors[position[r["ImageID"]]] for r in rows], dtype=np.float64)
        y_train = [int(r["Confidence"]) for r in rows]
        mine = [r for r in test.to_pylist() if r["task"] == task]
        x_test = np.array([r["embedding"] for r in mine], dtype=np.float64)
        y_true = np.array([r["label"] for r in mine])
        keep = np.arange(len(mine))
        if split is not None:
            private = private_rows(split.private_fraction, split.seed, len(mine), t)
            keep = private if split.part == "private" else np.setdiff1d(keep, private)
        per_seed, matrix = [], np.zeros((2, 2), dtype=np.int64)
        for seed in seeds:
            model = LogisticRegression(random_state=seed).fit(x_train, y_train)
            y_pred = model.predict(x_test)[keep]
            per_seed.append(100 * f1_score(y_true[keep], y_pred))
            matrix += confusion_matrix(y_true[keep], y_pred, labels=[0, 1])
        found[task] = {"value": float(np.mean(per_seed)), "per_seed": per_seed,
                       "confusion_matrix": matrix.tolist(), "test_rows": len(keep)}
    return found


@pytest.mark.parametrize("seeds", [[0], [0, 1, 2]], ids=["one-seed", "three-seeds"])
@pytest.mark.parametrize("part", ["public", "private"])
def test_each_part_equals_an_independent_computation(edition: Edition, files: dict[str, bytes],
                                                     seeds: list[int], part: str) -> None:
    challenge = get_challenge(CHALLENGE) if seeds == [0] else multi_seed()
    split = TestSplit(FRACTION, part, seed=5)  # type: ignore[arg-type]
    score = challenge.score(challenge.parse_submission(files, edition), edition, split=split)
    expected = independent_scores(edition, files, seeds, split)
    assert score.part == part
    assert score.to_dict()["part"] == part
    for task in edition.tasks:
        got = score.task(task)
        assert got.value == pytest.approx(expected[task]["value"], abs=1e-9)
        assert got.details["per_seed"] == pytest.approx(expected[task]["per_seed"], abs=1e-9)
        assert got.details["confusion_matrix"] == expected[task]["confusion_matrix"]
        assert got.details["test_rows"] == expected[task]["test_rows"]
        assert got.details["test_part"] == part
        assert got.ci_low is not None
        assert got.ci_high is not None
        assert got.ci_low <= got.value <= got.ci_high
    assert score.aggregate.value == pytest.approx(np.mean([t.value for t in score.tasks]))


def test_parts_partition_the_all_rows_score(edition: Edition, files: dict[str, bytes]) -> None:
    challenge = get_challenge(CHALLENGE)
    parsed = challenge.parse_submission(files, edition)
    whole = challenge.score(parsed, edition)
    public = challenge.score(parsed, edition, split=TestSplit(FRACTION, "public"))
    private = challenge.score(parsed, edition, split=TestSplit(FRACTION, "private"))
    assert whole.part == "all"
    assert all("test_part" not in t.details for t in whole.tasks)
    assert whole == challenge.score(parsed, edition, split=None)
    for task in edition.tasks:
        rows = whole.task(task).details["test_rows"]
        assert private.task(task).details["test_rows"] == round(FRACTION * rows)
        assert public.task(task).details["test_rows"] == rows - round(FRACTION * rows)
        assert (np.add(public.task(task).details["confusion_matrix"],
                       private.task(task).details["confusion_matrix"]).tolist()
                == whole.task(task).details["confusion_matrix"])
    assert public.task(edition.tasks[0]).value != private.task(edition.tasks[0]).value


def test_bootstrap_interval_resamples_the_rows_of_the_part(edition: Edition,
                                                           files: dict[str, bytes]) -> None:
    """The documented bootstrap (seeded per task as without a split), over the part's rows."""
    challenge = get_challenge(CHALLENGE)
    assert isinstance(challenge, SelectionChallenge)
    spec = challenge.spec.bootstrap
    split = TestSplit(0.5, "private", seed=2)
    parsed = challenge.parse_submission(files, edition)
    score = challenge.score(parsed, edition, split=split)
    test = pq.read_table(edition.path / "hidden/test.parquet")
    pool = pq.read_table(edition.path / "public/pool.parquet")
    position = {i: p for p, i in enumerate(pool.column("id").to_pylist())}
    vectors = embedding_array(pool.column("embedding"))
    for t, task in enumerate(edition.tasks):
        rows = list(csv.DictReader(io.StringIO(files[f"{task}.csv"].decode())))
        rows.sort(key=lambda r: position[r["ImageID"]])
        model = LogisticRegression(random_state=0).fit(
            np.array([vectors[position[r["ImageID"]]] for r in rows], dtype=np.float64),
            [int(r["Confidence"]) for r in rows])
        mine = [r for r in test.to_pylist() if r["task"] == task]
        keep = private_rows(0.5, 2, len(mine), t)
        y_true = np.array([r["label"] for r in mine])[keep]
        y_pred = model.predict(np.array([r["embedding"] for r in mine], dtype=np.float64))[keep]
        seed = int(np.random.SeedSequence([spec.seed, t]).generate_state(1)[0])
        drawn = np.random.default_rng(seed).integers(0, len(keep),
                                                     size=(spec.n_resamples, len(keep)))
        truth, guess = y_true[drawn], y_pred[drawn]
        tp = np.sum((truth == 1) & (guess == 1), axis=1)
        wrong = np.sum(truth != guess, axis=1)
        f1 = np.where(2 * tp + wrong > 0, 2 * tp / np.maximum(2 * tp + wrong, 1), 0.0) * 100
        tail = (1 - spec.confidence) / 2
        low, high = np.quantile(f1, [tail, 1 - tail])
        assert score.task(task).ci_low == pytest.approx(low, abs=1e-9)
        assert score.task(task).ci_high == pytest.approx(high, abs=1e-9)


# The command --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def submission(files: dict[str, bytes], tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_submission(files, tmp_path_factory.mktemp("split") / "submission")


@pytest.mark.parametrize("part", ["public", "private"])
def test_evaluate_reproduces_the_library_score_of_a_part(edition: Edition, files: dict[str, bytes],
                                                         submission: Path, tmp_path: Path,
                                                         part: str) -> None:
    result = dataperf("evaluate", CHALLENGE, submission, "--json", "--private-fraction",
                      str(FRACTION), "--part", part, home=tmp_path)
    assert result.returncode == 0, result
    challenge = get_challenge(CHALLENGE)
    expected: Score = challenge.score(challenge.parse_submission(files, edition), edition,
                                      split=TestSplit(FRACTION, part))  # type: ignore[arg-type]
    assert json.loads(result.stdout) == json.loads(expected.to_json())
    assert json.loads(result.stdout)["part"] == part

    table = dataperf("evaluate", CHALLENGE, submission, "--private-fraction", str(FRACTION),
                     "--part", part, home=tmp_path)
    assert table.returncode == 0, table
    assert f"{expected.aggregate.value:.2f}" in table.out
    assert f"scored on the {part} part of the test rows only (private fraction 0.3" in table.out


def assert_user_error(result: CliResult, fragment: str) -> None:
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr, result
    assert result.stdout == ""
    assert fragment in result.err, result


@pytest.mark.parametrize(("extra", "fragment"), [
    (["--part", "public"], "error: --private-fraction and --part go together"),
    (["--private-fraction", "0.5"], "error: --private-fraction and --part go together"),
    (["--private-fraction", "0.5", "--part", "hidden"],
     "error: --part must be one of public, private, got 'hidden'"),
    (["--private-fraction", "1.5", "--part", "public"],
     "error: --private-fraction must be strictly between 0 and 1, got 1.5"),
    (["--private-fraction", "0", "--part", "private"],
     "error: --private-fraction must be strictly between 0 and 1, got 0"),
], ids=["part-alone", "fraction-alone", "bad-part", "fraction-above-1", "fraction-0"])
def test_evaluate_split_flags_give_clear_errors(submission: Path, tmp_path: Path,
                                                extra: list[str], fragment: str) -> None:
    assert_user_error(dataperf("evaluate", CHALLENGE, submission, *extra, home=tmp_path),
                      fragment)
