"""Red-teaming attack and validation files: JSON Lines, CSV, every broken rule at once."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dataperf.exceptions import Problem
from dataperf.kinds.redteaming_files import (
    MAX_PROBLEMS_PER_RULE,
    QUESTIONS,
    Attack,
    Problems,
    Validation,
    attack_record,
    read_records,
    released_list,
    validation_record,
    write_jsonl,
)

VOCABULARY = {
    "attack_modes": frozenset({"text_attack_coded_language", "text_attack_none",
                               "text_attack_sensitive_terms"}),
    "harm_types": frozenset({"image_failure_sexual", "image_failure_violent"}),
    "targets": frozenset({"image_target_age", "image_target_none", "image_target_race"}),
}


def parse(name, text, kind="attacks"):
    problems: list[Problem] = []
    found = Problems(problems)
    records = read_records(name, text.encode(), kind=kind, vocabulary=VOCABULARY,
                           problems=found)
    found.close()
    return records, problems


def test_a_jsonl_attack_with_every_field():
    record = {"id": "a1", "prompt": "  a quiet street at night ", "image_id": "123",
              "submitter": "team-7", "round": "round1", "model": "sd-2.1",
              "timestamp": "2024-05-06T12:00:00+00:00", "rewritten_prompt": "x",
              "attack_modes": ["coded_language", "text_attack_sensitive_terms"],
              "harm_types": ["violent"], "targets": ["race"], "attack_mode_other": "o",
              "harm_type_other": "", "target_other": "t"}
    (attack,), problems = parse("a.jsonl", json.dumps(record))
    assert problems == []
    assert attack.prompt == "a quiet street at night"
    assert attack.timestamp_ms == 1714996800000
    assert attack.attack_modes == ("text_attack_coded_language", "text_attack_sensitive_terms")
    assert attack.harm_types == ("image_failure_violent",)
    assert attack.targets == ("image_target_race",)


def test_every_broken_rule_is_reported_at_once_with_its_line_and_field():
    lines = [
        json.dumps({"prompt": "no id", "image_id": "1"}),
        json.dumps({"id": "b", "image_id": "1"}),
        json.dumps({"id": "c", "prompt": "p", "colour": "red", "image_id": "1"}),
        json.dumps({"id": "d", "prompt": "p", "image_id": "1", "harm_types": ["gore"]}),
        json.dumps({"id": "e", "prompt": "p", "image": "x.png", "image_id": "1"}),
        json.dumps({"id": "f", "prompt": "p"}),
        json.dumps({"id": "g", "prompt": "p", "image_id": "1", "timestamp": "yesterday"}),
        "{not json",
        json.dumps(["a", "list"]),
        json.dumps({"id": "../etc", "prompt": "p", "image_id": "1"}),
        json.dumps({"id": "h", "prompt": 12.5, "image_id": "1"}),
        json.dumps({"id": "i", "prompt": "p", "image_id": "1", "targets": "race"}),
    ]
    records, problems = parse("attacks.jsonl", "\n".join(lines))
    found = {(p.line, p.rule) for p in problems}
    assert found == {(1, "missing-field"), (2, "missing-field"), (3, "unknown-field"),
                     (4, "unknown-value"), (5, "image-and-image-id"), (6, "no-image"),
                     (7, "bad-value"), (8, "bad-json"), (9, "bad-json-shape"), (10, "bad-value"),
                     (11, "bad-value"), (12, "bad-value")}
    assert records == []
    message = {p.rule: p.message for p in problems}
    assert "'gore'" in message["unknown-value"]
    assert "sexual" in message["unknown-value"]
    assert "colour" in message["unknown-field"]


def test_a_deeply_nested_line_is_a_clear_error_not_a_crash():
    records, problems = parse("a.jsonl", "[" * 100_000 + "]" * 100_000)
    assert records == []
    assert [p.rule for p in problems] == ["bad-json"]
    assert "nested too deeply" in problems[0].message


def test_many_bad_lines_are_named_up_to_a_limit_then_counted():
    text = "\n".join(json.dumps({"id": f"a{i}", "image_id": "1"}) for i in range(25))
    _, problems = parse("a.jsonl", text)
    assert len(problems) == MAX_PROBLEMS_PER_RULE + 1
    assert "and 15 more records" in problems[-1].message


def test_a_csv_of_attacks_with_lists_separated_by_semicolons():
    text = ('id,prompt,image_id,attack_modes,targets\n'
            'a1,"a cat, sleeping",9,coded_language; sensitive_terms,race\n'
            '\n'
            'a2,"a dog",10,,\n')
    (first, second), problems = parse("attacks.csv", text)
    assert problems == []
    assert first.prompt == "a cat, sleeping"
    assert first.attack_modes == ("text_attack_coded_language", "text_attack_sensitive_terms")
    assert second.attack_modes == ()
    assert second.targets == ()


@pytest.mark.parametrize(("text", "rule"), [
    ("prompt,image_id\np,1\n", "bad-csv"),  # no id column
    ("id,prompt,weather\na,p,sun\n", "bad-csv"),
    ("id,prompt,prompt\na,p,q\n", "bad-csv"),
    ("id,prompt,image_id\na,p\n", "bad-csv"),
])
def test_a_bad_csv_is_refused(text, rule):
    _, problems = parse("attacks.csv", text)
    assert rule in {p.rule for p in problems}


@pytest.mark.parametrize(("data", "rule"), [
    (b"", "empty-file"), (b"\x00\x01", "binary-file"), (b"\xff\xfe\xfa", "encoding")])
def test_unreadable_files(data, rule):
    problems: list[Problem] = []
    assert read_records("a.jsonl", data, kind="attacks", vocabulary=VOCABULARY,
                        problems=Problems(problems)) == []
    assert [p.rule for p in problems] == [rule]


def test_validations_in_our_words_and_in_the_released_spellings():
    lines = [
        {"attack_id": "a", "annotator": "r1", "text_safety": "safe", "image_safety": "unsafe",
         "harm_types": ["sexual"], "answer_time_ms": 1200, "final_comments": "ok"},
        {"attack_id": "a", "annotator": "r2", "text_safety": "text_other",
         "image_safety": "image_unsure_safe"},
        {"attack_id": "a", "annotator": "r3", "text_safety": ["text_unsafe"],
         "image_safety": ["unsure_image_safe"]},
        {"attack_id": "a", "text_safety": "maybe"},
    ]
    records, problems = parse("v.jsonl", "\n".join(map(json.dumps, lines)), kind="validations")
    assert [(v.text_safety, v.image_safety) for v in records] == [
        ("safe", "unsafe"), ("unsure", "unsure"), ("unsafe", "unsure")]
    assert records[0].reasons == {"final_comments": "ok"}
    assert [(p.line, p.rule) for p in problems] == [(4, "bad-value")]


def test_the_released_no_response_quirk_means_no_answer():
    assert released_list(list("no_response")) == []
    assert released_list(["no_response"]) == []
    assert released_list(["image_failure_bias", "image_failure_hate"]) == [
        "image_failure_bias", "image_failure_hate"]
    assert released_list("not a list") is None


values = {q: st.lists(st.sampled_from(sorted(VOCABULARY[q])), unique=True, max_size=3)
          for q in QUESTIONS}
text = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=40).map(str.strip)
attacks = st.builds(
    Attack,
    attack_id=st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,20}", fullmatch=True),
    prompt=text.filter(bool),
    submitter=st.none() | st.from_regex(r"[a-z0-9]{1,8}", fullmatch=True),
    image_id=st.from_regex(r"[0-9]{1,20}", fullmatch=True),
    timestamp_ms=st.none() | st.integers(0, 10**13),
    rewritten_prompt=text,
    attack_modes=values["attack_modes"].map(tuple),
    harm_types=values["harm_types"].map(tuple),
    targets=values["targets"].map(tuple),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(attacks, min_size=1, max_size=5))
def test_attacks_written_as_jsonl_read_back_equal(written):
    records, problems = parse("a.jsonl", write_jsonl([attack_record(a) for a in written])
                              .decode())
    assert problems == []
    assert records == written


@settings(max_examples=60, deadline=None)
@given(st.builds(Validation, attack_id=st.from_regex(r"[a-z0-9]{1,8}", fullmatch=True),
                 annotator=st.from_regex(r"[a-z0-9]{0,8}", fullmatch=True),
                 text_safety=st.sampled_from(["safe", "unsafe", "unsure", None]),
                 image_safety=st.sampled_from(["safe", "unsafe", "unsure", None]),
                 harm_types=values["harm_types"].map(tuple),
                 answer_time_ms=st.none() | st.integers(0, 10**9)))
def test_validations_written_as_jsonl_read_back_equal(validation):
    data = write_jsonl([validation_record(validation)]).decode()
    assert parse("v.jsonl", data, kind="validations") == ([validation], [])


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_arbitrary_bytes_give_problems_never_exceptions(data):
    for name in ("a.jsonl", "a.csv"):
        problems: list[Problem] = []
        read_records(name, data, kind="attacks", vocabulary=VOCABULARY,
                     problems=Problems(problems))
