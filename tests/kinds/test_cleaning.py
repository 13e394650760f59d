"""The cleaning kind on a tiny generated edition with a fake cleaning curve: parsing, the
official and default fraction of fixes, the bootstrap, test splits and the built-in cleaners."""

from types import SimpleNamespace

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dataperf.challenge import TestSplit
from dataperf.editions import Source, embedding_column, write_edition
from dataperf.exceptions import EditionError, SpecError, SubmissionError
from dataperf.kinds import cleaning
from dataperf.kinds import cleaning_files as files
from dataperf.kinds.cleaning import (
    CleaningChallenge,
    bootstrap_fractions,
    fixes_needed,
    official_fraction,
)
from dataperf.registry import challenge_from_spec

SPEC = {"name": "demo-cleaning", "kind": "cleaning", "title": "Demo cleaning",
        "bootstrap": {"n_resamples": 200}}
TASKS = ["Alpha", "Beta"]
N_TRAIN, N_VAL, N_TEST, DIM = 12, 6, 40, 4


class FakeCurve:
    """A deterministic stand-in for the frozen model: test row j is right after k fixes when
    at most ``j % (wrong + 1)`` wrong labels remain. Records its calls."""

    def __init__(self):
        self.calls = []

    def __call__(self, x_train, noisy, true, order, x_test, y_test, *, seed, profile="default"):
        self.calls.append(SimpleNamespace(x_train=x_train, noisy=noisy, true=true, order=order,
                                          x_test=x_test, y_test=y_test, seed=seed,
                                          profile=profile))
        wrong = (noisy != true)[order]
        remaining = wrong.sum() - np.concatenate([[0], np.cumsum(wrong)])  # (n+1,)
        allowed = np.arange(len(y_test)) % (wrong.sum() + 1)
        correct = remaining[:, None] <= allowed[None, :]
        return SimpleNamespace(accuracy=correct.mean(axis=1), correct=correct)


@pytest.fixture
def fake():
    return FakeCurve()


@pytest.fixture
def challenge(fake):
    return CleaningChallenge.from_mapping(SPEC, origin="test", curve=fake)


@pytest.fixture(scope="module")
def edition(tmp_path_factory):
    rng = np.random.default_rng(0)
    train, truth, val, test = [], [], [], []
    for task in TASKS:
        labels = rng.integers(0, 2, N_TRAIN)
        noisy = labels.copy()
        noisy[rng.choice(N_TRAIN, 4, replace=False)] ^= 1
        points = rng.normal(size=(N_TRAIN, DIM)) + labels[:, None]
        for i in rng.permutation(N_TRAIN):  # stored shuffled: the index column decides
            train.append((task, i, f"{task[0]}{i:03d}", points[i], noisy[i]))
            truth.append((task, i, labels[i]))
        for j in range(N_VAL):
            y = j % 2
            val.append((task, f"v{task[0]}{j}", rng.normal(size=DIM) + y, y))
        for j in range(N_TEST):
            y = int(rng.integers(0, 2))
            test.append((task, f"t{task[0]}{j}", rng.normal(size=DIM) + y, y))

    def col(rows, i, kind=None):
        return pa.array([r[i] for r in rows], kind)

    tables = {
        "public/train.parquet": pa.table({
            "task": col(train, 0), "index": col(train, 1, pa.int32()), "id": col(train, 2),
            "embedding": embedding_column(np.stack([r[3] for r in train])),
            "label": col(train, 4, pa.int8())}),
        "public/validation.parquet": pa.table({
            "task": col(val, 0), "id": col(val, 1),
            "embedding": embedding_column(np.stack([r[2] for r in val])),
            "label": col(val, 3, pa.int8())}),
        "hidden/test.parquet": pa.table({
            "task": col(test, 0), "id": col(test, 1),
            "embedding": embedding_column(np.stack([r[2] for r in test])),
            "label": col(test, 3, pa.int8())}),
        "hidden/truth.parquet": pa.table({
            "task": col(truth, 0), "index": col(truth, 1, pa.int32()),
            "label": col(truth, 2, pa.int8())}),
    }
    return write_edition(tmp_path_factory.mktemp("ed") / "offline", challenge="demo-cleaning",
                         edition="offline", builder="tests", builder_version="1", tasks=TASKS,
                         sources=[Source(name="gaussians", licence="CC0-1.0", origin="test")],
                         tables=tables, spec=SPEC)


