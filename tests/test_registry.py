"""The registry, and a contract every registered challenge keeps."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from dataperf import registry
from dataperf.challenge import Challenge
from dataperf.exceptions import ChallengeNotFoundError, SpecError
from dataperf.kinds.selection import SelectionChallenge


def test_builtin_challenges_come_from_entry_points():
    found = registry.challenges()
    assert "vision-selection" in found
    assert all(isinstance(c, Challenge) for c in found.values())


def test_unknown_name_suggests_the_close_one():
    with pytest.raises(ChallengeNotFoundError, match=r"did you mean 'vision-selection'\?"):
        registry.get_challenge("vision-selectoin")


def test_a_second_definition_of_a_name_is_an_error(monkeypatch):
    twin = SelectionChallenge.from_mapping(
        {"name": "vision-selection", "kind": "selection", "title": "Twin", "budget": 5},
        origin="twin")
    monkeypatch.setattr(registry, "_from_organizer_editions", lambda: [("other.yaml", twin)])
    with pytest.raises(SpecError, match=r"'vision-selection' is defined twice"):
        registry.challenges()


def test_unknown_kind_is_refused():
    with pytest.raises(SpecError, match=r"unknown or missing kind 'quantum'"):
        registry.challenge_from_spec({"kind": "quantum"}, origin="x.yaml")


@pytest.mark.parametrize("name", sorted(registry.challenges()))
def test_every_challenge_keeps_the_contract(name):
    challenge = registry.get_challenge(name)
    assert challenge.name == name
    assert challenge.direction in ("higher", "lower")
    rules = challenge.rules()
    assert rules
    assert all(isinstance(v, str) and v for v in rules.values())
    assert challenge.algorithms(), "every challenge ships built-in algorithms"
    assert all(summary for summary in challenge.algorithms().values())
    editions = challenge.edition_dirs()
    assert "offline" in editions, "every built-in challenge bundles an offline edition"
    edition = challenge.edition("offline")
    assert edition.tasks
    assert all(s.licence for s in edition.manifest.sources)


def test_another_package_adds_a_challenge_through_an_entry_point(tmp_path):
    """A separately installed distribution declares `dataperf.challenges`; `dataperf list`
    shows its challenge without any change to this package."""
    package = tmp_path / "acme_challenges"
    package.mkdir()
    (package / "__init__.py").write_text(
        "from dataperf.kinds.selection import SelectionChallenge\n"
        "challenge = SelectionChallenge.from_mapping({'name': 'acme-selection', 'kind': "
        "'selection', 'title': 'ACME parts', 'budget': 50}, origin='acme')\n")
    info = tmp_path / "acme_challenges-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-challenges\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[dataperf.challenges]\nacme-selection = acme_challenges:challenge\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "COLUMNS": "200",
           "DATAPERF_HOME": str(tmp_path / "home")}
    result = subprocess.run([str(Path(sys.executable).with_name("dataperf")), "list"], env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "acme-selection" in result.stdout
    assert "vision-selection" in result.stdout
