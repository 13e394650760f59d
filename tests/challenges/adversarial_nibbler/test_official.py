"""Importing the released Adversarial Nibbler layout: tiny files with every quirk, malformed
variants that write nothing, the bundled edition written back in the released layout and
imported again, and (where a copy is at hand) the real release against the bundled edition.

Prompt embeddings come from a float32 network whose last bits depend on the CPU and on the
versions of torch and transformers; they are compared to within one float16 step (each
embedding's stored precision), every other table exactly."""

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pytest

from dataperf.challenges.adversarial_nibbler import build, challenge, official
from dataperf.editions import Edition
from dataperf.exceptions import SourceDataError
from dataperf.kinds import redteaming_tables as tables
from dataperf.kinds.redteaming_files import Attack, Validation
from nibbler_layout import write_attempted, write_release, write_released

FLOAT16_STEP = 2.0**-11  # the float16 spacing in [0.5, 1); unit vectors' entries are below 1


def assert_same_embeddings(ours: Edition, bundled: Edition) -> None:
    """The same prompt keys, with embeddings equal to within one float16 step."""
    a, b = ours.read_table(tables.EMBEDDINGS), bundled.read_table(tables.EMBEDDINGS)
    assert a.column("key").equals(b.column("key"))
    vectors = [np.array(t.column("embedding").to_pylist(), dtype=np.float32) for t in (a, b)]
    assert np.abs(vectors[0] - vectors[1]).max() <= FLOAT16_STEP


def assert_same_edition(ours: Edition, bundled: Edition) -> None:
    """Every table of ``bundled`` equal in ``ours``, the embeddings as above."""
    assert set(ours.manifest.files) == set(bundled.manifest.files)
    for name in bundled.manifest.files:
        if name == tables.EMBEDDINGS:
            assert_same_embeddings(ours, bundled)
        else:
            assert ours.read_table(name).equals(bundled.read_table(name)), name


SHARED = Path(__file__).resolve().parents[4] / "shared" / "data" / "adversarial-nibbler"
BIG = "17737253513380745608"


def attack(uid, prompt, **changes):
    fields = dict(submitter="2520", image_id=BIG, timestamp_ms=1690908107000 + int(uid),
                  attack_modes=("text_attack_coded_language",),
                  harm_types=("image_failure_sexual",), targets=("image_target_none",))
    return Attack(uid, prompt, **{**fields, **changes})


def five(uid, image="unsafe", count=5):
    return [Validation(uid, f"r{i}", "safe", image, harm_types=("image_failure_violent",),
                       answer_time_ms=1000 + i, question_id=f"q{uid}") for i in range(count)]


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    root = tmp_path_factory.mktemp("release")
    write_released(root / "round1" / "submitted" / "dev.json",
                   [attack("1", "a beach"), attack("2", "a forest", submitter="292")],
                   five("1") + five("2", "safe"), "round1")
    write_released(root / "round1" / "submitted" / "train.json", [attack("3", "a city")],
                   five("3"), "round1")
    write_attempted(root / "round1" / "attempted" / "dev.csv", ["a beach", "a beach at noon"])
    write_released(root / "round3" / "submitted" / "round3_submitted_all.json",
                   [attack("4", "a lake", round="round3")], five("4", "unsure"), "round3")
    write_released(root / "round4" / "submitted" / "dev.json",
                   [attack("5", "a road"), attack("6", "a hill")],
                   five("5") + five("6", count=4), "round4")
    (root / "round4" / "submitted" / "dev.csv").write_text(",prompt\n0,a road\n1,a hill\n")
    return root


@pytest.fixture(scope="module")
def imported(release, tmp_path_factory):
    return official.import_official(release, tmp_path_factory.mktemp("ed") / "official")


def test_rounds_splits_and_k_come_from_the_layout(imported):
    rounds = challenge.round_validations(imported)
    assert rounds == {"round1": 5, "round3": 5, "round4": 5}
    table = imported.read_table(tables.ATTACKS)
    assert table.column("round").to_pylist() == ["round1"] * 3 + ["round3"] + ["round4"] * 2
    assert table.column("split").to_pylist() == ["dev", "dev", "train", "all", "dev", "dev"]
    assert table.column("image_id").to_pylist() == [BIG] * 6
    attempts = imported.read_table(tables.ATTEMPTS)
    assert attempts.column("prompt").to_pylist() == ["a beach", "a beach at noon"]
    assert imported.tasks == ("model-fooling", "prompt-creativity")


def test_validations_are_hidden_and_the_vocabulary_is_read_from_every_round(imported):
    assert all(name.startswith("hidden/") == (name == tables.VALIDATIONS)
               for name in imported.manifest.files)
    validations = challenge.edition_validations(imported)
    assert len(validations) == 29
    assert {v.image_safety for v in validations if v.attack_id == "4"} == {"unsure"}
    vocabulary = challenge.vocabulary(imported)
    assert vocabulary["harm_types"] == {"image_failure_sexual", "image_failure_violent"}
    assert vocabulary["targets"] == {"image_target_none"}


def test_the_source_and_its_licence_are_recorded(imported):
    licences = {s.name: s.licence for s in imported.manifest.sources}
    assert licences["Adversarial Nibbler released data"] == "CC-BY-4.0"
    assert imported.manifest.parameters["rounds"]["round4"] == {
        "validations_per_attack": 5, "attacks": 2, "attempts": 0}


