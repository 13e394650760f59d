"""Cleaning submission files: every rule, all problems at once, and no crash on any input."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dataperf.kinds import cleaning_files as files
from dataperf.kinds._common import match_files


def parse(text, n=5):
    problems = []
    order = files.parse_order("A.txt", text, n, problems)
    return order, problems


def rules(problems):
    return [p.rule for p in problems]


def test_a_permutation_parses_in_file_order():
    order, problems = parse("3\n0\n4\n1\n2\n")
    assert problems == []
    assert order.tolist() == [3, 0, 4, 1, 2]
    assert order.dtype == np.int64


def test_crlf_spaces_leading_zeros_and_trailing_blank_lines_are_fine():
    order, problems = parse(" 3 \r\n0\r\n004\r\n+1\r\n2\r\n\r\n  \n\n")
    assert problems == []
    assert order.tolist() == [3, 0, 4, 1, 2]


def test_every_problem_is_reported_at_once_with_lines():
    order, problems = parse("3\nabc\n\n1.5\n7\n-1\n3\n0\n", n=5)
    assert order is None
    assert rules(problems) == ["not-an-index", "not-an-index", "not-an-index",
                               "index-out-of-range", "duplicate-index", "missing-index"]
    assert [p.line for p in problems[:3]] == [2, 3, 4]
    assert "'abc'" in problems[0].message
    assert "is blank" in problems[1].message
    assert problems[3].line == 5
    assert "7 (line 5)" in problems[3].message
    assert "-1 (line 6)" in problems[3].message
    assert problems[4].line == 7
    assert "3 (line 7)" in problems[4].message
    assert "leaves out 3 of the 5" in problems[5].message
    assert "1, 2, 4" in problems[5].message
    assert all(p.file == "A.txt" for p in problems)


def test_a_file_far_longer_than_the_task_is_refused_by_its_length_alone():
    """Rejecting a huge file costs one scan of it: its length is its only problem."""
    order, problems = parse("0\n" * 1011, n=5)
    assert order is None
    assert rules(problems) == ["far-too-long"]
    assert "has 1,011 lines; the task has 5 training rows" in problems[0].message
    _, near = parse("0\n" * 1010, n=5)  # up to twice as long and 1,000 more: every problem
    assert rules(near) == ["duplicate-index", "missing-index"]


def test_many_bad_lines_are_summarised():
    text = "".join(f"x{i}\n" for i in range(25))
    _, problems = parse(text, n=3)
    bad = [p for p in problems if p.rule == "not-an-index"]
    assert len(bad) == files.MAX_LINE_PROBLEMS + 1
    assert "15 more line(s)" in bad[-1].message
    assert bad[-1].line == 11


def test_missing_indices_show_a_count_and_a_few_examples():
    _, problems = parse("0\n", n=300)
    assert rules(problems) == ["missing-index"]
    assert "leaves out 299 of the 300" in problems[0].message
    assert "1, 2, 3, 4, 5 and 294 more" in problems[0].message


def test_huge_numbers_are_out_of_range_not_a_crash():
    _, problems = parse("9" * 5000 + "\n0\n1\n2\n3\n4\n")
    assert rules(problems) == ["index-out-of-range"]


def test_unicode_digits_are_not_indices():
    _, problems = parse("\u0663\n0\n1\n2\n3\n4\n")
    assert rules(problems) == ["not-an-index"]


def test_decode_rules_are_shared_with_selection():
    for data, rule in [(b"", "empty-file"), (b"  \n\n", "empty-file"), (b"1\x002", "binary-file"),
                       (b"\xff\xfe1", "encoding"),
                       (b"0\n" * (files.MAX_FILE_BYTES // 2 + 1), "file-too-large")]:
        problems = []
        assert files.decode_text("A.txt", data, problems) is None
        assert rules(problems) == [rule]
    problems = []
    assert files.decode_text("A.txt", "\ufeff0\n".encode(), problems) == "0\n"


def test_match_files_unexpected_missing_and_hints():
    problems = []
    matched = match_files(["Alpha.txt", "beta.TXT", "Gamma.csv", "notes.md", "Alpah.txt"],
                          ["Alpha", "Beta", "Gamma"], patterns=["{task}.txt"], challenge="demo",
                          problems=problems)
    assert matched == {"Alpha": "Alpha.txt"}
    by_file = {p.file: p for p in problems}
    assert by_file["beta.TXT"].rule == "unexpected-file"
    assert "did you mean Beta.txt?" in by_file["beta.TXT"].message
    assert "did you mean Gamma.txt?" in by_file["Gamma.csv"].message
    assert "did you mean Alpha.txt?" in by_file["Alpah.txt"].message
    assert "did you mean" not in by_file["notes.md"].message
    assert by_file["Beta.txt"].rule == by_file["Gamma.txt"].rule == "missing-task"


@given(st.permutations(list(range(40))))
def test_round_trip(order):
    data = files.write_order(order)
    problems = []
    text = files.decode_text("A.txt", data, problems)
    parsed = files.parse_order("A.txt", text, 40, problems)
    assert problems == []
    assert parsed.tolist() == list(order)


@given(st.text(max_size=300), st.integers(min_value=1, max_value=20))
def test_arbitrary_text_gives_an_order_or_problems(text, n):
    problems = []
    order = files.parse_order("A.txt", text, n, problems)
    if order is None:
        assert problems
        assert all(p.file == "A.txt" and p.rule for p in problems)
    else:
        assert problems == []
        assert sorted(order.tolist()) == list(range(n))


@pytest.mark.parametrize("n", [1, 3])
def test_exact_count_needed(n):
    order, problems = parse("".join(f"{i}\n" for i in range(n)) + f"{n}\n", n=n)
    assert order is None
    assert rules(problems) == ["index-out-of-range"]


def match(names, tasks):
    problems = []
    return files.match_order_files(names, tasks, challenge="demo", problems=problems), problems


def test_original_names_pick_the_task_before_the_first_underscore():
    """As the original's ``x.split("_")[0] == data_id``: 01g317-flipped_random.txt is task
    01g317-flipped (not 01g317), and the method may hold underscores."""
    found, problems = match(["01g317-flipped_random.txt", "01g317_neighbor_shapley.txt",
                             "time_01g317_neighbor_shapley.txt"], ["01g317", "01g317-flipped"])
    assert problems == []
    assert found.names == {"01g317": "01g317_neighbor_shapley.txt",
                           "01g317-flipped": "01g317-flipped_random.txt"}
    assert found.methods == {"01g317": "neighbor_shapley", "01g317-flipped": "random"}
    assert found.ignored == ("time_01g317_neighbor_shapley.txt",)


def test_a_name_two_tasks_fit_is_refused():
    found, problems = match(["a_b_c.txt", "a_b.txt"], ["a", "a_b"])
    assert [(p.file, p.rule) for p in problems] == [("a_b_c.txt", "ambiguous-name"),
                                                    ("a.txt", "missing-task")]
    assert "could be task a (method 'b_c') or task a_b (method 'c')" in problems[0].message
    assert found.names == {"a_b": "a_b.txt"}


def test_misspelt_original_names_get_a_suggestion():
    _, problems = match(["01G317_random.txt"], ["01g317"])
    assert rules(problems) == ["unexpected-file", "missing-task"]
    assert "expected {task}.txt or {task}_{method}.txt" in problems[0].message
