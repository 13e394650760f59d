"""Content-addressed file storage: bytes are kept once under their SHA-256 and checked on read."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from dataperf.exceptions import IntegrityError, StorageUnavailableError

PARTIAL_PREFIX = ".partial-"  # a file being written (left behind if its writer was killed)


class BlobStore:
    """Files named by the SHA-256 of their content, two levels deep (``ab/cd/abcd...``)."""

    def __init__(self, root: Path):
        self.root = root

    def path(self, digest: str) -> Path:
        if len(digest) != 64 or not all(c in "0123456789abcdef" for c in digest):
            raise ValueError(f"not a sha256 digest: {digest!r}")
        return self.root / digest[:2] / digest[2:4] / digest

    def put(self, data: bytes) -> str:
        """Store ``data`` (atomically; a no-op when already stored) and return its digest."""
        digest = hashlib.sha256(data).hexdigest()
        target = self.path(digest)
        if target.is_file() and target.stat().st_size == len(data):
            return digest
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=PARTIAL_PREFIX)
            try:
                with os.fdopen(fd, "wb") as out:
                    out.write(data)
                    out.flush()
                    os.fsync(out.fileno())
                os.replace(temporary, target)
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
        except OSError as err:
            raise StorageUnavailableError(f"the file storage cannot take files: {err}") from err
        return digest

    def get(self, digest: str) -> bytes:
        data = self.path(digest).read_bytes()
        if hashlib.sha256(data).hexdigest() != digest:
            raise IntegrityError(f"stored file {digest} is corrupt (its checksum differs)")
        return data
