"""The ``dataperf`` command as users run it: real subprocesses, ``DATAPERF_HOME`` in a temporary
directory holding an official edition imported from tiny files in the original layout.

User errors must give one clear message (or one list of broken rules) and an exit code, never a
Python traceback: 0 ok, 1 submission rejected, 2 other user error.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from dataperf import __version__
from dataperf.challenges.vision_selection import challenge
from dataperf.challenges.vision_selection.official import import_official
from dataperf.editions import Edition
from dataperf.scores import Score
from dataperf.submission_files import read_submission
from official_layout import (
    CliResult,
    dataperf,
    finish,
    sample_selection,
    start_dataperf,
    write_csv_submission,
    write_official_layout,
)

CHALLENGE = "vision-selection"
UNKNOWN_ID = "ffffffffffff0001"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A DATAPERF_HOME with the official edition imported from the original layout."""
    root = tmp_path_factory.mktemp("cli")
    layout = write_official_layout(root / "data")
    home = root / "home"
    import_official(layout.root, home / "editions" / CHALLENGE / "official")
    write_csv_submission(root / "submission", sample_selection(layout))
    return home


@pytest.fixture(scope="module")
def edition(home: Path) -> Edition:
    return Edition.open(home / "editions" / CHALLENGE / "official")


@pytest.fixture(scope="module")
def submission(home: Path) -> Path:
    return home.parent / "submission"


def library_score(edition: Edition, submission: Path, profile: str) -> Score:
    parsed = challenge.parse_submission(read_submission(submission), edition, profile=profile)
    return challenge.score(parsed, edition, profile=profile)


def assert_clean(result: CliResult) -> None:
    assert "Traceback" not in result.stderr, result
    assert "Traceback" not in result.stdout, result


# Information ---------------------------------------------------------------------------------


def test_version(tmp_path: Path) -> None:
    result = dataperf("--version", home=tmp_path)
    assert result.returncode == 0, result
    assert result.stdout == f"dataperf {__version__}\n"


def test_list_shows_the_challenge_and_its_imported_edition(home: Path) -> None:
    result = dataperf("list", home=home)
    assert result.returncode == 0, result
    row = next(line for line in result.stdout.splitlines() if CHALLENGE in line)
    assert "selection" in row
    assert "Training data selection, vision" in row
    assert "official" in row


def test_show_prints_rules_tasks_files_and_sources(home: Path, edition: Edition) -> None:
    result = dataperf("show", CHALLENGE, "--edition", "official", home=home)
    assert result.returncode == 0, result
    assert "Training data selection, vision (vision-selection, kind selection, version 1)" \
        in result.out
    assert "Choose at most 1,000 rows of the pool per task" in result.out
    assert "logistic_regression, random_state = seed (0)" in result.out
    assert f"edition official at {edition.path} (content hash {edition.content_hash[:12]})" \
        in result.out
    assert "tasks: Cupcake, Hawk, Sushi" in result.out
    for name in edition.manifest.files:
        assert name in result.out
    assert "source: DataPerf v0.5 vision selection (Open Images)" in result.out


def test_algorithms_lists_every_built_in_algorithm(tmp_path: Path) -> None:
    result = dataperf("algorithms", CHALLENGE, home=tmp_path)
    assert result.returncode == 0, result
    names = [line.split("│")[1].strip() for line in result.stdout.splitlines()
             if line.startswith("│") and line.split("│")[1].strip()]
    assert names == list(challenge.algorithms())
    assert "random" in names


# Editions ----------------------------------------------------------------------------------


