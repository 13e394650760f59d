"""The public part of a hosted challenge's edition, for participants to download."""

from __future__ import annotations

import os
import tarfile
import tempfile
from pathlib import Path

from fastapi import APIRouter, Depends
from fastapi.responses import FileResponse

from dataperf.editions import export_public
from dataperf.server.api.deps import get_platform
from dataperf.server.api.lookup import challenge_row
from dataperf.server.platform import Platform

router = APIRouter(tags=["challenges"])


def public_archive(platform: Platform, name: str) -> tuple[Path, str]:
    """A .tar.gz of the edition's public files (made once per edition, atomically)."""
    with platform.db.read() as session:
        row = challenge_row(session, name)
    edition = platform.edition(row)
    folder = f"{row.challenge}-{edition.name}"
    target = platform.settings.home / "cache" / "public" / f"{row.edition_hash}.tar.gz"
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
            copy = export_public(edition, Path(scratch) / edition.name)  # never hidden files
            partial = Path(scratch) / "public.tar.gz"
            with tarfile.open(partial, "w:gz") as archive:
                archive.add(copy.path, arcname=edition.name)
            os.replace(partial, target)
    return target, f"{folder}-public.tar.gz"


@router.get("/challenges/{name}/public-data", response_class=FileResponse,
            summary="The public data (pool, examples, weak labels...) as .tar.gz; "
                    "`dataperf download` installs it",
            responses={200: {"content": {"application/gzip": {}}}})
def public_data(name: str, platform: Platform = Depends(get_platform)) -> FileResponse:
    path, filename = public_archive(platform, name)
    return FileResponse(path, media_type="application/gzip", filename=filename)
