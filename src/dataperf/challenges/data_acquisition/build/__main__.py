"""Building the data-acquisition edition by hand: ``python -m ...data_acquisition.build``."""

from __future__ import annotations

from dataperf.challenges.data_acquisition.build.edition import build
from dataperf.challenges.vision_selection.build import build_by_hand

if __name__ == "__main__":  # pragma: no cover - a convenience for building by hand
    build_by_hand(build, "Build the data-acquisition offline edition.")
