"""Organizer and admin routes: editions, hosted challenges, rounds, snapshots, users, workers."""

from __future__ import annotations

import re
import shutil
import tarfile
import tempfile
import zipfile
import zlib
from pathlib import Path

from fastapi import APIRouter, Depends, File, UploadFile
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dataperf.editions import HIDDEN, PUBLIC, Edition
from dataperf.exceptions import DataPerfError
from dataperf.home import BUNDLED, editions_dir
from dataperf.registry import get_challenge
from dataperf.server import boards, hosting, queue
from dataperf.server.api.accounts import user_out
from dataperf.server.api.challenges import Part, challenge_out, leaderboard
from dataperf.server.api.deps import get_platform, require
from dataperf.server.api.errors import ApiError, not_found
from dataperf.server.api.lookup import challenge_row, require_manager, round_row
from dataperf.server.api.schemas import (
    ChallengeEdit,
    ChallengeOut,
    EditionOut,
    NewChallenge,
    NewSnapshot,
    RoleChange,
    RoundOut,
    RoundSettings,
    SnapshotOut,
    SubmissionOut,
    UserOut,
    WorkerOut,
)
from dataperf.server.api.submissions import submissions_out
from dataperf.server.jobs import BUNDLED_REF
from dataperf.server.models import (
    ChallengeRow,
    Evaluation,
    Role,
    Round,
    Snapshot,
    State,
    Submission,
    User,
    WorkerRow,
    utcnow,
)
from dataperf.server.platform import Platform

router = APIRouter(tags=["organizers"])
organizer = require(Role.organizer)
admin = require(Role.admin)


MAX_EDITION_ENTRIES = 10_000


def _check_member(name: str, special: bool) -> None:
    """An edition archive holds folders and regular files, all inside it."""
    parts = name.replace("\\", "/").split("/")
    if name.startswith(("/", "\\")) or ".." in parts or special:
        raise ApiError(422, "unsafe-archive", f"the archive member {name!r} points outside "
                       "it or is a link or special file")


def _unpack_edition(upload: UploadFile, limit: int, staging: Path) -> Path:
    """Unpack an uploaded edition archive safely; return the folder holding manifest.json."""
    name = (upload.filename or "").lower()
    data = upload.file
    too_large = ApiError(413, "too-large", f"the edition unpacks to more than {limit:,} bytes "
                         f"or {MAX_EDITION_ENTRIES:,} files")
    try:
        if name.endswith(".zip"):
            with zipfile.ZipFile(data) as archive:
                members = archive.infolist()
                if sum(m.file_size for m in members) > limit \
                        or len(members) > MAX_EDITION_ENTRIES:
                    raise too_large
                for member in members:
                    target = (staging / member.filename).resolve()
                    _check_member(member.filename, not target.is_relative_to(staging.resolve())
                                  or (member.external_attr >> 16) & 0o170000 == 0o120000)
                archive.extractall(staging)
        elif name.endswith((".tar", ".tar.gz", ".tgz")):
            with tarfile.open(fileobj=data, mode="r:*") as archive:
                entries, total = [], 0
                for entry in archive:  # headers one by one: stop a bomb at the limit
                    entries.append(entry)
                    total += entry.size
                    if total > limit or len(entries) > MAX_EDITION_ENTRIES:
                        raise too_large
                    _check_member(entry.name, not (entry.isfile() or entry.isdir()))
                archive.extractall(staging, members=entries, filter="data")
        else:
            raise ApiError(415, "unsupported-media-type",
                           "upload the edition folder as a .zip, .tar or .tar.gz archive")
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError, zlib.error,
            NotImplementedError, RuntimeError) as err:  # hostile archives raise all of these
        raise ApiError(422, "bad-archive", f"the archive cannot be read: {err}") from None
    manifests = [p for p in (staging / "manifest.json", *staging.glob("*/manifest.json"))
                 if p.is_file()]
    if len(manifests) != 1:
        raise ApiError(422, "bad-edition", "the archive must hold one edition folder with a "
                       "manifest.json (as `dataperf data create` or `data build` writes it)")
    return manifests[0].parent


SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def _check_edition_names(edition: Edition) -> None:
    """The manifest names the edition's folder and files: refuse any that leaves them."""
    for what, value in (("challenge", edition.challenge), ("edition", edition.name)):
        if not SAFE_NAME.match(value):
            raise ApiError(422, "bad-edition", f"the manifest's {what} name {value!r} must be "
                           "letters, digits, '_', '.', '-' (starting with a letter or digit)")
    for name in edition.manifest.files:
        parts = name.split("/")
        if "\\" in name or parts[0] not in (PUBLIC, HIDDEN) or len(parts) < 2 \
                or any(p in ("", ".", "..") for p in parts):
            raise ApiError(422, "bad-edition", f"the manifest lists {name!r}; edition files "
                           "must lie under public/ or hidden/")


@router.post("/editions", status_code=201, response_model=EditionOut,
             summary="Upload an edition (a .tar.gz/.zip of its folder); checked against its "
                     "manifest")
