"""The selection kind on a small generated edition: every validation rule, and exact scoring."""

import json
import re

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score

from dataperf.editions import Source, embedding_array, embedding_column, write_edition
from dataperf.exceptions import SpecError, SubmissionError
from dataperf.kinds.selection import SelectionChallenge

SPEC = {"name": "demo-selection", "kind": "selection", "title": "Demo", "budget": 30}
TASKS = ["Alpha", "Beta"]


@pytest.fixture(scope="module")
def challenge():
    return SelectionChallenge.from_mapping(SPEC, origin="test")


@pytest.fixture(scope="module")
def edition(tmp_path_factory):
    rng = np.random.default_rng(0)
    n, dim = 300, 8
    centers = rng.normal(size=(3, dim)) * 2
    classes = rng.integers(0, 3, size=n + 200)
    points = centers[classes] + rng.normal(size=(n + 200, dim))
    ids = [f"{i:04x}{rng.integers(1 << 16):04x}" for i in range(n + 200)]
    test_rows = []
    for t, task in enumerate(TASKS):
        for i in range(n, n + 200):
            test_rows.append((task, ids[i], points[i], int(classes[i] == t)))
    tables = {
        "public/pool.parquet": pa.table({"id": ids[:n],
                                         "embedding": embedding_column(points[:n])}),
        "public/examples.parquet": pa.table({
            "task": [task for t, task in enumerate(TASKS) for _ in range(3)],
            "id": [ids[i] for t in range(2) for i in np.flatnonzero(classes[:n] == t)[:3]]}),
        "public/weak_labels.parquet": pa.table({
            "id": ids[:n] * 2, "task": [task for task in TASKS for _ in range(n)],
            "confidence": pa.array(np.concatenate(
                [np.clip((classes[:n] == t) * 0.7 + rng.random(n) * 0.3, 0, 1)
                 for t in range(2)]).astype(np.float32))}),
        "hidden/test.parquet": pa.table({
            "task": [r[0] for r in test_rows], "id": [r[1] for r in test_rows],
            "embedding": embedding_column(np.stack([r[2] for r in test_rows])),
            "label": pa.array([r[3] for r in test_rows], pa.int8())}),
    }
    return write_edition(tmp_path_factory.mktemp("ed") / "offline", challenge="demo-selection",
                         edition="offline", builder="tests", builder_version="1", tasks=TASKS,
                         sources=[Source(name="gaussians", licence="CC0-1.0", origin="test")],
                         tables=tables)


@pytest.fixture(scope="module")
def pool_ids(edition):
    return edition.read_table("public/pool.parquet").column("id").to_pylist()


def csv(rows, header="ImageID,Confidence"):
    return (header + "\n" + "".join(f"{i},{label}\n" for i, label in rows)).encode()


def good_rows(pool_ids, start=0, count=20):
    return [(pool_ids[i], i % 2) for i in range(start, start + count)]


def valid_files(pool_ids):
    return {f"{task}.csv": csv(good_rows(pool_ids, 10 * t)) for t, task in enumerate(TASKS)}


def rejected(challenge, edition, files, profile="default"):
    with pytest.raises(SubmissionError) as info:
        challenge.parse_submission(files, edition, profile=profile)
    return info.value


def test_valid_submission_parses(challenge, edition, pool_ids):
    parsed = challenge.parse_submission(valid_files(pool_ids), edition)
    assert set(parsed.selections) == set(TASKS)
    assert len(parsed.selections["Alpha"].indices) == 20


def alpha(content, name="Alpha.csv"):
    """Valid files, with Alpha's file replaced by ``content`` under ``name``."""
    def make(pool_ids):
        files = valid_files(pool_ids)
        del files["Alpha.csv"]
        files[name] = content(good_rows(pool_ids), pool_ids) if callable(content) else content
        return files
    return make


def plus(name, content):
    def make(pool_ids):
        return {**valid_files(pool_ids), name: content}
    return make


