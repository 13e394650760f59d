"""The images of a red-teaming submission: a zip archive beside the attack file, checked by
content, never by name.

Each attack's ``image`` names an entry of the archive (a relative path without ``..``). An
entry is accepted when Pillow decodes it fully as PNG, JPEG or WebP (whatever its name says),
within :data:`MAX_IMAGE_BYTES` bytes and :data:`MAX_PIXELS` pixels. Entry sizes are checked
from the archive's directory before anything is decompressed, and the decompressed bytes are
counted while reading, so a zip bomb costs nothing.
"""

from __future__ import annotations

import hashlib
import io
import warnings
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass

from dataperf.kinds.redteaming_files import Problems
from dataperf.screening import IMAGE_FORMATS as FORMATS

MAX_IMAGE_BYTES = 8 * 1024 * 1024
MAX_PIXELS = 4096 * 4096
MIN_SIDE = 8
MAX_ENTRIES = 20_000


@dataclass(frozen=True)
class ImageFacts:
    """What the checks found of one image."""

    format: str
    width: int
    height: int
    sha256: str
    bytes: int


def _safe_entry_name(name: str) -> bool:
    if not name or name.startswith("/") or "\\" in name or not name.isprintable():
        return False
    return all(part not in ("", ".", "..") for part in name.split("/"))


def check_image(data: bytes) -> ImageFacts | str:
    """The facts of an image, or why it is refused."""
    if len(data) > MAX_IMAGE_BYTES:
        return f"is {len(data):,} bytes; the limit is {MAX_IMAGE_BYTES:,}"
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
                if image.format not in FORMATS:
                    return (f"is {image.format or 'an unknown'} image data; submit PNG, JPEG "
                            "or WebP")
                if width * height > MAX_PIXELS:
                    return (f"has {width} x {height} pixels; the limit is {MAX_PIXELS:,} "
                            "pixels")
                if min(width, height) < MIN_SIDE:
                    return f"has {width} x {height} pixels; each side needs {MIN_SIDE} or more"
                image.load()
                kind = image.format
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        return f"has more pixels than Pillow decodes safely; the limit is {MAX_PIXELS:,} pixels"
    except UnidentifiedImageError:
        return "is not a decodable PNG, JPEG or WebP image"
    except (OSError, ValueError, SyntaxError) as err:  # truncated or corrupt data
        return f"cannot be decoded as an image ({err})"
    return ImageFacts(kind, width, height, hashlib.sha256(data).hexdigest(), len(data))


def check_archive(name: str, data: bytes, referenced: Mapping[str, str],
                  problems: Problems) -> dict[str, ImageFacts]:
    """The facts of every image that an attack references (``referenced``: entry name ->
    the first attack id naming it); problems for a bad archive, missing or bad images."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        entries = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError) as err:
        problems.add(name, "bad-zip", f"is not a readable zip archive ({err})")
        return {}
    if len(entries) > MAX_ENTRIES:
        problems.add(name, "bad-zip", f"holds {len(entries):,} entries; the limit is "
                     f"{MAX_ENTRIES:,}")
        return {}
    by_name = {entry.filename: entry for entry in entries if not entry.is_dir()}
    facts: dict[str, ImageFacts] = {}
    for entry_name, attack_id in referenced.items():
        entry = by_name.get(entry_name)
        if entry is None or not _safe_entry_name(entry_name):
            why = ("is not in the archive" if entry is None
                   else "is not a plain relative path inside the archive")
            problems.add(name, "missing-image", f"image {entry_name[:100]!r} of attack "
                         f"{attack_id} {why}", ids=(attack_id,))
            continue
        if entry.file_size > MAX_IMAGE_BYTES:
            problems.add(name, "image-too-large", f"image {entry_name!r} of attack {attack_id} "
                         f"is {entry.file_size:,} bytes; the limit is {MAX_IMAGE_BYTES:,}",
                         ids=(attack_id,))
            continue
        try:
            with archive.open(entry) as handle:
                content = handle.read(MAX_IMAGE_BYTES + 1)
        except (zipfile.BadZipFile, OSError, ValueError, RuntimeError, EOFError) as err:
            problems.add(name, "bad-image", f"image {entry_name!r} of attack {attack_id} "
                         f"cannot be read from the archive ({err})", ids=(attack_id,))
            continue
        found = check_image(content)
        if isinstance(found, str):
            rule = "image-too-large" if len(content) > MAX_IMAGE_BYTES else "bad-image"
            problems.add(name, rule, f"image {entry_name!r} of attack {attack_id} {found}",
                         ids=(attack_id,))
        else:
            facts[entry_name] = found
    return facts
