"""Operations on a real server (SQLite and PostgreSQL): a backup taken while participants
submit restores into a fresh home and database with identical leaderboards, submissions and
files; a SQLite backup restores into PostgreSQL; a restore never overwrites data; stored files
nothing refers to are collected, and files of uploads in progress are not."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from challenges.test_declarative import NAME, write_organizer_files
from dataperf.exceptions import DataPerfError
from dataperf.registry import get_challenge
from dataperf.server import operations
from dataperf.server.db import Database
from dataperf.server.storage import PARTIAL_PREFIX, BlobStore
from official_layout import dataperf
from platform_harness import (
    PASSWORD,
    LiveServer,
    database_url,
    fast_settings,
    live_server,
)

CHALLENGE = "vision-selection"
# How a scoring ran: those queued at the backup are scored again after the restore.
RUN_FIELDS = ("position", "wait_seconds", "seconds", "progress", "attempts")


def _populate(server: LiveServer, tmp_path: Path) -> str:
    """An organizer's uploaded challenge, a participant's scored entries on it and on a bundled
    challenge, a snapshot; the participant's token."""
    organizer_home = tmp_path / "organizer"
    server.user("opal@example.org", role="organizer")
    assert dataperf("login", "--server", server.url, "--email", "opal@example.org",
                    "--password-stdin", home=organizer_home,
                    input=PASSWORD + "\n").returncode == 0
    files = write_organizer_files(tmp_path / "files")
    assert dataperf("data", "create", "spec.yaml", home=organizer_home, cwd=files).returncode == 0
    assert dataperf("organize", "create", organizer_home / "editions" / NAME / "organizer",
                    home=organizer_home).returncode == 0
    token = server.register("bea@example.org", team="Backups")["token"]
    bundled = get_challenge(CHALLENGE)
    runs = {CHALLENGE: bundled.run_algorithm("random", bundled.edition("offline"),
                                             random_state=4),
            NAME: _declarative_run(organizer_home)}
    for challenge, run in runs.items():
        with server.api(token) as api:
            made = api.post(f"/challenges/{challenge}/submissions",
                            files=[("files", (n, d)) for n, d in sorted(run.items())])
            assert made.status_code == 202, made.text
        server.wait(token, made.json()["id"])
    with server.api(server.user("ada@example.org", role="admin")) as api:
        assert api.post(f"/challenges/{CHALLENGE}/snapshots",
                        json={"name": "before the backup"}).status_code == 201
    return str(token)


def _declarative_run(home: Path) -> dict[str, bytes]:
    out = home / "run"
    assert dataperf("run", NAME, "--edition", "organizer", "--algorithm", "random", "--out",
                    out, home=home).returncode == 0
    return {p.name: p.read_bytes() for p in sorted(out.iterdir())}


def _state(server: LiveServer, token: str) -> dict[str, Any]:
    """What users see: every board, the participant's submissions with a file of each."""
    with server.api(token) as api:
        names = sorted(c["name"] for c in api.get("/challenges").json())
        mine = api.get("/submissions").json()
        return {
            "boards": {n: api.get(f"/challenges/{n}/leaderboard").json() for n in names},
            "snapshots": api.get(f"/challenges/{CHALLENGE}/snapshots").json(),
            "submissions": [{k: v for k, v in s.items() if k not in RUN_FIELDS} for s in mine],
            "files": [api.get(f"/submissions/{s['id']}/files",
                              params={"name": s["files"][0]["name"]}).content for s in mine]}


def _submit_meanwhile(server: LiveServer, token: str, stop: threading.Event,
                      made: list[int]) -> None:
    """Submit until ``stop`` (at most the quota), noting each submission made."""
    challenge = get_challenge(CHALLENGE)
    edition = challenge.edition("offline")
    runs = [challenge.run_algorithm("random", edition, random_state=s) for s in range(20, 26)]
    with server.api(token) as api:
        for run in runs:
            if stop.is_set():
                break
            answer = api.post(f"/challenges/{CHALLENGE}/submissions",
                              files=[("files", (n, d)) for n, d in sorted(run.items())])
            assert answer.status_code == 202, answer.text
            made.append(answer.json()["id"])


