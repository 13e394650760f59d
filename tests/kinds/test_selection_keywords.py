"""Keyword tasks of the selection kind (speech selection) on a small generated edition: the
original submission format and its rules, class mapping by name, and the official score equal to
a plain implementation of the original DataPerf speech evaluator."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pyarrow as pa
import pytest
from sklearn.ensemble import VotingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.svm import SVC

from dataperf.algorithms.selectors import SELECTORS
from dataperf.challenges.speech_selection import challenge as speech
from dataperf.editions import Source, embedding_column, write_edition
from dataperf.exceptions import SpecError, SubmissionError
from dataperf.kinds.selection import SelectionChallenge

SEEDS = [5, 69, 98, 70, 95, 64, 37, 11, 4, 32]
LANGUAGES = {"en": ["left", "go", "stop", "yes", "down"], "pt": ["sim", "casa", "dia", "agua",
                                                                  "bola"]}
TASKS = [f"{lang}_{size}" for lang in LANGUAGES for size in (25, 60)]
DIM = 12


def make_edition(root):
    """Per language: 5 keywords x 30 candidates, 8 nontarget words x 8; evaluation 5 x 12 and
    16 nontarget words x 3. The pool lists each language's keywords in sorted order, then its
    nontargets, as the original per-word parquet files would be read."""
    rng = np.random.default_rng(7)
    pool_ids, pool_vectors, candidates, test = [], [], [], []
    for lang, words in LANGUAGES.items():
        centres = {w: rng.normal(size=DIM) * 2.5 for w in words}
        others = [f"{lang}-other{i}" for i in range(16)]
        centres |= {w: rng.normal(size=DIM) * 2.5 for w in others}
        listed = [(w, w, 30) for w in sorted(words)] + [(w, "nontarget", 8) for w in others[:8]]
        for word, label, count in listed:
            for i in range(count):
                clip = f"{word}/{lang}_{i:03d}.wav"
                spoken = word if rng.random() > 0.15 else rng.choice(others)  # weak labels
                pool_ids.append(clip)
                pool_vectors.append(centres[spoken] + rng.normal(size=DIM) * 1.5)
                candidates += [(f"{lang}_{size}", clip, label) for size in (25, 60)]
        for word, label, count in [(w, w, 12) for w in words] + [(w, "nontarget", 3)
                                                                  for w in others]:
            for i in range(count):
                vector = centres[word] + rng.normal(size=DIM) * 1.5
                test += [(f"{lang}_{size}", f"eval/{word}/{i}", vector, label)
                         for size in (25, 60)]
    candidates.sort()
    tables = {
        "public/pool.parquet": pa.table({"id": pool_ids, "embedding": embedding_column(
            np.stack(pool_vectors), np.float32)}),
        "public/candidates.parquet": pa.table({k: [c[i] for c in candidates] for i, k in
                                               enumerate(["task", "id", "label"])}),
        "hidden/test.parquet": pa.table({
            "task": [r[0] for r in test], "id": [r[1] for r in test],
            "embedding": embedding_column(np.stack([r[2] for r in test]), np.float32),
            "label": [r[3] for r in test]}),
    }
    return write_edition(root / "tiny", challenge="speech-selection", edition="tiny",
                         builder="tests", builder_version="1", tasks=TASKS,
                         sources=[Source(name="gaussians", licence="CC0-1.0", origin="test")],
                         tables=tables)


@pytest.fixture(scope="module")
def edition(tmp_path_factory):
    return make_edition(tmp_path_factory.mktemp("keywords"))


def candidates_of(edition, task):
    table = edition.read_table("public/candidates.parquet")
    rows = [r for r in table.to_pylist() if r["task"] == task]
    by_word: dict[str, list[str]] = {}
    for row in rows:
        by_word.setdefault(row["label"], []).append(row["id"])
    return by_word


def pool_order(edition):
    return {clip: i for i, clip in
            enumerate(edition.read_table("public/pool.parquet").column("id").to_pylist())}


def choose(edition, task, per_word, nontargets, seed=0):
    """A submission document: ``per_word`` IDs of each keyword, ``nontargets`` others, each
    list in pool order and the keywords in sorted order."""
    rng = np.random.default_rng(seed)
    order = pool_order(edition)
    by_word = candidates_of(edition, task)
    pick = {w: sorted(rng.choice(ids, per_word if w != "nontarget" else nontargets,
                                 replace=False).tolist(), key=order.__getitem__)
            for w, ids in by_word.items()}
    return {"targets": {w: pick[w] for w in sorted(pick) if w != "nontarget"},
            "nontargets": pick["nontarget"]}


def files_for(edition, documents=None):
    documents = documents or {}
    return {f"{task}_train.json": json.dumps(
        documents.get(task) or choose(edition, task, 3 if task.endswith("25") else 8,
                                      10 if task.endswith("25") else 20, seed=i)).encode()
            for i, task in enumerate(TASKS)}


def problems_of(edition, files, profile="default"):
    with pytest.raises(SubmissionError) as caught:
        speech.parse_submission(files, edition, profile=profile)
    return caught.value.problems


# Scoring ------------------------------------------------------------------------------------

def original_score(edition, task, document):
    """A plain implementation of the original evaluator (eval.py and selection/load_samples.py
    of the DataPerf speech example), line by line: training rows in the order its loader reads
    them (for each target key of the file, the word's clips in parquet order; then the
    nontargets grouped by word file, the ID's first path component, in order of first
    appearance), training classes numbered by the file's own target keys sorted (nontarget 0)
    and evaluation classes by the task's keywords sorted (``create_dataset`` on each), the
    soft-voting ensemble refitted per seed, sklearn's macro F1 on the evaluation clips, mean
    over the seeds."""
    pool = edition.read_table("public/pool.parquet").to_pylist()
    vectors = {row["id"]: np.asarray(row["embedding"], dtype=np.float32) for row in pool}
    keywords = sorted(w for w in candidates_of(edition, task) if w != "nontarget")
    class_id = {w: i + 1 for i, w in enumerate(keywords)} | {"nontarget": 0}
    train_id = {w: i + 1 for i, w in enumerate(sorted(document["targets"]))}
    x, y = [], []
    for word, chosen in document["targets"].items():
        for row in pool:  # the word's parquet file, filtered with isin
            if row["id"] in chosen:
                x.append(vectors[row["id"]])
                y.append(train_id[word])
    by_word: dict[str, list[str]] = {}
    for clip in document["nontargets"]:
        by_word.setdefault(clip.split("/")[0], []).append(clip)
    for clips in by_word.values():
        for clip in clips:
            x.append(vectors[clip])
            y.append(0)
    test = [r for r in edition.read_table("hidden/test.parquet").to_pylist() if r["task"] == task]
    x_eval = np.array([r["embedding"] for r in test], dtype=np.float32)
    y_eval = np.array([class_id[r["label"]] for r in test])
    scores = []
    for seed in SEEDS:
        clf = VotingClassifier(estimators=[("svm", SVC(probability=True, random_state=seed)),
                                           ("lr", LogisticRegression(random_state=seed))],
                               voting="soft", weights=None)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            clf.fit(np.array(x), np.array(y))
        scores.append(f1_score(y_eval, clf.predict(x_eval), average="macro"))
    return float(np.mean(scores))


def test_the_official_score_equals_the_original_procedure(edition):
    files = files_for(edition)
    score = speech.score(speech.parse_submission(files, edition, profile="official"), edition,
                         profile="official")
    for task in score.tasks:
        document = json.loads(files[f"{task.task}_train.json"])
        assert task.value == pytest.approx(original_score(edition, task.task, document),
                                           abs=1e-12)
        assert task.ci_low is None
        assert task.details["classes"][0] == "nontarget"
    assert score.aggregate.value == pytest.approx(np.mean([t.value for t in score.tasks]))


def test_the_order_of_target_keys_and_ids_does_not_change_the_score(edition):
    files = files_for(edition)
    shuffled = {}
    rng = np.random.default_rng(3)
    for name, data in files.items():
        document = json.loads(data)
        words = list(document["targets"])
        rng.shuffle(words)
        targets = {w: rng.permutation(document["targets"][w]).tolist() for w in words}
        shuffled[name] = json.dumps({"nontargets": rng.permutation(
            document["nontargets"]).tolist(), "targets": targets}).encode()
    first = speech.score(speech.parse_submission(files, edition), edition)
    again = speech.score(speech.parse_submission(shuffled, edition), edition)
    assert [t.value for t in first.tasks] == [t.value for t in again.tasks]
    assert first.aggregate == again.aggregate


def test_a_missing_keyword_shifts_the_classes_only_in_the_official_profile(edition):
    document = choose(edition, "en_25", 4, 5)
    del document["targets"]["down"]  # the original numbers the file's own keys: "go" becomes 1
    files = files_for(edition, {"en_25": document})
    official = speech.score(speech.parse_submission(files, edition, profile="official"),
                            edition, profile="official").task("en_25")
    assert official.value == pytest.approx(original_score(edition, "en_25", document),
                                           abs=1e-12)
    default = speech.score(speech.parse_submission(files, edition), edition).task("en_25")
    assert default.details["train_class_counts"][1] == 0  # "down" is class 1 by name, absent
    assert default.value > official.value  # the original's shift mislabels every other word


def test_default_profile_adds_intervals_around_the_same_values(edition):
    files = files_for(edition)
    official = speech.score(speech.parse_submission(files, edition, profile="official"),
                            edition, profile="official")
    default = speech.score(speech.parse_submission(files, edition), edition)
    for a, b in zip(official.tasks, default.tasks, strict=True):
        assert a.value == b.value
        assert b.ci_low <= b.value <= b.ci_high
    assert default.aggregate.ci_low is not None


# Validation ---------------------------------------------------------------------------------

def test_every_rule_is_reported_at_once(edition):
    by_word = candidates_of(edition, "en_25")
    other_language = candidates_of(edition, "pt_25")["sim"][0]
    document = {"targets": {"left": [*by_word["left"][:2], by_word["go"][0]],  # wrong word
                            "dog": [by_word["stop"][0]],                        # unknown target
                            "go": [other_language, by_word["go"][1]]},          # not a candidate
                "nontargets": by_word["nontarget"][:2] + by_word["nontarget"][:1]}  # duplicate
    problems = problems_of(edition, files_for(edition, {"en_25": document}))
    rules = {p.rule: p for p in problems}
    assert set(rules) == {"wrong-word", "unknown-target", "not-a-candidate", "duplicate-id"}
    assert "'dog'" in rules["unknown-target"].message
    assert "its targets: down, go, left, stop, yes" in rules["unknown-target"].message
    assert rules["wrong-word"].ids == (by_word["go"][0],)
    assert "under 'left'" in rules["wrong-word"].message
    assert rules["not-a-candidate"].ids == (other_language,)
    assert all(p.file == "en_25_train.json" for p in problems)


def test_over_budget_names_the_task_budget(edition):
    document = choose(edition, "en_25", 5, 1)  # 26 clips
    problems = problems_of(edition, files_for(edition, {"en_25": document}))
    assert [p.rule for p in problems] == ["over-budget"]
    assert "at most 25" in problems[0].message
    assert speech.parse_submission(files_for(edition, {"en_60": choose(edition, "en_60", 5,
                                                                         35)}), edition)


def test_far_more_ids_than_the_budget_are_refused_before_any_lookup(edition):
    """1,051 IDs for a budget of 25 (more than twice as many and 1,000 more): the count is the
    only problem, whatever the IDs are, so that refusing a huge file stays cheap."""
    document = {"targets": {}, "nontargets": [f"no-such-clip-{i}" for i in range(1051)]}
    problems = problems_of(edition, files_for(edition, {"en_25": document}))
    assert [p.rule for p in problems] == ["far-too-long"]
    assert "lists 1,051 IDs; the task allows at most 25 rows" in problems[0].message


@pytest.mark.parametrize("text", [
    "[]", '{"targets": {}}', '{"targets": [], "nontargets": []}',
    '{"targets": {"left": "a"}, "nontargets": []}', '{"targets": {"left": [1]}, '
    '"nontargets": []}', '{"targets": {}, "nontargets": [], "extra": 1}',
])
def test_malformed_documents_are_refused_with_the_expected_shape(edition, text):
    problems = problems_of(edition, files_for(edition) | {"en_25_train.json": text.encode()})
    assert [p.rule for p in problems] == ["bad-json-shape"]
    assert '"nontargets"' in problems[0].message


def test_one_class_only_is_refused(edition):
    document = {"targets": {}, "nontargets": candidates_of(edition, "en_25")["nontarget"][:5]}
    problems = problems_of(edition, files_for(edition, {"en_25": document}))
    assert [p.rule for p in problems] == ["single-class"]


def test_file_names_follow_the_original_and_get_hints(edition):
    files = files_for(edition)
    files["EN_25_train.json"] = files.pop("en_25_train.json")
    files["pt_60.json"] = files.pop("pt_60_train.json")
    problems = problems_of(edition, files)
    messages = {p.file: p.message for p in problems if p.rule == "unexpected-file"}
    assert "did you mean en_25_train.json?" in messages["EN_25_train.json"]
    assert "did you mean pt_60_train.json?" in messages["pt_60.json"]
    assert not [p for p in problems if p.rule == "missing-task"]  # a local run may be partial


def test_unofficial_ids_are_refused_in_the_official_profile_too(edition):
    document = choose(edition, "en_25", 2, 2)
    document["nontargets"].append("nowhere/clip.wav")
    problems = problems_of(edition, files_for(edition, {"en_25": document}), profile="official")
    assert [p.rule for p in problems] == ["not-a-candidate"]


# Algorithms and spec ------------------------------------------------------------------------

def test_algorithms_write_valid_keyword_files_with_the_given_words(edition):
    files = speech.run_algorithm("random", edition, random_state=1)
    assert sorted(files) == sorted(f"{t}_train.json" for t in TASKS)
    submission = speech.parse_submission(files, edition)
    for task in TASKS:
        document = json.loads(files[f"{task}_train.json"])
        by_word = candidates_of(edition, task)
        assert all(set(ids) <= set(by_word[w]) for w, ids in document["targets"].items())
        assert len(submission.selections[task].indices) <= speech.spec.budget_of(task)
    selection_task = speech.selection_task(edition, "en_25")
    assert selection_task.budget == 25
    assert selection_task.weak_proba.shape[1] == 6
    assert np.array_equal(selection_task.weak_proba.sum(axis=1), np.ones(len(
        selection_task.embeddings), dtype=np.float32))


def test_task_classes_are_the_background_then_sorted_keywords(edition):
    assert speech.task_classes(edition, "en_60") == ["nontarget", "down", "go", "left", "stop",
                                                     "yes"]


@pytest.mark.parametrize(("change", "message"), [
    ({"formats": ["keywords", "csv"]}, "comes alone"),
    ({"classes": ["nontarget", "target"]}, "one class"),
    ({"metric": "f1"}, "macro_f1"),
    ({"formats": ["csv"]}, "at least two"),
    ({"task_budgets": {"en_25": 0}}, "between 1 and"),
])
def test_keyword_specs_are_checked(change, message):
    spec = speech.spec.model_dump() | change
    with pytest.raises(SpecError, match=message):
        SelectionChallenge.from_mapping(spec, origin="test")


@pytest.mark.parametrize("name", sorted(SELECTORS))
def test_every_selector_makes_a_valid_small_speech_selection(name):
    """On the bundled edition's smallest budget every built-in selector chooses clips the scorer
    accepts: within the budget, from the task's candidates, of at least two classes."""
    edition = speech.edition("offline")
    task = speech.selection_task(edition, "en_25")
    chosen = SELECTORS[name](random_state=0).select(task)
    given = task.weak_proba.argmax(axis=1)[chosen.indices]
    assert 0 < len(chosen.indices) <= 25
    assert len(np.unique(chosen.indices)) == len(chosen.indices)
    assert len(np.unique(given)) >= 2


def test_the_original_training_order_follows_its_loader():
    from dataperf.kinds.selection_files import KeywordRows
    from dataperf.kinds.selection_tables import original_training_order

    classes = ["nontarget", "down", "go", "yes"]
    # file order: targets "yes" then "down" ("go" left out), nontargets of words a, b, a
    rows = KeywordRows(ids=("y1", "y2", "d1", "a/1", "b/1", "a/2"), labels=(3, 3, 1, 0, 0, 0),
                       lines=(0,) * 6, words=("yes", "down"))
    file_rows = np.array([7, 2, 5, 0, 0, 0])  # each clip's row in its word file
    order, numbered = original_training_order(rows, file_rows, classes)
    assert [rows.ids[k] for k in order] == ["y2", "y1", "d1", "a/1", "a/2", "b/1"]
    # numbered by the file's own words sorted: down 1, yes 2 (the task's "yes" is 3)
    assert numbered.tolist() == [2, 2, 1, 0, 0, 0]
