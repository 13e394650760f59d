"""Uploads on a real server (SQLite and PostgreSQL): every bad upload gets a 4xx with a clear
message and stores nothing (no submission row, no file row, no blob), no request ever gets a
5xx, and archives of valid files are accepted and scored exactly like the plain files.

Then property-based tests of ``dataperf.server.uploads``: whatever names and bytes come in,
only SubmissionError comes out, and every accepted name is one plain, visible file name.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
import tarfile
import unicodedata
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, create_engine, text

from dataperf.exceptions import SubmissionError
from dataperf.registry import get_challenge
from dataperf.server.uploads import collect, name_problem
from platform_harness import BACKENDS, LiveServer, database_url, fast_settings, live_server

CHALLENGE = "vision-selection"
QUOTA = "vs-quota"  # daily quota 1
DEADLINE = "vs-deadline"
SMALL_LIMIT = 64_000  # max_upload_bytes of the small server; the three valid files are ~29 kB
UNKNOWN_ID = "ffffffffffff0001"
CHUNK = 1 << 16


# Fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def valid() -> dict[str, bytes]:
    challenge = get_challenge(CHALLENGE)
    return challenge.run_algorithm("random", challenge.edition("offline"), random_state=5)


@pytest.fixture(scope="module")
def pool_ids() -> list[str]:
    edition = get_challenge(CHALLENGE).edition("offline")
    return [str(i) for i in pq.read_table(edition.path / "public/pool.parquet",
                                           columns=["id"]).column("id").to_pylist()]


@dataclass
class Platform:
    server: LiveServer
    engine: Engine
    token: str  # a participant's
    organizer: str

    def stored(self) -> tuple[int, int, int]:
        """Submission rows, submission file rows and blob files."""
        with self.engine.connect() as connection:
            submissions = connection.scalar(text("SELECT count(*) FROM submissions"))
            files = connection.scalar(text("SELECT count(*) FROM submission_files"))
        blobs = self.server.settings.blobs_dir
        stored = sum(1 for p in blobs.rglob("*") if p.is_file()) if blobs.exists() else 0
        return int(submissions or 0), int(files or 0), stored

    def post(self, challenge: str = CHALLENGE, token: str | None = "", **kwargs: Any
             ) -> httpx.Response:
        with self.server.api(self.token if token == "" else token) as api:
            answer = api.post(f"/challenges/{challenge}/submissions", **kwargs)
        assert answer.status_code < 500, answer.text
        return answer

    def refused(self, status: int, *, rule: str | None = None, says: str = "",
                **kwargs: Any) -> dict[str, Any]:
        """Post; expect ``status`` with a clear JSON error, and nothing stored."""
        before = self.stored()
        answer = self.post(**kwargs)
        assert answer.status_code == status, answer.text
        error: dict[str, Any] = answer.json()["error"]
        assert error["status"] == status, error
        assert error["code"], error
        assert error["message"], error
        problems = error.get("problems") or []
        if rule is not None:
            assert rule in {p.get("rule") for p in problems}, error
        for problem in problems:  # names are shown safely: no raw control characters
            assert all(c.isprintable() for c in str(problem.get("file", ""))), problem
        assert says.lower() in error["message"].lower(), error
        assert self.stored() == before, "a refused upload left something behind"
        return error


def start(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
          **overrides: Any) -> Iterator[Platform]:
    root = tmp_path_factory.mktemp(f"uploads-{request.param}")
    with database_url(request.param, root) as url, \
            live_server(fast_settings(root / "home", url, **overrides)) as server:
        engine = create_engine(url)
        try:
            token = str(server.register("uploader@example.org", team="Uploaders")["token"])
            yield Platform(server, engine, token, server.user("org@example.org", "organizer"))
        finally:
            engine.dispose()


@pytest.fixture(scope="module", params=BACKENDS)
def platform(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[Platform]:
    """Default limits, two evaluation slots; an organizer hosts two copies of the challenge."""
    for found in start(request, tmp_path_factory, workers=2):
        with found.server.api(found.organizer) as api:
            for name, round_ in ((QUOTA, {"daily_quota": 1}), (DEADLINE, {})):
                hosted = api.post("/challenges", json={"challenge": CHALLENGE, "name": name,
                                                       "round": round_})
                assert hosted.status_code == 201, hosted.text
        yield found


@pytest.fixture(scope="module", params=BACKENDS)
def small(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[Platform]:
    """max_upload_bytes = SMALL_LIMIT, no workers."""
    yield from start(request, tmp_path_factory, workers=0, max_upload_bytes=SMALL_LIMIT)


# Building uploads --------------------------------------------------------------------------


def as_files(files: dict[str, bytes] | list[tuple[str, bytes]]) -> dict[str, Any]:
    items = files.items() if isinstance(files, dict) else files
    return {"files": [("files", (name, data, "application/octet-stream"))
                      for name, data in items]}


def multipart(parts: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    """A multipart body with file names exactly as given (httpx would escape them)."""
    boundary = b"dataperf-boundary-7f3a"
    body = b"".join(b"--" + boundary + b'\r\nContent-Disposition: form-data; name="files"; '
                    b'filename="' + name + b'"\r\nContent-Type: application/octet-stream'
                    b"\r\n\r\n" + data + b"\r\n" for name, data in parts)
    body += b"--" + boundary + b"--\r\n"
    return {"content": body,
            "headers": {"Content-Type": f"multipart/form-data; boundary={boundary.decode()}"}}


def zip_of(members: list[tuple[str, bytes]], *, link: str | None = None,
           method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as archive:
        for name, data in members:
            archive.writestr(name, data)
        if link is not None:
            info = zipfile.ZipInfo(link)
            info.external_attr = (0o120777 << 16)
            archive.writestr(info, "/etc/passwd")
    return buffer.getvalue()


def tar_of(members: list[tuple[str, bytes]], *, mode: str = "w:gz",
           special: Sequence[tarfile.TarInfo] = ()) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as archive:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        for info in special:
            archive.addfile(info)
    return buffer.getvalue()


def tar_entry(name: str, kind: bytes, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    return info


def others(valid: dict[str, bytes], without: str = "Trouser.csv") -> list[tuple[str, bytes]]:
    return [(n, d) for n, d in valid.items() if n != without]


# Bad content -------------------------------------------------------------------------------


def with_trouser(valid: dict[str, bytes], data: bytes) -> dict[str, bytes]:
    return valid | {"Trouser.csv": data}


CONTENT_CASES: dict[str, tuple[Callable[[dict[str, bytes], list[str]], Any], str]] = {
    "bad header": (lambda v, ids: with_trouser(v, b"ID;Label\nabc;1\n"), "bad-header"),
    "malformed row": (lambda v, ids: with_trouser(v, v["Trouser.csv"] + b"a,b,c\n"),
                      "malformed-row"),
    "binary": (lambda v, ids: with_trouser(v, b"\x89PNG\r\n\x1a\n\x00\x00"), "binary-file"),
    "not utf-8": (lambda v, ids: with_trouser(v, b"ImageID,Confidence\n\xff\xfe,1\n"),
                  "encoding"),
    "empty file": (lambda v, ids: with_trouser(v, b""), "empty-file"),
    "unknown id": (lambda v, ids: with_trouser(
        v, v["Trouser.csv"] + f"{UNKNOWN_ID},1\n".encode()), "unknown-id"),
    "bad label": (lambda v, ids: with_trouser(v, v["Trouser.csv"] + f"{ids[-1]},7\n".encode()),
                  "bad-label"),
    "over budget": (lambda v, ids: with_trouser(
        v, ("ImageID,Confidence\n" + "".join(f"{i},1\n" for i in ids[:1001])).encode()),
        "over-budget"),
    "far over budget": (lambda v, ids: with_trouser(v, ("ImageID,Confidence\n" + "".join(
        f"{ids[i % len(ids)]},1\n" for i in range(3002))).encode()), "far-too-long"),
    "wrong challenge (renamed files)": (
        lambda v, ids: {"Dress.csv": v["Trouser.csv"], "Boot.csv": v["Sneaker.csv"],
                        "Bag.csv": v["Shirt.csv"]}, "unexpected-file"),
    "a task missing": (lambda v, ids: dict(others(v)), "missing-task"),
    "one file twice": (lambda v, ids: [*v.items(), ("Trouser.csv", v["Trouser.csv"])],
                       "duplicate-file"),
    "csv and json for one task": (lambda v, ids: v | {"Trouser.json": b"{}"},
                                  "ambiguous-task-file"),
}


@pytest.mark.parametrize("case", list(CONTENT_CASES))
def test_bad_content_is_refused_and_nothing_stored(platform: Platform, valid: dict[str, bytes],
                                                   pool_ids: list[str], case: str) -> None:
    build, rule = CONTENT_CASES[case]
    platform.refused(422, rule=rule, says="rejected", **as_files(build(valid, pool_ids)))


HOSTILE_NAMES = [b"../../etc/passwd", b"..", b".", b"/etc/passwd", b"..\\..\\evil.csv",
                 b"Trouser.csv\x00.exe", b"a\x00b.csv", b"\x1b[31mred.csv", b"bell\x07.csv",
                 b"\x7f.csv", b"tab\t.csv", b".Trouser.csv", b".htaccess", b"x" * 300 + b".csv",
                 "\u202evsc.exe".encode(), "line\u2028break.csv".encode(),
                 "zero\u200bwidth.csv".encode()]


@pytest.mark.parametrize("name", HOSTILE_NAMES, ids=lambda n: repr(n)[2:30])
def test_hostile_file_names_are_refused(platform: Platform, valid: dict[str, bytes],
                                        name: bytes) -> None:
    parts = [(n.encode(), d) for n, d in valid.items()] + [(name, valid["Trouser.csv"])]
    platform.refused(422, rule="bad-file-name", says="rejected", **multipart(parts))


def test_no_files_and_empty_names_are_refused(platform: Platform,
                                              valid: dict[str, bytes]) -> None:
    platform.refused(422, says="files", data={"label": "nothing"})
    platform.refused(422, **multipart([(b"", valid["Trouser.csv"])]))
    platform.refused(422, rule="empty-submission", **as_files([("empty.zip", zip_of([]))]))


def test_wrong_content_types_are_refused(platform: Platform) -> None:
    platform.refused(422, says="files", json={"files": ["Trouser.csv"]})
    platform.refused(422, says="files", content=b"Trouser.csv",
                     headers={"Content-Type": "text/plain"})
    platform.refused(400, says="multipart", content=b"\x00garbage",
                     headers={"Content-Type": "multipart/form-data; boundary=x"})
    platform.refused(422, says="files", content=b"files=Trouser.csv",
                     headers={"Content-Type": "application/x-www-form-urlencoded"})


# Bad archives ------------------------------------------------------------------------------


def corrupted_deflate(valid: dict[str, bytes]) -> bytes:
    data = bytearray(zip_of([("Trouser.csv", valid["Trouser.csv"])]))
    start = 30 + len("Trouser.csv")
    data[start:start + 24] = bytes(b ^ 0xFF for b in data[start:start + 24])
    return bytes(data)


def zip_method(valid: dict[str, bytes], method: int) -> bytes:
    data = bytearray(zip_of([("Trouser.csv", valid["Trouser.csv"])]))
    central = data.rfind(b"PK\x01\x02")
    data[8:10] = data[central + 10:central + 12] = method.to_bytes(2, "little")
    return bytes(data)


def encrypted(valid: dict[str, bytes]) -> bytes:
    data = bytearray(zip_of([("Trouser.csv", valid["Trouser.csv"])]))
    central = data.rfind(b"PK\x01\x02")
    data[6] |= 1
    data[central + 8] |= 1
    return bytes(data)


ARCHIVE_CASES: dict[str, tuple[Callable[[dict[str, bytes]], tuple[str, bytes]], str]] = {
    "zip climbing out": (lambda v: ("up.zip", zip_of([*v.items(), ("../evil.csv", b"x")])),
                         "unsafe-archive"),
    "zip climbing out deep": (lambda v: ("up.zip", zip_of(
        [*others(v), ("a/../../Trouser.csv", v["Trouser.csv"])])), "unsafe-archive"),
    "zip absolute": (lambda v: ("up.zip", zip_of([*others(v), ("/tmp/Trouser.csv",
                                                                v["Trouser.csv"])])),
                     "unsafe-archive"),
    "zip backslashes": (lambda v: ("up.zip", zip_of([*others(v), ("..\\..\\Trouser.csv",
                                                                   v["Trouser.csv"])])),
                        "unsafe-archive"),
    "zip symlink": (lambda v: ("up.zip", zip_of(others(v), link="Trouser.csv")),
                    "unsafe-archive"),
    "tar absolute": (lambda v: ("up.tar.gz", tar_of([*others(v), ("/etc/Trouser.csv",
                                                                   v["Trouser.csv"])])),
                     "unsafe-archive"),
    "tar climbing out": (lambda v: ("up.tgz", tar_of([*others(v), ("../Trouser.csv",
                                                                    v["Trouser.csv"])])),
                         "unsafe-archive"),
    "tar symlink": (lambda v: ("up.tar", tar_of(others(v), mode="w", special=[
        tar_entry("Trouser.csv", tarfile.SYMTYPE, "/etc/passwd")])), "unsafe-archive"),
    "tar hard link": (lambda v: ("up.tar.gz", tar_of(others(v), special=[
        tar_entry("Trouser.csv", tarfile.LNKTYPE, "/etc/passwd")])), "unsafe-archive"),
    "tar device": (lambda v: ("up.tar.gz", tar_of(others(v), special=[
        tar_entry("Trouser.csv", tarfile.CHRTYPE)])), "unsafe-archive"),
    "not a zip": (lambda v: ("up.zip", b"PK\x03\x04 this is not a zip"), "bad-archive"),
    "not a tar": (lambda v: ("up.tar.gz", gzip.compress(b"not a tar" * 100)), "bad-archive"),
    "truncated tar.gz": (lambda v: ("up.tgz", tar_of(list(v.items()))[:700]), "bad-archive"),
    "corrupt deflate stream": (lambda v: ("up.zip", corrupted_deflate(v)), "bad-archive"),
    "unknown zip compression": (lambda v: ("up.zip", zip_method(v, 99)), "bad-archive"),
    "encrypted zip": (lambda v: ("up.zip", encrypted(v)), "bad-archive"),
}


@pytest.mark.parametrize("case", list(ARCHIVE_CASES))
def test_bad_archives_are_refused(platform: Platform, valid: dict[str, bytes],
                                  case: str) -> None:
    build, rule = ARCHIVE_CASES[case]
    platform.refused(422, rule=rule, says="rejected", **as_files([build(valid)]))


# Where, when and how often -----------------------------------------------------------------


def test_unknown_challenge_and_no_token(platform: Platform, valid: dict[str, bytes]) -> None:
    platform.refused(404, says="does not exist", challenge="no-such-challenge",
                     **as_files(valid))
    platform.refused(401, says="log in", token=None, **as_files(valid))


def test_after_the_deadline(platform: Platform, valid: dict[str, bytes]) -> None:
    def deadline(when: datetime) -> None:
        with platform.server.api(platform.organizer) as api:
            answer = api.patch(f"/challenges/{DEADLINE}/rounds/1",
                               json={"deadline": when.isoformat()})
        assert answer.status_code == 200, answer.text

    now = datetime.now(UTC)
    deadline(now + timedelta(hours=1))
    assert platform.post(DEADLINE, **as_files(valid)).status_code == 202
    deadline(now - timedelta(minutes=1))
    platform.refused(409, says="closed", challenge=DEADLINE, **as_files(valid))


def test_over_the_quota(platform: Platform, valid: dict[str, bytes]) -> None:
    first = platform.post(QUOTA, **as_files(valid))
    assert first.status_code == 202, first.text
    error = platform.refused(429, says="frees up", challenge=QUOTA, **as_files(valid))
    found = re.search(r"frees up at (\d{4}-\d\d-\d\d \d\d:\d\d) UTC", error["message"])
    assert found, error["message"]
    frees = datetime.strptime(found.group(1), "%Y-%m-%d %H:%M").replace(tzinfo=UTC)
    created = datetime.fromisoformat(first.json()["created_at"].replace("Z", "+00:00"))
    assert abs(frees - (created + timedelta(hours=24))) < timedelta(minutes=1)


def test_a_new_team_does_not_refill_a_participants_quota(platform: Platform,
                                                         valid: dict[str, bytes]) -> None:
    token = str(platform.server.register("hopper@example.org", team="Hoppers")["token"])
    assert platform.post(QUOTA, token=token, **as_files(valid)).status_code == 202
    with platform.server.api(token) as api:
        moved = api.post("/teams", json={"name": "Hoppers Two"})
        quota = api.get(f"/challenges/{QUOTA}/quota").json()
    assert moved.status_code == 201, moved.text
    assert quota["daily_used"] == 1  # their own submission counts in the new team too
    answer = platform.post(QUOTA, token=token, **as_files(valid))
    assert answer.status_code == 429, answer.text
    assert "you have used your 1 submissions of the last 24 hours, in any team" in \
        answer.json()["error"]["message"]


# Limits (a server with a small max_upload_bytes) -------------------------------------------


def test_the_small_server_takes_valid_files(small: Platform, valid: dict[str, bytes]) -> None:
    assert sum(map(len, valid.values())) < SMALL_LIMIT
    assert small.post(**as_files(valid)).status_code == 202


def zip_bomb(size: int) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive, \
            archive.open("Trouser.csv", "w") as member:
        member.write(b"ImageID,Confidence\n")
        for _ in range(size // (1 << 20)):
            member.write(b"0" * (1 << 20))
    return buffer.getvalue()


def lying_zip(valid: dict[str, bytes]) -> bytes:
    """A member whose headers declare 100 bytes and whose data inflates to far more."""
    data = bytearray(zip_of([("Trouser.csv", valid["Trouser.csv"] * 4)]))
    central = data.rfind(b"PK\x01\x02")
    small = (100).to_bytes(4, "little")
    data[22:26] = data[central + 24:central + 28] = small
    return bytes(data)


def many_dirs() -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as archive:
        for _ in range(20_000):
            archive.addfile(tar_entry("d/", tarfile.DIRTYPE))
    return gzip.compress(raw.getvalue())


def hidden_padding(valid: dict[str, bytes]) -> bytes:
    """A skipped dot-file that the server would still have to inflate to reach the others."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as archive:
        info = tarfile.TarInfo(".padding")
        info.size = 20 << 20
        archive.addfile(info, io.BytesIO(bytes(info.size)))
        for name, data in valid.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), compresslevel=9)


