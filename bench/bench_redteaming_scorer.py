"""Scoring time of the red-teaming scores with their bootstrap intervals, against scoring each
bootstrap resample on its own.

Every submitter of a released round of the bundled Adversarial Nibbler edition is scored with
``--resamples`` bootstrap resamples. Two ways:

- **one resample at a time**: the straightforward procedure, each resample's validations drawn,
  written out as a list of validations and scored as its own round, one participant at a time;
- **ours**: ``RoundScorer``: every resample of a participant labelled, grouped and scored at
  once as arrays ("worlds").

Both draw the same resamples; every participant's values in every resample must be equal
(checked), so the intervals are equal too.

    python bench/bench_redteaming_scorer.py [--round round1] [--resamples 200]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import numpy as np

from dataperf.kinds.redteaming_scores import RoundScorer
from dataperf.registry import get_challenge


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--round", default="round1")
    parser.add_argument("--resamples", type=int, default=200)
    arguments = parser.parse_args()
    challenge = get_challenge("adversarial-nibbler")
    edition = challenge.edition()
    attacks = [a for a in challenge.edition_attacks(edition) if a.round == arguments.round]
    validations = challenge.edition_validations(edition)
    settings = replace(challenge.settings(challenge.round_validations(edition)[arguments.round]),
                       n_resamples=arguments.resamples)
    vocabularies, embed = challenge.vocabularies(edition), challenge.embedder(edition)

    start = time.perf_counter()
    scorer = RoundScorer(attacks, validations, vocabularies=vocabularies, embed=embed,
                         settings=settings)
    ours = {p: scorer.score(p, arguments.round) for p in scorer.participants()}
    ours_seconds = time.perf_counter() - start

    start = time.perf_counter()
    single = replace(settings, n_resamples=1)
    by_row = _validation_rows(scorer, validations)
    differing = 0
    for participant, result in ours.items():
        mine = np.array([i for i, a in enumerate(attacks) if (a.submitter or "") == participant])
        worlds, _ = scorer._worlds(mine, participant, arguments.round)
        values = []
        for world in worlds:  # world 0: the validations as given; then each resample
            drawn = [by_row[int(row)] for row in world]
            one = RoundScorer(attacks, drawn, vocabularies=vocabularies, embed=embed,
                              settings=single).score(participant, arguments.round)
            values.append((one.fooling.value, one.creativity.value))
        found = np.array(values)
        for column, estimate in enumerate((result.fooling, result.creativity)):
            low, high = np.quantile(found[1:, column], [0.025, 0.975])
            differing += not np.allclose([found[0, column], low, high],
                                         [estimate.value, estimate.low, estimate.high])
    plain_seconds = time.perf_counter() - start
    print(f"{arguments.round}: {len(ours)} submitters, {len(attacks)} attacks, "
          f"{arguments.resamples} resamples")
    print(f"  one resample at a time: {plain_seconds:8.2f} s")
    print(f"  ours (all at once):     {ours_seconds:8.2f} s   {plain_seconds / ours_seconds:.0f}x")
    print(f"  estimates or intervals differing: {differing} of {2 * len(ours)}")


def _validation_rows(scorer: RoundScorer, validations: list) -> dict[int, object]:
    """The validation behind each row of the scorer's answer arrays."""
    position = {a.attack_id: i for i, a in enumerate(scorer.attacks)}
    rows = sorted((position[v.attack_id], i) for i, v in enumerate(validations)
                  if v.attack_id in position)
    return {row: validations[i] for row, (_, i) in enumerate(rows)}


if __name__ == "__main__":
    main()
