"""Training data selection for vision: pick <= 1,000 labelled images per concept.

``build`` makes the offline edition from Fashion-MNIST; ``official`` reads the original
DataPerf v0.5 files (Open Images embeddings, concepts Cupcake, Hawk, Sushi).
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
