"""Reading challenges: their rules, rounds, leaderboards, histories, snapshots and quotas."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Query
from sqlalchemy import select

from dataperf.editions import PUBLIC
from dataperf.server import boards
from dataperf.server import leaderboard as lb
from dataperf.server.api.deps import OPTIONAL_TOKEN, current_user, get_platform, optional_user
from dataperf.server.api.errors import ApiError, forbidden, not_found
from dataperf.server.api.lookup import challenge_row, manages, round_row
from dataperf.server.api.schemas import (
    ChallengeOut,
    History,
    Leaderboard,
    Quota,
    RoundOut,
    SnapshotOut,
)
from dataperf.server.jobs import BUNDLED_REF
from dataperf.server.models import ChallengeRow, Round, Snapshot, User, utcnow
from dataperf.server.platform import Platform
from dataperf.server.quota import binding, usages

router = APIRouter(tags=["challenges"])
Part = Literal["all", "public", "private"]


def described(platform: Platform, row: ChallengeRow) -> tuple[dict[str, str], list[str]]:
    """The challenge's rules and built-in algorithms, fixed by its definition and edition: looked
    up once per edition (the registry scans the installed entry points on every lookup)."""
    def compute() -> tuple[dict[str, str], list[str]]:
        challenge = platform.challenge(row)
        return challenge.rules(), list(challenge.algorithms())

    key = ("described", row.challenge, row.edition_path, row.edition_hash)
    found: tuple[dict[str, str], list[str]] = platform.boards.get(key, compute)
    return found


def challenge_out(platform: Platform, row: ChallengeRow, *, rules: bool = False
                  ) -> ChallengeOut:
    return ChallengeOut(
        name=row.name, challenge=row.challenge, title=row.title, description=row.description,
        kind=row.kind, metric=row.metric, direction=row.direction, tasks=list(row.tasks),
        edition_hash=row.edition_hash, edition=platform.edition(row).name,
        bundled=row.edition_path.startswith(BUNDLED_REF),
        public_files={n: f.sha256 for n, f in platform.edition(row).manifest.files.items()
                      if n.startswith(PUBLIC + "/")} if rules else {},
        rules=described(platform, row)[0] if rules else {},
        rounds=[RoundOut.model_validate(r) for r in row.rounds])


@router.get("/challenges", response_model=list[ChallengeOut], summary="Hosted challenges")
def list_challenges(platform: Platform = Depends(get_platform)) -> list[ChallengeOut]:
    with platform.db.read() as session:
        rows = session.scalars(select(ChallengeRow).order_by(ChallengeRow.name))
        return [challenge_out(platform, r) for r in rows]


@router.get("/challenges/{name}", response_model=ChallengeOut,
            summary="A challenge: tasks, rules, frozen model, metric, rounds")
def get_challenge(name: str, platform: Platform = Depends(get_platform)) -> ChallengeOut:
    with platform.db.read() as session:
        return challenge_out(platform, challenge_row(session, name), rules=True)


def _part(round_: Round, part: Part | None, user: User | None, row: ChallengeRow) -> str:
    chosen = part or boards.default_part(round_)
    if round_.private_fraction == 0 and chosen != "all":
        raise ApiError(400, "bad-request", f"round {round_.number} has no public/private "
                       "split; ask for part=all")
    if round_.private_fraction > 0 and chosen == "all":
        raise ApiError(400, "bad-request", "this round splits the test data; ask for "
                       "part=public (or part=private after the deadline)")
    if chosen == "private" and not boards.private_open(round_, utcnow()) \
            and not manages(user, row):
        raise forbidden("private scores are revealed after the round's deadline")
    return chosen


def _leaderboard(platform: Platform, row: ChallengeRow, round_: Round, part: str, view: str,
                 weights: str | None) -> Leaderboard:
    try:
        parsed = lb.parse_weights(weights, list(row.tasks)) if weights else None
        rows = boards.standings(platform, row, round_, part, view, parsed)
    except ValueError as err:
        raise ApiError(400, "bad-request", str(err)) from None
    return Leaderboard.model_validate({
        "challenge": row.name, "round": round_.number, "part": part, "view": view,
        "weights": parsed if parsed is not None else round_.task_weights,
        "direction": row.direction, "tie_rule": TIE_RULE,
        "private_available": boards.private_open(round_, utcnow()), "rows": rows})


TIE_RULE = ("Rows share a rank when their 95% intervals overlap the interval of the first row "
            "of the group (or their values are equal); baselines take no rank.")


@router.get("/challenges/{name}/leaderboard", response_model=Leaderboard,
            summary="Ranked entries, one per team", openapi_extra=OPTIONAL_TOKEN)
def leaderboard(name: str, round: int | None = None, part: Part | None = None,
                view: str = Query(lb.AGGREGATE, description="'aggregate' or a task name"),
                weights: str | None = Query(None, description="e.g. shirt=2,trouser=1"),
                user: User | None = Depends(optional_user),
                platform: Platform = Depends(get_platform)) -> Leaderboard:
    with platform.db.read() as session:
        row = challenge_row(session, name)
        round_ = round_row(row, round)
        chosen = _part(round_, part, user, row)
    return _leaderboard(platform, row, round_, chosen, view, weights)


@router.get("/challenges/{name}/history", response_model=History,
            summary="Every scored submission over time, with the best so far",
            openapi_extra=OPTIONAL_TOKEN)
def history(name: str, round: int | None = None, part: Part | None = None,
            view: str = lb.AGGREGATE, user: User | None = Depends(optional_user),
            platform: Platform = Depends(get_platform)) -> History:
    with platform.db.read() as session:
        row = challenge_row(session, name)
        round_ = round_row(row, round)
        chosen = _part(round_, part, user, row)
    try:
        points = boards.history(platform, row, round_, chosen, view)
    except ValueError as err:
        raise ApiError(400, "bad-request", str(err)) from None
    return History.model_validate({"challenge": row.name, "round": round_.number,
                                   "part": chosen, "view": view, "points": points})


@router.get("/challenges/{name}/snapshots", response_model=list[SnapshotOut],
            summary="Frozen, named leaderboards")
def snapshots(name: str, platform: Platform = Depends(get_platform)) -> list[SnapshotOut]:
    with platform.db.read() as session:
        row = challenge_row(session, name)
        found = session.execute(select(Snapshot, Round.number).join(Round)
                                .where(Round.challenge_id == row.id).order_by(Snapshot.id))
        return [SnapshotOut(name=s.name, round=number, created_at=s.created_at,
                            leaderboard=Leaderboard.model_validate(s.data))
                for s, number in found]


@router.get("/challenges/{name}/snapshots/{snapshot}", response_model=SnapshotOut,
            summary="One frozen leaderboard")
def snapshot(name: str, snapshot: str, platform: Platform = Depends(get_platform)
             ) -> SnapshotOut:
    for item in snapshots(name, platform):
        if item.name == snapshot:
            return item
    raise not_found(f"snapshot {snapshot!r} of {name}")


@router.get("/challenges/{name}/quota", response_model=Quota,
            summary="Your team's submissions used and left in the current round")
def quota(name: str, user: User = Depends(current_user),
          platform: Platform = Depends(get_platform)) -> Quota:
    with platform.db.read() as session:
        round_ = round_row(challenge_row(session, name), None)
        if user.team_id is None:
            raise ApiError(409, "conflict", "join or create a team first")
        used = binding(round_, usages(session, round_, user.team_id, user.id, utcnow()))
    return Quota(daily_limit=round_.daily_quota, daily_used=used.today,
                 round_limit=round_.round_quota, round_used=used.in_round,
                 next_slot_at=used.frees_at if used.today >= round_.daily_quota else None)
