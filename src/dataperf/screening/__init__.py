"""Automatic content screening: the probability that a prompt or an image is unsafe.

The platform screens to *flag* prompts for raters and to *blur* images shown by default, never
to score. One small interface per modality, :class:`TextScreener` (prompt strings) and
:class:`ImageScreener` (PNG, JPEG or WebP bytes); each input's answer is a :class:`Screening`.
Screeners are found by name: the built-ins, and those other packages declare as entry points in
the groups ``dataperf.text_screeners`` and ``dataperf.image_screeners`` (each entry point a
screener class or a zero-argument factory; see :mod:`dataperf.plugins`).

Built-ins (models ship in the packages of the ``screening`` extra; nothing is downloaded, and a
model is loaded on first use and kept for the life of the process):

* text ``profanity-check``: :class:`~dataperf.screening.text.ProfanityCheck`;
* image ``open-nsfw``: :class:`~dataperf.screening.image.OpenNSFW` (sexual content only).
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import struct
import warnings
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Generic, TypeVar

import numpy as np

from dataperf.exceptions import DataPerfError
from dataperf.plugins import PluginGroup

if TYPE_CHECKING:
    from PIL import Image

__all__ = [
    "DEFAULT_IMAGE_SCREENER",
    "DEFAULT_TEXT_SCREENER",
    "FLAG_THRESHOLD",
    "IMAGE_GROUP",
    "TEXT_GROUP",
    "ImageScreener",
    "ScreenerNotFoundError",
    "ScreenerUnavailableError",
    "Screening",
    "ScreeningError",
    "TextScreener",
    "blurred",
    "image_screener",
    "image_screener_names",
    "text_screener",
    "text_screener_names",
]

#: Default threshold: an input is flagged when its unsafe probability is at least this.
FLAG_THRESHOLD = 0.5
TEXT_GROUP = "dataperf.text_screeners"
IMAGE_GROUP = "dataperf.image_screeners"
DEFAULT_TEXT_SCREENER = "profanity-check"
DEFAULT_IMAGE_SCREENER = "open-nsfw"
SCREENING_EXTRA_ADVICE = "install the screening extra with `pip install 'dataperf[screening]'`"
#: The image formats screeners and :func:`blurred` decode (Pillow format names).
IMAGE_FORMATS = ("PNG", "JPEG", "WEBP")
#: Default blur radius of :func:`blurred`, as a share of the image's longer side.
BLUR_SHARE = 1 / 10
MIN_BLUR_RADIUS = 8.0

_BUILTINS: dict[str, dict[str, str]] = {
    TEXT_GROUP: {"profanity-check": "dataperf.screening.text:ProfanityCheck"},
    IMAGE_GROUP: {"open-nsfw": "dataperf.screening.image:OpenNSFW"},
}


class ScreeningError(DataPerfError):
    """An input a screener cannot read, or a screener that cannot be loaded or misbehaves."""


class ScreenerNotFoundError(ScreeningError):
    """No built-in or entry-point screener has the requested name."""


class ScreenerUnavailableError(ScreeningError):
    """A screener's package is not installed."""


@dataclass(frozen=True)
class Screening:
    """One input's screening: the probability that it is unsafe, and whether it is flagged
    (probability at least the screener's ``threshold``, by default :data:`FLAG_THRESHOLD`)."""

    probability: float
    flagged: bool


Item = TypeVar("Item")


class Screener(ABC, Generic[Item]):
    """Answers, for a batch of inputs, the probability that each is unsafe.

    Subclasses implement :meth:`_predict`; callers use :meth:`probabilities` or :meth:`screen`,
    which check the inputs and the answer.
    """

    #: The types an input may have, and what to call one in messages.
    item_types: ClassVar[tuple[type, ...]]
    item_name: ClassVar[str]
    threshold: float = FLAG_THRESHOLD

    def __init__(self, *, threshold: float = FLAG_THRESHOLD):
        if not 0.0 <= threshold <= 1.0:
            raise ScreeningError(f"the flag threshold must be in [0, 1], got {threshold!r}")
        self.threshold = threshold

    @abstractmethod
    def _predict(self, items: list[Item]) -> np.ndarray:
        """(n,) unsafe probabilities of a non-empty batch of checked inputs."""

    def probabilities(self, items: Sequence[Item]) -> np.ndarray:
        """(n,) float64 probability that each input is unsafe, each in [0, 1]."""
        batch = list(items)
        for index, item in enumerate(batch):
            if not isinstance(item, self.item_types):
                raise ScreeningError(
                    f"{self.item_name} {index} is a {type(item).__name__}, "
                    f"expected {' or '.join(t.__name__ for t in self.item_types)}"
                )
        if not batch:
            return np.zeros(0)
        answer = np.asarray(self._predict(batch), dtype=np.float64)
        if answer.shape != (len(batch),) or not np.all((answer >= 0) & (answer <= 1)):
            raise ScreeningError(
                f"screener {type(self).__name__} answered an array of shape {answer.shape} for "
                f"{len(batch)} inputs; expected one probability in [0, 1] per input"
            )
        return answer

    def screen(self, items: Sequence[Item]) -> list[Screening]:
        """One :class:`Screening` per input, in order."""
        return [Screening(float(p), bool(p >= self.threshold)) for p in self.probabilities(items)]


