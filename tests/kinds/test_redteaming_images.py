"""Images of red-teaming submissions are checked by content, within limits, zip bombs included."""

import io
import struct
import zipfile
import zlib

import numpy as np
import pytest
from PIL import Image

from dataperf.exceptions import Problem
from dataperf.kinds.redteaming_files import Problems
from dataperf.kinds.redteaming_images import (
    MAX_IMAGE_BYTES,
    ImageFacts,
    check_archive,
    check_image,
)


def encoded(kind: str, size=(64, 48)) -> bytes:
    pixels = np.random.default_rng(0).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=kind)
    return buffer.getvalue()


def archive(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as handle:
        for name, data in entries.items():
            handle.writestr(name, data)
    return buffer.getvalue()


def check(data: bytes, referenced: dict[str, str]):
    problems: list[Problem] = []
    found = check_archive("images.zip", data, referenced, Problems(problems))
    return found, problems


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width`` x ``height`` pixels."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body)))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b""))


@pytest.mark.parametrize("kind", ["PNG", "JPEG", "WEBP"])
def test_png_jpeg_and_webp_are_accepted_whatever_their_names(kind):
    data = encoded(kind)
    found, problems = check(archive({"pictures/shot.gif": data}), {"pictures/shot.gif": "a1"})
    assert problems == []
    facts = found["pictures/shot.gif"]
    assert isinstance(facts, ImageFacts)
    assert (facts.format, facts.width, facts.height, facts.bytes) == (kind, 64, 48, len(data))


@pytest.mark.parametrize(("data", "needle"), [
    (encoded("GIF"), "GIF image data"),
    (encoded("PNG")[:120], "cannot be decoded"),
    (b"just some text, named like an image", "not a decodable"),
    (png_claiming(5_000, 5_000), "pixels; the limit"),
    (png_claiming(60_000, 60_000), "the limit is"),
    (encoded("PNG", size=(4, 4)), "each side needs"),
])
def test_other_formats_broken_data_and_huge_or_tiny_images_are_refused(data, needle):
    assert needle in check_image(data)


def test_a_decompression_bomb_costs_nothing():
    """10 GB of zeros compress to about 10 MB; the entry's declared size refuses it unread."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as handle, \
            handle.open("bomb.png", "w", force_zip64=True) as entry:
        block = b"\x00" * (1 << 20)
        for _ in range(MAX_IMAGE_BYTES // len(block) + 4):
            entry.write(block)
    _, problems = check(buffer.getvalue(), {"bomb.png": "a1"})
    assert [p.rule for p in problems] == ["image-too-large"]


def test_missing_images_unsafe_names_and_broken_archives():
    data = archive({"ok.png": encoded("PNG"), "../escape.png": encoded("PNG")})
    found, problems = check(data, {"ok.png": "a1", "gone.png": "a2", "../escape.png": "a3"})
    assert set(found) == {"ok.png"}
    assert [(p.rule, p.ids) for p in problems] == [("missing-image", ("a2",)),
                                                    ("missing-image", ("a3",))]
    assert [p.rule for p in check(b"PK\x03\x04 not really", {"x.png": "a"})[1]] == ["bad-zip"]