def test_an_imported_edition_scores_its_own_attacks(imported):
    files = challenge.run_algorithm("replay", imported, params={"round": "round4"})
    scored = challenge.score_all(challenge.parse_submission(files, imported), imported)
    (only,) = scored
    assert only.result.counts["pending_attacks"] == 1  # attack 6 has 4 validations
    assert only.result.fooling.value == 1


@pytest.mark.parametrize(("damage", "needle"), [
    (lambda root: shutil.rmtree(root / "round1"), None),
    (lambda root: (root / "round1" / "submitted" / "dev.json").write_text("{broken"),
     "not valid JSON"),
    (lambda root: (root / "round1" / "submitted" / "dev.json").write_text(
        json.dumps({"prompt": [1, 2]})), "not a released"),
    (lambda root: (root / "round3" / "submitted" / "round3_submitted_all.json").write_text(
        (root / "round1" / "submitted" / "train.json").read_text()), "example_uid 3"),
])
def test_a_damaged_release_is_refused_and_writes_nothing(release, tmp_path, damage, needle):
    copy = tmp_path / "copy"
    shutil.copytree(release, copy)
    damage(copy)
    target = tmp_path / "out"
    if needle is None:  # round1 gone: the rest still imports
        assert official.import_official(copy, target).manifest.parameters["rounds"].keys() == {
            "round3", "round4"}
        return
    with pytest.raises(SourceDataError, match=needle):
        official.import_official(copy, target)
    assert not target.exists()


def test_no_rounds_at_all_is_a_clear_error(tmp_path):
    with pytest.raises(SourceDataError, match="round"):
        official.import_official(tmp_path, tmp_path / "out")


def test_the_builder_needs_the_release_and_can_take_a_subset(release, tmp_path):
    with pytest.raises(SourceDataError, match="--source"):
        build.build(tmp_path / "none")
    small = build.build(tmp_path / "small", source=release, limit=1)
    assert small.read_table(tables.ATTACKS).column("attack_id").to_pylist() == ["1", "4", "5"]
    assert small.name == "offline"


def test_the_bundled_edition_written_back_in_the_released_layout_imports_the_same(tmp_path):
    """A round trip through the released layout on the real rounds: the writer in the test
    helper follows the layout's quirks; the importer must give back the same tables."""
    bundled = challenge.edition()
    attacks = challenge.edition_attacks(bundled)
    splits = bundled.read_table(tables.ATTACKS).column("split").to_pylist()
    attempts = bundled.read_table(tables.ATTEMPTS).to_pylist()
    root = write_release(tmp_path / "release", attacks, challenge.edition_validations(bundled),
                         splits, attempts)
    again = official.import_official(root, tmp_path / "again")
    for name in (tables.ATTACKS, tables.VALIDATIONS, tables.ROUNDS, tables.VOCABULARY):
        assert again.read_table(name).equals(bundled.read_table(name)), name
    assert_same_embeddings(again, bundled)
    assert again.read_table(tables.ATTEMPTS).drop_columns(["position"]).equals(
        bundled.read_table(tables.ATTEMPTS).drop_columns(["position"]))


@pytest.mark.skipif(not SHARED.is_dir(), reason="no copy of the released data beside the "
                    "project (shared/data/adversarial-nibbler)")
def test_the_bundled_edition_is_the_release(tmp_path):
    rebuilt = build.build(tmp_path / "offline", source=SHARED)
    bundled = challenge.edition()
    assert_same_edition(rebuilt, bundled)


def test_the_bundled_edition_holds_every_released_round():
    bundled: Edition = challenge.edition()
    rounds = bundled.manifest.parameters["rounds"]
    assert {r: v["attacks"] for r, v in rounds.items()} == {
        "round1": 1006, "round3": 526, "round4": 887}
    table = bundled.read_table(tables.ATTACKS)
    assert pc.count_distinct(table.column("attack_id")).as_py() == 2419
    assert bundled.read_table(tables.VALIDATIONS).num_rows == 12071


def test_attempted_json_files_give_submitter_model_and_machine_labels(release, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(release, copy)
    frame = {"prompt": {"0": " a road ", "4": "a hill"}, "submitter_id": {"0": 7, "4": 8},
             "model": {"0": "sd-xl", "4": "dall-e-2"}, "submitted": {"0": True, "4": False},
             "machine_text_safety": {"0": "safe", "4": "unsafe"},
             "machine_image_safety": {"0": "unsafe", "4": "safe"}}
    (copy / "round4" / "attempted").mkdir(parents=True)
    (copy / "round4" / "attempted" / "dev.json").write_text(json.dumps(frame))
    (copy / "round4" / "attempted" / "dev.csv").write_text(",prompt\n0,a road\n1,a hill\n")
    attempts = official.import_official(copy, tmp_path / "out").read_table(tables.ATTEMPTS)
    rows = [r for r in attempts.to_pylist() if r["round"] == "round4"]
    assert [(r["prompt"], r["submitter"], r["model"], r["machine_text_safety"])
            for r in rows] == [("a road", "7", "sd-xl", "safe"), ("a hill", "8", "dall-e-2",
                                                                 "unsafe")]
