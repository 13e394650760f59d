"""The organizers' pages: host a challenge, edit it and its rounds, snapshots, its submissions."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, cast

from fastapi import APIRouter, Depends, Request
from fastapi import UploadFile as ApiUpload
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from sqlalchemy import func, select
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from dataperf.exceptions import DataPerfError
from dataperf.registry import challenges as registered_challenges
from dataperf.server.api import organize
from dataperf.server.api.deps import get_platform
from dataperf.server.api.errors import ApiError
from dataperf.server.api.lookup import manages
from dataperf.server.api.schemas import (
    ChallengeEdit,
    NewChallenge,
    NewSnapshot,
    RoundSettings,
)
from dataperf.server.models import (
    ChallengeRow,
    Evaluation,
    Role,
    Round,
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
    need_user,
    refusal_text,
    render,
    see_other,
    session_user,
)

router = APIRouter(include_in_schema=False)


confirmations(
    hosted="The challenge is hosted and open: its baselines are queued for scoring and "
           "appear on the leaderboard once scored.",
    described="The title and description are saved.",
    round_saved="The round's settings are saved.",
    split_changed="The round's settings are saved. Its baselines are scored again for the new "
                  "public/private split: they are back on the leaderboard in a moment.",
    round_opened="A new round is open; the previous one is closed.",
    snapshot="The leaderboard is frozen as a snapshot.")


def need_organizer(request: Request, user: User | None) -> User:
    user = need_user(request, user)
    if not allows(user.role, Role.organizer):
        raise ApiError(403, "forbidden", "this page is for organizers")
    return user


@router.get("/organize", response_class=HTMLResponse)
@guarded
def organize_page(request: Request, user: User | None = Depends(session_user),
                  platform: Platform = Depends(get_platform)) -> Response:
    if user is None:
        return login_redirect(request)
    return _organize_page(request, need_organizer(request, user), platform)


def _organize_page(request: Request, user: User, platform: Platform,
                   error: str | None = None) -> Response:
    managed = []
    with platform.db.read() as session:
        for row in session.scalars(select(ChallengeRow).order_by(ChallengeRow.name)):
            if not manages(user, row):
                continue
            counts = dict(session.execute(
                select(Evaluation.state, func.count()).join(Submission).join(Round)
                .where(Round.challenge_id == row.id).group_by(Evaluation.state)).all())
            managed.append({"row": row, "round": row.rounds[-1],
                            "failures": counts.get(State.failed_participant, 0)
                            + counts.get(State.failed_platform, 0),
                            "queued": counts.get(State.queued, 0)})
    return render(request, "organize.html", user, managed=managed, error=error,
                  registered=sorted(registered_challenges()))


def _round_settings(form: dict[str, Any]) -> RoundSettings:
    def number(key: str, kind: Callable[[str], Any]) -> Any:
        value = str(form.get(key, "")).strip()
        return kind(value) if value else None

    deadline = str(form.get("deadline", "")).strip()
    values = {"deadline": datetime.fromisoformat(deadline).replace(tzinfo=UTC)
              if deadline else None,
              "daily_quota": number("daily_quota", int), "round_quota": number("round_quota", int),
              "private_fraction": number("private_fraction", float),
              "final_count": number("final_count", int),
              "ladder_step": number("ladder_step", float)}  # blank: plain public scores
    return RoundSettings(**{k: v for k, v in values.items()
                            if v is not None or k in ("deadline", "ladder_step")})


@router.post("/organize/challenges", response_class=HTMLResponse)
@guarded
async def organize_create(request: Request, user: User | None = Depends(session_user),
                          platform: Platform = Depends(get_platform)) -> Response:
    user = need_organizer(request, user)
    form = await checked_form(request)
    archive = form.get("edition_file")
    try:
        if isinstance(archive, UploadFile) and archive.filename:
            uploaded = await run_in_threadpool(organize.upload_edition, cast(ApiUpload, archive),
                                               user, platform)
            challenge, edition = uploaded.challenge, uploaded.name
        else:
            challenge, edition = str(form.get("challenge", "")), str(form.get("edition", "offline"))
            if not challenge:
                raise ApiError(422, "invalid-request", "upload an edition archive or pick a "
                               "registered challenge")
        body = NewChallenge(challenge=challenge, edition=edition or "offline",
                            name=form.get("name") or None, title=form.get("title") or None)
        hosted = await run_in_threadpool(organize.create_challenge, body, user, platform)
    except (ValidationError, ApiError, DataPerfError) as err:
        return await run_in_threadpool(_organize_page, request, user, platform, refusal_text(err))
    return see_other(f"/challenges/{hosted.name}", "hosted")


@router.post("/organize/{name}/{action}", response_class=HTMLResponse)
@guarded
async def organize_action(request: Request, name: str, action: str,
                          user: User | None = Depends(session_user),
                          platform: Platform = Depends(get_platform)) -> Response:
    user = need_organizer(request, user)
    form = await checked_form(request)
    try:
        if action == "describe":
            await run_in_threadpool(organize.edit_challenge, name, ChallengeEdit(
                title=form.get("title") or None, description=form.get("description")),
                user, platform)
            done = "described"
        elif action == "round" and form.get("action") == "open":
            await run_in_threadpool(organize.new_round, name, _round_settings(form), user,
                                    platform)
            done = "round_opened"
        elif action == "round":
            number, settings = int(form.get("number", 0)), _round_settings(form)
            before = await run_in_threadpool(_private_fraction, platform, name, number)
            saved = await run_in_threadpool(organize.edit_round, name, number, settings, user,
                                            platform)
            done = "round_saved" if saved.private_fraction == before else "split_changed"
        elif action == "snapshot":
            await run_in_threadpool(organize.create_snapshot, name,
                                    NewSnapshot(name=form.get("name", "")), None, user, platform)
            done = "snapshot"
        else:
            raise ApiError(404, "not-found", f"no organizer action {action!r}")
    except (ValidationError, ValueError) as err:
        return await run_in_threadpool(_organize_page, request, user, platform, refusal_text(err))
    except ApiError as err:
        if err.status not in (409, 422):  # not theirs, or no such challenge: the error page
            raise
        return await run_in_threadpool(_organize_page, request, user, platform, err.message)
    return see_other(f"/organize#{name}", done)


def _private_fraction(platform: Platform, name: str, number: int) -> float | None:
    with platform.db.read() as session:
        return session.scalar(select(Round.private_fraction).join(ChallengeRow).where(
            ChallengeRow.name == name, Round.number == number))


@router.get("/organize/{name}/submissions", response_class=HTMLResponse)
@guarded
def organize_submissions(request: Request, name: str, user: User | None = Depends(session_user),
                         platform: Platform = Depends(get_platform)) -> Response:
    if user is None:
        return login_redirect(request)
    user = need_organizer(request, user)
    found = organize.all_submissions(name, 1000, None, user, platform)
    return render(request, "submissions.html", user, heading=f"All submissions of {name}",
                  submissions=found)
