"""``upload``: images participants made with a model elsewhere, with the model's name.

It generates nothing: :meth:`Upload.accept` checks one uploaded image (PNG, JPEG or WebP, at
most :data:`MAX_BYTES` bytes and :data:`MAX_SIDE` pixels a side) and keeps it as a PNG without
its metadata (camera data, locations). A blank image, which a generated one would be blocked
for, is refused: the participant uploads the picture the model made instead.
"""

from __future__ import annotations

import io

from dataperf.exceptions import DataPerfError
from dataperf.generators import GeneratedImage, GenerationError, Generator, check_model_name
from dataperf.screening import open_image

MAX_BYTES = 10 * 1024 * 1024
MAX_SIDE = 4096


class Upload(Generator):
    """Participants' own images."""

    takes_uploads = True
    model = "upload"

    def _generate(self, prompt: str, count: int, seed: int) -> list[GeneratedImage]:
        raise GenerationError("this round takes uploaded images: upload the image you made "
                              "and name the model that made it")

    def accept(self, data: bytes, model: str) -> GeneratedImage:
        """The uploaded image ``data``, made by ``model``."""
        name = check_model_name(model, "the model's name")
        if not isinstance(data, bytes | bytearray | memoryview) or not data:
            raise GenerationError("the upload is empty: choose a PNG, JPEG or WebP image")
        if len(data) > MAX_BYTES:
            raise GenerationError(
                f"the image is {len(data) / 2**20:.1f} MB; the most is {MAX_BYTES // 2**20} MB"
            )
        width, height = _size(data)
        if max(width, height) > MAX_SIDE:
            raise GenerationError(
                f"the image is {width} x {height} pixels; the most is {MAX_SIDE} a side"
            )
        try:
            picture = open_image(data, "the upload")
        except DataPerfError as err:
            raise GenerationError(str(err)) from None
        kept = self.image(picture, model=name)
        if kept.png is None:
            raise GenerationError("the image is blank (all one colour), as a model makes when "
                                  "it refuses a prompt: upload a picture the model made")
        return kept


def _size(data: bytes | bytearray | memoryview) -> tuple[int, int]:
    """The image's size from its header, before anything is decoded ((0, 0) if unreadable:
    decoding then says why)."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as peek:
            return peek.size
    except Exception:
        return 0, 0