# rule -> (how to break a valid submission, the message expected)
BAD_CASES = {
    "over-budget": (alpha(lambda rows, ids: csv(good_rows(ids, 0, 31))),
                    r"Alpha.csv: has 31 rows; at most 30 are allowed"),
    "unknown-id": (alpha(lambda rows, ids: csv([rows[0], rows[1], ("nope", 1)])),
                   r"Alpha.csv, line 4: lists 1 ID\(s\) that are not in the pool .*"
                   r"\(IDs: nope\)"),
    "duplicate-id": (alpha(lambda rows, ids: csv([rows[0], rows[1], rows[0]])),
                     r"Alpha.csv, line 4: lists 1 ID\(s\) more than once"),
    "bad-label": (alpha(lambda rows, ids: csv([(rows[0][0], 2), rows[1]])),
                  r"Alpha.csv, line 2: has label '2'; labels must be 0 or 1"),
    "bad-header": (alpha(lambda rows, ids: csv(rows, header="id,label")),
                   r"Alpha.csv, line 1: has header 'id,label'; expected ImageID,Confidence"),
    "empty-file": (alpha(b""), r"Alpha.csv: is empty"),
    "binary-file": (alpha(b"\x89PNG\r\n\x1a\n\x00\x00"), r"Alpha.csv: is a binary file"),
    "encoding": (alpha("ImageID,Confidence\nabc\xe9,1\n".encode("latin-1")),
                 r"Alpha.csv: is not UTF-8 text \(undecodable byte at offset 22\)"),
    "malformed-row": (alpha(b"ImageID,Confidence\na,1,extra\n"),
                      r"Alpha.csv, line 2: has 3 fields; expected 2"),
    "bad-json": (alpha(b'{"a": 1,}', "Alpha.json"), r"Alpha.json, line 1: is not valid JSON"),
    "bad-json-shape": (alpha(b"[1, 2]", "Alpha.json"), r"Alpha.json: must be one JSON object"),
    "single-class": (alpha(lambda rows, ids: csv([(r[0], 1) for r in rows])),
                     r"Alpha.csv: has labels 1 only; the frozen model needs at least two classes"),
    "unexpected-file": (plus("notes.txt", b"hi"), r"notes.txt: is not a submission file"),
    "ambiguous-task-file": (plus("Alpha.json", b"{}"),
                            r"Alpha.csv: and Alpha.json are both for task Alpha"),
}


@pytest.mark.parametrize("kind", list(BAD_CASES))
def test_each_broken_rule_has_a_clear_message(challenge, edition, pool_ids, kind):
    breaker, message = BAD_CASES[kind]
    error = rejected(challenge, edition, breaker(pool_ids))
    assert error.rules == {kind}
    assert any(re.search(message, str(p)) for p in error.problems), str(error)


def test_a_wrongly_cased_file_name_gets_a_hint(challenge, edition, pool_ids):
    files = valid_files(pool_ids)
    files["alpha.csv"] = files.pop("Alpha.csv")
    error = rejected(challenge, edition, files)
    assert "alpha.csv: is not a submission file" in str(error)
    assert "did you mean Alpha.csv?" in str(error)


def test_a_partial_submission_scores_its_tasks_and_names_the_missing(challenge, edition,
                                                                      pool_ids):
    files = valid_files(pool_ids)
    del files["Beta.csv"]
    parsed = challenge.parse_submission(files, edition)
    assert any("no file for Beta" in w for w in parsed.warnings)
    partial = challenge.score(parsed, edition)
    full = challenge.score(challenge.parse_submission(valid_files(pool_ids), edition), edition)
    assert [s.task for s in partial.tasks] == [t for t in TASKS if t != "Beta"]
    for task in partial.tasks:  # each task exactly as in the full submission
        assert task.value == full.task(task.task).value
    assert partial.aggregate.value == pytest.approx(np.mean([s.value for s in partial.tasks]))


def test_a_leaderboard_needs_every_task_and_hears_every_problem_at_once(challenge, edition,
                                                                         pool_ids):
    files = valid_files(pool_ids)
    del files["Beta.csv"]
    with pytest.raises(SubmissionError) as info:
        challenge.parse_leaderboard_submission(files, edition)
    assert info.value.rules == {"missing-task"}
    assert "Beta.csv: is missing: every task needs a file (task Beta)" in str(info.value)
    files["Alpha.csv"] = b""
    with pytest.raises(SubmissionError) as info:
        challenge.parse_leaderboard_submission(files, edition)
    assert info.value.rules == {"missing-task", "empty-file"}
    with pytest.raises(SubmissionError) as info:
        challenge.parse_leaderboard_submission({}, edition)
    assert len(info.value.problems) == len(TASKS)  # each missing task once
    challenge.parse_leaderboard_submission(valid_files(pool_ids), edition)


def test_an_empty_submission_names_every_task(challenge, edition):
    error = rejected(challenge, edition, {})
    assert {p.file for p in error.problems} == {f"{t}.csv" for t in TASKS}
    assert error.rules == {"missing-task"}


def test_all_problems_are_reported_at_once(challenge, edition, pool_ids):
    files = {"Alpha.csv": b"", "Beta.csv": csv([("nope", 1), ("x", 0)]), "extra.csv": b"a"}
    error = rejected(challenge, edition, files)
    assert error.rules == {"empty-file", "unknown-id", "unexpected-file"}


def test_official_profile_drops_unknown_ids_with_a_warning(challenge, edition, pool_ids):
    files = valid_files(pool_ids)
    files["Alpha.csv"] = csv([*good_rows(pool_ids), ("nope", 1)])
    parsed = challenge.parse_submission(files, edition, profile="official")
    assert len(parsed.selections["Alpha"].indices) == 20
    assert parsed.warnings == ("Alpha.csv: 1 ID(s) not in the pool were dropped, as the original "
                               "scorer does: nope",)


