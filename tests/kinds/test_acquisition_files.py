"""Acquisition submission files: every rule, all problems at once, the budget tolerance, and
no crash on any input."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dataperf.kinds import acquisition_files as files

TERMS = files.MarketTerms("7", 10.0, np.array([20, 10, 15]), np.array([4.0, 6.0, 5.0]))


def parse(text, terms=TERMS):
    problems = []
    counts = files.parse_purchase("7.txt", text, terms, problems)
    return counts, problems


def rules(problems):
    return [p.rule for p in problems]


def test_one_line_of_counts_parses():
    counts, problems = parse("3,0,15\n")
    assert problems == []
    assert counts.tolist() == [3, 0, 15]
    assert counts.dtype == np.int64


def test_spaces_crlf_leading_zeros_and_trailing_blank_lines_are_fine():
    counts, problems = parse(" 3 ,\t000, +15 \r\n\r\n  \n")
    assert problems == []
    assert counts.tolist() == [3, 0, 15]


@pytest.mark.parametrize(
    ("text", "expected", "words"),
    [
        ("1,2", ["wrong-seller-count"], "has 2 count(s) on line 1; market 7 has 3 sellers"),
        ("1,2,3,4", ["wrong-seller-count"], "sellers 0..2"),
        (
            "1, 2.0 ,1e3",
            ["not-an-integer"],
            "market 7: the count of seller 1 ('2.0'), seller 2 ('1e3') is not a whole number",
        ),
        ("1,,x", ["not-an-integer"], "seller 1 (empty), seller 2 ('x')"),
        ("-1,0,-0", ["negative-count"], "market 7: seller 0 (-1) has a negative count"),
        ("21,0,16", ["more-than-offered"], "market 7: seller 0 (21 of 20), seller 2 (16 of 15)"),
        ("20,10,1", ["over-budget"], "market 7: the purchase costs 10.3333; the budget is 10"),
        ("1,1,1\n1,1,1", ["too-many-lines"], "has 2 lines; market 7 needs exactly one line"),
        ("\n1,1,1", ["too-many-lines", "wrong-seller-count", "not-an-integer"], "line"),
        ("", ["wrong-seller-count", "not-an-integer"], "has 1 count(s)"),
    ],
    ids=lambda v: v[0] if isinstance(v, list) else None,
)
def test_each_rule(text, expected, words):
    counts, problems = parse(text)
    assert counts is None
    assert rules(problems) == expected
    assert words in " ".join(p.message for p in problems)
    assert all(p.file == "7.txt" and p.line in (1, 2) for p in problems)


def test_every_problem_at_once():
    counts, problems = parse("1,x,2,3\n4\n")
    assert counts is None
    assert rules(problems) == ["too-many-lines", "wrong-seller-count", "not-an-integer"]
    counts, problems = parse("-1,11,16")
    assert rules(problems) == ["negative-count", "more-than-offered"]  # no cost when negative
    counts, problems = parse("20,11,15")
    assert rules(problems) == ["more-than-offered", "over-budget"]


def test_long_listings_are_cut_and_huge_numbers_do_not_convert():
    terms = files.MarketTerms("m", 1.0, np.full(12, 5), np.ones(12))
    _, problems = parse(",".join(["x"] * 12), terms)
    assert problems[0].message.endswith("seller 4 ('x') and 7 more is not a whole number of rows")
    _, problems = parse("9" * 5000 + ",0,0," + "-" + "9" * 5000 + ",0,0,0,0,0,0,0,0", terms)
    assert rules(problems) == ["negative-count", "more-than-offered"]


def test_spending_exactly_the_budget_is_allowed_within_rounding():
    # 0.1 + 0.2 is 0.30000000000000004 in floating point: within the tolerance of 0.3.
    terms = files.MarketTerms("m", 0.3, np.array([10, 10]), np.array([1.0, 2.0]))
    assert terms.cost(np.array([1, 1])) > 0.3
    counts, problems = parse("1,1", terms)
    assert problems == []
    assert counts.tolist() == [1, 1]
    assert files.check_purchase("m.txt", np.array([1, 2]), terms, problems) is False
    assert rules(problems) == ["over-budget"]


def test_cost_is_linear_in_rows():
    assert TERMS.cost(np.array([20, 10, 15])) == 15.0
    assert TERMS.cost(np.array([10, 0, 3])) == 2.0 + 1.0
    assert TERMS.cost(np.zeros(3, dtype=np.int64)) == 0.0


@given(
    st.lists(st.integers(1, 1000), min_size=1, max_size=25).flatmap(
        lambda rows: st.tuples(
            st.just(rows),
            st.tuples(*[st.integers(0, n) for n in rows]),
            st.lists(st.floats(0, 1e6), min_size=len(rows), max_size=len(rows)),
        )
    )
)
def test_round_trip(case):
    rows, counts, prices = case
    terms = files.MarketTerms("m", 1.0, np.array(rows), np.array(prices))
    terms = files.MarketTerms(
        "m", max(terms.cost(np.array(counts)), 1e-6), terms.rows, terms.max_prices
    )
    problems = []
    text = files.decode_text("m.txt", files.write_purchase(counts), problems)
    parsed = files.parse_purchase("m.txt", text, terms, problems)
    assert problems == []
    assert parsed.tolist() == list(counts)


@given(st.text(max_size=200), st.integers(min_value=1, max_value=6))
def test_arbitrary_text_gives_counts_or_problems(text, sellers):
    terms = files.MarketTerms("m", 5.0, np.arange(1, sellers + 1), np.ones(sellers))
    problems = []
    counts = files.parse_purchase("m.txt", text, terms, problems)
    if counts is None:
        assert problems
        assert all(p.file == "m.txt" and p.rule and "market m" in p.message for p in problems)
    else:
        assert problems == []
        assert counts.shape == (sellers,)
        assert (counts >= 0).all()
        assert (counts <= terms.rows).all()
        assert terms.cost(counts) <= 5.0 * (1 + files.BUDGET_TOLERANCE)