def split_over(valid: dict[str, bytes]) -> list[tuple[str, bytes]]:
    """Three archives, each under the limit, together over it."""
    filler = b"ImageID,Confidence\n" + b" " * (SMALL_LIMIT // 2)
    return [(f"part{i}.zip", zip_of([(f"x{i}.csv", filler)])) for i in range(3)]


BOMBS: dict[str, Callable[[dict[str, bytes]], list[tuple[str, bytes]]]] = {
    "zip bomb": lambda v: [("bomb.zip", zip_bomb(20 << 20))],
    "tar.gz bomb": lambda v: [("bomb.tar.gz", tar_of([("Trouser.csv", bytes(20 << 20))]))],
    "zip with lying sizes": lambda v: [("liar.zip", lying_zip(v))],
    "tar.gz of many folders": lambda v: [("dirs.tgz", many_dirs())],
    "tar.gz with a huge skipped member": lambda v: [("pad.tgz", hidden_padding(v))],
    "archives together over the limit": split_over,
}


@pytest.mark.parametrize("case", list(BOMBS))
def test_decompression_bombs_stop_at_the_limit(small: Platform, valid: dict[str, bytes],
                                               case: str) -> None:
    upload = BOMBS[case](valid)
    assert sum(len(d) for _, d in upload) < SMALL_LIMIT  # small on the wire
    error = small.refused(422, says="rejected", **as_files(upload))
    assert {p["rule"] for p in error["problems"]} & {"too-large", "bad-archive"}, error


def test_oversize_plain_uploads_get_413(small: Platform, valid: dict[str, bytes]) -> None:
    over_limit = b"ImageID,Confidence\n" + b"0" * SMALL_LIMIT  # over the limit, not the body's
    small.refused(413, says=f"{SMALL_LIMIT:,} bytes", **as_files(valid | {"Trouser.csv":
                                                                        over_limit}))
    small.refused(413, says=f"{SMALL_LIMIT:,} bytes", **as_files(
        [(f"part{i}.csv", b"0" * (SMALL_LIMIT // 2)) for i in range(3)]))
    huge = b"0" * (SMALL_LIMIT + (2 << 20))  # over the limit of the body too
    small.refused(413, says="limit", **as_files({"Trouser.csv": huge}))

    def chunked() -> Iterator[bytes]:  # no Content-Length: stopped while streaming
        body = multipart([(b"Trouser.csv", huge)])["content"]
        for at in range(0, len(body), CHUNK):
            yield body[at:at + CHUNK]

    small.refused(413, says="limit", content=chunked(), headers=multipart([])["headers"])


def test_too_many_files(small: Platform) -> None:
    files = [(f"f{i}.csv", b"ImageID,Confidence\n") for i in range(65)]  # max_upload_files 64
    small.refused(422, rule="too-large", **as_files(files))
    small.refused(422, rule="too-large", **as_files([("many.zip", zip_of(files))]))


# Edition uploads name their own folders ----------------------------------------------------


def fake_edition(challenge: str, edition: str, file: str) -> bytes:
    data = b"hidden rows"
    manifest = {"format_version": 1, "challenge": challenge, "edition": edition,
                "builder": "test", "builder_version": "1", "tasks": ["Trouser"], "sources": [],
                "files": {file: {"sha256": hashlib.sha256(data).hexdigest(),
                                 "bytes": len(data)}}}
    return tar_of([("edition/manifest.json", json.dumps(manifest).encode()),
                   ("edition/hidden/test.parquet", data)])  # where the manifest points


def test_edition_archives_cannot_climb_out(platform: Platform) -> None:
    home = platform.server.settings.home
    for members in ([("edition/hidden/../../escaped.parquet", b"x")],
                    [("../escaped.parquet", b"x")], [("/tmp/escaped.parquet", b"x")]):
        for kind, archive in (("tar.gz", tar_of(members)), ("zip", zip_of(members))):
            with platform.server.api(platform.organizer) as api:
                answer = api.post("/editions", files={"file": (f"edition.{kind}", archive)})
            assert answer.status_code == 422, (members, kind, answer.text)
            assert answer.json()["error"]["code"] == "unsafe-archive"
    assert not list(home.rglob("escaped*"))
    assert not list((home / "editions").glob(".upload-*"))  # staging cleaned up


@pytest.mark.parametrize(("challenge", "edition", "file"), [
    (CHALLENGE, "../../escaped", "hidden/test.parquet"),
    (CHALLENGE, "..", "hidden/test.parquet"),
    ("../../escaped", "offline", "hidden/test.parquet"),
    (CHALLENGE, "fine", "../../../../escaped/test.parquet"),
    (CHALLENGE, "fine", "hidden/../../escaped.parquet"),
    (CHALLENGE, "fine", "/etc/hostname"),
])
def test_edition_manifests_cannot_name_paths_outside(platform: Platform, challenge: str,
                                                     edition: str, file: str) -> None:
    home = platform.server.settings.home
    before = sorted(p.relative_to(home) for p in home.rglob("*") if "blobs" not in p.parts)
    with platform.server.api(platform.organizer) as api:
        answer = api.post("/editions", files={"file": ("edition.tar.gz",
                                                       fake_edition(challenge, edition, file))})
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["code"] == "bad-edition"
    after = sorted(p.relative_to(home) for p in home.rglob("*") if "blobs" not in p.parts)
    assert [p for p in after if p not in before and "cache" not in p.parts
            and p != Path("editions")] == []
    assert not (home / "escaped").exists()
    assert not (home.parent / "escaped").exists()


# Accepted archives -------------------------------------------------------------------------


def test_archives_are_scored_like_plain_files(platform: Platform,
                                              valid: dict[str, bytes]) -> None:
    junk = [("__MACOSX/._Trouser.csv", b"\x00\x05\x16\x07"), (".DS_Store", b"\x00\x00")]
    uploads = {
        "plain": as_files(valid),
        "zip": as_files([("mine.zip", zip_of([*valid.items(), *junk]))]),
        "tar.gz": as_files([("mine.tar.gz", tar_of([(f"mine/{n}", d)
                                                    for n, d in valid.items()]))]),
    }
    before = platform.stored()
    ids = {}
    for kind, upload in uploads.items():
        answer = platform.post(data={"label": kind}, **upload)
        assert answer.status_code == 202, answer.text
        ids[kind] = answer.json()["id"]
    assert platform.stored()[:2] == (before[0] + 3, before[1] + 9)
    results = {kind: platform.server.wait(platform.token, i) for kind, i in ids.items()}
    expected_files = [{"name": n, "size": len(d), "sha256": hashlib.sha256(d).hexdigest()}
                      for n, d in sorted(valid.items())]
    for kind, result in results.items():
        assert result["state"] == "scored", (kind, result)
        assert sorted(result["files"], key=lambda f: f["name"]) == expected_files, kind
        assert result["scores"] == results["plain"]["scores"], kind
    assert results["plain"]["scores"]["all"]["aggregate"]["value"] > 0


# Properties of the upload checks -----------------------------------------------------------


def acceptable(name: str) -> bool:
    """The rules, written independently: one visible line, no path, no leading dot."""
    return (0 < len(name) <= 255 and "/" not in name and "\\" not in name
            and "\x00" not in name and not name.startswith(".")
            and not any(unicodedata.category(c) == "Cc" for c in name)
            and name.splitlines() == [name])


PIECES = st.sampled_from(["", ".", "..", "/", "\\", "../", "a/", "/etc", "\x00", "\n", "\r",
                          "\x1b", "\u2028", "\u202e", "\u200b", "Trouser.csv", ".zip", ".tar",
                          ".tar.gz", ".tgz", " ", "~", "C:", "é", "字"])
NAMES = st.one_of(st.text(max_size=300),
                  st.lists(st.one_of(PIECES, st.text(max_size=8)), max_size=8).map("".join))
PROPERTY = settings(max_examples=200, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


@PROPERTY
@given(NAMES)
def test_name_problem_accepts_only_plain_names(name: str) -> None:
    problem = name_problem(name)
    if problem is None:
        assert acceptable(name), repr(name)
    else:
        assert isinstance(problem, str)
        assert problem


@PROPERTY
@given(st.from_regex(r"[A-Za-z0-9][A-Za-z0-9 _.()-]{0,100}", fullmatch=True))
def test_name_problem_accepts_ordinary_names(name: str) -> None:
    assert name_problem(name) is None


def check_collected(uploads: list[tuple[str, bytes]], max_files: int = 8,
                    max_bytes: int = 4_000) -> dict[str, bytes] | None:
    try:
        files = collect(uploads, max_files=max_files, max_bytes=max_bytes)
    except SubmissionError as err:
        problems = err.problems
    else:
        problems = ()
    if problems:
        return None
    assert files
    for name in files:
        assert acceptable(name), repr(name)
    assert len(files) <= max_files
    assert sum(map(len, files.values())) <= max_bytes
    return files


@PROPERTY
@given(st.lists(st.tuples(st.tuples(NAMES, st.sampled_from(["", ".csv", ".zip", ".tar",
                                                            ".tar.gz", ".tgz"])).map("".join),
                          st.binary(max_size=1_000)), max_size=6))
def test_collect_raises_only_submission_errors(uploads: list[tuple[str, bytes]]) -> None:
    check_collected(uploads)


MEMBERS = st.lists(st.tuples(NAMES, st.binary(max_size=200),
                             st.sampled_from(["file", "file", "dir", "link"])), max_size=6)


def build_archive(kind: str, members: list[tuple[str, bytes, str]]) -> bytes:
    buffer = io.BytesIO()
    if kind == "zip":
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, data, what in members:
                info = zipfile.ZipInfo(name + "/" if what == "dir" else name)
                if what == "link":
                    info.external_attr = 0o120777 << 16
                archive.writestr(info, b"" if what == "dir" else data)
    else:
        with tarfile.open(fileobj=buffer, mode="w:gz" if kind == "tgz" else "w",
                          format=tarfile.PAX_FORMAT) as archive:
            for name, data, what in members:
                info = tarfile.TarInfo(name)
                if what == "file":
                    info.size = len(data)
                    archive.addfile(info, io.BytesIO(data))
                else:
                    info.type = tarfile.DIRTYPE if what == "dir" else tarfile.SYMTYPE
                    info.linkname = "" if what == "dir" else "../../etc/passwd"
                    archive.addfile(info)
    return buffer.getvalue()


def read_back(kind: str, data: bytes) -> list[tuple[str, str]]:
    """(name, "file", "dir" or "link") of every member, as an archive reader sees them."""
    if kind == "zip":
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return [(i.filename, "dir" if i.filename.endswith("/") else "link"
                     if (i.external_attr >> 16) & 0o170000 == 0o120000 else "file")
                    for i in archive.infolist()]
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as archive:
        return [(i.name, "dir" if i.isdir() else "file" if i.isfile() else "link")
                for i in archive.getmembers()]


def last_part(name: str) -> str:
    return name.replace("\\", "/").rstrip("/").split("/")[-1]


@pytest.mark.filterwarnings("ignore:Duplicate name:UserWarning")
@PROPERTY
@given(MEMBERS, st.sampled_from(["zip", "tar", "tgz"]))
def test_archives_yield_only_plain_names(members: list[tuple[str, bytes, str]],
                                         kind: str) -> None:
    try:
        data = build_archive(kind, members)
    except (ValueError, UnicodeError, tarfile.TarError):
        reject()  # a name this format cannot hold
    files = check_collected([(f"upload.{kind}", data)], max_files=16, max_bytes=10_000)
    seen = read_back(kind, data)
    climbing = [n for n, what in seen if what != "dir" and (
        n.replace("\\", "/").startswith("/") or ".." in n.replace("\\", "/").split("/"))]
    # links are refused; a zip's dot-files and __MACOSX/ are skipped unread, links or not
    links = [n for n, what in seen if what == "link" and not (
        kind == "zip" and (last_part(n).startswith(".") or n.startswith("__MACOSX/")))]
    if climbing or links:
        assert files is None, (climbing, links)  # refused, never silently dropped
    for name in files or {}:
        assert any(what == "file" and name == last_part(n) for n, what in seen), name


@PROPERTY
@given(st.sampled_from(["zip", "tgz"]), st.lists(st.tuples(st.integers(0, 10**6),
                                                          st.integers(0, 255)), min_size=1,
                                                 max_size=8))
def test_damaged_archives_raise_only_submission_errors(kind: str,
                                                       damage: list[tuple[int, int]]) -> None:
    members = [("Trouser.csv", b"ImageID,Confidence\n" + b"abcdef0123456789,1\n" * 50, "file"),
               ("sub/Shirt.csv", b"ImageID,Confidence\n", "file")]
    data = bytearray(build_archive(kind, members))
    for at, value in damage:
        data[at % len(data)] = value
    check_collected([(f"upload.{kind}", bytes(data))], max_bytes=100_000)