def independent_f1(edition, pool_ids, task, rows):
    """The original procedure, written plainly: join IDs to embeddings, fit, F1 x 100."""
    pool = pq.read_table(edition.path / "public/pool.parquet")
    vectors = dict(zip(pool.column("id").to_pylist(),
                       embedding_array(pool.column("embedding")), strict=True))
    test = pq.read_table(edition.path / "hidden/test.parquet").to_pylist()
    test = [row for row in test if row["task"] == task]
    ordered = sorted(rows, key=lambda r: pool_ids.index(r[0]))
    x = np.array([vectors[i] for i, _ in ordered], dtype=np.float64)
    model = LogisticRegression(random_state=0).fit(x, [label for _, label in ordered])
    predicted = model.predict(np.array([r["embedding"] for r in test], dtype=np.float64))
    return 100 * f1_score([r["label"] for r in test], predicted)


def test_score_equals_an_independent_implementation(challenge, edition, pool_ids):
    files = valid_files(pool_ids)
    score = challenge.score(challenge.parse_submission(files, edition), edition)
    for t, task in enumerate(TASKS):
        expected = independent_f1(edition, pool_ids, task, good_rows(pool_ids, 10 * t))
        assert score.task(task).value == pytest.approx(expected, abs=1e-9)
        assert score.task(task).ci_low <= score.task(task).value <= score.task(task).ci_high
    assert score.aggregate.value == pytest.approx(np.mean([s.value for s in score.tasks]))
    assert score.edition_hash == edition.content_hash


def test_scores_are_deterministic_and_independent_of_format_and_order(challenge, edition,
                                                                      pool_ids):
    files = valid_files(pool_ids)
    first = challenge.score(challenge.parse_submission(files, edition), edition)
    shuffled = dict(files)
    rows = good_rows(pool_ids)
    shuffled["Alpha.json"] = json.dumps(dict(reversed(rows))).encode()
    del shuffled["Alpha.csv"]
    second = challenge.score(challenge.parse_submission(shuffled, edition), edition)
    assert first.to_json() == second.to_json()


def test_official_profile_has_no_interval(challenge, edition, pool_ids):
    parsed = challenge.parse_submission(valid_files(pool_ids), edition, profile="official")
    score = challenge.score(parsed, edition, profile="official")
    default = challenge.score(parsed, edition)
    assert score.task("Alpha").ci_low is None
    assert score.task("Alpha").value == default.task("Alpha").value


def test_algorithm_output_is_a_valid_submission(challenge, edition):
    files = challenge.run_algorithm("random", edition, random_state=3)
    assert set(files) == {"Alpha.csv", "Beta.csv"}
    parsed = challenge.parse_submission(files, edition)
    assert all(len(s.indices) <= 30 for s in parsed.selections.values())


@pytest.mark.parametrize(("change", "message"), [
    ({"budget": 0}, r"budget"),
    ({"metric": "f1", "classes": ["a", "b", "c"]}, r"use 'macro_f1'"),
    ({"model": {"name": "svm"}}, r"unknown model 'svm'"),
    ({"colour": "red"}, r"colour"),
    ({"name": "Bad Name"}, r"name"),
], ids=["budget", "binary-f1-needs-two-classes", "unknown-model", "unknown-key", "bad-name"])
def test_invalid_specs_are_refused(change, message):
    with pytest.raises(SpecError, match=message):
        SelectionChallenge.from_mapping({**SPEC, **change}, origin="spec.yaml")


def test_tables_read_in_batches_and_task_slices_equal_the_plain_reads() -> None:
    import pyarrow.compute as pc

    from dataperf.editions import READ_BATCH_ROWS
    from dataperf.kinds.selection import _task_rows
    from dataperf.registry import get_challenge

    edition = get_challenge("vision-selection").edition("offline")
    for name in ("public/pool.parquet", "hidden/test.parquet"):
        table = edition.read_table(name)
        assert table.num_rows > READ_BATCH_ROWS  # more than one batch
        assert table.equals(pq.read_table(edition.file(name)))
        assert edition.read_table(name, ["id"]).equals(pq.read_table(edition.file(name),
                                                                     columns=["id"]))
    test = edition.read_table("hidden/test.parquet")
    for task in edition.tasks:
        expected = test.filter(pc.equal(test.column("task"), task))
        assert _task_rows(test, task).equals(expected)
    shuffled = test.take(np.random.default_rng(0).permutation(test.num_rows))
    task = edition.tasks[0]
    assert _task_rows(shuffled, task).equals(
        shuffled.filter(pc.equal(shuffled.column("task"), task)))
