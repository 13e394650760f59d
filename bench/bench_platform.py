"""The hosted platform under load: leaderboard reads with 100,000 scored submissions, the time
from upload to a visible score, and sustained submissions per minute with 1 and 2 worker slots.

Each part runs against a real server: ``uvicorn dataperf.server.app:create_app`` in its own
process (so the benchmark's client does not share the server's interpreter), on a scratch
SQLite file and, with ``--postgres URL``, on a scratch database created on that PostgreSQL
server and dropped afterwards. The server keeps its default settings (queue poll 0.5 s,
heartbeat 5 s) except: no baseline entries are seeded, the daily quota is raised, and the
number of worker slots is set per part.

1. Leaderboard: 100,000 scored submissions of 2,000 teams are bulk-inserted with SQLAlchemy
   Core (one scored evaluation each, score rows for the 3 tasks and the aggregate on part
   "all"). ``GET /api/v1/challenges/vision-selection/leaderboard`` is timed over HTTP: the
   first (cold) read, 200 warm reads (p50/p99), and the cold read after one more score lands
   (``Round.changed_at`` bumped, as a worker does), and 4 readers at once after another. The
   ratio is cold / warm p50: what the leaderboard cache saves. The cold path is then split
   in-process into its steps (the query, ranking, rows, the response model) with the garbage
   collector's share, and with ``--profile`` (or when a cold read takes a second or more) run
   once under cProfile.
2. Upload to visible score: a vision-selection submission (the ``random`` algorithm's files)
   is uploaded through the API with one embedded worker slot and polled every 50 ms until it
   is scored, against the scoring alone (``challenge.score(parse_submission(...))``, warm, in
   this process, one numerical thread as in a scoring slot, interleaved with the runs).
   Medians over 5 runs, after one warm-up submission that starts the worker's scoring
   process.
3. Throughput: 20 submissions uploaded back to back, timed until the last is scored, with 1
   and with 2 worker slots (after warm-up submissions that start every slot).

The machine's load average is printed with each backend's table: the timings are only as
steady as the machine is idle.

    python bench/bench_platform.py [--quick] [--postgres URL] [--profile]
        [--parts leaderboard latency throughput] [--poll-seconds S]
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import math
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import httpx
import numpy as np
from sqlalchemy import Engine, create_engine, func, select, text, update
from threadpoolctl import threadpool_limits

from dataperf.registry import get_challenge
from dataperf.scores import Direction
from dataperf.server import boards
from dataperf.server import leaderboard as lb
from dataperf.server.api.schemas import Leaderboard
from dataperf.server.db import Database
from dataperf.server.jobs import BUNDLED_REF, Job, run_job
from dataperf.server.models import (
    FINAL_STATES,
    ChallengeRow,
    Evaluation,
    Round,
    ScoreRow,
    State,
    Submission,
    Team,
)
from dataperf.server.queue import AGGREGATE

# The scratch databases and free ports of the platform tests (tests/platform_harness.py).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from platform_harness import free_port, scratch_database

CHALLENGE = "vision-selection"
PASSWORD = "correct horse battery staple"
TASKS = {"Trouser": (85.0, 3.4), "Sneaker": (80.0, 3.6), "Shirt": (45.0, 6.2)}  # mean, CI half
BATCH = 20_000
PARTS = ("leaderboard", "latency", "throughput")


# ------------------------------------------------------------------------------ server & DB


@dataclass
class Server:
    url: str
    home: Path
    database_url: str

    def api(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=f"{self.url}/api/v1", headers=headers, timeout=120)

    def register(self, email: str) -> str:
        with self.api() as client:
            answer = client.post(
                "/auth/register",
                json={"email": email, "name": email.split("@")[0], "password": PASSWORD},
            )
        answer.raise_for_status()
        return str(answer.json()["token"])


@contextmanager
def serve(
    home: Path, database_url: str, workers: int, poll_seconds: float | None, processes: int = 1
) -> Iterator[Server]:
    """``create_app()`` under uvicorn in a child process, configured by DATAPERF_* variables;
    with ``processes`` over 1, ``dataperf serve --processes`` (its web processes and, for the
    ``workers`` slots, a ``dataperf worker``)."""
    home.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = os.environ | {
        "DATAPERF_HOME": str(home),
        "DATAPERF_DATABASE_URL": database_url,
        "DATAPERF_WORKERS": str(workers),
        "DATAPERF_BASELINES": "[]",
        "DATAPERF_DAILY_QUOTA": "100000",
    }
    if poll_seconds is not None:
        env["DATAPERF_POLL_SECONDS"] = str(poll_seconds)
    log = (home / "server.log").open("wb")
    if processes == 1:
        command = [sys.executable, "-m", "uvicorn", "--factory", "dataperf.server.app:create_app",
                   "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    else:
        command = [sys.executable, "-m", "dataperf", "serve", "--host", "127.0.0.1", "--port",
                   str(port), "--processes", str(processes), "--workers", str(workers)]
    process = subprocess.Popen(
        command,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    server = Server(f"http://127.0.0.1:{port}", home, database_url)
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                raise SystemExit(
                    "the server stopped:\n" + (home / "server.log").read_text()[-3000:]
                )
            try:
                if httpx.get(f"{server.url}/api/v1/health", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("the server did not start in 120 s")
            time.sleep(0.1)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def timed(function: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = function()
    return time.perf_counter() - started, result


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


# ------------------------------------------------------------------------ 1. the leaderboard


def round_id_of(engine: Engine) -> int:
    with engine.connect() as connection:
        found = connection.execute(
            select(Round.id)
            .join(ChallengeRow, ChallengeRow.id == Round.challenge_id)
            .where(ChallengeRow.name == CHALLENGE)
            .order_by(Round.number.desc())
            .limit(1)
        )
        return int(found.scalar_one())


def next_ids(engine: Engine) -> dict[str, int]:
    with engine.connect() as connection:
        return {
            model.__tablename__: int(connection.scalar(select(func.max(model.id))) or 0) + 1
            for model in (Team, Submission, Evaluation, ScoreRow)
        }


def scored_rows(
    rng: np.random.Generator,
    n: int,
    skill: np.ndarray,
    round_id: int,
    first: dict[str, int],
    team_ids: np.ndarray,
    created: list[datetime],
    labels: list[str],
) -> tuple[list[dict[str, Any]], ...]:
    """Submission, evaluation and score rows of ``n`` scored submissions (numbered from
    ``first``), the team of each given by ``team_ids`` (indexes into ``skill``)."""
    submissions: list[dict[str, Any]] = []
    evaluations: list[dict[str, Any]] = []
    scores: list[dict[str, Any]] = []
    values: dict[str, np.ndarray] = {}
    halves: dict[str, np.ndarray] = {}
    for k, (task, (mean, half)) in enumerate(TASKS.items()):
        spread = half / 3.4 * 2.5
        values[task] = np.clip(mean + 4 * skill[team_ids, k] + rng.normal(0, spread, n), 1, 99)
        halves[task] = half * rng.uniform(0.85, 1.15, n)
    aggregate = np.mean(list(values.values()), axis=0)
    seconds = rng.uniform(0.9, 1.6, n)
    score_id = first["scores"]
    for i in range(n):
        sid, eid = first["submissions"] + i, first["evaluations"] + i
        at = created[i]
        submissions.append(
            {
                "id": sid,
                "round_id": round_id,
                "team_id": int(team_ids[i]),
                "user_id": None,
                "label": labels[i],
                "is_baseline": False,
                "is_final": False,
                "total_bytes": 28_557,
                "warnings": [],
                "created_at": at,
            }
        )
        evaluations.append(
            {
                "id": eid,
                "submission_id": sid,
                "state": State.scored,
                "baseline": None,
                "attempts": 1,
                "max_attempts": 3,
                "lease_owner": None,
                "lease_expires_at": None,
                "cancel_requested": False,
                "progress": None,
                "message": None,
                "problems": None,
                "queued_at": at,
                "started_at": at + timedelta(seconds=0.3),
                "finished_at": at + timedelta(seconds=0.3 + float(seconds[i])),
                "seconds": float(seconds[i]),
                "scorer_version": "selection-1",
            }
        )
        cells = [(task, float(values[task][i]), float(halves[task][i])) for task in TASKS]
        cells.append(
            (
                AGGREGATE,
                float(aggregate[i]),
                float(np.sqrt(np.sum([halves[t][i] ** 2 for t in TASKS])) / 3),
            )
        )
        for task, value, half in cells:
            is_aggregate = task == AGGREGATE
            details: dict[str, Any] = (
                {}
                if is_aggregate
                else {
                    "train_rows": 500,
                    "train_class_counts": [250, 250],
                    "test_rows": 1000,
                    "per_seed": [value],
                    "converged": True,
                    "precision": round(value / 100 * 0.9, 4),
                    "recall": round(value / 100, 4),
                }
            )
            scores.append(
                {
                    "id": score_id,
                    "evaluation_id": eid,
                    "round_id": round_id,
                    "part": "all",
                    "task": task,
                    "is_aggregate": is_aggregate,
                    "value": value,
                    "ci_low": max(0.0, value - half),
                    "ci_high": min(100.0, value + half),
                    "details": details,
                }
            )
            score_id += 1
    return submissions, evaluations, scores


def insert(engine: Engine, rows: dict[str, list[dict[str, Any]]]) -> None:
    """Bulk insert (executemany in batches) in one transaction; on PostgreSQL, move the ID
    sequences past the explicit IDs and refresh the planner's statistics."""
    tables = {
        name: Team.metadata.tables[name]
        for name in ("teams", "submissions", "evaluations", "scores")
    }
    with engine.begin() as connection:
        for name, table_rows in rows.items():
            for start in range(0, len(table_rows), BATCH):
                connection.execute(tables[name].insert(), table_rows[start : start + BATCH])
        if engine.dialect.name == "postgresql":
            for name in rows:
                connection.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('{name}', "
                        f"'id'), (SELECT max(id) FROM {name}))"
                    )
                )
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("ANALYZE"))


