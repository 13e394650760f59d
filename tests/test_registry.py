"""The registry, and a contract every registered challenge keeps."""

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
