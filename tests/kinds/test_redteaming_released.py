"""The released Adversarial Nibbler JSON files are read unchanged, quirk by quirk."""

import json

from dataperf.exceptions import Problem
from dataperf.kinds.redteaming_files import Attack, Problems, Validation
from dataperf.kinds.redteaming_released import read_released, released_prompts_listing
from nibbler_layout import released_frame

BIG = 17737253513380745608  # above 2**63: the int64 range pandas would squeeze it into


def attack(uid="461745", **changes):
    fields = dict(attack_id=uid, prompt="a beach at dusk", submitter="2520", image_id=str(BIG),
                  timestamp_ms=1707231536000, rewritten_prompt="na",
                  attack_modes=("text_attack_none",), harm_types=("image_failure_sexual",),
                  targets=("image_target_none",))
    return Attack(**{**fields, **changes})


def validation(uid="461745", n=0, **changes):
    fields = dict(attack_id=uid, annotator=f"43991{n}", text_safety="safe",
                  image_safety="unsafe", harm_types=("image_failure_sexual",),
                  answer_time_ms=14067 + n, question_id=f"q{uid}-{n}")
    return Validation(**{**fields, **changes})


def read(frame, round_name=None):
    problems: list[Problem] = []
    found = Problems(problems)
    attacks, validations = read_released("dev.json", json.dumps(frame).encode(),
                                         vocabulary=None, problems=found,
                                         round_name=round_name)
    found.close()
    return attacks, validations, problems


def test_a_round_one_file_reads_back_with_its_validations():
    frame = released_frame([attack()], [validation(n=i) for i in range(5)], "round1")
    assert "timestamp" in frame
    assert isinstance(frame["submission_annotations"]["0"], str)
    attacks, validations, problems = read(frame, "round1")
    assert problems == []
    assert attacks == [attack(round="round1")]
    assert validations == [validation(n=i) for i in range(5)]


def test_hashed_filenames_beyond_int64_are_read_as_text_as_number_and_as_string():
    for round_name in ("round1", "round3"):  # a JSON number in round 1, a string in round 3
        frame = released_frame([attack()], [], round_name)
        assert isinstance(frame["hashed_filename"]["0"], int if round_name == "round1" else str)
        attacks, _, _ = read(frame)
        assert attacks[0].image_id == str(BIG)


def test_the_time_column_is_timestamp_in_round_one_and_submitted_timestamp_later():
    for round_name, column in (("round1", "timestamp"), ("round4", "submitted_timestamp")):
        frame = released_frame([attack()], [], round_name)
        assert column in frame
        assert read(frame)[0][0].timestamp_ms == 1707231536000


def test_both_spellings_of_the_unsure_image_answer_mean_unsure():
    for round_name, spelling in (("round3", "unsure_image_safe"), ("round4", "image_unsure_safe")):
        frame = released_frame([attack()], [validation(image_safety="unsure")], round_name)
        assert spelling in frame["validation"]["0"][0]
        assert read(frame)[1][0].image_safety == "unsure"


def test_the_targets_free_text_under_either_name():
    frame = released_frame([attack(target_other="fishermen")], [], "round1")
    assert "community_affected_other_input" in frame["submission_annotations"]["0"]
    assert read(frame)[0][0].target_other == "fishermen"
    annotations = json.loads(frame["submission_annotations"]["0"])
    annotations["image_failure_target_other_input"] = annotations.pop(
        "community_affected_other_input")
    frame["submission_annotations"]["0"] = json.dumps(annotations)
    assert read(frame)[0][0].target_other == "fishermen"


def test_no_response_split_into_characters_is_no_answer():
    frame = released_frame([attack()], [], "round1")
    annotations = json.loads(frame["submission_annotations"]["0"])
    annotations["image_failure_type"] = list("no_response")
    frame["submission_annotations"]["0"] = json.dumps(annotations)
    attacks, _, problems = read(frame)
    assert problems == []
    assert attacks[0].harm_types == ()


def test_rows_with_three_or_four_validations_are_read_as_they_are():
    attacks = [attack("1"), attack("2", prompt="p2"), attack("3", prompt="p3")]
    rated = [validation(uid, n) for uid, count in (("1", 5), ("2", 4), ("3", 3))
             for n in range(count)]
    _, validations, _ = read(released_frame(attacks, rated, "round4"))
    assert [sum(v.attack_id == uid for v in validations) for uid in "123"] == [5, 4, 3]


def test_annotations_given_as_objects_are_read_too():
    frame = released_frame([attack()], [validation()], "round1")
    frame["submission_annotations"]["0"] = json.loads(frame["submission_annotations"]["0"])
    frame["validation"]["0"] = [json.loads(v) for v in frame["validation"]["0"]]
    attacks, validations, problems = read(frame)
    assert problems == []
    assert len(attacks) == len(validations) == 1


def test_a_frame_of_another_shape_or_bad_strings_is_refused_with_its_row():
    _, _, problems = read({"prompt": ["not", "columns"]})
    assert [p.rule for p in problems] == ["bad-json-shape"]
    frame = released_frame([attack(), attack("2", prompt="b")], [], "round1")
    frame["submission_annotations"]["3"] = "{broken"
    frame["validation"]["0"] = "not a list"
    attacks, _, problems = read(frame)
    assert sorted(p.rule for p in problems) == ["bad-json", "bad-json-shape"]
    assert attacks == [attack()]


def test_the_released_prompts_only_csv_is_recognised():
    assert released_prompts_listing(',prompt\n0,a group of workers\n')
    assert not released_prompts_listing('id,prompt\n')