def truth_of(challenge, edition, task):
    return challenge.true_labels(edition, task, N_TRAIN)


def oracle_files(challenge, edition):
    """Wrong labels first: the best possible ordering."""
    out = {}
    for task in TASKS:
        train = challenge.training_set(edition, task)
        wrong = train.labels != truth_of(challenge, edition, task)
        out[f"{task}.txt"] = files.write_order(np.argsort(~wrong, kind="stable"))
    return out


def identity_files():
    return {f"{task}.txt": files.write_order(range(N_TRAIN)) for task in TASKS}


# Spec and registry ---------------------------------------------------------------------------


def test_spec_defaults_and_registry():
    challenge = challenge_from_spec(SPEC, origin="test")
    assert isinstance(challenge, CleaningChallenge)
    spec = challenge.spec
    assert (spec.target, spec.seed, spec.model.name, spec.formats, spec.classes) == (
        0.95, 42, "debug_linear", ["txt"], ["0", "1"])
    assert (challenge.kind, challenge.metric, challenge.direction) == (
        "cleaning", "fraction_of_fixes", "lower")
    assert challenge.scorer_version == "cleaning-1"
    assert challenge.curve is cleaning.debug_linear_curve
    assert set(challenge.rules()) >= {"task", "frozen model", "metric", "submission"}


@pytest.mark.parametrize("bad", [{"target": 1.5}, {"target": 0}, {"model": {"name": "svm"}},
                                 {"formats": ["csv"]}, {"classes": ["a", "a"]}, {"budget": 3},
                                 {"direction": "higher"}])
def test_bad_specs_are_refused(bad):
    with pytest.raises(SpecError, match="not a valid cleaning challenge"):
        CleaningChallenge.from_mapping({**SPEC, **bad}, origin="test")


# Parsing -----------------------------------------------------------------------------------


def test_valid_submission_parses(challenge, edition):
    files_in = {"Alpha.txt": b"\r\n".join(str(i).encode() for i in range(N_TRAIN)[::-1])
                + b"\r\n\r\n", "Beta.txt": files.write_order(range(N_TRAIN))}
    parsed = challenge.parse_submission(files_in, edition)
    assert parsed.orders["Alpha"].tolist() == list(range(N_TRAIN))[::-1]
    assert parsed.orders["Beta"].tolist() == list(range(N_TRAIN))


def test_every_problem_in_every_file_at_once(challenge, edition):
    alpha = b"0\nx\n99\n0\n" + b"".join(f"{i}\n".encode() for i in range(1, N_TRAIN - 2))
    submitted = {"Alpha.txt": alpha, "beta.txt": b"0\n", "readme.md": b"hello"}
    with pytest.raises(SubmissionError) as info:
        challenge.parse_submission(submitted, edition)
    found = {(p.file, p.rule) for p in info.value.problems}
    assert found == {("Alpha.txt", "not-an-index"), ("Alpha.txt", "index-out-of-range"),
                     ("Alpha.txt", "duplicate-index"), ("Alpha.txt", "missing-index"),
                     ("beta.txt", "unexpected-file"), ("readme.md", "unexpected-file"),
                     ("Beta.txt", "missing-task")}
    text = str(info.value)
    assert "did you mean Beta.txt?" in text
    assert "Alpha.txt, line 2" in text


def test_original_names_with_a_method_parse(challenge, edition, fake):
    """The original's {task}_{method}.txt (methods may differ between tasks) and its run-time
    files time_{task}_{method}.txt, ignored with a warning."""
    submitted = {"Alpha_random.txt": files.write_order(range(N_TRAIN)),
                 "Beta_my_method.txt": files.write_order(range(N_TRAIN)[::-1]),
                 "time_Alpha_random.txt": b"4.69e-05\n"}
    parsed = challenge.parse_submission(submitted, edition)
    assert parsed.orders["Beta"].tolist() == list(range(N_TRAIN))[::-1]
    assert parsed.methods == {"Alpha": "random", "Beta": "my_method"}
    assert parsed.warnings == ("time_Alpha_random.txt: a method's run time is not scored; "
                               "ignored",)
    score = challenge.score(parsed, edition)
    assert [t.details["method"] for t in score.tasks] == ["random", "my_method"]
    assert score.warnings == parsed.warnings
    plain = challenge.score(challenge.parse_submission(identity_files(), edition), edition)
    assert "method" not in plain.tasks[0].details
    assert plain.tasks[0].value == score.tasks[0].value


