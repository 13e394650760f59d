"""Submitting from the browser, and the pages of one's submissions."""

from __future__ import annotations

import re
import uuid
from typing import Any, cast

from fastapi import APIRouter, Depends, Request
from fastapi import UploadFile as ApiUpload
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from dataperf.exceptions import SubmissionError
from dataperf.server import boards
from dataperf.server.api import challenges as challenge_api
from dataperf.server.api import submissions
from dataperf.server.api.deps import get_platform
from dataperf.server.api.errors import ApiError
from dataperf.server.api.lookup import manages, submission_row
from dataperf.server.api.schemas import (
    FinalChoice,
)
from dataperf.server.api.submissions import IDEMPOTENCY_KEY
from dataperf.server.models import (
    ChallengeRow,
    Evaluation,
    Role,
    Round,
    ScoreRow,
    State,
    Submission,
    User,
)
from dataperf.server.platform import Platform
from dataperf.server.security import allows
from dataperf.server.web.pages import (
    checked_form,
    confirmations,
    guarded,
    login_redirect,
    need_csrf,
    need_user,
    render,
    see_other,
    session_user,
)
from dataperf.server.web.pictures import cleaning_pictures, pictures
from dataperf.server.web.session import (
    CSRF_FIELD,
)

router = APIRouter(include_in_schema=False)


def _submit_page(request: Request, user: User, platform: Platform, detail: Any, *,
                 status: int = 200, problems: Any = None, error: str | None = None
                 ) -> HTMLResponse:
    """The submit form, with the quota left and a fresh key for its upload."""
    return render(request, "submit.html", user, status=status, challenge=detail,
                  rules=detail.rules, quota=challenge_api.quota(detail.name, user, platform),
                  problems=problems, error=error, upload_key=f"web-{uuid.uuid4()}")


@router.get("/challenges/{name}/submit", response_class=HTMLResponse)
@guarded
def submit_page(request: Request, name: str, user: User | None = Depends(session_user),
                platform: Platform = Depends(get_platform)) -> Response:
    if user is None:
        return login_redirect(request)
    return _submit_page(request, user, platform, challenge_api.get_challenge(name, platform))


@router.post("/challenges/{name}/submit", response_class=HTMLResponse)
@guarded
async def submit(request: Request, name: str, user: User | None = Depends(session_user),
                 platform: Platform = Depends(get_platform)) -> Response:
    user = need_user(request, user)
    if not allows(user.role, Role.participant):
        raise ApiError(403, "forbidden", "your role cannot submit")
    form = await request.form(max_files=platform.settings.max_upload_files + 1)
    need_csrf(request, {CSRF_FIELD: form.get(CSRF_FIELD)})
    # Starlette's form gives its own UploadFile; the API's FastAPI type is the same class.
    uploads = [cast(ApiUpload, f) for f in form.getlist("files") if isinstance(f, UploadFile)]
    detail = await run_in_threadpool(challenge_api.get_challenge, name, platform)
    try:
        created = await run_in_threadpool(
            submissions.submit, name, Response(), uploads, label=str(form.get("label", "")),
            idempotency_key=_upload_key(form.get("upload_key")), user=user, platform=platform)
    except SubmissionError as err:
        return await run_in_threadpool(_submit_page, request, user, platform, detail,
                                       status=422, problems=err.problems)
    except ApiError as err:
        return await run_in_threadpool(_submit_page, request, user, platform, detail,
                                       status=err.status, error=err.message)
    return see_other(f"/submissions/{created.id}")


def _upload_key(value: object) -> str | None:
    """The submit form's key (made when the page was shown): sending the form twice, by a
    double click or a reload, makes one submission."""
    return value if isinstance(value, str) and re.fullmatch(IDEMPOTENCY_KEY, value) else None


