"""Training data cleaning for vision: order the noisy training rows, most suspicious first.

``build`` makes the offline edition from Fashion-MNIST (the images and embeddings of vision
selection, with 30% random or annotator label noise); ``official`` reads the original DataPerf
v0.5 debugging files (Open Images embeddings, 8 tasks).
"""

from __future__ import annotations

from pathlib import Path

import yaml

from dataperf.kinds.cleaning import CleaningChallenge

SPEC_PATH = Path(__file__).with_name("challenge.yaml")

challenge = CleaningChallenge.from_mapping(
    yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8")),
    origin=SPEC_PATH.name,
    builder=f"{__name__}.build",
    importer=f"{__name__}.official",
)