@pytest.mark.parametrize(("submitted", "rule", "text"), [
    ({"Alpha_a.txt", "Alpha_b.txt"}, "several-methods",
     "Alpha_a.txt: and Alpha_b.txt are all for task Alpha (methods a, b); a submission is one "
     "method with one file per task: evaluate each method's files on their own (a folder per "
     "method)"),
    ({"Alpha.txt", "Alpha_b.txt"}, "several-methods", "(methods (none), b)"),
    ({"Alpha_my method!.txt"}, "bad-method-name",
     "Alpha_my method!.txt: names task Alpha with the method 'my method!'"),
    ({"Alpha_.txt"}, "bad-method-name", "a method name is 1 to 64 letters"),
    ({"time_Gamma_x.txt"}, "unexpected-file", "expected {task}.txt or {task}_{method}.txt"),
])
def test_bad_or_several_method_names(challenge, edition, submitted, rule, text):
    order = files.write_order(range(N_TRAIN))
    with pytest.raises(SubmissionError) as info:
        challenge.parse_submission({name: order for name in submitted} | {"Beta.txt": order},
                                   edition)
    assert info.value.rules == {rule} | ({"missing-task"} if rule != "several-methods" else set())
    assert text in str(info.value)


@pytest.mark.parametrize(("data", "rule"), [(b"", "empty-file"), (b"\x00\x01", "binary-file"),
                                            (b"\xc3\x28", "encoding")])
def test_unreadable_files(challenge, edition, data, rule):
    with pytest.raises(SubmissionError) as info:
        challenge.parse_submission({"Alpha.txt": data, **{"Beta.txt": identity_files()[
            "Beta.txt"]}}, edition)
    assert info.value.rules == {rule}


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture],
          deadline=None)
@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_arbitrary_files_parse_or_raise_submission_error(challenge, edition, data):
    try:
        parsed = challenge.parse_submission({"Alpha.txt": data, "Beta.txt": data}, edition)
    except SubmissionError as err:  # anything else fails the test
        problems = err.problems
    else:
        assert sorted(parsed.orders["Alpha"].tolist()) == list(range(N_TRAIN))
        return
    assert problems


# The rules on hand-made curves -----------------------------------------------------------------


@pytest.mark.parametrize(("accuracy", "official", "default"), [
    # rounded y (after 1..4 fixes) = .6 .7 .8 .8, goal .76: i = 2; unrounded k = 3
    ([0.5, 0.6, 0.7, 0.8, 0.8], 2 / 4, 3 / 4),
    # the 0-based quirk: reached after 1 fix scores 0 officially, 1/3 by counting fixes
    ([0.5, 0.9, 0.9, 0.9], 0.0, 1 / 3),
    # reached with no fix: default 0; the original never looks at k = 0
    ([0.9, 0.5, 0.6, 0.9], 2 / 3, 0.0),
    # never reached before every label is fixed
    ([0.1, 0.2, 0.3, 0.9], 2 / 3, 1.0),
    # rounding: .757 -> .76 >= .95 x .80 officially; unrounded .757 < .95 x .804
    ([0.5, 0.757, 0.804], 0.0, 1.0),
])
def test_official_and_default_fraction(accuracy, official, default):
    value, index = official_fraction(np.array(accuracy), 0.95)
    assert value == pytest.approx(official)
    assert index == round(official * (len(accuracy) - 1))
    n = len(accuracy) - 1
    assert fixes_needed(np.array(accuracy), 0.95) / n == pytest.approx(default)


def test_fixes_needed_is_vectorised_and_matches_a_loop():
    rng = np.random.default_rng(1)
    curves = rng.random((50, 9)).round(1)
    expected = [next(k for k in range(9) if c[k] >= 0.9 * c[-1]) for c in curves]
    assert fixes_needed(curves, 0.9).tolist() == expected


def straightforward_bootstrap(correct, target, n_resamples, seed, block):
    """Resample test rows; per resample, every prefix accuracy as a mean, first k by a loop."""
    n, m = correct.shape[0] - 1, correct.shape[1]
    rng = np.random.default_rng(seed)
    fractions = []
    for start in range(0, n_resamples, block):
        drawn = rng.integers(0, m, size=(min(block, n_resamples - start), m))
        for rows in drawn:
            acc = [np.mean(correct[k, rows]) for k in range(n + 1)]
            k = next(k for k in range(n + 1) if acc[k] >= target * acc[n])
            fractions.append(k / n)
    return np.array(fractions)


