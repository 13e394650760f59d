"""The ``dataperf`` commands that run a hosted platform: ``serve``, ``worker`` and ``admin``
(operators)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Annotated, Any

import typer

from dataperf.cli_app import app, err, out, read_password
from dataperf.exceptions import DataPerfError

admin_app = typer.Typer(help="Administer a server's database directly (operators).",
                        no_args_is_help=True)
app.add_typer(admin_app, name="admin")


def _server_modules() -> Any:
    try:
        from dataperf.server import app as server_app
    except ModuleNotFoundError as missing:
        raise DataPerfError(f"the server needs extra packages ({missing.name} is missing): "
                            "pip install 'dataperf[server]'") from None
    return server_app


def _settings(**overrides: Any) -> Any:
    """The server settings from DATAPERF_* variables; a bad value is a clear error."""
    from pydantic import ValidationError

    from dataperf.exceptions import describe
    from dataperf.server.settings import Settings

    try:
        settings = Settings(**overrides)
    except ValidationError as error:
        raise DataPerfError(f"bad DATAPERF_* setting: {describe(error)}") from None
    settings.home.mkdir(parents=True, exist_ok=True)
    return settings


def _database(settings: Any) -> Any:
    from dataperf.server.db import Database

    db = Database(settings.sqlalchemy_url)

    def migrate() -> None:
        with db.startup_lock():
            db.migrate()

    db.when_reachable(migrate)
    return db


# Running a server ---------------------------------------------------------------------------

@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int | None, typer.Option(
        help="Evaluation slots inside the server (0: use separate `dataperf worker`s).")] = None,
    processes: Annotated[int, typer.Option(
        min=1, help="Web server processes sharing the port: more serve more requests at once "
        "(each has its own interpreter); with 2 or more, the evaluation slots run in one "
        "`dataperf worker` process beside them.")] = 1,
) -> None:
    """Run the platform: web API, database migrations, bundled challenges and workers."""
    import uvicorn

    server_app = _server_modules()
    settings = _settings(**({"workers": workers} if workers is not None else {}))
    err.print(f"DataPerf on http://{host}:{port} (home {settings.home}, {processes} "
              f"process(es), {settings.workers} worker slot(s); API docs at /docs)")
    if processes == 1:
        uvicorn.run(server_app.create_app(settings), host=host, port=port, log_level="info")
        return
    # uvicorn's supervisor starts each process, which makes its app from DATAPERF_* variables.
    os.environ["DATAPERF_WORKERS"] = "0"
    worker = subprocess.Popen([sys.executable, "-m", "dataperf", "worker", "--slots",
                               str(settings.workers)]) if settings.workers else None
    try:
        uvicorn.run(f"{server_app.__name__}:create_app", factory=True, host=host, port=port,
                    workers=processes, log_level="info")
    finally:
        if worker is not None:  # SIGTERM: it hands its running jobs back to the queue
            worker.terminate()
            worker.wait()


@app.command()
def worker(
    slots: Annotated[int, typer.Option(help="Evaluations run at once.")] = 1,
    ray_address: Annotated[str | None, typer.Option(
        "--ray-address", help="Run evaluations on this Ray cluster ('auto', "
        "'ray://host:10001', or 'local' for a new local instance).")] = None,
) -> None:
    """Run an evaluation worker against the server's database (DATAPERF_DATABASE_URL)."""
    stop = threading.Event()  # first: a stop while starting up is a clean stop too
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    _server_modules()
    from dataperf.server.executors import make_executor
    from dataperf.server.worker import Worker

    settings = _settings()
    db = _database(settings)
    executor = make_executor(slots, ray_address)
    runner = Worker(db, settings, executor)
    err.print(f"worker {runner.name}: {slots} slot(s) on {executor.name}; Ctrl-C stops it "
              "and hands running jobs back to the queue")
    runner.run(stop)


@admin_app.command("create-user")
def admin_create_user(
    email: Annotated[str, typer.Argument(help="The user's email (login name).")],
    name: Annotated[str, typer.Option(help="Display name.")] = "",
    role: Annotated[str, typer.Option(help="participant, rater, organizer or admin.")] = "admin",
    password_stdin: Annotated[bool, typer.Option(help="Read the password from stdin.")] = False,
) -> None:
    """Create a user (or change an existing one's role and password) in the database."""
    _server_modules()
    from dataperf.server.users import upsert_user

    db = _database(_settings())
    created = upsert_user(db, email, name or email.split("@")[0], read_password(password_stdin),
                          role)
    out.print(f"{'created' if created else 'updated'} {email} with role {role}")


@admin_app.command("backup")
def admin_backup(
    folder: Annotated[Path, typer.Argument(help="A new folder to write the backup into.")],
) -> None:
    """Back up the server's database, stored files and uploaded editions (while it runs)."""
    _server_modules()
    from dataperf.server import operations

    report = operations.backup(_settings(), folder)
    rows = sum(report.tables.values())
    out.print(f"backed up {rows:,} rows of {len(report.tables)} tables (schema {report.revision}),"
              f" {report.blobs:,} stored files ({report.blob_bytes:,} bytes) and "
              f"{len(report.editions)} uploaded edition(s) into {folder}")
    if report.missing_blobs:
        out.print(f"{len(report.missing_blobs)} file(s) were deleted while backing up (expired "
                  "images); their records are in the backup without them")


@admin_app.command("restore")
def admin_restore(
    folder: Annotated[Path, typer.Argument(help="A folder written by `dataperf admin backup`.")],
) -> None:
    """Restore a backup into an empty database and home (then start the server on them)."""
    _server_modules()
    from dataperf.server import operations

    settings = _settings()
    report = operations.restore(settings, folder)
    out.print(f"restored {sum(report.tables.values()):,} rows, {report.blobs:,} stored files "
              f"and {len(report.editions)} uploaded edition(s) into {settings.sqlalchemy_url} "
              f"and {settings.home}")


@admin_app.command("collect-garbage")
def admin_collect_garbage(
    grace_minutes: Annotated[float, typer.Option(
        help="Keep unreferenced files younger than this: an upload in progress stores its "
             "files just before its row.")] = 60,
    dry_run: Annotated[bool, typer.Option(help="Count, delete nothing.")] = False,
) -> None:
    """Delete stored files that no row refers to (a crash between storing and committing an
    upload) and temporary files of interrupted writes."""
    _server_modules()
    from dataperf.server import operations
    from dataperf.server.storage import BlobStore

    settings = _settings()
    report = operations.collect_garbage(_database(settings), BlobStore(settings.blobs_dir),
                                        grace_seconds=grace_minutes * 60, dry_run=dry_run)
    verb = "would delete" if dry_run else "deleted"
    out.print(f"{verb} {report.blobs:,} unreferenced file(s) ({report.blob_bytes:,} bytes) and "
              f"{report.partials:,} interrupted write(s); kept {report.kept_young:,} younger "
              f"than {grace_minutes:g} minutes")
