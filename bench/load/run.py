"""The hosted platform under concurrent load: 50 users for 60 s, 10 of them submitting and 40
reading, against a real server on SQLite and, with ``--postgres URL``, on PostgreSQL.

The server is bench_platform.py's (``uvicorn dataperf.server.app:create_app`` in its own
process, default settings except: no baseline entries, a daily quota of 100,000) with 2
embedded worker slots, on a scratch SQLite file or a scratch PostgreSQL database created and
dropped afterwards. One team per submitter is registered and the server warmed up (the pages
once, 2 submissions per slot scored) before the run. Then locust, headless, in its own process
(``locustfile.py``), starting 10 users a second: submitters upload the ``random`` algorithm's
vision-selection files and think 2 to 4 s; readers, 1 to 3 s apart, read the home page, the
challenge page, its leaderboard of one task, and through the API the leaderboard, the history,
their team's submissions and one of them. With ``--board N``, N scored submissions of 2,000
teams are bulk-loaded first (as bench_platform.py's leaderboard part does).

Reported, for the 60 s after the last user started: requests per second, p50 / p99 per route
template (every request's time, measured by locust's client: it shares the machine with the
server), errors; the requests while users were starting separately; whether every accepted
submission was scored (waiting at most ``--drain-seconds`` after the run), and the machine's
load average. Targets: 0 errors, leaderboard p99 < 100 ms.

    python bench/load/run.py [--users 50 --submitters 10 --seconds 60 --spawn-rate 10]
        [--processes N] [--postgres URL] [--board N] [--drain-seconds S]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, select

from dataperf.server.models import FINAL_STATES, Evaluation

# The benchmark's server, scratch databases and submission files are bench_platform.py's.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench_platform import (
    CHALLENGE,
    Server,
    bulk_load,
    ms,
    percentile,
    random_files,
    scratch_database,
    serve,
    upload,
    wait_all,
)

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
LEADERBOARD = "GET /api/v1/challenges/{name}/leaderboard"
TARGET_P99 = 0.100
WORKERS = 2
BOARD_TEAMS = 2000


@dataclass
class LoadResult:
    name: str
    seconds: float  # the steady part of the run: from the last user's start to the end
    timings: dict[str, list[float]]  # the steady part's requests
    ramp: dict[str, list[float]]  # the requests while the users were starting
    errors: dict[str, list[str]]
    accepted: list[int]
    states: Counter[str]
    drained: float | None  # seconds after the run until every accepted submission was final
    load: tuple[float, float, float]  # 1-minute at the start; 1- and 5-minute at the end


def write_files(folder: Path, files: dict[str, bytes]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder


def warm_up(server: Server, token: str, files: dict[str, bytes]) -> None:
    """The HTML pages once and 2 submissions per slot scored: templates, the slots' scoring
    processes and their editions are ready before the measured run."""
    engine = create_engine(server.database_url)
    with server.api(token) as client:
        ids = [upload(client, files, f"warm-up {k}") for k in range(2 * WORKERS)]
        for path in ("/", f"/challenges/{CHALLENGE}"):
            httpx.get(server.url + path, timeout=120).raise_for_status()
        wait_all(engine, ids)
    engine.dispose()


def run_locust(server: Server, root: Path, args: argparse.Namespace, files: dict[str, bytes]
               ) -> dict[str, Any]:
    """Register one team per submitter, warm up, run locust headless; its timings and
    accepted IDs."""
    tokens = [server.register(f"team{k}@example.org") for k in range(args.submitters)]
    warm_up(server, tokens[0], files)
    with server.api() as client:
        tasks = client.get(f"/challenges/{CHALLENGE}").json()["tasks"]
    setup = {
        "challenge": CHALLENGE,
        "tasks": tasks,
        "files": str(write_files(root / "files", files)),
        "submitters": args.submitters,
        "tokens": tokens,
        "out": str(root / "timings.json"),
    }
    (root / "setup.json").write_text(json.dumps(setup))
    ramp = math.ceil(args.users / args.spawn_rate)
    command = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless",
               "--users", str(args.users), "--spawn-rate", str(args.spawn_rate),
               "--run-time", f"{args.seconds + ramp}s", "--host", server.url, "--only-summary"]
    env = os.environ | {"DATAPERF_LOAD_SETUP": str(root / "setup.json")}
    with (root / "locust.log").open("wb") as log:
        done = subprocess.run(command, env=env, stdout=log, stderr=subprocess.STDOUT, check=False)
    if done.returncode not in (0, 1) or not (root / "timings.json").exists():  # 1: errors
        raise SystemExit("locust failed:\n" + (root / "locust.log").read_text()[-3000:])
    found: dict[str, Any] = json.loads((root / "timings.json").read_text())
    return found


def wait_final(database_url: str, ids: list[int], timeout: float) -> tuple[Counter[str],
                                                                            float | None]:
    """Poll the database until every one of ``ids`` is final or ``timeout`` passes: the
    evaluations' states, and the seconds it took (None: not all final in time)."""
    engine = create_engine(database_url)
    query = select(Evaluation.state).where(Evaluation.submission_id.in_(ids))
    started = time.monotonic()
    try:
        while True:
            with engine.connect() as connection:
                states = Counter(state for state in connection.scalars(query))
            if all(state in FINAL_STATES for state in states) and states.total() == len(ids):
                return Counter({s.value: n for s, n in states.items()}), time.monotonic() - started
            if time.monotonic() - started > timeout:
                return Counter({s.value: n for s, n in states.items()}), None
            time.sleep(0.2)
    finally:
        engine.dispose()


