"""Building the speech edition by hand: ``python -m dataperf.challenges.speech_selection.build``."""

from __future__ import annotations

from dataperf.challenges.speech_selection.build.edition import build
from dataperf.challenges.vision_selection.build import build_by_hand

if __name__ == "__main__":  # pragma: no cover - a convenience for building by hand
    build_by_hand(build, "Build the speech-selection offline edition.")