def bulk_load(engine: Engine, n_submissions: int, n_teams: int, seed: int = 0) -> int:
    """Insert ``n_teams`` teams and ``n_submissions`` scored submissions spread over the last
    90 days; returns the round ID."""
    rng = np.random.default_rng(seed)
    round_id = round_id_of(engine)
    first = next_ids(engine)
    now = datetime.now(UTC)
    teams = [
        {
            "id": first["teams"] + k,
            "name": f"team {k:05d}",
            "join_code_hash": None,
            "is_system": False,
            "created_at": now - timedelta(days=100),
        }
        for k in range(n_teams)
    ]
    activity = rng.lognormal(0, 1, n_teams)  # some teams submit far more than others
    team_index = rng.choice(n_teams, size=n_submissions, p=activity / activity.sum())
    offsets = np.sort(rng.uniform(0, 90 * 86400, n_submissions))
    created = [now - timedelta(days=90) + timedelta(seconds=float(s)) for s in offsets]
    skill = rng.normal(0, 1, (n_teams, len(TASKS)))
    labels = [f"run {i}" for i in range(n_submissions)]
    team_ids = team_index + first["teams"]
    skill_by_id = np.zeros((int(team_ids.max()) + 1, len(TASKS)))
    skill_by_id[first["teams"] : first["teams"] + n_teams] = skill
    submissions, evaluations, scores = scored_rows(
        rng, n_submissions, skill_by_id, round_id, first, team_ids, created, labels
    )
    insert(
        engine,
        {"teams": teams, "submissions": submissions, "evaluations": evaluations, "scores": scores},
    )
    return round_id


