"""Finding challenges: Python entry points, and organizers' declarative challenges.

Another package adds a challenge by declaring an entry point in the group
``dataperf.challenges`` whose object is a :class:`~dataperf.challenge.Challenge` (or a
zero-argument callable returning one). An organizer adds one without Python: a declarative
file turned into an edition by ``dataperf data create``; its spec travels in the edition's
manifest and is found under ``$DATAPERF_HOME/editions``.
"""

from __future__ import annotations

import difflib
import functools
import json
from collections.abc import Callable, Mapping
from importlib.metadata import entry_points
from typing import Any

from dataperf.challenge import Challenge
from dataperf.exceptions import ChallengeNotFoundError, SpecError
from dataperf.home import editions_dir

ENTRY_POINT_GROUP = "dataperf.challenges"


def challenge_from_spec(spec: Mapping[str, Any], *, origin: str) -> Challenge:
    """Build a challenge of the spec's kind from its declarative definition."""
    from dataperf.kinds.acquisition import AcquisitionChallenge
    from dataperf.kinds.cleaning import CleaningChallenge
    from dataperf.kinds.selection import SelectionChallenge

    factories: dict[str, Callable[..., Challenge]] = {
        "acquisition": AcquisitionChallenge.from_mapping,
        "cleaning": CleaningChallenge.from_mapping,
        "selection": SelectionChallenge.from_mapping,
    }
    kind = spec.get("kind")
    if kind not in factories:
        known = ", ".join(sorted(factories))
        raise SpecError(f"{origin}: unknown or missing kind {kind!r}; declarative kinds: {known}")
    return factories[kind](spec, origin=origin)


@functools.cache
def _from_entry_points() -> tuple[tuple[str, Challenge], ...]:
    """The installed packages' challenges, loaded once: installing a package takes a new
    process (scanning the entry points costs milliseconds, on every lookup otherwise)."""
    found = []
    for point in entry_points(group=ENTRY_POINT_GROUP):
        origin = f"entry point {point.name!r} ({point.value})"
        try:
            obj = point.load()
            challenge = obj if isinstance(obj, Challenge) else obj()
        except Exception as err:
            raise SpecError(f"{origin} failed to load: {err}") from err
        if not isinstance(challenge, Challenge):
            raise SpecError(f"{origin} did not give a Challenge")
        found.append((origin, challenge))
    return tuple(found)


def _from_organizer_editions() -> list[tuple[str, Challenge]]:
    """One challenge per name; all editions of an organizer challenge must carry one spec."""
    specs: dict[str, tuple[str, dict[str, Any]]] = {}
    root = editions_dir()
    for manifest in sorted(root.glob("*/*/manifest.json")) if root.is_dir() else []:
        try:
            spec = json.loads(manifest.read_text(encoding="utf-8")).get("spec")
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise SpecError(f"{manifest} is unreadable: {err}") from None
        if not isinstance(spec, dict):
            continue
        name = str(spec.get("name"))
        if name in specs and specs[name][1] != spec:
            raise SpecError(f"the editions {specs[name][0]} and {manifest} define challenge "
                            f"{name!r} differently; recreate one of them")
        specs.setdefault(name, (str(manifest), spec))
    return [(origin, challenge_from_spec(spec, origin=origin))
            for origin, spec in specs.values()]


def challenges() -> dict[str, Challenge]:
    """Every registered challenge by name. Two definitions of one name are an error."""
    registered: dict[str, Challenge] = {}
    origins: dict[str, str] = {}
    for origin, challenge in [*_from_entry_points(), *_from_organizer_editions()]:
        if challenge.name in registered:
            raise SpecError(
                f"challenge {challenge.name!r} is defined twice: by {origins[challenge.name]} "
                f"and by {origin}; rename one"
            )
        registered[challenge.name] = challenge
        origins[challenge.name] = origin
    return registered


def get_challenge(name: str) -> Challenge:
    known = challenges()
    if name in known:
        return known[name]
    close = difflib.get_close_matches(name, list(known), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    listing = ", ".join(sorted(known)) or "none"
    raise ChallengeNotFoundError(f"no challenge named {name!r}{hint} (known: {listing})")
