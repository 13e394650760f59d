"""A round's generators: which models answer a prompt, with what weights, how many images.

As in the original challenge, each of a prompt's images comes from a model drawn at random by
weight, and the participant sees them shuffled, without the models' names. Everything is
drawn from the prompt's seed (:func:`prompt_seed`, from the participant and the prompt), so
typing a prompt again shows the same images in the same order.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from dataperf.generators import MAX_IMAGES, GeneratedImage, GenerationError, Generator, generator


class GeneratorChoice(BaseModel):
    """One generator of a round: its registered ``name``, its ``weight`` in the draw, and the
    operator's ``settings`` (passed to it as keyword arguments)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=100)
    weight: float = Field(default=1.0, gt=0, allow_inf_nan=False)
    settings: dict[str, Any] = Field(default_factory=dict)


class RoundGenerators(BaseModel):
    """A round's generators and how many images a prompt gets (1 to 12)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    generators: list[GeneratorChoice] = Field(min_length=1)
    images_per_prompt: int = Field(default=4, ge=1, le=MAX_IMAGES)

    @field_validator("generators")
    @classmethod
    def _distinct(cls, choices: list[GeneratorChoice]) -> list[GeneratorChoice]:
        keys = [(c.name, sorted(c.settings.items(), key=str)) for c in choices]
        if len({repr(k) for k in keys}) != len(keys):
            raise ValueError("a generator is listed twice with the same settings")
        return choices


def prompt_seed(participant: str | int, prompt: str) -> int:
    """The seed of one participant's prompt, in [0, 2^63): stable across processes."""
    digest = hashlib.sha256(f"{participant}\x00{prompt.strip()}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


class GeneratorMix:
    """The generators of a round, made once and drawn from per prompt."""

    def __init__(self, config: RoundGenerators):
        self.config = config
        self.generators: list[Generator] = [generator(c.name, **c.settings)
                                            for c in config.generators]
        if any(g.takes_uploads for g in self.generators) and len(self.generators) > 1:
            raise GenerationError("a round takes uploads or generates, not both")
        weights = np.array([c.weight for c in config.generators])
        self.weights = weights / weights.sum()

    @property
    def takes_uploads(self) -> bool:
        return self.generators[0].takes_uploads

    def draw(self, seed: int) -> list[int]:
        """The generator (its index) of each image slot, in the order shown."""
        draws = np.random.default_rng(seed).choice(
            len(self.generators), size=self.config.images_per_prompt, p=self.weights
        )
        return [int(i) for i in draws]

    def generate(self, prompt: str, seed: int) -> list[GeneratedImage]:
        """The prompt's images in the order shown; each generator is asked once, for its slots."""
        slots: dict[int, list[int]] = defaultdict(list)
        for slot, which in enumerate(self.draw(seed)):
            slots[which].append(slot)
        shown: list[GeneratedImage | None] = [None] * self.config.images_per_prompt
        for which, places in sorted(slots.items()):
            images = self.generators[which].generate(prompt, len(places), (seed + which) % 2**63)
            for place, image in zip(places, images, strict=True):
                shown[place] = image
        return [image for image in shown if image is not None]
