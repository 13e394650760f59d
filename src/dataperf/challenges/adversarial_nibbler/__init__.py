"""Adversarial Nibbler: red-teaming text-to-image models with prompts that look safe.

``build`` makes the offline edition from the released rounds (CC-BY 4.0); ``official`` imports
the released layout unchanged.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from dataperf.kinds.redteaming import RedteamingChallenge

SPEC_PATH = Path(__file__).with_name("challenge.yaml")

challenge = RedteamingChallenge.from_mapping(
    yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8")),
    origin=SPEC_PATH.name,
    builder=f"{__name__}.build",
    importer=f"{__name__}.official",
)