def test_a_backup_taken_while_submitting_restores_what_users_saw(
        server: LiveServer, backend: str, tmp_path: Path) -> None:
    token = _populate(server, tmp_path)
    stop, made = threading.Event(), list[int]()
    writer = threading.Thread(target=_submit_meanwhile, args=(server, token, stop, made))
    writer.start()
    while not made and writer.is_alive():
        time.sleep(0.01)
    report = operations.backup(server.settings, tmp_path / "backup")  # while they submit
    stop.set()
    writer.join()
    assert made
    assert report.tables["submissions"] >= 3
    assert report.editions == [NAME]
    for submission in made:
        server.wait(token, submission)
    before = _state(server, token)

    (tmp_path / "fresh").mkdir()
    with database_url(backend, tmp_path / "fresh") as fresh_url:
        settings = fast_settings(tmp_path / "fresh" / "home", fresh_url)
        restored = operations.restore(settings, tmp_path / "backup")
        assert restored.tables == report.tables
        _every_file_is_there(settings)
        with live_server(settings) as again:
            after = _state(again, token)  # the same token works: tokens are restored
            ids = {s["id"] for s in after["submissions"]}
            for submission in ids:
                again.wait(token, submission)  # those queued at the backup are scored again
            after = _state(again, token)
            with again.api() as api:
                logged_in = api.post("/auth/token", json={
                    "email": "bea@example.org", "password": PASSWORD, "token_name": "t"})
                assert logged_in.status_code == 200, logged_in.text
    assert ids <= {s["id"] for s in before["submissions"]}
    kept = [s for s in before["submissions"] if s["id"] in ids]
    assert after["submissions"] == kept
    assert after["snapshots"] == before["snapshots"]
    assert after["boards"][NAME] == before["boards"][NAME]
    board_ids = {r["submission_id"] for r in after["boards"][CHALLENGE]["rows"]}
    assert [r for r in before["boards"][CHALLENGE]["rows"] if r["submission_id"] in board_ids] \
        == after["boards"][CHALLENGE]["rows"]


def _every_file_is_there(settings: Any) -> None:
    db = Database(settings.sqlalchemy_url)
    store = BlobStore(settings.blobs_dir)
    with db.read() as session:
        digests = operations.referenced_blobs(session)
    db.dispose()
    assert digests
    assert all(store.path(d).is_file() for d in digests)


def test_a_sqlite_backup_restores_into_postgresql_and_never_over_data(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    with database_url("sqlite", tmp_path / "a") as url, \
            live_server(fast_settings(tmp_path / "a" / "home", url)) as server:
        token = _populate(server, tmp_path)
        operations.backup(server.settings, tmp_path / "backup")
        before = _state(server, token)
        with pytest.raises(DataPerfError, match="already holds data"):
            operations.restore(server.settings, tmp_path / "backup")
        assert _state(server, token) == before
    (tmp_path / "b").mkdir()
    with database_url("postgresql", tmp_path / "b") as url:
        settings = fast_settings(tmp_path / "b" / "home", url)
        operations.restore(settings, tmp_path / "backup")
        with live_server(settings) as again:
            after = _state(again, token)
    assert after["boards"] == before["boards"]
    assert after["files"] == before["files"]


def test_unreferenced_files_are_collected_after_a_grace_period(
        server: LiveServer, tmp_path: Path) -> None:
    token = server.register("gus@example.org", team="Garbage")["token"]
    challenge = get_challenge(CHALLENGE)
    run = challenge.run_algorithm("random", challenge.edition("offline"), random_state=9)
    with server.api(token) as api:
        made = api.post(f"/challenges/{CHALLENGE}/submissions",
                        files=[("files", (n, d)) for n, d in sorted(run.items())]).json()
    store = BlobStore(server.settings.blobs_dir)
    old, young = store.put(b"an upload whose row never came"), store.put(b"one in progress")
    partial = store.path(old).parent / f"{PARTIAL_PREFIX}killed"
    partial.write_bytes(b"half a fi")
    hour_ago = time.time() - 3700
    for path in (store.path(old), partial):
        os.utime(path, (hour_ago, hour_ago))
    db = Database(server.settings.sqlalchemy_url)
    try:
        counted = operations.collect_garbage(db, store, dry_run=True)
        assert (counted.blobs, counted.partials) == (1, 1)
        assert store.path(old).is_file()
        done = operations.collect_garbage(db, store)
    finally:
        db.dispose()
    assert (done.blobs, done.partials, done.blob_bytes) == (1, 1, 30)
    assert done.kept_young >= 1
    assert not store.path(old).exists()
    assert not partial.exists()
    assert store.path(young).is_file()  # too young to tell from an upload in progress
    assert all(store.path(f["sha256"]).is_file() for f in made["files"])  # referenced: kept
