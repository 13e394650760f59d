"""Training dataset acquisition for NLP: spend a budget on rows from sellers of labelled data.

``build`` makes the offline edition from ~38k human-labelled tweets on six topics (5 markets,
each a buyer wanting one topic and about 20 sellers of varying quality); ``official`` reads the
original DataPerf v0.5 data-acquisition files.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from dataperf.kinds.acquisition import AcquisitionChallenge

SPEC_PATH = Path(__file__).with_name("challenge.yaml")

challenge = AcquisitionChallenge.from_mapping(
    yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8")),
    origin=SPEC_PATH.name,
    builder=f"{__name__}.build",
    importer=f"{__name__}.official",
)
