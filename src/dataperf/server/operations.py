"""A server's data as a whole, for its operators: backups taken while it runs, their restore
into a fresh home, and collecting the stored files that nothing refers to any more.

A backup is a folder: ``backup.json`` (the schema revision, the row and file counts),
``tables/<table>.jsonl`` (every row, read in one transaction: a consistent snapshot, whatever
the server writes meanwhile), ``blobs/`` (the stored files those rows refer to; stored files
never change, so copying them after the snapshot is safe) and ``editions/`` (the editions
organizers uploaded). It is plain JSON, so a backup of SQLite restores into PostgreSQL too.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Integer, Table, func, select, text, update
from sqlalchemy.orm import Session

from dataperf import __version__
from dataperf.editions import Edition
from dataperf.exceptions import DataPerfError
from dataperf.server.db import Database
from dataperf.server.jobs import BUNDLED_REF
from dataperf.server.models import Base, ChallengeRow, Generation, SubmissionFile, UTCDateTime
from dataperf.server.settings import Settings
from dataperf.server.storage import PARTIAL_PREFIX, BlobStore

MANIFEST = "backup.json"
FORMAT = 1
BATCH = 1000


@dataclass
class BackupReport:
    revision: str
    tables: dict[str, int]
    blobs: int
    blob_bytes: int
    editions: list[str]
    missing_blobs: list[str] = field(default_factory=list)


@dataclass
class GarbageReport:
    blobs: int = 0
    blob_bytes: int = 0
    partials: int = 0
    kept_young: int = 0  # unreferenced but too new to tell from an upload in progress


# Which stored files are in use ----------------------------------------------------------------

def referenced_blobs(session: Session) -> set[str]:
    """The digests that rows refer to: submitted and produced files, generated images."""
    digests = set(session.scalars(select(SubmissionFile.sha256).distinct()))
    for images in session.scalars(select(Generation.images)):
        digests.update(image["sha256"] for image in images or () if image.get("sha256"))
    return digests


def collect_garbage(db: Database, store: BlobStore, *, grace_seconds: float = 3600,
                    dry_run: bool = False) -> GarbageReport:
    """Delete the stored files no row refers to and the temporary files of interrupted
    writes, when older than ``grace_seconds`` (an upload stores its files moments before
    its row is committed: a younger file may be one of those)."""
    report = GarbageReport()
    if not store.root.is_dir():
        return report
    with db.read() as session:
        used = referenced_blobs(session)
    cutoff = time.time() - grace_seconds
    for path in store.root.glob("*/*/*"):
        stat = path.stat()
        partial = path.name.startswith(PARTIAL_PREFIX)
        if not partial and path.name in used:
            continue
        if stat.st_mtime > cutoff:
            report.kept_young += 1
            continue
        if partial:
            report.partials += 1
        else:
            report.blobs += 1
            report.blob_bytes += stat.st_size
        if not dry_run:
            path.unlink(missing_ok=True)
    return report


# Backups --------------------------------------------------------------------------------------

def _encode(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _decoders(table: Table) -> dict[str, Any]:
    return {c.name: datetime.fromisoformat for c in table.columns
            if isinstance(c.type, UTCDateTime)}


def backup(settings: Settings, target: Path) -> BackupReport:
    """Write a backup of the server at ``settings`` into the new folder ``target``."""
    if target.exists() and any(target.iterdir()):
        raise DataPerfError(f"{target} is not empty; back up into a new folder")
    (target / "tables").mkdir(parents=True, exist_ok=True)
    db = Database(settings.sqlalchemy_url)
    digests: set[str] = set()
    counts: dict[str, int] = {}
    editions: dict[str, str] = {}
    try:
        with db.engine.connect() as connection, connection.begin():
            if not db.is_sqlite:  # one snapshot for every table (SQLite's read is one)
                connection.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, "
                                        "READ ONLY"))
            revision = str(connection.execute(
                text("SELECT version_num FROM alembic_version")).scalar_one())
            for table in Base.metadata.sorted_tables:
                counts[table.name] = _dump(connection, table, target / "tables", digests,
                                           editions)
    finally:
        db.dispose()
    store, copied = BlobStore(settings.blobs_dir), BlobStore(target / "blobs")
    missing, size = [], 0
    for digest in sorted(digests):
        source = store.path(digest)
        if not source.is_file():  # purged since the snapshot (image retention)
            missing.append(digest)
            continue
        copied.path(digest).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, copied.path(digest))
        size += source.stat().st_size
    for name, path in editions.items():
        shutil.copytree(path, target / "editions" / name)
    report = BackupReport(revision, counts, len(digests) - len(missing), size, sorted(editions),
                          missing)
    (target / MANIFEST).write_text(json.dumps(
        {"format": FORMAT, "dataperf": __version__, "backend": "sqlite" if db.is_sqlite
         else "postgresql", **asdict(report)}, indent=2) + "\n")
    return report


def _dump(connection: Connection, table: Table, folder: Path, digests: set[str],
          editions: dict[str, str]) -> int:
    """Write the table's rows (streamed) and note the files they refer to."""
    rows = 0
    result = connection.execution_options(yield_per=BATCH).execute(
        select(table).order_by(*table.primary_key.columns))
    with (folder / f"{table.name}.jsonl").open("w") as out:
        for row in result.mappings():
            values = {key: _encode(value) for key, value in row.items()}
            if table.name == SubmissionFile.__tablename__:
                digests.add(values["sha256"])
            elif table.name == Generation.__tablename__:
                digests.update(i["sha256"] for i in values["images"] or () if i.get("sha256"))
            elif table.name == ChallengeRow.__tablename__ and \
                    not values["edition_path"].startswith(BUNDLED_REF):
                editions[values["name"]] = values["edition_path"]
            out.write(json.dumps(values) + "\n")
            rows += 1
    return rows