@router.get("/submissions", response_class=HTMLResponse)
@guarded
def my_submissions(request: Request, user: User | None = Depends(session_user),
                   platform: Platform = Depends(get_platform)) -> Response:
    if user is None:
        return login_redirect(request)
    return render(request, "submissions.html", user, heading="Your team's submissions",
                  submissions=submissions.my_submissions(None, 200, user, platform))


@router.get("/submissions/{submission_id}", response_class=HTMLResponse)
@guarded
def submission_page(request: Request, submission_id: int,
                    user: User | None = Depends(session_user),
                    platform: Platform = Depends(get_platform)) -> Response:
    with platform.db.read() as session:
        row = submission_row(session, submission_id, user)
        challenge = row.round.challenge
        can_edit = user is not None and (user.team_id == row.team_id or manages(user, challenge))
        final_count = row.round.final_count
        detail = submissions.submission_out(platform, session, row, user)
        digests = {f.name: f.sha256 for f in row.files}
    hosted = platform.challenge(challenge)
    shown = []
    if detail.state == State.scored and hosted.kind == "cleaning" and detail.scores:
        part, scores = next(iter(detail.scores.items()))
        mine = {t.task: t.details.get("curve", []) for t in scores.tasks}
        shown = cleaning_pictures(mine, _reference_curves(platform, challenge, row.round, part))
    elif detail.state == State.scored:  # only then are the files read back from the store
        files = {n: platform.store.get(d) for n, d in digests.items()}
        shown = pictures(hosted, platform.edition(challenge), files)
    scale = float(getattr(getattr(hosted, "spec", None), "scale", 1.0))
    return render(request, "submission.html", user, s=detail, can_edit=can_edit,
                  final_count=final_count, pictures=shown, scale=scale,
                  columns=hosted.report_columns(), kind=hosted.kind)


def _curves(session: Session, submission_id: int, part: str) -> dict[str, list[float]]:
    rows = session.execute(
        select(ScoreRow.task, ScoreRow.details).join(Evaluation)
        .where(Evaluation.submission_id == submission_id, ScoreRow.part == part,
               ScoreRow.is_aggregate.is_(False))).all()
    return {task: details.get("curve", []) for task, details in rows}


def _reference_curves(platform: Platform, challenge: ChallengeRow, round_: Round, part: str
                      ) -> dict[str, dict[str, list[float]]]:
    """The random baseline's curves and the leading entry's, on the same part."""
    rows = boards.standings(platform, challenge, round_, part, "aggregate", None)
    leader = next((r for r in rows if not r["is_baseline"]), None)
    found: dict[str, dict[str, list[float]]] = {}
    with platform.db.read() as session:
        random_id = session.scalar(select(Submission.id).where(
            Submission.round_id == round_.id, Submission.is_baseline.is_(True),
            Submission.label == "random").order_by(Submission.id.desc()).limit(1))
        if random_id is not None:
            found["random order (baseline)"] = _curves(session, random_id, part)
        if leader is not None:
            found[f"best entry ({leader['team']})"] = _curves(session, leader["submission_id"],
                                                              part)
    return found


confirmations(
    cancelled="The submission is cancelled; it no longer counts against the quota.",
    final_picked="Picked as a final submission: it counts for the final ranking.",
    final_unpicked="No longer a final submission.")


@router.post("/submissions/{submission_id}/{action}")
@guarded
async def submission_action(request: Request, submission_id: int, action: str,
                            user: User | None = Depends(session_user),
                            platform: Platform = Depends(get_platform)) -> Response:
    user = need_user(request, user)
    form = await checked_form(request)
    if action == "cancel":
        await run_in_threadpool(submissions.cancel, submission_id, user, platform)
        done = "cancelled"
    elif action == "final":
        final = form.get("final") == "true"
        await run_in_threadpool(submissions.choose_final, submission_id,
                                FinalChoice(final=final), user, platform)
        done = "final_picked" if final else "final_unpicked"
    else:
        raise ApiError(404, "not-found", f"no submission action {action!r}")
    return see_other(f"/submissions/{submission_id}", done)