def upload_edition(file: UploadFile = File(...), user: User = Depends(organizer),
                   platform: Platform = Depends(get_platform)) -> EditionOut:
    root = editions_dir()
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".upload-", dir=root))
    try:
        folder = _unpack_edition(file, platform.settings.max_edition_bytes, staging)
        edition = Edition.open(folder, verify=False)
        _check_edition_names(edition)  # its names become paths: check before using any
        edition.verify()  # every file's sha256
        if not edition.has_hidden:
            raise ApiError(422, "bad-edition", "the edition has no hidden part: the platform "
                           "cannot score submissions without it")
        target = root / edition.challenge / edition.name
        existed = target.exists()
        if existed:
            existing = Edition.open(target, verify=False)
            if existing.content_hash != edition.content_hash:
                raise ApiError(409, "conflict", f"an edition {edition.name!r} of "
                               f"{edition.challenge} with other content exists; rename yours")
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            folder.replace(target)
        try:
            challenge = get_challenge(edition.challenge)
            tasks = [t.name for t in challenge.tasks(edition)]
        except DataPerfError:  # e.g. an invalid declarative spec: keep nothing
            if not existed:
                shutil.rmtree(target, ignore_errors=True)
            raise
        return EditionOut(challenge=edition.challenge, name=edition.name,
                          content_hash=edition.content_hash, tasks=tasks)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


@router.post("/challenges", status_code=201, response_model=ChallengeOut,
             summary="Host a registered challenge on one of its editions")
def create_challenge(body: NewChallenge, user: User = Depends(organizer),
                     platform: Platform = Depends(get_platform)) -> ChallengeOut:
    challenge = get_challenge(body.challenge)
    if not SAFE_NAME.match(body.edition):  # a name, never a path on the server
        raise ApiError(422, "invalid-request", f"edition {body.edition!r} must be the name of "
                       "a bundled or uploaded edition")
    edition = challenge.edition(body.edition)
    if not edition.has_hidden:
        raise ApiError(422, "bad-edition", "that edition has no hidden part to score with")
    bundled = BUNDLED / challenge.name / edition.name
    ref = BUNDLED_REF + edition.name if edition.path.resolve() == bundled.resolve() \
        else str(edition.path)
    name = body.name or challenge.name
    with platform.db.write() as session:
        if session.scalar(select(ChallengeRow.id).where(ChallengeRow.name == name)):
            raise ApiError(409, "conflict", f"a hosted challenge named {name!r} exists; "
                           "give another name")
        row = hosting.host(session, challenge, edition, ref, name=name, owner_id=user.id,
                           settings=platform.settings, title=body.title,
                           description=body.description,
                           round_settings=body.round.model_dump(exclude_unset=True))
        return challenge_out(platform, row, rules=True)


@router.patch("/challenges/{name}", response_model=ChallengeOut,
              summary="Edit a challenge's title or description")
def edit_challenge(name: str, body: ChallengeEdit, user: User = Depends(organizer),
                   platform: Platform = Depends(get_platform)) -> ChallengeOut:
    with platform.db.write() as session:
        row = challenge_row(session, name)
        require_manager(user, row)
        for key, value in body.model_dump(exclude_unset=True).items():
            if value is not None:
                setattr(row, key, value)
        return challenge_out(platform, row, rules=True)


RED_TEAMING_SETTINGS = ("validations", "generators", "image_retention_days")


def _check_weights(row: ChallengeRow, settings: RoundSettings) -> None:
    if row.kind != "redteaming" and any(getattr(settings, key) is not None
                                        for key in RED_TEAMING_SETTINGS):
        raise ApiError(422, "invalid-request", f"{', '.join(RED_TEAMING_SETTINGS)} are "
                       f"settings of red-teaming rounds; {row.name} is a {row.kind} challenge")
    weights = settings.task_weights
    if weights is None:
        return
    unknown = sorted(set(weights) - set(row.tasks))
    if unknown or any(w < 0 for w in weights.values()) or not any(weights.values()):
        raise ApiError(422, "invalid-request", f"task_weights must give non-negative weights "
                       f"(at least one positive) to the tasks {', '.join(row.tasks)}"
                       + (f"; unknown: {', '.join(unknown)}" if unknown else ""))


@router.post("/challenges/{name}/rounds", status_code=201, response_model=RoundOut,
             summary="Close the current round and open the next")
def new_round(name: str, body: RoundSettings, user: User = Depends(organizer),
              platform: Platform = Depends(get_platform)) -> RoundOut:
    with platform.db.write() as session:
        row = challenge_row(session, name)
        require_manager(user, row)
        _check_weights(row, body)
        challenge = platform.challenge(row)
        round_ = hosting.open_round(session, row, challenge, platform.settings,
                                    body.model_dump(exclude_unset=True))
        _check_ladder(row, round_)
        return RoundOut.model_validate(round_)


@router.patch("/challenges/{name}/rounds/{number}", response_model=RoundOut,
              summary="Change a round's deadline, quotas, split, finals or weights")