class TextScreener(Screener[str]):
    """Screens prompt strings (offensive, sexual, violent or hateful text)."""

    item_types = (str,)
    item_name = "prompt"


class ImageScreener(Screener[bytes]):
    """Screens encoded images (PNG, JPEG or WebP bytes)."""

    item_types = (bytes, bytearray, memoryview)
    item_name = "image"


def require_package(module: str, package: str, screener: str) -> None:
    """Raise :class:`ScreenerUnavailableError` unless ``module`` (of ``package``) is installed."""
    if importlib.util.find_spec(module) is None:
        raise ScreenerUnavailableError(
            f"the {screener!r} screener needs the package {package!r}, which is not installed; "
            f"{SCREENING_EXTRA_ADVICE}"
        )


# --------------------------------------------------------------------------- registry

_TEXT_SCREENERS: PluginGroup[TextScreener] = PluginGroup(
    TEXT_GROUP, _BUILTINS[TEXT_GROUP], TextScreener, what="text screener", error=ScreeningError,
    not_found=ScreenerNotFoundError)
_IMAGE_SCREENERS: PluginGroup[ImageScreener] = PluginGroup(
    IMAGE_GROUP, _BUILTINS[IMAGE_GROUP], ImageScreener, what="image screener",
    error=ScreeningError, not_found=ScreenerNotFoundError)


def text_screener(name: str = DEFAULT_TEXT_SCREENER) -> TextScreener:
    """A new text screener of the name ``name``; its model loads on first use, once a process."""
    return _TEXT_SCREENERS.load(name)


def image_screener(name: str = DEFAULT_IMAGE_SCREENER) -> ImageScreener:
    """A new image screener of the name ``name``; its model loads on first use, once a process."""
    return _IMAGE_SCREENERS.load(name)


def text_screener_names() -> list[str]:
    """Names of every registered text screener, sorted."""
    return _TEXT_SCREENERS.names()


def image_screener_names() -> list[str]:
    """Names of every registered image screener, sorted."""
    return _IMAGE_SCREENERS.names()


# --------------------------------------------------------------------------- images


def open_image(data: bytes | bytearray | memoryview, what: str) -> Image.Image:
    """Decode PNG, JPEG or WebP bytes; ``what`` names the image in the error message."""
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # damaged metadata Pillow skips
            image = Image.open(io.BytesIO(data), formats=IMAGE_FORMATS)
            image.load()
    except UnidentifiedImageError:
        raise ScreeningError(f"{what} is not a PNG, JPEG or WebP image") from None
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as err:
        raise ScreeningError(f"{what} is not a readable PNG, JPEG or WebP image ({err})") from None
    return image


def blurred(image_bytes: bytes, radius: float | None = None) -> bytes:
    """A strongly blurred PNG of an image, at the size the image is displayed.

    ``image_bytes`` is PNG, JPEG or WebP. ``radius`` is the Gaussian blur's radius in pixels; by
    default :data:`BLUR_SHARE` of the longer side, at least :data:`MIN_BLUR_RADIUS`. The EXIF
    orientation is applied (ignored when unreadable); metadata is not kept; transparency is.
    """
    from PIL import ImageFilter, ImageOps

    if radius is not None and not radius > 0:
        raise ScreeningError(f"the blur radius must be positive, got {radius!r}")
    image = open_image(image_bytes, "the image")
    unreadable_exif = (SyntaxError, struct.error, ValueError, OSError, KeyError, IndexError,
                       TypeError)
    with warnings.catch_warnings(), contextlib.suppress(*unreadable_exif):
        warnings.simplefilter("ignore", UserWarning)  # damaged EXIF tags Pillow skips
        image = ImageOps.exif_transpose(image)
    alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    image = image.convert("RGBA" if alpha else "RGB")
    if radius is None:
        radius = max(MIN_BLUR_RADIUS, BLUR_SHARE * max(image.size))
    out = io.BytesIO()
    image.filter(ImageFilter.GaussianBlur(radius)).save(out, format="PNG")
    return out.getvalue()
