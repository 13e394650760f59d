"""The red-teaming local loop from the command line, as a newcomer runs it, and the published
rounds report is what `dataperf compare adversarial-nibbler` writes."""

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from official_layout import dataperf
from test_docs import DOCS, blocks

RESULTS = Path(__file__).resolve().parents[1] / "docs" / "results" / "adversarial-nibbler.md"


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return tmp_path_factory.mktemp("home")


def test_show_starts_with_the_content_warning_and_gives_the_definitions(home):
    shown = dataperf("show", "adversarial-nibbler", home=home)
    assert shown.returncode == 0, shown
    assert shown.stdout.startswith("content warning:")
    for words in ("Model Fooling Score", "Prompt Creativity Score", "redteaming-1",
                  "CC-BY-4.0", "DataPerf's"):
        assert words in shown.out


def test_one_submitter_replayed_and_evaluated(home, tmp_path):
    ran = dataperf("run", "adversarial-nibbler", "--algorithm", "replay", "--param",
                   "round=round1", "--param", "submitter=2811", "--out", tmp_path / "mine",
                   home=home)
    assert ran.returncode == 0, ran
    table = dataperf("evaluate", "adversarial-nibbler", tmp_path / "mine", home=home)
    assert table.returncode == 0, table
    assert "2811 │ round1 │ 9 [6, 11]" in table.out
    as_json = dataperf("evaluate", "adversarial-nibbler", tmp_path / "mine", "--json",
                       home=home)
    (score,) = json.loads(as_json.stdout)
    assert score["tasks"][0]["task"] == "model-fooling"
    assert score["tasks"][0]["value"] == 9


def test_validations_from_a_file_and_the_errors_a_user_meets(home, tmp_path):
    attacks = tmp_path / "mine"
    dataperf("run", "adversarial-nibbler", "-a", "replay", "--param", "submitter=2811",
             "--out", attacks, home=home)
    written = attacks / "attacks.jsonl"
    first = json.loads(written.read_text().splitlines()[0])
    validations = tmp_path / "validations.jsonl"
    validations.write_text("".join(json.dumps({"attack_id": first["id"], "annotator": f"r{i}",
                                               "text_safety": "safe",
                                               "image_safety": "unsafe"}) + "\n"
                                   for i in range(5)))
    scored = dataperf("evaluate", "adversarial-nibbler", attacks, "--validations", validations,
                      "--json", home=home)
    assert scored.returncode == 0, scored
    (score,) = json.loads(scored.stdout)
    fooling = score["tasks"][0]
    assert fooling["value"] == 1
    assert fooling["details"]["validated_prompts"] == 1
    assert fooling["details"]["pending_attacks"] == 64  # the others have no validations here

    wrong = dataperf("evaluate", "vision-selection", attacks, "--validations", validations,
                     home=home)
    assert wrong.returncode == 2
    assert "for red-teaming challenges" in wrong.err
    official = dataperf("evaluate", "adversarial-nibbler", attacks, "--profile", "official",
                        home=home)
    assert official.returncode == 2
    assert "no original scorer" in official.err
    split = dataperf("evaluate", "adversarial-nibbler", attacks, "--private-fraction", "0.5",
                     "--part", "public", home=home)
    assert split.returncode == 2
    assert "no test rows" in split.err
    written.write_text('{"id": "x", "prompt": "p"}\n')
    bad = dataperf("evaluate", "adversarial-nibbler", attacks, home=home)
    assert bad.returncode == 1
    assert "attacks.jsonl, line 1" in bad.err
    assert "[no-image]" in bad.err


def test_the_published_rounds_report_is_current(home, tmp_path):
    fresh = tmp_path / "report.md"
    made = dataperf("compare", "adversarial-nibbler", "--markdown", fresh, home=home)
    assert made.returncode == 0, made
    lines = fresh.read_text(encoding="utf-8").splitlines()
    published = RESULTS.read_text(encoding="utf-8").splitlines()
    command = [i for i, line in enumerate(lines) if line.startswith("$ dataperf compare")]
    assert [line for i, line in enumerate(lines) if i not in command] == [
        line for i, line in enumerate(published) if i not in command], (
        "docs/results/adversarial-nibbler.md is stale; regenerate it with `make results "
        "CHALLENGE=adversarial-nibbler`")
    text = "\n".join(published)
    assert "| round1 | round3 | round4 |" in text
    assert "Krippendorff's alpha" in text
    assert "ROC AUC" in text  # the screening table, not the 'not measured' note


def test_the_user_guides_attack_and_validation_examples_evaluate(home, tmp_path):
    """The guide's JSON Lines examples, with a real PNG for the attack that names one."""
    attacks, validations = blocks(DOCS / "user-guide.md", "jsonl")
    folder = tmp_path / "my-attacks"
    folder.mkdir()
    (folder / "attacks.jsonl").write_text(attacks)
    image = io.BytesIO()
    Image.fromarray(np.zeros((64, 64, 3), dtype=np.uint8)).save(image, format="PNG")
    with zipfile.ZipFile(folder / "images.zip", "w") as archive:
        archive.writestr("my-1.png", image.getvalue())
    (tmp_path / "validations.jsonl").write_text(validations)
    scored = dataperf("evaluate", "adversarial-nibbler", folder, "--validations",
                      tmp_path / "validations.jsonl", "--json", home=home)
    assert scored.returncode == 0, scored
    (score,) = json.loads(scored.stdout)
    fooling = score["tasks"][0]["details"]
    # my-1 has two validations (fewer than k = 5) and my-2 none: both pending.
    assert (fooling["participant"], fooling["round"]) == ("me", "round4")
    assert fooling["pending_attacks"] == 2
    assert score["tasks"][0]["value"] == 0


def test_build_takes_a_source_only_where_the_builder_reads_one(home, tmp_path):
    needs = dataperf("data", "build", "adversarial-nibbler", "--out", tmp_path / "a", home=home)
    assert needs.returncode == 2
    assert "--source DIR" in needs.err
    refused = dataperf("data", "build", "speech-selection", "--source", tmp_path,
                       "--out", tmp_path / "b", home=home)
    assert refused.returncode == 2
    assert "takes no --source" in refused.err
    assert not (tmp_path / "a").exists()
    assert not (tmp_path / "b").exists()
