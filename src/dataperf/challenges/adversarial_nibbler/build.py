"""Build the offline edition of Adversarial Nibbler: the released rounds 1, 3 and 4 (CC-BY 4.0),
read by :mod:`.official` from a copy of google-research-datasets/adversarial-nibbler.

The released data is not in any package, so the builder takes the copy's folder (``dataperf
data build adversarial-nibbler --source DIR``); the bundled edition was built this way. The
edition holds every submitted example of every round with its validations (the hidden part),
the attempted prompts, each round's vocabulary and the prompts' sentence embeddings.
``limit`` keeps the first ``limit`` attacks (and attempts) of each round, for quick checks.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from dataperf.challenge import Progress, no_progress
from dataperf.challenges.adversarial_nibbler.official import (
    MODEL,
    RELEASE,
    Release,
    read_release,
    write_release,
)
from dataperf.editions import Edition
from dataperf.exceptions import SourceDataError

EDITION = "offline"


def limited(release: Release, limit: int) -> Release:
    """The first ``limit`` attacks and attempts of each round, with those attacks' validations."""
    seen: dict[str | None, int] = {}
    keep = []
    for i, attack in enumerate(release.attacks):
        seen[attack.round] = seen.get(attack.round, 0) + 1
        if seen[attack.round] <= limit:
            keep.append(i)
    attacks = [release.attacks[i] for i in keep]
    ids = {a.attack_id for a in attacks}
    tried: dict[str, int] = {}
    attempts = []
    for row in release.attempts:
        tried[row["round"]] = tried.get(row["round"], 0) + 1
        if tried[row["round"]] <= limit:
            attempts.append(row)
    return replace(release, attacks=attacks, splits=[release.splits[i] for i in keep],
                   validations=[v for v in release.validations if v.attack_id in ids],
                   attempts=attempts)


def build(out_dir: Path, *, source: Path | None = None, seed: int = 0, overwrite: bool = False,
          progress: Progress = no_progress, limit: int | None = None) -> Edition:
    """Write the offline edition to ``out_dir`` from the released copy at ``source`` (``seed``
    is unused: nothing is drawn at random)."""
    if source is None:
        raise SourceDataError(
            "the released Adversarial Nibbler data is not in any package: give the folder of a "
            "copy of google-research-datasets/adversarial-nibbler (with round1/, round3/, "
            "round4/) as --source DIR; the bundled offline edition was built from it")
    release = read_release(source, progress)
    if limit is not None:
        release = limited(release, limit)
    return write_release(release, out_dir, edition=EDITION, sources=[RELEASE, MODEL],
                         overwrite=overwrite, progress=progress)