# Restoring ------------------------------------------------------------------------------------

def restore(settings: Settings, source: Path) -> BackupReport:
    """Restore the backup at ``source`` into the server at ``settings``: an empty database
    (created at the backup's schema revision, then migrated to this version's) and its home;
    the uploaded editions land under the home's ``editions/``."""
    manifest = _manifest(source)
    settings.home.mkdir(parents=True, exist_ok=True)
    db = Database(settings.sqlalchemy_url)
    try:
        db.migrate(manifest["revision"])
        with db.write_engine.connect() as connection, connection.begin():
            for table in Base.metadata.sorted_tables:
                if connection.scalar(select(func.count()).select_from(table)):
                    raise DataPerfError(
                        f"the database at {settings.sqlalchemy_url} already holds data (table "
                        f"{table.name}); restore into an empty one")
            for table in Base.metadata.sorted_tables:
                _load(connection, table, source / "tables" / f"{table.name}.jsonl")
            editions = _place_editions(connection, source, settings.home / "editions")
            if not db.is_sqlite:
                _reset_sequences(connection)
        db.migrate()
    finally:
        db.dispose()
    store = BlobStore(settings.blobs_dir)
    for blob in (source / "blobs").glob("*/*/*"):
        target = store.path(blob.name)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(blob, target)
    return BackupReport(manifest["revision"], manifest["tables"], manifest["blobs"],
                        manifest["blob_bytes"], editions, manifest["missing_blobs"])


def _manifest(source: Path) -> dict[str, Any]:
    try:
        manifest: dict[str, Any] = json.loads((source / MANIFEST).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise DataPerfError(f"{source} is not a DataPerf backup (no readable {MANIFEST}: "
                            f"{err})") from None
    if manifest.get("format") != FORMAT:
        raise DataPerfError(f"{source} is a backup of format {manifest.get('format')!r}; this "
                            f"version reads format {FORMAT}")
    return manifest


def _rows(path: Path, decoders: dict[str, Any]) -> Iterator[dict[str, Any]]:
    with path.open() as lines:
        for line in lines:
            row = json.loads(line)
            for key, decode in decoders.items():
                if row.get(key) is not None:
                    row[key] = decode(row[key])
            yield row


def _batches(rows: Iterable[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _load(connection: Connection, table: Table, path: Path) -> None:
    if path.is_file():
        for batch in _batches(_rows(path, _decoders(table))):
            connection.execute(table.insert(), batch)


def _place_editions(connection: Connection, source: Path, editions: Path) -> list[str]:
    """Copy the backup's uploaded editions under ``editions`` (as ``<challenge>/<edition>``,
    where the registry finds them) and point their challenges there."""
    placed = []
    for folder in sorted((source / "editions").glob("*")):
        challenge, edition = _edition_name(folder)
        target = editions / challenge / edition
        if not target.exists():
            shutil.copytree(folder, target)
        connection.execute(update(ChallengeRow).where(ChallengeRow.name == folder.name)
                           .values(edition_path=str(target)))
        placed.append(folder.name)
    return placed


def _edition_name(folder: Path) -> tuple[str, str]:
    """The challenge and name of a backed-up edition, whose files are checked first."""
    try:
        edition = Edition.open(folder)
    except DataPerfError as err:
        raise DataPerfError(f"the backed-up edition {folder.name} is damaged: {err}") from None
    return edition.challenge, edition.name


def _reset_sequences(connection: Connection) -> None:
    """PostgreSQL: each table's ID sequence continues after the restored rows."""
    for table in Base.metadata.sorted_tables:
        if "id" in table.columns and isinstance(table.c.id.type, Integer):
            connection.execute(text(
                f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                f"COALESCE((SELECT MAX(id) FROM {table.name}), 0) + 1, false)"))