def land_new_score(engine: Engine, round_id: int) -> int:
    """One more scored submission, better than every other, and the round bumped (what a
    worker's ``queue.finish`` does); returns its submission ID."""
    first = next_ids(engine)
    with engine.connect() as connection:
        team_id = int(
            connection.scalar(select(func.min(Team.id)).where(Team.is_system.is_(False))) or 0
        )
    skill = np.full((team_id + 1, len(TASKS)), 4.0)  # 16 points over the mean: rank 1
    rows = scored_rows(
        np.random.default_rng(1),
        1,
        skill,
        round_id,
        first,
        np.array([team_id]),
        [datetime.now(UTC)],
        ["the new best"],
    )
    insert(engine, dict(zip(("submissions", "evaluations", "scores"), rows, strict=True)))
    with engine.begin() as connection:
        connection.execute(
            update(Round).where(Round.id == round_id).values(changed_at=datetime.now(UTC))
        )
    return first["submissions"]


class GcTimer:
    """Time spent in the garbage collector while installed (``gc.callbacks``)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.full = 0
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._started
            self.full += info["generation"] == 2

    def __enter__(self) -> GcTimer:
        gc.callbacks.append(self)
        return self

    def __exit__(self, *_: object) -> None:
        gc.callbacks.remove(self)


def cold_path_steps(database_url: str, round_id: int) -> dict[str, float]:
    """The cold read's work, step by step, in this process: what ``boards.standings`` and the
    endpoint do (the query, ranking, rows as data, the response model and its JSON), and the
    garbage collector's share of it (inside the steps)."""
    db = Database(database_url)
    try:
        with db.read() as session:
            direction = cast(
                Direction,
                session.execute(
                    select(ChallengeRow.direction).where(ChallengeRow.name == CHALLENGE)
                ).scalar_one(),
            )
        steps: dict[str, float] = {}
        with GcTimer() as collector:
            with db.read() as session:
                steps["query + entries (load_entries)"], entries = timed(
                    lambda: boards.load_entries(
                        session, round_id, "all", best_by=(AGGREGATE, direction)
                    )
                )
            steps["rank (rank_entries)"], ranked = timed(
                lambda: lb.rank_entries(entries, direction=direction)
            )
            steps["rows as data"], rows = timed(lambda: [boards._row(r) for r in ranked])
            body = {
                "challenge": CHALLENGE,
                "round": 1,
                "part": "all",
                "view": lb.AGGREGATE,
                "weights": None,
                "direction": direction,
                "tie_rule": "",
                "rows": rows,
                "private_available": False,
            }
            steps["response model"], model = timed(lambda: Leaderboard.model_validate(body))
            steps["JSON"], _ = timed(model.model_dump_json)
        steps[f"of which GC ({collector.full} full collections)"] = collector.seconds
        return steps
    finally:
        db.dispose()


