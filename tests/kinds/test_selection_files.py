"""Property tests: the submission file parsers never crash and round-trip what we write."""

import json

from hypothesis import given
from hypothesis import strategies as st

from dataperf.kinds import selection_files as files

CLASSES = ["0", "1"]
ids = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Zs", "Zl",
                                                                          "Zp")),
              min_size=1, max_size=20)
selections = st.dictionaries(ids, st.sampled_from(CLASSES), max_size=50)


@given(selections)
def test_csv_round_trip(selection):
    data = files.write_csv(list(selection), list(selection.values()), id_column="ImageID",
                           label_column="Confidence")
    problems = []
    text = files.decode_text("t.csv", data, problems)
    assert text is not None
    rows = files.parse_csv("t.csv", text, id_column="ImageID", label_column="Confidence",
                           classes=CLASSES, problems=problems)
    assert problems == []
    assert list(rows.ids) == [i.strip() for i in selection]
    assert [CLASSES[label] for label in rows.labels] == list(selection.values())


@given(selections)
def test_json_round_trip(selection):
    data = files.write_json(list(selection), list(selection.values()))
    problems = []
    rows = files.parse_json("t.json", data.decode(), classes=CLASSES, problems=problems)
    assert problems == []
    assert dict(zip(rows.ids, rows.labels, strict=True)) == {
        i.strip(): CLASSES.index(v) for i, v in selection.items()}


@given(st.binary(max_size=300))
def test_arbitrary_bytes_give_rows_or_problems_never_a_crash(data):
    problems = []
    text = files.decode_text("x.csv", data, problems)
    if text is None:
        assert problems
        return
    rows = files.parse_csv("x.csv", text, id_column="ImageID", label_column="Confidence",
                           classes=CLASSES, problems=problems)
    assert len(rows.ids) == len(rows.labels) == len(rows.lines)
    assert all(p.file == "x.csv" and p.rule for p in problems)


@given(st.text(max_size=200))
def test_arbitrary_text_as_json_never_crashes(text):
    problems = []
    rows = files.parse_json("x.json", text, classes=CLASSES, problems=problems)
    assert problems or isinstance(json.loads(text), dict)
    assert len(rows.ids) == len(rows.labels)


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
                    lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
                    max_leaves=10))
def test_arbitrary_json_documents_never_crash(document):
    problems = []
    text = json.dumps(document)
    rows = files.parse_json("x.json", text, classes=CLASSES, problems=problems)
    valid = isinstance(document, dict) and all(
        isinstance(v, int | str) and not isinstance(v, bool) and str(v) in CLASSES and k.strip()
        for k, v in document.items())
    assert bool(problems) != valid
    assert len(rows.ids) == len(rows.labels)


WORDS = ["nontarget", "casa", "dia", "noite"]  # the background class, then the keywords


@given(st.dictionaries(ids, st.sampled_from(WORDS), max_size=40))
def test_keyword_sets_round_trip(selection):
    data = files.write_keywords(list(selection), list(selection.values()),
                                background=WORDS[0])
    problems = []
    rows = files.parse_keywords("t_train.json", data.decode(), classes=WORDS, problems=problems)
    assert problems == []
    assert dict(zip(rows.ids, rows.labels, strict=True)) == {
        i.strip(): WORDS.index(w) for i, w in selection.items()}


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.sampled_from(["targets", "nontargets", *WORDS, "x"]),
                                      inner, max_size=4),
                    max_leaves=12))
def test_arbitrary_keyword_documents_give_rows_or_problems(document):
    problems = []
    rows = files.parse_keywords("t_train.json", json.dumps(document), classes=WORDS,
                                problems=problems)
    assert len(rows.ids) == len(rows.labels)
    assert all(p.file == "t_train.json" and p.rule for p in problems)
    assert all(0 <= label < len(WORDS) for label in rows.labels)
    well_formed = (isinstance(document, dict) and set(document) == {"targets", "nontargets"}
                   and isinstance(document["targets"], dict)
                   and set(document["targets"]) <= set(WORDS[1:])
                   and all(isinstance(v, list) and all(isinstance(i, str) and i.strip()
                                                      for i in v)
                           for v in [*document["targets"].values(), document["nontargets"]]))
    assert bool(problems) != well_formed


def test_json_nested_too_deeply_is_a_problem_not_a_crash():
    deep = "[" * 100_000 + "]" * 100_000
    for parse in (files.parse_json, files.parse_keywords):
        problems = []
        parse("t.json", deep, classes=CLASSES, problems=problems)
        assert [(p.rule, p.message) for p in problems] == [
            ("bad-json", "is nested too deeply to be a submission file")]
    problems = []
    files.parse_json("t.json", "null", classes=CLASSES, problems=problems)
    assert [p.rule for p in problems] == ["bad-json-shape"]  # valid JSON, not an object