def test_bootstrap_equals_row_resampling():
    rng = np.random.default_rng(2)
    correct = rng.random((11, 37)) < np.linspace(0.3, 0.9, 11)[:, None]
    ours = bootstrap_fractions(correct, 0.95, n_resamples=150, seed=7)
    theirs = straightforward_bootstrap(correct, 0.95, 150, 7, cleaning.BOOTSTRAP_BLOCK)
    assert np.array_equal(ours, theirs)
    assert len(np.unique(ours)) > 1


# Scoring -----------------------------------------------------------------------------------


def expected_default(fake_call, keep=None):
    correct = FakeCurve()(fake_call.x_train, fake_call.noisy, fake_call.true, fake_call.order,
                          fake_call.x_test, fake_call.y_test, seed=42).correct
    if keep is not None:
        correct = correct[:, keep]
    acc = correct.mean(axis=1)
    return next(k for k in range(N_TRAIN + 1) if acc[k] >= 0.95 * acc[-1]) / N_TRAIN, acc


def test_score_end_to_end_default(challenge, edition, fake):
    submission = challenge.parse_submission(identity_files(), edition)
    score = challenge.score(submission, edition)
    assert (score.metric, score.direction, score.scorer_version, score.part) == (
        "fraction_of_fixes", "lower", "cleaning-1", "all")
    assert len(fake.calls) == 2
    for task, call in zip(TASKS, fake.calls, strict=True):
        train = challenge.training_set(edition, task)
        truth = truth_of(challenge, edition, task)
        assert (call.seed, call.profile) == (42, "default")
        assert call.order.tolist() == list(range(N_TRAIN))
        assert np.array_equal(call.noisy, train.labels)
        assert np.array_equal(call.true, truth)
        assert call.x_train.shape == (N_TRAIN, DIM)
        assert call.x_test.shape == (N_TEST, DIM)
        # training rows arrive in index order although stored shuffled
        assert train.ids == [f"{task[0]}{i:03d}" for i in range(N_TRAIN)]
        value, acc = expected_default(call)
        result = score.task(task)
        assert result.value == value
        assert result.ci_low <= result.ci_high
        d = result.details
        assert d["curve"] == acc.tolist()
        assert d["fixes"] == round(value * N_TRAIN)
        assert (d["train_rows"], d["test_rows"], d["wrong_labels"]) == (N_TRAIN, N_TEST, 4)
        assert d["full_accuracy"] == acc[-1]
        assert d["noisy_accuracy"] == acc[0]
        assert d["target_accuracy"] == pytest.approx(0.95 * acc[-1])
        assert d["auc"] == pytest.approx(np.trapezoid(acc, dx=1 / N_TRAIN))
    assert score.aggregate.value == pytest.approx(np.mean([t.value for t in score.tasks]))
    assert score.aggregate.ci_low <= score.aggregate.ci_high
    assert 0 < score.aggregate.value < 1  # the fake curve makes a non-trivial case
    again = challenge.score(submission, edition)
    assert again.to_dict() == score.to_dict()


def test_oracle_beats_identity(challenge, edition):
    oracle = challenge.score(challenge.parse_submission(oracle_files(challenge, edition),
                                                        edition), edition)
    plain = challenge.score(challenge.parse_submission(identity_files(), edition), edition)
    assert oracle.aggregate.value <= plain.aggregate.value
    assert all(t.details["fixes"] <= 4 for t in oracle.tasks)


def test_score_official_profile(challenge, edition, fake):
    submission = challenge.parse_submission(identity_files(), edition, profile="official")
    score = challenge.score(submission, edition, profile="official")
    for task, call in zip(TASKS, fake.calls, strict=True):
        assert call.profile == "official"  # the model picks its threshold the original's way
        _, acc = expected_default(call)
        y = [round(a, 2) for a in acc[1:]]
        i = next(i for i in range(N_TRAIN) if y[i] >= 0.95 * y[-1])
        result = score.task(task)
        assert result.value == i / N_TRAIN
        assert result.ci_low is None
        assert result.ci_high is None
        assert result.details["fixes"] == i + 1
        assert result.details["curve"] == pytest.approx(np.round(acc, 2).tolist())
    assert score.aggregate.ci_low is None