def test_verify_passes_then_reports_a_changed_byte(home: Path, edition: Edition,
                                                  tmp_path: Path) -> None:
    result = dataperf("data", "verify", CHALLENGE, "--edition", "official", home=home)
    assert result.returncode == 0, result
    assert (f"ok: 4 files of vision-selection/official match their sha256 (public and hidden "
            f"parts); content hash {edition.content_hash}") in result.out

    copy = tmp_path / "tampered"
    shutil.copytree(edition.path, copy)
    pool = copy / "public" / "pool.parquet"
    data = bytearray(pool.read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit of one byte, same size
    pool.write_bytes(bytes(data))
    result = dataperf("data", "verify", CHALLENGE, "--edition", copy, home=home)
    assert result.returncode == 2, result
    assert_clean(result)
    assert (f"error: edition {copy} was changed: public/pool.parquet does not match the sha256 "
            "in manifest.json") in result.err


def test_exported_copy_has_no_hidden_data_and_cannot_score(home: Path, submission: Path,
                                                           tmp_path: Path) -> None:
    copy = tmp_path / "for-participants"
    result = dataperf("data", "export", CHALLENGE, copy, "--edition", "official", home=home)
    assert result.returncode == 0, result
    assert f"exported 3 public files to {copy}" in result.out
    assert not (copy / "hidden").exists()
    assert sorted(p.relative_to(copy).as_posix() for p in copy.rglob("*") if p.is_file()) == [
        "manifest.json", "public/examples.parquet", "public/pool.parquet",
        "public/weak_labels.parquet"]
    assert Edition.open(copy).manifest.public_only

    result = dataperf("evaluate", CHALLENGE, submission, "--edition", copy, home=home)
    assert result.returncode == 2, result
    assert_clean(result)
    assert (f"error: edition {copy} is a participant's copy without hidden data; scoring needs "
            "hidden/test.parquet") in result.err


# Evaluation ---------------------------------------------------------------------------------


def test_evaluate_prints_a_table_and_the_same_one_twice(home: Path, edition: Edition,
                                                        submission: Path) -> None:
    first, second = map(finish, [
        start_dataperf("evaluate", CHALLENGE, submission, "--edition", "official", home=home)
        for _ in range(2)])
    assert first.returncode == second.returncode == 0, first
    assert first.stdout == second.stdout
    expected = library_score(edition, submission, "default")
    assert f"profile default - scorer {expected.scorer_version}" in first.out
    assert expected.edition_hash[:12] in first.out
    for task in [*expected.tasks, expected.aggregate]:
        row = next(line for line in first.stdout.splitlines() if f" {task.task} " in line)
        assert f"{task.value:.2f}" in row
        assert f"[{task.ci_low:.2f}, {task.ci_high:.2f}]" in row


@pytest.fixture(scope="module")
def with_unknown_id(submission: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("with-unknown-id") / "submission"
    shutil.copytree(submission, directory)
    with open(directory / "Sushi.csv", "a", encoding="utf-8") as handle:
        handle.write(f"{UNKNOWN_ID},1\n")
    return directory


DROPPED = (f"Sushi.csv: 1 ID(s) not in the pool were dropped, as the original scorer does: "
           f"{UNKNOWN_ID}")


@pytest.mark.parametrize("profile", ["default", "official"])
def test_evaluate_json_equals_the_library_score(home: Path, edition: Edition, submission: Path,
                                                with_unknown_id: Path, profile: str) -> None:
    # The official profile drops IDs that are not in the pool, with a warning.
    if profile == "official":
        submission = with_unknown_id
    result = dataperf("evaluate", CHALLENGE, submission, "--edition", "official", "--json",
                      "--profile", profile, home=home)
    assert result.returncode == 0, result
    if profile == "official":
        assert f"warning: {DROPPED}" in result.err
    else:
        assert "warning" not in result.err
    score = json.loads(result.stdout)
    assert [t["task"] for t in score["tasks"]] == ["Cupcake", "Hawk", "Sushi"]
    assert score["profile"] == profile
    assert score["aggregate"]["task"] == "mean"
    for entry in [*score["tasks"], score["aggregate"]]:
        if profile == "default":
            assert entry["ci_low"] <= entry["value"] <= entry["ci_high"]
        else:
            assert entry["ci_low"] is None
            assert entry["ci_high"] is None
    assert score["warnings"] == ([DROPPED] if profile == "official" else [])
    assert score == json.loads(library_score(edition, submission, profile).to_json())


# User errors: one message, an exit code, never a traceback ----------------------------------


def broken_submission(directory: Path, submission: Path) -> Path:
    """Every file broken in a different way, and one task without a file."""
    directory.mkdir()
    lines = (submission / "Cupcake.csv").read_text(encoding="utf-8").splitlines()
    repeated = lines[3]
    (directory / "Cupcake.csv").write_text(
        "\n".join([*lines, repeated, f"{UNKNOWN_ID},0"]) + "\n", encoding="utf-8")
    first_id = lines[1].split(",")[0]
    (directory / "Hawk.json").write_text(json.dumps({first_id: 2}), encoding="utf-8")
    (directory / "sushi.csv").write_text("ImageID,Confidence\n", encoding="utf-8")
    return directory


ERRORS = {
    # case: (arguments, exit code, expected fragments of stderr)
    "unknown-edition": (["evaluate", CHALLENGE, "{submission}", "--edition", "nightly"], 2, [
        "error: vision-selection has no edition 'nightly' (available: official",
        "`dataperf data import vision-selection DIR`"]),
    "missing-submission-dir": (
        ["evaluate", CHALLENGE, "{tmp}/no-such-dir", "--edition", "official"], 2, [
            "error: submission ", "no-such-dir does not exist"]),
    "bad-profile": (
        ["evaluate", CHALLENGE, "{submission}", "--edition", "official", "--profile", "strict"],
        2, ["error: --profile must be one of default, official, got 'strict'"]),
    "param-without-value": (
        ["run", CHALLENGE, "-a", "random", "--edition", "official", "--param", "size",
         "--out", "{tmp}/run"], 2, ["error: --param takes NAME=VALUE, got 'size'"]),
    "param-unknown-to-algorithm": (
        ["run", CHALLENGE, "-a", "random", "--edition", "official", "--param", "colour=red",
         "--out", "{tmp}/run"], 2, ["error: bad parameters for random:", "colour"]),
    "missing-argument": (["evaluate", CHALLENGE], 2, ["Error: Missing argument 'submission'."]),
    "unknown-challenge": (["show", "vision-selectoin"], 2, [
        "error: no challenge named 'vision-selectoin'; did you mean 'vision-selection'?"]),
    "import-of-a-broken-source": (
        ["data", "import", CHALLENGE, "{tmp}/data", "--out", "{tmp}/official"], 2, [
            "error: no test set parquet files (test_sets/alpha_test_set_{Concept}_256.parquet) "
            "under"]),
    "rejected-submission": (["evaluate", CHALLENGE, "{broken}", "--edition", "official"], 1, [
        "error: the submission was rejected:",
        f"Cupcake.csv, line 78: lists 1 ID(s) that are not in the pool [unknown-id] (IDs: "
        f"{UNKNOWN_ID})",
        "Cupcake.csv, line 77: lists 1 ID(s) more than once [duplicate-id]",
        "Hawk.json: has label '2'; labels must be 0 or 1 [bad-label]",
        "sushi.csv: is not a submission file of vision-selection (expected {task}.csv or "
        "{task}.json for the tasks Cupcake, Hawk, Sushi); did you mean Sushi.csv? "
        "[unexpected-file]"]),
}


@pytest.fixture(scope="module")
def error_results(home: Path, submission: Path, tmp_path_factory: pytest.TempPathFactory,
                  request: pytest.FixtureRequest) -> dict[str, CliResult]:
    """The selected error cases, all at once: they only read the shared edition."""
    tmp = tmp_path_factory.mktemp("errors")
    broken = broken_submission(tmp / "broken", submission)
    shutil.rmtree(write_official_layout(tmp / "data").root / "test_sets")
    places = {"{submission}": str(submission), "{tmp}": str(tmp), "{broken}": str(broken)}

    def fill(argument: str) -> str:
        for key, value in places.items():
            argument = argument.replace(key, value)
        return argument

    # A narrow terminal: messages must still come out whole, one per line.
    selected = {item.callspec.params["case"] for item in request.session.items
                if item.originalname == "test_user_errors_give_a_message_and_an_exit_code"}
    started = {case: start_dataperf(*map(fill, args), home=home, columns=40)
               for case, (args, _, _) in ERRORS.items() if case in selected}
    results = {case: finish(process) for case, process in started.items()}
    assert not (tmp / "run").exists(), "a failed run must not write a submission"
    assert not (tmp / "official").exists(), "a failed import must not write an edition"
    return results


@pytest.mark.parametrize("case", list(ERRORS))
def test_user_errors_give_a_message_and_an_exit_code(error_results: dict[str, CliResult],
                                                     case: str) -> None:
    result = error_results[case]
    _, code, fragments = ERRORS[case]
    assert result.returncode == code, result
    assert_clean(result)
    lines = result.stderr.splitlines()
    for fragment in fragments:
        assert any(fragment in line for line in lines), f"{fragment!r} not on one line:\n{result}"
    assert result.stdout == ""
