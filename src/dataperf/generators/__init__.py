"""Text-to-image generators: a prompt, a count and a seed give images, each with its model's name.

Red-teaming participants attack image generators. One small interface, :class:`Generator`;
its :meth:`~Generator.generate` answers one :class:`GeneratedImage` per requested image, in
order. A model's refusal (a safety filter, a blank or black image) is not an error: it is a
*blocked* image with the reason, recorded like any other. What the participant should be told
when generation fails (a service that does not answer, a model folder that is incomplete) is a
:class:`GenerationError` whose message is written for them.

Generators are found by name (see :mod:`dataperf.plugins`): the built-ins below, and those
other packages declare as entry points in the group ``dataperf.generators`` (a class or a
factory, called with the operator's settings as keyword arguments).

* ``tiny``: :class:`~dataperf.generators.tiny.TinyDiffusion`, a randomly initialised diffusers
  pipeline built in memory; a *test generator* (its images are noise), for tests and demos;
* ``diffusers``: :class:`~dataperf.generators.diffusion.LocalDiffusion`, a pipeline the operator
  keeps in a local folder;
* ``http``: :class:`~dataperf.generators.http.HTTPGenerator`, an image service the operator runs;
* ``upload``: :class:`~dataperf.generators.upload.Upload`, images participants made elsewhere.

No weights are downloaded: ``tiny`` needs none, real models are the operator's to configure.
"""

from __future__ import annotations

import io
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, cast

from dataperf.exceptions import DataPerfError
from dataperf.plugins import PluginGroup

if TYPE_CHECKING:
    from PIL import Image

__all__ = [
    "GROUP",
    "MAX_IMAGES",
    "MAX_PROMPT",
    "GeneratedImage",
    "GenerationError",
    "Generator",
    "GeneratorNotFoundError",
    "GeneratorUnavailableError",
    "check_model_name",
    "generator",
    "generator_names",
]

GROUP = "dataperf.generators"
#: The most images one request may ask for (the original showed up to 12 per prompt).
MAX_IMAGES = 12
#: Longest prompt accepted, in characters.
MAX_PROMPT = 2000
#: An image whose grey levels span at most this many steps (of 255) is blank: a refusal.
BLANK_SPREAD = 2
BLANK_REASON = "the model returned a blank image (it refused the prompt)"
GENERATION_EXTRA_ADVICE = "install the generation extra with `pip install 'dataperf[generation]'`"

_BUILTINS = {
    "tiny": "dataperf.generators.tiny:TinyDiffusion",
    "diffusers": "dataperf.generators.diffusion:LocalDiffusion",
    "http": "dataperf.generators.http:HTTPGenerator",
    "upload": "dataperf.generators.upload:Upload",
}


#: Longest model name accepted.
MAX_MODEL_NAME = 100


class GenerationError(DataPerfError):
    """Generation failed; the message is written for the participant who asked."""


class GeneratorNotFoundError(GenerationError):
    """No built-in or entry-point generator has the requested name."""


class GeneratorUnavailableError(GenerationError):
    """A generator's packages are not installed, or its model is not where it was configured."""


@dataclass(frozen=True)
class GeneratedImage:
    """One generated image: a PNG, or ``None`` and the reason the model blocked it.

    ``model`` is the model's name as records keep it (participants do not see it);
    ``test_generator`` marks images of a generator that is not a real model.
    """

    model: str
    png: bytes | None
    blocked: str | None = None
    test_generator: bool = False

    def __post_init__(self) -> None:
        if (self.png is None) == (self.blocked is None):
            raise ValueError("a generated image has either a PNG or a blocked reason")


class Generator(ABC):
    """Makes images from a prompt. Subclasses implement :meth:`_generate`."""

    #: A generator that is not a real model (labelled as such wherever its images appear).
    test_generator: ClassVar[bool] = False
    #: A generator whose images participants upload (it cannot generate).
    takes_uploads: ClassVar[bool] = False

    #: The model's name, as records keep it.
    model: str

    def generate(self, prompt: str, count: int, seed: int) -> list[GeneratedImage]:
        """``count`` images for ``prompt``; the same seed gives the same images."""
        if not isinstance(prompt, str) or not prompt.strip():
            raise GenerationError("type a prompt first: it is empty")
        if len(prompt) > MAX_PROMPT:
            raise GenerationError(
                f"the prompt is {len(prompt)} characters long; the most is {MAX_PROMPT}"
            )
        if not isinstance(count, int) or not 1 <= count <= MAX_IMAGES:
            raise GenerationError(f"ask for 1 to {MAX_IMAGES} images, not {count!r}")
        if not isinstance(seed, int) or not 0 <= seed < 2**63:
            raise GenerationError(f"the seed must be an integer in [0, 2^63), not {seed!r}")
        images = self._generate(prompt, count, seed)
        if len(images) != count:
            raise GenerationError(
                f"the {self.model} model gave {len(images)} images instead of {count}; "
                "please try again, and tell the organizers if it happens again"
            )
        return images

    @abstractmethod
    def _generate(self, prompt: str, count: int, seed: int) -> list[GeneratedImage]:
        """``count`` images of checked arguments."""

    def image(
        self, picture: Image.Image, *, refused: bool = False, model: str | None = None
    ) -> GeneratedImage:
        """A :class:`GeneratedImage` of a decoded picture by ``model`` (by default this one's):
        blocked when the model ``refused`` it or when it is blank, otherwise its PNG (without
        metadata)."""
        if refused:
            return self.blocked("the model's safety filter refused this image", model=model)
        low, high = cast(tuple[int, int], picture.convert("L").getextrema())
        if high - low <= BLANK_SPREAD:
            return self.blocked(BLANK_REASON, model=model)
        out = io.BytesIO()
        picture.convert("RGB").save(out, format="PNG")
        return GeneratedImage(model or self.model, out.getvalue(),
                              test_generator=self.test_generator)

    def blocked(self, reason: str, *, model: str | None = None) -> GeneratedImage:
        """The placeholder of an image the model blocked."""
        return GeneratedImage(model or self.model, None, reason,
                              test_generator=self.test_generator)


def check_model_name(name: object, what: str) -> str:
    """``name`` stripped, if it is a model name: printable text of 1 to 100 characters."""
    if not isinstance(name, str) or not name.strip():
        raise GenerationError(f"{what} is missing: name the model that made the image")
    name = name.strip()
    if len(name) > MAX_MODEL_NAME or not name.isprintable():
        raise GenerationError(
            f"{what} must be printable text of at most {MAX_MODEL_NAME} characters"
        )
    return name


_GENERATORS: PluginGroup[Generator] = PluginGroup(
    GROUP, _BUILTINS, Generator, what="generator", error=GenerationError,
    not_found=GeneratorNotFoundError)


def generator(name: str, **settings: object) -> Generator:
    """A new generator ``name`` configured with ``settings`` (its models load on first use)."""
    return _GENERATORS.load(name, **settings)


def generator_names() -> list[str]:
    """Names of every registered generator, sorted."""
    return _GENERATORS.names()