def test_split_masks_test_rows(challenge, edition, fake):
    submission = challenge.parse_submission(identity_files(), edition)
    total = challenge.score(submission, edition)
    parts = {}
    for part in ("public", "private"):
        split = TestSplit(0.5, part, seed=3)
        fake.calls.clear()
        score = challenge.score(submission, edition, split=split)
        assert score.part == part
        for t, (task, call) in enumerate(zip(TASKS, fake.calls, strict=True)):
            assert call.x_test.shape == (N_TEST, DIM)  # the model sees every test row
            keep = split.mask(N_TEST, t)
            value, acc = expected_default(call, keep)
            result = score.task(task)
            assert result.value == value
            assert result.details["curve"] == acc.tolist()
            assert result.details["test_rows"] == keep.sum()
            assert result.details["test_part"] == part
        parts[part] = score
    for task in TASKS:
        rows = [parts[p].task(task).details["test_rows"] for p in parts]
        assert sum(rows) == total.task(task).details["test_rows"] == N_TEST


def test_split_leaving_a_part_empty_is_refused(challenge, edition):
    submission = challenge.parse_submission(identity_files(), edition)
    with pytest.raises(SpecError, match="task Alpha"):
        challenge.score(submission, edition, split=TestSplit(0.001, "public"))


def test_a_broken_curve_is_an_error_not_a_score(edition):
    def broken(*args, seed, profile):
        curve = FakeCurve()(*args, seed=seed)
        return SimpleNamespace(accuracy=curve.accuracy + 0.1, correct=curve.correct)

    challenge = CleaningChallenge.from_mapping(SPEC, origin="test", curve=broken)
    submission = challenge.parse_submission(identity_files(), edition)
    with pytest.raises(RuntimeError, match="do not match"):
        challenge.score(submission, edition)


def test_index_column_must_be_a_permutation(tmp_path, challenge):
    table = pa.table({"task": ["Alpha"] * 3, "index": pa.array([0, 1, 1], pa.int32()),
                      "id": ["a", "b", "c"], "embedding": embedding_column(np.zeros((3, 2))),
                      "label": pa.array([0, 1, 0], pa.int8())})
    bad = write_edition(tmp_path / "bad", challenge="demo-cleaning", edition="bad",
                        builder="tests", builder_version="1", tasks=["Alpha"],
                        sources=[Source(name="x", licence="CC0-1.0", origin="test")],
                        tables={"public/train.parquet": table})
    with pytest.raises(EditionError, match="index column"):
        challenge.training_set(bad, "Alpha")


# Algorithms ----------------------------------------------------------------------------------


def test_algorithms_run_and_make_valid_submissions(challenge, edition):
    pytest.importorskip("dataperf.algorithms.cleaning")
    names = challenge.algorithms()
    assert "random" in names
    assert all(isinstance(v, str) and v for v in names.values())
    task = challenge.cleaning_task(edition, "Alpha")
    assert task.x_train.shape == (N_TRAIN, DIM)
    assert task.x_val.shape == (N_VAL, DIM)
    assert np.array_equal(task.noisy_labels, challenge.training_set(edition, "Alpha").labels)
    out = challenge.run_algorithm("random", edition, random_state=1)
    assert set(out) == {"Alpha.txt", "Beta.txt"}
    parsed = challenge.parse_submission(out, edition)
    assert challenge.run_algorithm("random", edition, random_state=1) == out
    assert challenge.score(parsed, edition).aggregate.value >= 0


def test_unknown_algorithm(challenge, edition):
    pytest.importorskip("dataperf.algorithms.cleaning")
    from dataperf.exceptions import AlgorithmError

    with pytest.raises(AlgorithmError, match="unknown algorithm"):
        challenge.run_algorithm("nope", edition)


# The real frozen model -----------------------------------------------------------------------


def test_real_cleaning_curve(edition):
    pytest.importorskip("dataperf.learners.debug_linear")
    challenge = CleaningChallenge.from_mapping(SPEC, origin="test")
    submission = challenge.parse_submission(oracle_files(challenge, edition), edition)
    score = challenge.score(submission, edition)
    for result in score.tasks:
        assert 0.0 <= result.value <= 1.0
        assert len(result.details["curve"]) == N_TRAIN + 1
        assert result.ci_low <= result.ci_high
    official = challenge.score(submission, edition, profile="official")
    assert all(0.0 <= t.value < 1.0 for t in official.tasks)
