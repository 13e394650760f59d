"""Raters' agreement: Krippendorff's alpha against the textbook example, and each rater against
the others' majority."""

import pytest

from dataperf.kinds.redteaming_agreement import alpha, rater_agreement
from dataperf.kinds.redteaming_files import Validation

# Krippendorff (2011), "Computing Krippendorff's alpha-reliability", the nominal example with
# missing values: 4 coders x 12 units, alpha = 0.743.
TEXTBOOK = {
    "A": [1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
    "B": [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
    "C": [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
    "D": [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None],
}


def test_nominal_alpha_is_the_textbook_value():
    # Five categories stand in for the example's five values (the function reads the text
    # safety answers; any nominal labels are alike to it).
    names = {1: "safe", 2: "unsafe", 3: "unsure", 4: "safe-ish", 5: "other"}
    validations = [Validation(str(unit), coder, text_safety=names[value])  # type: ignore[arg-type]
                   for coder, values in TEXTBOOK.items()
                   for unit, value in enumerate(values) if value is not None]
    assert alpha(validations, "text_safety") == pytest.approx(0.743, abs=5e-4)


def test_set_answers_use_masi_and_perfect_agreement_is_one():
    same = [Validation("a", r, harm_types=("image_failure_sexual",)) for r in "xyz"] + [
        Validation("b", r, harm_types=("image_failure_violent", "image_failure_hate"))
        for r in "xyz"]
    assert alpha(same, "harm_types") == pytest.approx(1.0)
    mixed = [*same[:2], Validation("a", "z", harm_types=("image_failure_violent",)), *same[3:]]
    assert alpha(mixed, "harm_types") < 1.0
    # Two empty answers agree (the MASI formula alone divides by zero there).
    empty = [Validation("c", r) for r in "xy"]
    assert alpha(same + empty, "harm_types") == pytest.approx(1.0)


def test_alpha_is_none_without_two_answers_or_without_variation():
    assert alpha([Validation("a", "x", text_safety="safe")], "text_safety") is None
    assert alpha([Validation("a", r, text_safety="safe") for r in "xy"], "text_safety") is None


def test_each_rater_against_the_majority_of_the_others():
    answers = {"a": "ssu", "b": "sss", "c": "suu"}  # per attack: raters x, y, z
    validations = [Validation(attack, rater, text_safety={"s": "safe", "u": "unsafe"}[a])
                   for attack, row in answers.items() for rater, a in zip("xyz", row,
                                                                          strict=True)]
    found = {r.annotator: r for r in rater_agreement(validations, "text_safety")}
    # Attack a: x's others (s, u) have no majority, y's (s, u) none, z's (s, s) say safe.
    # Attack b: all agree. Attack c: x's others (u, u) unsafe; y's (s, u) none; z's none.
    assert (found["x"].compared, found["x"].agreeing) == (2, 1)
    assert (found["y"].compared, found["y"].agreeing) == (1, 1)
    assert (found["z"].compared, found["z"].agreeing) == (2, 1)
    assert found["x"].share == 0.5
