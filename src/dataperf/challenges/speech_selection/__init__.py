"""Training data selection for speech: tiny keyword-spotting training sets in three languages.

``build`` makes the offline edition from words spoken by text-to-speech engines; ``official``
reads the original DataPerf speech files (MSWC embeddings of English, Indonesian, Portuguese).
"""

from __future__ import annotations

from pathlib import Path

import yaml

from dataperf.kinds.selection import SelectionChallenge

SPEC_PATH = Path(__file__).with_name("challenge.yaml")

challenge = SelectionChallenge.from_mapping(
    yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8")),
    origin=SPEC_PATH.name,
    builder=f"{__name__}.build",
    importer=f"{__name__}.official",
)