def profile_cold_path(database_url: str, round_id: int, top: int = 12) -> str:
    profiler = cProfile.Profile()
    profiler.runcall(cold_path_steps, database_url, round_id)
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(top)
    lines = out.getvalue().splitlines()
    start = next(i for i, line in enumerate(lines) if line.lstrip().startswith("ncalls"))
    return "\n".join("    " + line[:150] for line in lines[start:] if line.strip())


@dataclass
class BoardResult:
    submissions: int
    teams: int
    load_seconds: float
    rows: int
    body_bytes: int
    cold: float
    warm: list[float]
    after_score: float
    concurrent: list[float]
    steps: dict[str, float]
    profile: str | None = None


def concurrent_reads(server: Server, path: str, readers: int) -> list[float]:
    """``readers`` clients asking for the leaderboard at the same moment."""
    clients = [server.api() for _ in range(readers)]
    for client in clients:
        client.get("/health").raise_for_status()  # connected before the start
    go = threading.Barrier(readers)
    times = [0.0] * readers

    def one(k: int) -> None:
        go.wait()
        times[k], answer = timed(lambda: clients[k].get(path))
        answer.raise_for_status()

    threads = [threading.Thread(target=one, args=(k,)) for k in range(readers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for client in clients:
        client.close()
    return times


def bench_leaderboard(
    server: Server, n_submissions: int, n_teams: int, reads: int, readers: int, profile: bool
) -> BoardResult:
    engine = create_engine(server.database_url)
    try:
        load_seconds, round_id = timed(lambda: bulk_load(engine, n_submissions, n_teams))
        path = f"/challenges/{CHALLENGE}/leaderboard"
        with server.api() as client:
            client.get(f"/challenges/{CHALLENGE}").raise_for_status()  # warm the process

            def read() -> httpx.Response:  # the whole body is read; JSON parsed after
                answer = client.get(path)
                answer.raise_for_status()
                return answer

            cold, first = timed(read)
            warm = [timed(read)[0] for _ in range(reads)]
            new_id = land_new_score(engine, round_id)
            after, board_after = timed(read)
        if board_after.json()["rows"][0]["submission_id"] != new_id:
            raise SystemExit("the new score is not at the top of the leaderboard")
        land_new_score(engine, round_id)
        concurrent = concurrent_reads(server, path, readers)
        steps = cold_path_steps(server.database_url, round_id)
        slow = cold >= 1.0 or after >= 1.0
        text_profile = profile_cold_path(server.database_url, round_id) if profile or slow else None
        return BoardResult(
            n_submissions,
            n_teams,
            load_seconds,
            len(first.json()["rows"]),
            len(first.content),
            cold,
            warm,
            after,
            concurrent,
            steps,
            text_profile,
        )
    finally:
        engine.dispose()


# --------------------------------------------------------------- 2. upload to visible score


def random_files() -> dict[str, bytes]:
    """The files a participant running the ``random`` algorithm submits."""
    challenge = get_challenge(CHALLENGE)
    files: dict[str, bytes] = challenge.run_algorithm("random", challenge.edition("offline"))
    return files


class Reference:
    """Scoring ``files`` alone, in this process: parse + score with the edition opened once
    (warm), and ``run_job`` (what a worker's scoring process runs for each job). Both with
    numerical libraries held to one thread, as in a worker's scoring process (on a busy
    machine, two spinning BLAS threads can make a 40 ms scoring take 0.5 s)."""

    def __init__(self, files: dict[str, bytes]):
        self.challenge = get_challenge(CHALLENGE)
        self.edition = self.challenge.edition("offline")
        self.files = files
        self.job = Job(0, 1, CHALLENGE, BUNDLED_REF + "offline", self.edition.content_hash, files)
        self.score()  # warm: the edition's tables are read once
        if run_job(self.job).status != "scored":
            raise SystemExit("run_job did not score the submission")

    def score(self) -> float:
        edition = self.edition
        with threadpool_limits(1):
            return timed(
                lambda: self.challenge.score(
                    self.challenge.parse_submission(self.files, edition), edition
                )
            )[0]

    def run_job(self) -> float:
        with threadpool_limits(1):
            return timed(lambda: run_job(self.job))[0]


def upload(client: httpx.Client, files: dict[str, bytes], label: str) -> int:
    answer = client.post(
        f"/challenges/{CHALLENGE}/submissions",
        data={"label": label},
        files=[
            ("files", (name, data, "application/octet-stream"))
            for name, data in sorted(files.items())
        ],
    )
    if answer.status_code != 202:
        raise SystemExit(f"upload refused: {answer.status_code} {answer.text}")
    return int(answer.json()["id"])


def wait_scored(
    client: httpx.Client, submission_id: int, every: float = 0.05, timeout: float = 300
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    next_poll = time.monotonic()
    while True:
        found: dict[str, Any] = client.get(f"/submissions/{submission_id}").json()
        if found["state"] in {s.value for s in FINAL_STATES}:
            if found["state"] != "scored":
                raise SystemExit(f"submission {submission_id} {found['state']}: {found}")
            return found
        if time.monotonic() > deadline:
            raise SystemExit(f"submission {submission_id} still {found['state']}")
        next_poll += every
        time.sleep(max(0.0, next_poll - time.monotonic()))


@dataclass
class LatencyResult:
    first: float
    visible: list[float]
    uploads: list[float]  # the POST alone (validated by the server before it answers)
    job_seconds: list[float]  # the job as the worker times it
    alone: list[float]  # scoring alone in this process, warm
    run_job: list[float]  # run_job in this process


def bench_latency(client: httpx.Client, files: dict[str, bytes], runs: int) -> LatencyResult:
    """Upload-to-score runs interleaved with the in-process references (3 of each per run),
    so that a change in the machine's load hits both alike."""
    reference = Reference(files)
    first, _ = timed(lambda: wait_scored(client, upload(client, files, "warm-up")))
    result = LatencyResult(first, [], [], [], [], [])
    for run in range(runs):
        result.alone.extend(reference.score() for _ in range(3))
        result.run_job.extend(reference.run_job() for _ in range(3))
        started = time.perf_counter()
        submission_id = upload(client, files, f"latency {run}")
        result.uploads.append(time.perf_counter() - started)
        found = wait_scored(client, submission_id)
        result.visible.append(time.perf_counter() - started)
        result.job_seconds.append(float(found["seconds"]))
    return result


# ------------------------------------------------------------------------------ 3. throughput


def wait_all(
    engine: Engine, ids: list[int], timeout: float = 600
) -> list[tuple[State, datetime | None, float | None]]:
    """Poll the database (cheap, and no load on the server's HTTP side) until every one of
    ``ids`` is final; returns (state, finished_at, seconds) of each."""
    query = select(Evaluation.state, Evaluation.finished_at, Evaluation.seconds).where(
        Evaluation.submission_id.in_(ids)
    )
    deadline = time.monotonic() + timeout
    while True:
        with engine.connect() as connection:
            found = [(r[0], r[1], r[2]) for r in connection.execute(query)]
        if len(found) == len(ids) and all(state in FINAL_STATES for state, _, _ in found):
            bad = [state for state, _, _ in found if state != State.scored]
            if bad:
                raise SystemExit(f"{len(bad)} submissions not scored: {bad}")
            return found
        if time.monotonic() > deadline:
            raise SystemExit("submissions still not scored")
        time.sleep(0.1)


@dataclass
class ThroughputResult:
    workers: int
    count: int
    upload_seconds: float
    total_seconds: float
    job_seconds: list[float] = field(default_factory=list)

    @property
    def per_minute(self) -> float:
        return self.count / self.total_seconds * 60


def bench_throughput(
    server: Server, client: httpx.Client, files: dict[str, bytes], workers: int, count: int
) -> ThroughputResult:
    engine = create_engine(server.database_url)
    try:
        warm = [upload(client, files, f"warm-up {k}") for k in range(2 * workers)]
        wait_all(engine, warm)  # every slot's scoring process has started
        started_at = datetime.now(UTC)
        started = time.perf_counter()
        ids = [upload(client, files, f"batch {k}") for k in range(count)]
        uploaded = time.perf_counter() - started
        found = wait_all(engine, ids)
        last = max(finished for _, finished, _ in found if finished is not None)
        total = (last - started_at).total_seconds()
        return ThroughputResult(
            workers, count, uploaded, total, [s for _, _, s in found if s is not None]
        )
    finally:
        engine.dispose()


# ------------------------------------------------------------------------------------ report


@dataclass
class BackendResult:
    name: str
    board: BoardResult | None
    latency: LatencyResult | None
    throughput: list[ThroughputResult]
    load: tuple[float, float]  # 1-minute load average at the start and at the end


def report(result: BackendResult) -> None:
    print(
        f"\n== {result.name} ({os.cpu_count()} CPU cores; load average "
        f"{result.load[0]:.1f} at the start, {result.load[1]:.1f} at the end) =="
    )
    if result.board:
        report_board(result.board)
    if result.latency:
        report_latency(result.latency)
    if result.throughput:
        report_throughput(result.throughput)


def report_board(board: BoardResult) -> None:
    warm_p50 = statistics.median(board.warm)
    print(
        f"leaderboard: {board.submissions:,} scored submissions of {board.teams:,} teams "
        f"({4 * board.submissions:,} score rows; bulk insert {board.load_seconds:.1f} s); "
        f"{board.rows:,} rows, {board.body_bytes / 1024:,.0f} KiB of JSON"
    )
    print(f"  {'cold read (first GET)':40s} {ms(board.cold):>10s}")
    print(
        f"  {f'warm reads p50 / p99 ({len(board.warm)} GETs)':40s} {ms(warm_p50):>10s} / "
        f"{ms(percentile(board.warm, 99))}"
    )
    print(f"  {'cold read after a new score':40s} {ms(board.after_score):>10s}")
    print(
        f"  {f'{len(board.concurrent)} readers at once after a new score':40s} "
        f"{ms(max(board.concurrent)):>10s}   slowest (fastest {ms(min(board.concurrent))})"
    )
    print(f"  {'ratio cold / warm p50':40s} {board.cold / warm_p50:>9.0f}x")
    print(
        "  cold path in-process: "
        + ", ".join(f"{name} {ms(seconds)}" for name, seconds in board.steps.items())
    )
    if board.profile:
        print(
            "  cold path under cProfile (top functions by own time; the collector's pauses "
            "count against whichever function is running):"
        )
        print(board.profile)


def report_latency(latency: LatencyResult) -> None:
    visible, alone = statistics.median(latency.visible), statistics.median(latency.alone)
    print(f"upload to visible score ({len(latency.visible)} runs, 1 slot, polled every 50 ms):")
    print(
        f"  {'upload -> scored, median':40s} {ms(visible):>10s}   (the first, which starts "
        f"the scoring process: {ms(latency.first)})"
    )
    print(
        f"  {'scoring alone in-process, median':40s} {ms(alone):>10s}   (run_job in-process "
        f"{ms(statistics.median(latency.run_job))})"
    )
    print(
        f"  {'platform overhead':40s} {ms(visible - alone):>10s}   ({visible / alone:.1f}x "
        f"the scoring alone)"
    )
    job = statistics.median(latency.job_seconds)
    print(
        f"  {'of the total: upload (POST); job':40s} "
        f"{ms(statistics.median(latency.uploads)):>10s}; {ms(job)} as the worker times it "
        "(medians)"
    )


def report_throughput(throughput: list[ThroughputResult]) -> None:
    print("throughput (uploaded back to back, until the last is scored):")
    for item in throughput:
        print(
            f"  {f'{item.workers} slot(s), {item.count} submissions':40s} "
            f"{item.total_seconds:>8.1f} s   {item.per_minute:5.1f} per minute   (uploads "
            f"{item.upload_seconds:.1f} s; job median {ms(statistics.median(item.job_seconds))})"
        )
    if len(throughput) == 2:
        one, two = throughput
        print(f"  {'ratio 2 slots / 1 slot':40s} {two.per_minute / one.per_minute:>9.2f}x")


def run_backend(
    name: str, admin_url: str | None, args: argparse.Namespace, root: Path, files: dict[str, bytes]
) -> BackendResult:
    load = os.getloadavg()[0]
    board = latency = None
    throughput: list[ThroughputResult] = []
    if "leaderboard" in args.parts:
        print(f"{name}: leaderboard ...", flush=True)
        with (
            scratch_database(admin_url, root / "board", "dataperf_bench") as url,
            serve(root / "board", url, workers=0, poll_seconds=args.poll_seconds) as server,
        ):
            board = bench_leaderboard(
                server, args.submissions, args.teams, args.reads, args.readers, args.profile
            )
    if "latency" in args.parts or "throughput" in args.parts:
        print(f"{name}: upload to visible score, throughput with 1 slot ...", flush=True)
        with (
            scratch_database(admin_url, root / "one", "dataperf_bench") as url,
            serve(root / "one", url, workers=1, poll_seconds=args.poll_seconds) as server,
            server.api(server.register("one@example.org")) as client,
        ):
            if "latency" in args.parts:
                latency = bench_latency(client, files, args.runs)
            if "throughput" in args.parts:
                throughput.append(bench_throughput(server, client, files, 1, args.batch))
    if "throughput" in args.parts:
        print(f"{name}: throughput with 2 slots ...", flush=True)
        with (
            scratch_database(admin_url, root / "two", "dataperf_bench") as url,
            serve(root / "two", url, workers=2, poll_seconds=args.poll_seconds) as server,
            server.api(server.register("two@example.org")) as client,
        ):
            throughput.append(bench_throughput(server, client, files, 2, args.batch))
    return BackendResult(name, board, latency, throughput, (load, os.getloadavg()[0]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="10,000 submissions, 50 warm reads, 3 runs, batches of 8",
    )
    parser.add_argument(
        "--postgres",
        metavar="URL",
        help="also on PostgreSQL: a URL of a role that may create databases",
    )
    parser.add_argument("--submissions", type=int, default=None)
    parser.add_argument("--teams", type=int, default=2000)
    parser.add_argument("--reads", type=int, default=None, help="warm leaderboard reads")
    parser.add_argument(
        "--readers",
        type=int,
        default=4,
        help="clients reading the leaderboard at once after a new score",
    )
    parser.add_argument("--runs", type=int, default=None, help="upload-to-score runs")
    parser.add_argument("--batch", type=int, default=None, help="submissions per batch")
    parser.add_argument(
        "--poll-seconds",
        type=float,
        default=None,
        help="the workers' queue poll period (default: the server's, 0.5 s)",
    )
    parser.add_argument(
        "--parts",
        nargs="+",
        choices=PARTS,
        default=list(PARTS),
        help="the parts to run (default: all)",
    )
    parser.add_argument(
        "--profile", action="store_true", help="run the cold leaderboard path once under cProfile"
    )
    args = parser.parse_args()
    quick = {"submissions": 10_000, "reads": 50, "runs": 3, "batch": 8}
    full = {"submissions": 100_000, "reads": 200, "runs": 5, "batch": 20}
    for key, value in (quick if args.quick else full).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    files = random_files()
    backends: list[tuple[str, str | None]] = [("SQLite", None)]
    if args.postgres:
        backends.append(("PostgreSQL", args.postgres))
    results = []
    with tempfile.TemporaryDirectory(prefix="dataperf-bench-") as tmp:
        for name, admin_url in backends:
            results.append(run_backend(name, admin_url, args, Path(tmp) / name, files))
    for result in results:
        report(result)


if __name__ == "__main__":
    main()
