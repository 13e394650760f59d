"""Submitting files, following an evaluation, cancelling it, picking finals, downloading."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, Depends, File, Form, Header, Query, UploadFile
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload, selectinload

from dataperf.exceptions import StorageUnavailableError
from dataperf.server import boards, queue
from dataperf.server import leaderboard as lb
from dataperf.server.api.deps import (
    OPTIONAL_TOKEN,
    current_user,
    get_platform,
    optional_user,
    require,
)
from dataperf.server.api.errors import ApiError, not_found, storage_unavailable
from dataperf.server.api.lookup import challenge_row, manages, round_row, submission_row
from dataperf.server.api.schemas import FinalChoice, SubmissionOut
from dataperf.server.models import (
    Evaluation,
    Role,
    Round,
    ScoreRow,
    State,
    Submission,
    SubmissionFile,
    Team,
    User,
    utcnow,
)
from dataperf.server.platform import Platform
from dataperf.server.quota import usages
from dataperf.server.uploads import collect

router = APIRouter(tags=["submissions"])


def submissions_out(platform: Platform, session: Session, rows: Sequence[Submission],
                    viewer: User | None) -> list[SubmissionOut]:
    """The submissions as ``viewer`` sees them; the scores of all of them in one query."""
    scores: dict[int, list[ScoreRow]] = {row.evaluation.id: [] for row in rows}
    if scores:
        for score in session.scalars(select(ScoreRow).where(ScoreRow.evaluation_id.in_(scores))
                                     .order_by(ScoreRow.id)):
            scores[score.evaluation_id].append(score)
    return [_out(platform, session, row, viewer, scores[row.evaluation.id]) for row in rows]


def submission_out(platform: Platform, session: Session, row: Submission,
                   viewer: User | None) -> SubmissionOut:
    (found,) = submissions_out(platform, session, [row], viewer)
    return found


def _out(platform: Platform, session: Session, row: Submission, viewer: User | None,
         score_rows: list[ScoreRow]) -> SubmissionOut:
    evaluation = row.evaluation
    round_ = row.round
    wait = None
    if evaluation.state == State.queued:
        wait = queue.wait_estimate(session, evaluation,
                                   heartbeat_seconds=platform.settings.heartbeat_seconds)
    show_private = boards.private_open(round_, utcnow()) or manages(viewer, round_.challenge)
    scores: dict[str, Any] = {}
    for score in score_rows:
        if score.part == "private" and not show_private:
            continue
        part = scores.setdefault(score.part, {"tasks": []})
        cell = {"value": score.value, "ci_low": score.ci_low, "ci_high": score.ci_high}
        if score.is_aggregate:
            part["aggregate"] = cell
        else:
            part["tasks"].append(cell | {"task": score.task, "details": score.details})
    if "public" in scores and not show_private and (step := round_.ladder_step):
        scores["public"] = _released_scores(session, row, step, scores["public"])
    return SubmissionOut.model_validate({
        "id": row.id, "challenge": round_.challenge.name, "round": round_.number,
        "team": row.team.name, "label": row.label, "created_at": row.created_at,
        "is_baseline": row.is_baseline, "is_final": row.is_final, "state": evaluation.state,
        "attempts": evaluation.attempts,
        "position": wait.position if wait else None,
        "wait_seconds": wait.seconds if wait else None,
        "progress": evaluation.progress, "message": evaluation.message,
        "problems": evaluation.problems, "seconds": evaluation.seconds,
        "scorer_version": evaluation.scorer_version, "warnings": row.warnings,
        "scores": scores,
        "files": [{"name": f.name, "size": f.size, "sha256": f.sha256} for f in row.files]})


def _released_scores(session: Session, row: Submission, step: float,
                     shown: dict[str, Any]) -> dict[str, Any]:
    """The submission's public scores (``shown``) as the Ladder releases them to its team, with
    no intervals or details: they would tell what the rounding hides."""
    entries = boards.load_entries(session, row.round_id, "public", team_id=row.team_id)
    (entry,) = [e for e in lb.laddered(entries, direction=row.round.challenge.direction,  # type: ignore[arg-type]
                                       step=step) if e.submission_id == row.id]
    hidden = {"ci_low": None, "ci_high": None}
    return {"aggregate": {"value": entry.aggregate.value} | hidden,
            "tasks": [{"task": cell["task"], "value": entry.tasks[cell["task"]].value,
                       "details": {}} | hidden for cell in shown["tasks"]]}


def _open_round(session: Session, name: str) -> Round:
    round_ = round_row(challenge_row(session, name), None)
    if round_.closed or (round_.deadline is not None and utcnow() >= round_.deadline):
        raise ApiError(409, "round-closed", f"round {round_.number} of {name} is closed for "
                       "submissions")
    return round_


def _check_quota(session: Session, round_: Round, team_id: int, user_id: int) -> None:
    """The team's quota and the participant's own (a new team does not refill it)."""
    for used in usages(session, round_, team_id, user_id, utcnow()):
        who, its, anywhere = ("your team has", "its", "") if used.whose == "your team" else \
            ("you have", "your", ", in any team")
        if used.today >= round_.daily_quota:
            when = f"; the next one frees up at {used.frees_at:%Y-%m-%d %H:%M} UTC" \
                if used.frees_at else ""
            raise ApiError(429, "quota-exceeded", f"{who} used {its} {round_.daily_quota} "
                           f"submissions of the last 24 hours{anywhere}{when}")
        if round_.round_quota is not None and used.in_round >= round_.round_quota:
            raise ApiError(429, "quota-exceeded", f"{who} used all {round_.round_quota} "
                           f"submissions of round {round_.number}{anywhere}")


IDEMPOTENCY_KEY = r"^[A-Za-z0-9._:-]{1,100}$"


@router.post("/challenges/{name}/submissions", status_code=202, response_model=SubmissionOut,
             summary="Submit files (or one .zip/.tar.gz); validated now, scored in the queue")
def submit(name: str, response: Response, files: list[UploadFile] = File(...),
           label: str = Form("", max_length=200),
           idempotency_key: str | None = Header(
               None, pattern=IDEMPOTENCY_KEY, description="a key of the client's choosing for "
               "this upload (e.g. a UUID): sending it again, with the same files, answers with "
               "the submission it made instead of making another (header "
               "`Idempotent-Replayed: true`), so a client that lost the answer can retry"),
           user: User = Depends(require(Role.participant)),
           platform: Platform = Depends(get_platform)) -> SubmissionOut:
    settings = platform.settings
    if idempotency_key is not None:
        replayed = _replay(platform, user, name, idempotency_key, files, response)
        if replayed is not None:
            return replayed
    with platform.db.read() as session:
        round_ = _open_round(session, name)
        challenge = round_.challenge
        if challenge.kind == "redteaming":  # uploads could replay the released attacks
            raise ApiError(409, "studio-only", f"{name}'s attacks are made in its studio "
                           f"(/challenges/{name}/studio) and scored from its raters' "
                           "validations; score files locally with `dataperf evaluate`")
        if user.team_id is None:
            raise ApiError(409, "conflict", "join or create a team before submitting")
        _check_quota(session, round_, user.team_id, user.id)
    content = _read(files, settings)
    edition = platform.edition(challenge)
    platform.challenge(challenge).parse_leaderboard_submission(content, edition)  # 422, no trace
    try:
        digests = {n: platform.store.put(data) for n, data in content.items()}
    except StorageUnavailableError as err:
        raise storage_unavailable(err) from None
    try:
        with platform.db.write() as session:
            round_ = _open_round(session, name)  # again, inside the transaction
            if not session.get_one(User, user.id).team_id == user.team_id:
                raise ApiError(409, "conflict", "your team changed; submit again")
            session.execute(select(Team.id).where(Team.id == user.team_id).with_for_update())
            _check_quota(session, round_, user.team_id, user.id)
            submission = Submission(round_id=round_.id, team_id=user.team_id, user_id=user.id,
                                    label=label.strip(), idempotency_key=idempotency_key,
                                    total_bytes=sum(map(len, content.values())))
            session.add(submission)
            session.flush()
            session.add_all([SubmissionFile(submission_id=submission.id, name=n,
                                            sha256=digests[n], size=len(content[n]))
                             for n in sorted(content)])
            session.add(Evaluation(submission_id=submission.id,
                                   max_attempts=settings.max_attempts))
            session.flush()
            session.refresh(submission)
            return submission_out(platform, session, submission, user)
    except IntegrityError:  # the same key, sent twice at once: the other request made it
        if idempotency_key is None:
            raise
        replayed = _replay(platform, user, name, idempotency_key, files, response)
        if replayed is None:
            raise
        return replayed


def _read(files: list[UploadFile], settings: Any) -> dict[str, bytes]:
    """The uploaded files by name (archives unpacked), read no further than the limit."""
    uploads: list[tuple[str, bytes]] = []
    received = 0
    for upload in files:  # spooled by the form parser; read no more than the limit allows
        upload.file.seek(0)
        data = upload.file.read(settings.max_upload_bytes + 1 - received)
        received += len(data)
        if received > settings.max_upload_bytes:
            raise ApiError(413, "too-large", f"the uploaded files are over the limit of "
                           f"{settings.max_upload_bytes:,} bytes in all")
        uploads.append((upload.filename or "", data))
    return collect(uploads, max_files=settings.max_upload_files,
                   max_bytes=settings.max_upload_bytes)


def _replay(platform: Platform, user: User, name: str, key: str, files: list[UploadFile],
            response: Response) -> SubmissionOut | None:
    """The user's submission made with this idempotency key, if any (whatever the quota and
    the round say now); the same key with other files or another challenge is refused."""
    with platform.db.read() as session:
        earlier = session.scalar(select(Submission).where(Submission.user_id == user.id,
                                                          Submission.idempotency_key == key))
        if earlier is None:
            return None
        content = _read(files, platform.settings)
        sent = {n: hashlib.sha256(d).hexdigest() for n, d in content.items()}
        if earlier.round.challenge.name != name or \
                sent != {f.name: f.sha256 for f in earlier.files}:
            raise ApiError(422, "idempotency-key-reused", f"the idempotency key {key!r} was "
                           f"used for submission {earlier.id} with other files or another "
                           "challenge; use a new key for a new submission")
        response.headers["Idempotent-Replayed"] = "true"
        return submission_out(platform, session, earlier, user)


@router.get("/submissions", response_model=list[SubmissionOut],
            summary="Your team's submissions, newest first")
def my_submissions(challenge: str | None = None, limit: int = 50,
                   user: User = Depends(current_user),
                   platform: Platform = Depends(get_platform)) -> list[SubmissionOut]:
    with platform.db.read() as session:
        query = (select(Submission).where(Submission.team_id == user.team_id)
                 .order_by(Submission.id.desc()).limit(max(1, min(limit, 500)))
                 .options(joinedload(Submission.evaluation), joinedload(Submission.team),
                          joinedload(Submission.round).joinedload(Round.challenge),
                          selectinload(Submission.files)))  # not one query per row each
        if challenge is not None:
            rounds = select(Round.id).where(Round.challenge_id
                                            == challenge_row(session, challenge).id)
            query = query.where(Submission.round_id.in_(rounds))
        return submissions_out(platform, session, list(session.scalars(query)), user)


@router.get("/submissions/{submission_id}", response_model=SubmissionOut,
            summary="A submission: state, queue position, progress, scores",
            openapi_extra=OPTIONAL_TOKEN)
def get_submission(submission_id: int, user: User | None = Depends(optional_user),
                   platform: Platform = Depends(get_platform)) -> SubmissionOut:
    with platform.db.read() as session:
        return submission_out(platform, session,
                              submission_row(session, submission_id, user), user)


def _own(session: Session, submission_id: int, user: User) -> Submission:
    row = submission_row(session, submission_id, user)
    if row.team_id != user.team_id and not manages(user, row.round.challenge):
        raise not_found(f"submission {submission_id}")
    return row


@router.post("/submissions/{submission_id}/cancel", response_model=SubmissionOut,
             summary="Cancel a queued or running evaluation")
def cancel(submission_id: int, user: User = Depends(current_user),
           platform: Platform = Depends(get_platform)) -> SubmissionOut:
    with platform.db.write() as session:
        row = _own(session, submission_id, user)
        evaluation = session.execute(select(Evaluation).where(Evaluation.id == row.evaluation.id)
                                     .with_for_update()).scalar_one()
        if evaluation.state not in (State.queued, State.running):
            raise ApiError(409, "conflict", f"submission {submission_id} is already "
                           f"{evaluation.state.value}; only queued or running ones can be "
                           "cancelled")
        queue.cancel(session, evaluation)
        session.flush()
        return submission_out(platform, session, row, user)


@router.put("/submissions/{submission_id}/final", response_model=SubmissionOut,
            summary="Pick (or unpick) a submission as one of the team's finals")
def choose_final(submission_id: int, body: FinalChoice, user: User = Depends(current_user),
                 platform: Platform = Depends(get_platform)) -> SubmissionOut:
    with platform.db.write() as session:
        row = _own(session, submission_id, user)
        round_ = row.round
        if round_.final_count == 0:
            raise ApiError(409, "conflict", f"round {round_.number} does not ask for final "
                           "submissions; your best one counts")
        if round_.deadline is not None and utcnow() >= round_.deadline:
            raise ApiError(409, "round-closed", "finals cannot change after the deadline")
        if body.final and not row.is_final:
            chosen = session.scalars(select(Submission.id).where(
                Submission.round_id == round_.id, Submission.team_id == row.team_id,
                Submission.is_final.is_(True))).all()
            if len(chosen) >= round_.final_count:
                raise ApiError(409, "conflict", f"your team already picked {len(chosen)} "
                               f"final submissions (at most {round_.final_count}); unpick one")
            if row.evaluation.state != State.scored:
                raise ApiError(409, "conflict", "only scored submissions can be finals")
        row.is_final = body.final
        round_.changed_at = utcnow()
        session.flush()
        return submission_out(platform, session, row, user)


@router.get("/submissions/{submission_id}/files",
            summary="Download a submitted file by its name as listed, folders included",
            response_class=Response, openapi_extra=OPTIONAL_TOKEN,
            responses={200: {"content": {"application/octet-stream": {}}}})
def download_named(submission_id: int, name: str = Query(
        ..., max_length=1000, description="e.g. validations/validations.jsonl"),
        user: User | None = Depends(optional_user),
        platform: Platform = Depends(get_platform)) -> Response:
    return download(submission_id, name, user, platform)


@router.get("/submissions/{submission_id}/files/{file_name}",
            summary="Download a submitted file (a name without folders)",
            response_class=Response, openapi_extra=OPTIONAL_TOKEN,
            responses={200: {"content": {"application/octet-stream": {}}}})
def download(submission_id: int, file_name: str, user: User | None = Depends(optional_user),
             platform: Platform = Depends(get_platform)) -> Response:
    with platform.db.read() as session:
        row = submission_row(session, submission_id, user)
        match = next((f for f in row.files if f.name == file_name), None)
        if match is None:
            raise not_found(f"file {file_name!r} of submission {submission_id}")
        digest = match.sha256
    data = platform.store.get(digest)
    safe = "".join(c if c.isascii() and (c.isalnum() or c in "._-") else "_"
                   for c in file_name)  # headers are latin-1: keep the fallback name ASCII
    return Response(data, media_type="application/octet-stream",
                    headers={"Content-Disposition": f'attachment; filename="{safe}"',
                             "X-Content-Type-Options": "nosniff"})