def run_backend(name: str, admin_url: str | None, args: argparse.Namespace, root: Path,
                files: dict[str, bytes]) -> LoadResult:
    print(f"{name}: {args.users} users for {args.seconds} s ...", flush=True)
    load = os.getloadavg()[0]
    with (
        scratch_database(admin_url, root, "dataperf_load") as url,
        serve(root, url, workers=WORKERS, poll_seconds=None, processes=args.processes) as server,
    ):
        if args.board:
            engine = create_engine(url)
            bulk_load(engine, args.board, BOARD_TEAMS)
            engine.dispose()
        found = run_locust(server, root, args, files)
        states, drained = wait_final(url, found["accepted"], args.drain_seconds)
    window = found["window"]
    steady: dict[str, list[float]] = {}
    ramp: dict[str, list[float]] = {}
    for route, times in found["timings"].items():
        for took, ended in zip(times, found["moments"][route], strict=True):
            part = steady if ended >= window["ramped"] else ramp
            part.setdefault(route, []).append(took)
    return LoadResult(name, window["stop"] - window["ramped"], steady, ramp, found["errors"],
                      found["accepted"], states, drained, (load, *os.getloadavg()[:2]))


def report(result: LoadResult, args: argparse.Namespace) -> None:
    start, end, five = result.load
    print(f"\n== {result.name} ({os.cpu_count()} CPU cores; load average {start:.1f} at the "
          f"start, {end:.1f} at the end, 5-minute {five:.1f}) ==")
    every = [t for times in result.timings.values() for t in times]
    errors = sum(len(e) for e in result.errors.values())
    board = f", {args.board:,} scored submissions bulk-loaded first" if args.board else ""
    print(f"{args.users} users ({args.submitters} submitting, {args.users - args.submitters} "
          f"reading) for {result.seconds:.0f} s once all had started ({args.spawn_rate} "
          f"a second), {args.processes} server process(es), {WORKERS} worker slots{board}")
    print(f"  {len(every):,} requests, {len(every) / result.seconds:.1f} requests/s; "
          f"errors {errors} (target 0: {'met' if errors == 0 else 'MISSED'})")
    print(f"  {'route':52s} {'requests':>8s} {'p50':>9s} {'p99':>9s} {'errors':>6s}")
    for route, times in sorted(result.timings.items()):
        print(f"  {route:52s} {len(times):8,d} {ms(percentile(times, 50)):>9s} "
              f"{ms(percentile(times, 99)):>9s} {len(result.errors.get(route, [])):6d}")
    print(f"  {'all':52s} {len(every):8,d} {ms(percentile(every, 50)):>9s} "
          f"{ms(percentile(every, 99)):>9s} {errors:6d}")
    p99 = percentile(result.timings.get(LEADERBOARD, [float("inf")]), 99)
    print(f"  leaderboard JSON p99 {ms(p99)} (target < {ms(TARGET_P99)}: "
          f"{'met' if p99 < TARGET_P99 else 'MISSED'})")
    during = [t for times in result.ramp.values() for t in times]
    if during:
        print(f"  while the users started (not counted above): {len(during):,} requests, p50 "
              f"{ms(percentile(during, 50))}, p99 {ms(percentile(during, 99))}, leaderboard "
              f"p99 {ms(percentile(result.ramp.get(LEADERBOARD, [0.0]), 99))}")
    for route, messages in result.errors.items():
        print(f"  errors of {route}: {len(messages)}, e.g. {messages[0]}")
    scored = result.states.get("scored", 0)
    waited = (f"all final {result.drained:.1f} s after the run" if result.drained is not None
              else f"not all final {args.drain_seconds:.0f} s after the run")
    every_scored = scored == len(result.accepted)
    print(f"  submissions: {len(result.accepted)} accepted, {scored} scored ({waited}; "
          f"states {dict(result.states)}): "
          f"{'every accepted submission scored' if every_scored else 'NOT all scored'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--submitters", type=int, default=10, help="of the users")
    parser.add_argument("--seconds", type=int, default=60,
                        help="how long all users run, after they have started")
    parser.add_argument("--processes", type=int, default=1, metavar="N",
                        help="web server processes (dataperf serve --processes N; the worker "
                        "slots then run in a dataperf worker beside them)")
    parser.add_argument("--spawn-rate", type=float, default=10, metavar="USERS",
                        help="users started per second")
    parser.add_argument("--postgres", metavar="URL",
                        help="also on PostgreSQL: a URL of a role that may create databases")
    parser.add_argument("--board", type=int, default=0, metavar="N",
                        help=f"scored submissions (of {BOARD_TEAMS:,} teams) loaded first")
    parser.add_argument("--drain-seconds", type=float, default=120,
                        help="how long to wait after the run for every submission's score")
    args = parser.parse_args()
    if not 0 < args.submitters < args.users:
        parser.error("--submitters must be at least 1 and fewer than --users")
    backends: list[tuple[str, str | None]] = [("SQLite", None)]
    if args.postgres:
        backends.append(("PostgreSQL", args.postgres))
    with tempfile.TemporaryDirectory(prefix="dataperf-load-") as tmp:
        files = random_files()
        results = [run_backend(name, url, args, Path(tmp) / name, files)
                   for name, url in backends]
    for result in results:
        report(result, args)


if __name__ == "__main__":
    main()