def edit_round(name: str, number: int, body: RoundSettings, user: User = Depends(organizer),
               platform: Platform = Depends(get_platform)) -> RoundOut:
    with platform.db.write() as session:
        row = challenge_row(session, name)
        require_manager(user, row)
        _check_weights(row, body)
        round_ = round_row(row, number)
        changes = body.model_dump(exclude_unset=True)
        split_changes = "private_fraction" in changes and \
            changes["private_fraction"] != round_.private_fraction
        if split_changes and (entries := _participant_submissions(session, round_)):
            raise ApiError(409, "conflict", f"the public/private split cannot change: "
                           f"participants have submitted to round {number} ({entries} "
                           "submission(s)), and their public scores were shown on the "
                           "current split; open a new round with the new split")
        for key, value in changes.items():
            if value is not None or key in ("deadline", "round_quota", "task_weights",
                                            "ladder_step", *RED_TEAMING_SETTINGS):
                setattr(round_, key, value)
        _check_ladder(row, round_)
        round_.changed_at = utcnow()
        if split_changes:  # the baselines, scored on the old split, are scored on the new one
            queue.score_again(session, round_)
        return RoundOut.model_validate(round_)


def _check_ladder(row: ChallengeRow, round_: Round) -> None:
    """The Ladder guards a public board whose private part decides: it needs a private share."""
    if round_.ladder_step is None:
        return
    if row.kind == "redteaming":
        raise ApiError(422, "invalid-request", "ladder_step is a setting of leaderboards scored "
                       f"on hidden test data; {row.name} is a red-teaming challenge")
    if round_.private_fraction == 0:
        raise ApiError(422, "invalid-request", "the Ladder (ladder_step) needs a private share "
                       "(private_fraction > 0): the private part is the final word that the "
                       "Ladder keeps the public board honest to")


def _participant_submissions(session: Session, round_: Round) -> int:
    return session.scalar(select(func.count()).select_from(Submission).where(
        Submission.round_id == round_.id, Submission.is_baseline.is_(False))) or 0


@router.post("/challenges/{name}/snapshots", status_code=201, response_model=SnapshotOut,
             summary="Freeze the current leaderboard under a name")
def create_snapshot(name: str, body: NewSnapshot, round: int | None = None,
                    user: User = Depends(organizer),
                    platform: Platform = Depends(get_platform)) -> SnapshotOut:
    with platform.db.read() as session:
        row = challenge_row(session, name)
        require_manager(user, row)
        round_ = round_row(row, round)
    part: Part | None = "private" if boards.private_open(round_, utcnow()) else None
    board = leaderboard(name, round_.number, part, "aggregate", None, user, platform)
    with platform.db.write() as session:
        if session.scalar(select(Snapshot.id).where(Snapshot.round_id == round_.id,
                                                    Snapshot.name == body.name)):
            raise ApiError(409, "conflict", f"a snapshot named {body.name!r} exists")
        snap = Snapshot(round_id=round_.id, name=body.name, created_by=user.id,
                        data=board.model_dump(mode="json"))
        session.add(snap)
        session.flush()
        return SnapshotOut(name=snap.name, round=round_.number, created_at=snap.created_at,
                           leaderboard=board)


@router.get("/challenges/{name}/submissions", response_model=list[SubmissionOut],
            summary="Every submission of a challenge, newest first (organizers)")
def all_submissions(name: str, limit: int = 100, state: str | None = None,
                    user: User = Depends(organizer),
                    platform: Platform = Depends(get_platform)) -> list[SubmissionOut]:
    with platform.db.read() as session:
        row = challenge_row(session, name)
        require_manager(user, row)
        query = (select(Submission).join(Round).where(Round.challenge_id == row.id)
                 .order_by(Submission.id.desc()).limit(max(1, min(limit, 1000))))
        if state is not None:
            if state not in State.__members__:
                raise ApiError(400, "bad-request", f"state must be one of "
                               f"{', '.join(State.__members__)}")
            query = query.join(Evaluation).where(Evaluation.state == State(state))
        return submissions_out(platform, session, list(session.scalars(query)), user)


@router.get("/admin/users", response_model=list[UserOut], summary="All users (admins)")
def users(user: User = Depends(admin), platform: Platform = Depends(get_platform)
          ) -> list[UserOut]:
    with platform.db.read() as session:
        return [user_out(u) for u in session.scalars(select(User).order_by(User.id))]


@router.patch("/admin/users/{user_id}", response_model=UserOut, summary="Change a user's role")
def change_role(user_id: int, body: RoleChange, user: User = Depends(admin),
                platform: Platform = Depends(get_platform)) -> UserOut:
    with platform.db.write() as session:
        target = session.get(User, user_id)
        if target is None:
            raise not_found(f"user {user_id}")
        target.role = body.role
        return user_out(target)


@router.get("/admin/workers", response_model=list[WorkerOut], summary="Live workers (admins)")
def workers(user: User = Depends(admin), platform: Platform = Depends(get_platform)
            ) -> list[WorkerOut]:
    with platform.db.read() as session:
        return [WorkerOut.model_validate(w) for w in
                session.scalars(select(WorkerRow).order_by(WorkerRow.started_at))]
