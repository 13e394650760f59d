"""A chaos run: the platform as real processes (server replicas, workers) on one database, with
participants submitting from client threads, while faults are injected, and then counted:

- workers killed (SIGKILL) at random moments of their evaluations, and replaced;
- a server replica killed (SIGKILL) in the middle of an upload (one sent slowly, so that the
  kill finds it half sent; others may be anywhere), and started again on its port;
- the file storage failing on write for a while (made immutable, or read-only when not root:
  reads still work, every new file fails);
- the PostgreSQL server restarted (only with a restart command: ``--pg-restart``).

Clients submit as ``dataperf submit`` does: one idempotency key per submission, the same key
again after a lost answer (a broken connection, a 5xx), here to whichever replica is next. Each
team sends more submissions than its daily quota, from two threads at once.

At the end it counts what must all be 0: submissions lost (accepted, not scored), stuck (still
queued or running once the platform settled), scored twice, quota charged wrongly, orphan rows
(files a row names that are not stored, submissions without an evaluation), orphan files left
after ``dataperf admin collect-garbage`` (the files an interrupted upload stored before its row
are collected by it; how many there were is reported too), and how long the platform took to
settle after the last fault. Any of them not 0, or a process that exited by itself, fails the
run (exit status 1).

    python tests/chaos.py --kills 100 [--postgres URL] [--pg-restart 'COMMAND']

(``make chaos``). ``tests/server/test_chaos.py`` runs a short one in the test suite.
"""

from __future__ import annotations

import argparse
import os
import random
import shlex
import stat
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # run as a script: the harness modules live beside this file
    sys.path.insert(0, str(HERE))

import httpx  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from dataperf.registry import get_challenge  # noqa: E402
from dataperf.server.db import Database  # noqa: E402
from dataperf.server.models import (  # noqa: E402
    QUOTA_STATES,
    Evaluation,
    ScoreRow,
    State,
    Submission,
)
from dataperf.server.operations import referenced_blobs  # noqa: E402
from official_layout import dataperf_command  # noqa: E402
from platform_harness import (  # noqa: E402
    PASSWORD,
    fast_settings,
    queue_baselines,
    scratch_database,
)
from process_harness import (  # noqa: E402
    Process,
    ServerProcess,
    platform_env,
    start_server,
    start_worker,
    states,
    wait_until_up,
)

CHALLENGE = "vision-selection"
SLOW_BASELINE = "pseudo-label"  # seconds: a baseline long enough to kill a worker in
SCORE_ROWS = 4  # per scored evaluation: 3 tasks and their mean
RETRY_PAUSE = 0.3  # seconds between a client's tries of one submission


@dataclass
class Config:
    admin_url: str | None = None  # PostgreSQL (a scratch database is made); None: SQLite
    worker_kills: int = 4
    server_kills: int = 1
    storage_faults: int = 1
    storage_fault_seconds: float = 2.0
    pg_restart: str | None = None  # a shell command that restarts the PostgreSQL server
    teams: int = 3
    daily_quota: int = 3
    extra: int = 1  # submissions per team beyond its quota (refused)
    replicas: int = 2
    workers: int = 2
    seed: int = 0
    settle_timeout: float = 300.0
    folder: Path | None = None  # kept afterwards when given (logs, database, files)
    log: Any = None  # a callable for progress lines, or None

    def say(self, line: str) -> None:
        if self.log is not None:
            self.log(line)


@dataclass
class Report:
    backend: str = ""
    submissions: int = 0  # different submissions the clients made (idempotency keys)
    accepted: int = 0
    refused_quota: int = 0
    refused_other: int = 0
    retries: int = 0  # tries after a lost answer or a 5xx
    answers_5xx: Counter[int] = field(default_factory=Counter)
    worker_kills: int = 0
    server_kills: int = 0
    storage_faults: int = 0
    storage_note: str = ""
    pg_restarts: int = 0
    workers_exited: int = 0  # workers that stopped without being killed (replaced)
    max_attempts: int = 0  # the most runs one evaluation took
    lost: int = 0
    stuck: int = 0
    scored_twice: int = 0
    quota_wrong: int = 0
    orphan_rows: int = 0
    orphan_files: int = 0  # before collecting garbage (harmless; collected)
    orphan_files_after_gc: int = 0
    progress_seconds: float = 0.0  # after the last fault, until an evaluation finished
    recovery_seconds: float = 0.0  # after the last fault, until all were scored
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)

    @property
    def zeros(self) -> dict[str, int]:
        """The counts that must be 0."""
        return {"lost": self.lost, "stuck": self.stuck, "scored twice": self.scored_twice,
                "quota charged wrongly": self.quota_wrong, "orphan rows": self.orphan_rows,
                "orphan files after collect-garbage": self.orphan_files_after_gc}

    def table(self) -> str:
        rows = [
            ("backend", self.backend),
            ("submissions (idempotency keys)", self.submissions),
            ("  accepted", self.accepted),
            ("  refused: quota", self.refused_quota),
            ("  refused: other", self.refused_other),
            ("client retries", self.retries),
            ("5xx answers seen", dict(sorted(self.answers_5xx.items())) or 0),
            ("faults: workers killed", self.worker_kills),
            ("faults: servers killed mid-upload", self.server_kills),
            ("faults: storage failing on write", f"{self.storage_faults} {self.storage_note}"),
            ("faults: PostgreSQL restarts", self.pg_restarts),
            ("workers that exited on their own", self.workers_exited),
            ("most runs of one evaluation", self.max_attempts),
            *((name, value) for name, value in self.zeros.items()),
            ("orphan files before collect-garbage", self.orphan_files),
            ("after the last fault: first evaluation done (s)",
             f"{self.progress_seconds:.1f}"),
            ("after the last fault: all scored, queue empty (s)",
             f"{self.recovery_seconds:.1f}"),
            ("whole run (s)", f"{self.seconds:.1f}"),
        ]
        width = max(len(name) for name, _ in rows)
        lines = [f"{name:<{width}}  {value}" for name, value in rows]
        return "\n".join(lines + [f"problem: {p}" for p in self.problems])


# The participants ----------------------------------------------------------------------------

@dataclass
class Team:
    name: str
    token: str
    accepted: set[int] = field(default_factory=set)
    refused_quota: int = 0
    submissions: int = 0


class Clients:
    """Participants uploading through the replicas, retrying lost answers with their key."""

    def __init__(self, servers: list[ServerProcess], report: Report, seed: int):
        self.servers = servers
        self.report = report
        self.lock = threading.Lock()
        self.rng = random.Random(seed)
        self.next_replica = 0
        self.in_flight = 0
        challenge = get_challenge(CHALLENGE)
        self.base = challenge.run_algorithm("random", challenge.edition("offline"),
                                            random_state=seed)

    def files(self) -> dict[str, bytes]:
        """A valid submission of its own content (rows shuffled: new files to store)."""
        with self.lock:
            rng = random.Random(self.rng.random())
        out = {}
        for name, data in self.base.items():
            header, *rows = data.decode().splitlines()
            rng.shuffle(rows)
            out[name] = ("\n".join([header, *rows]) + "\n").encode()
        return out

    def url(self) -> str:
        with self.lock:
            self.next_replica = (self.next_replica + 1) % len(self.servers)
            return self.servers[self.next_replica].live.url

    def register(self, name: str) -> Team:
        for _ in range(200):
            try:
                answer = httpx.post(f"{self.url()}/api/v1/auth/register", timeout=30, json={
                    "email": f"{name}@example.org", "name": name, "password": PASSWORD,
                    "team": name})
            except httpx.TransportError:
                time.sleep(RETRY_PAUSE)
                continue
            if answer.status_code == 201:
                return Team(name, answer.json()["token"])
            if answer.status_code == 409:  # made by a try whose answer was lost: log in
                answer = httpx.post(f"{self.url()}/api/v1/auth/token", timeout=30, json={
                    "email": f"{name}@example.org", "password": PASSWORD})
                if answer.status_code == 200:
                    return Team(name, answer.json()["token"])
            time.sleep(RETRY_PAUSE)
        raise RuntimeError(f"could not register {name}")

    def submit(self, team: Team, slow: threading.Event | None = None, replica: int = 0,
               deadline: float = 600.0) -> int | None:
        """One submission, tried until it has an answer; its id, or None if refused.
        ``slow``: the first try is sent slowly to ``replica``, and ``slow`` is set once half
        of it is sent."""
        files = self.files()
        key = f"chaos-{uuid.uuid4()}"
        headers = {"Authorization": f"Bearer {team.token}", "Idempotency-Key": key}
        with self.lock:
            team.submissions += 1
            self.report.submissions += 1
        give_up = time.monotonic() + deadline
        first = True
        while True:
            server = self.servers[replica].live.url if slow is not None and first \
                else self.url()
            url = f"{server}/api/v1/challenges/{CHALLENGE}/submissions"
            with self.lock:
                self.in_flight += 1
            try:
                if slow is not None and first:
                    answer = _slow_post(url, files, headers, slow)
                else:
                    answer = httpx.post(url, headers=headers, timeout=60,
                                        files=[("files", (n, d)) for n, d in
                                               sorted(files.items())])
            except httpx.TransportError:
                answer = None
            finally:
                with self.lock:
                    self.in_flight -= 1
            first = False
            if answer is not None and answer.status_code < 500:
                return self._answered(team, answer)
            with self.lock:
                self.report.retries += 1
                if answer is not None:
                    self.report.answers_5xx[answer.status_code] += 1
            if time.monotonic() > give_up:
                with self.lock:
                    self.report.problems.append(f"{team.name}: no answer for {key}")
                return None
            time.sleep(RETRY_PAUSE)

    def _answered(self, team: Team, answer: httpx.Response) -> int | None:
        with self.lock:
            if answer.status_code == 202:
                team.accepted.add(int(answer.json()["id"]))
                return int(answer.json()["id"])
            if answer.status_code == 429 and answer.json()["error"]["code"] == "quota-exceeded":
                team.refused_quota += 1
            else:
                self.report.refused_other += 1
                self.report.problems.append(f"{team.name}: {answer.status_code} {answer.text}")
        return None


def _slow_post(url: str, files: dict[str, bytes], headers: dict[str, str],
               half_sent: threading.Event) -> httpx.Response:
    """POST the upload in small pieces with pauses, so that a kill finds it half sent."""
    request = httpx.Request("POST", url, headers=headers,
                            files=[("files", (n, d)) for n, d in sorted(files.items())])
    body = request.read()
    sent_headers = {**headers, "Content-Type": request.headers["Content-Type"],
                    "Content-Length": str(len(body))}

    def pieces() -> Iterator[bytes]:
        step = max(1, len(body) // 20)
        for start in range(0, len(body), step):
            if start >= len(body) // 2:
                half_sent.set()
            yield body[start:start + step]
            time.sleep(0.15)

    return httpx.post(url, content=pieces(), headers=sent_headers, timeout=60)


# Faults ---------------------------------------------------------------------------------------

def _chattr_tree(root: Path, flag: str) -> bool:
    try:
        subprocess.run(["chattr", "-R", flag, str(root)], check=True, capture_output=True)
        return True
    except (OSError, subprocess.CalledProcessError):
        return False


@contextmanager
def storage_failing(root: Path) -> Iterator[str | None]:
    """Every new file under ``root`` fails to be written, while inside (reads still work):
    immutable folders as root (permissions bind no root), read-only ones otherwise. Yields
    None, or why the fault could not be made."""
    root.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        if not _chattr_tree(root, "+i"):
            _chattr_tree(root, "-i")
            yield "(not made: chattr +i failed on this file system)"
            return
        try:
            yield None
        finally:
            _chattr_tree(root, "-i")
        return
    folders = [root, *(p for p in root.rglob("*") if p.is_dir())]
    for folder in folders:
        folder.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        yield None
    finally:
        for folder in folders:
            folder.chmod(stat.S_IRWXU)


class Platform:
    """The processes: replicas, workers (replaced when they die), and the faults on them."""

    def __init__(self, settings: Any, config: Config, report: Report, stack: ExitStack):
        self.settings = settings
        self.config = config
        self.report = report
        self.rng = random.Random(config.seed)
        self.server_env = {"daily_quota": config.daily_quota, "max_attempts": 1000}
        self.servers = [start_server(settings, **self.server_env)
                        for _ in range(config.replicas)]
        self.workers: list[Process] = []
        self.db = Database(settings.sqlalchemy_url)
        stack.callback(self.close)
        for server in self.servers:
            wait_until_up(server)
        for _ in range(config.workers):
            self.workers.append(start_worker(settings, 1))

    def close(self) -> None:
        for process in [*self.workers, *self.servers]:
            process.kill()
        self.db.dispose()

    def replace_dead_workers(self) -> None:
        for index, worker in enumerate(self.workers):
            if not worker.alive():
                self.report.workers_exited += 1
                self.report.problems.append(f"a worker exited by itself: {worker.log_tail(8)}")
                self.workers[index] = start_worker(self.settings, 1)

    def running_owners(self) -> list[str]:
        with self.db.read() as session:
            return list(session.scalars(select(Evaluation.lease_owner)
                                        .where(Evaluation.state == State.running)))

    def queue_slow_baseline(self) -> None:
        """Work to kill workers in once the uploads are scored (a fast machine scores them
        before every kill is made): a slow baseline entry, which uses no quota."""
        queue_baselines(self.settings, CHALLENGE, SLOW_BASELINE)

    def kill_a_worker(self, timeout: float = 60) -> bool:
        """SIGKILL the worker of a running evaluation, at a random moment of it; a new worker
        takes its place. False if nothing ran for ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        idle_since = time.monotonic()
        while time.monotonic() < deadline:
            self.replace_dead_workers()
            owners = self.running_owners()
            pids = {int(owner.split(":")[1]) for owner in owners if owner}
            targets = [w for w in self.workers if w.popen.pid in pids and w.alive()]
            if not targets:
                if time.monotonic() - idle_since > 2 and not states(self.db).get(State.queued):
                    self.queue_slow_baseline()
                    idle_since = time.monotonic()
                time.sleep(0.1)
                continue
            time.sleep(self.rng.uniform(0.0, 1.5))  # somewhere in the evaluation
            victim = self.rng.choice(targets)
            victim.kill()
            self.workers[self.workers.index(victim)] = start_worker(self.settings, 1)
            self.report.worker_kills += 1
            return True
        return False

    def kill_a_server_mid_upload(self, clients: Clients, team: Team) -> threading.Thread:
        """A slow upload to one replica, which is killed (SIGKILL) when half of it is sent
        and started again on its port; the client retries with its key meanwhile."""
        index = self.rng.randrange(len(self.servers))
        half_sent = threading.Event()
        upload = threading.Thread(target=clients.submit, args=(team, half_sent, index),
                                  daemon=True)
        upload.start()
        half_sent.wait(60)
        victim = self.servers[index]
        victim.kill()
        self.report.server_kills += 1
        time.sleep(0.3)
        self.servers[index] = start_server(self.settings, victim.port, **self.server_env)
        clients.servers[index] = self.servers[index]
        wait_until_up(self.servers[index])
        return upload

    def fail_storage(self, clients: Clients, team: Team) -> threading.Thread:
        with storage_failing(self.settings.blobs_dir) as not_made:
            if not_made:
                self.report.storage_note = not_made
                return threading.Thread()
            # An upload during the fault: refused (a 5xx), retried, accepted afterwards. The
            # fault lasts until that refusal, however slow the machine.
            refused = sum(self.report.answers_5xx.values())
            upload = threading.Thread(target=clients.submit, args=(team,), daemon=True)
            upload.start()
            time.sleep(self.config.storage_fault_seconds)
            deadline = time.monotonic() + 30
            while sum(self.report.answers_5xx.values()) == refused \
                    and time.monotonic() < deadline:
                time.sleep(0.1)
            self.report.storage_faults += 1
        return upload

    def restart_postgresql(self) -> None:
        assert self.config.pg_restart
        subprocess.run(self.config.pg_restart, shell=True, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.report.pg_restarts += 1

    def settled(self, accepted: set[int]) -> bool:
        found = states(self.db)
        if found.get(State.queued) or found.get(State.running):
            return False
        with self.db.read() as session:
            done = session.scalar(select(func.count()).select_from(Evaluation).where(
                Evaluation.submission_id.in_(accepted))) or 0
        return done == len(accepted)


# The run --------------------------------------------------------------------------------------

def _schedule(config: Config, rng: random.Random) -> list[str]:
    """The faults in order: the rare ones spread over the first part of the worker kills."""
    others = ["server"] * config.server_kills + ["storage"] * config.storage_faults
    rng.shuffle(others)
    if config.pg_restart:
        others.insert(len(others) // 2, "pg")
    kills = ["worker"] * config.worker_kills
    plan: list[str] = []
    every = max(1, int(len(kills) * 0.6) // (len(others) + 1))
    for index, kill in enumerate(kills):
        if index and index % every == 0 and others:
            plan.append(others.pop(0))
        plan.append(kill)
    return plan + others


def run(config: Config) -> Report:
    report = Report(backend="postgresql" if config.admin_url else "sqlite")
    started = time.monotonic()
    with ExitStack() as stack:
        folder = config.folder or Path(stack.enter_context(
            tempfile.TemporaryDirectory(prefix="dataperf-chaos-")))
        folder.mkdir(parents=True, exist_ok=True)
        home = folder / "home"
        home.mkdir(exist_ok=True)
        url = stack.enter_context(scratch_database(config.admin_url, home, "dataperf_chaos"))
        settings = fast_settings(home, url, workers=0)
        stack.callback(_chattr_tree, settings.blobs_dir, "-i")  # never leave it immutable
        platform = Platform(settings, config, report, stack)
        config.say(f"{len(platform.servers)} replicas and {len(platform.workers)} workers up")
        clients = Clients(list(platform.servers), report, config.seed)
        teams = [clients.register(f"team{i}") for i in range(config.teams)]
        director = clients.register("director")  # the uploads the faults need

        def participate(team: Team, count: int, rng: random.Random) -> None:
            for _ in range(count):
                clients.submit(team)
                time.sleep(rng.uniform(0.0, 1.0))

        per_team = config.daily_quota + config.extra
        threads = []
        for team in teams:  # two threads a team: they race for its quota
            for half in (per_team // 2, per_team - per_team // 2):
                thread = threading.Thread(
                    target=participate, daemon=True,
                    args=(team, half, random.Random(platform.rng.random())))
                thread.start()
                threads.append(thread)

        last_fault = time.monotonic()
        for fault in _schedule(config, platform.rng):
            if fault == "worker":
                if not platform.kill_a_worker():
                    report.problems.append("nothing left running to kill a worker of")
                    break
            elif fault == "server":
                threads.append(platform.kill_a_server_mid_upload(clients, director))
            elif fault == "storage":
                threads.append(platform.fail_storage(clients, director))
            else:
                platform.restart_postgresql()
            last_fault = time.monotonic()
            config.say(f"{fault} fault done ({report.worker_kills} workers killed)")

        deadline = time.monotonic() + config.settle_timeout
        for thread in threads:
            if thread.ident is not None:
                thread.join(max(1.0, deadline - time.monotonic()))
        finished_before = _finished(platform.db)
        accepted = set().union(*(t.accepted for t in [*teams, director]))
        while not platform.settled(accepted) and time.monotonic() < deadline:
            platform.replace_dead_workers()
            if not report.progress_seconds and _finished(platform.db) > finished_before:
                report.progress_seconds = time.monotonic() - last_fault
            time.sleep(0.2)
        report.recovery_seconds = time.monotonic() - last_fault
        for worker in platform.workers:  # nothing writes while counting
            if worker.stop() != 0:
                report.workers_exited += 1
        _count(platform, clients, [*teams, director], report, config)
    report.seconds = time.monotonic() - started
    return report


def _finished(db: Database) -> int:
    found = states(db)
    return sum(n for state, n in found.items() if state not in (State.queued, State.running))


def _count(platform: Platform, clients: Clients, teams: list[Team], report: Report,
           config: Config) -> None:
    db = platform.db
    accepted = set().union(*(t.accepted for t in teams))
    report.accepted = len(accepted)
    report.refused_quota = sum(t.refused_quota for t in teams)
    with db.read() as session:
        found = dict(session.execute(select(Evaluation.submission_id, Evaluation.state)).all())
        baselines = set(session.scalars(select(Submission.id).where(
            Submission.is_baseline.is_(True))))  # queued by the run itself, as work to kill in
        report.lost = sum(1 for i in accepted if found.get(i) != State.scored)
        report.stuck = sum(1 for s in found.values() if s in (State.queued, State.running))
        report.max_attempts = session.scalar(select(func.max(Evaluation.attempts))) or 0
        rows = session.execute(select(ScoreRow.evaluation_id, ScoreRow.part, func.count())
                               .group_by(ScoreRow.evaluation_id, ScoreRow.part)).all()
        scored = session.execute(select(Evaluation.id, Evaluation.state)).all()
        counts: Counter[int] = Counter()
        for evaluation_id, _part, count in rows:
            counts[evaluation_id] += count
        report.scored_twice = sum(1 for evaluation_id, state in scored
                                  if state == State.scored
                                  and counts[evaluation_id] > SCORE_ROWS)
        unaccounted = set(found) - accepted - baselines  # made, but no client was told
        if unaccounted:
            report.problems.append(f"submissions no client was told of: {sorted(unaccounted)}")
            report.lost += len(unaccounted)
        without = session.scalar(select(func.count()).select_from(Submission).where(
            ~Submission.evaluation.has())) or 0
        referenced = referenced_blobs(session)
    stored = {p.name for p in platform.settings.blobs_dir.glob("*/*/*")}
    report.orphan_rows = without + len(referenced - stored)
    report.orphan_files = len(stored - referenced)
    for team in teams:  # what the replicas say each team used, against what it was told
        expected = sum(1 for i in team.accepted if found.get(i) in QUOTA_STATES)
        if team.name != "director" and len(team.accepted) != min(team.submissions,
                                                                  config.daily_quota):
            report.quota_wrong += 1
            report.problems.append(f"{team.name}: {len(team.accepted)} accepted of "
                                   f"{team.submissions} with a quota of {config.daily_quota}")
        for server in platform.servers:
            quota = httpx.get(f"{server.live.url}/api/v1/challenges/{CHALLENGE}/quota",
                              headers={"Authorization": f"Bearer {team.token}"},
                              timeout=30).json()
            if quota["daily_used"] != expected:
                report.quota_wrong += 1
                report.problems.append(f"{team.name}: {quota['daily_used']} used, "
                                       f"{expected} expected")
    collected = subprocess.run([*dataperf_command(), "admin", "collect-garbage",
                                "--grace-minutes", "0"], capture_output=True, text=True,
                               env=platform_env(platform.settings))
    if collected.returncode != 0:
        report.problems.append(f"collect-garbage failed: {collected.stderr[-500:]}")
    stored = {p.name for p in platform.settings.blobs_dir.glob("*/*/*")}
    report.orphan_files_after_gc = len(stored - referenced)
    missing = referenced - stored
    if missing:
        report.problems.append(f"collect-garbage deleted {len(missing)} referenced file(s)")
        report.orphan_rows += len(missing)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=100, help="workers killed")
    parser.add_argument("--server-kills", type=int, default=5)
    parser.add_argument("--storage-faults", type=int, default=3)
    parser.add_argument("--postgres", metavar="URL", help="a PostgreSQL URL of a role that "
                        "may create databases (default: SQLite)")
    parser.add_argument("--pg-restart", metavar="COMMAND",
                        help="a shell command restarting that PostgreSQL server, run mid-run")
    parser.add_argument("--teams", type=int, default=4)
    parser.add_argument("--quota", type=int, default=None,
                        help="daily quota (submissions per team); default: enough work for "
                             "the kills")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", type=Path, help="keep the run's folder (logs) here")
    args = parser.parse_args(argv)
    quota = args.quota or max(3, args.kills // 2)
    config = Config(admin_url=args.postgres, worker_kills=args.kills,
                    server_kills=args.server_kills, storage_faults=args.storage_faults,
                    pg_restart=args.pg_restart, teams=args.teams, daily_quota=quota,
                    extra=2, seed=args.seed, folder=args.keep, settle_timeout=900,
                    log=lambda line: print(f"[{time.strftime('%H:%M:%S')}] {line}",
                                           flush=True))
    if args.pg_restart and not args.postgres:
        parser.error("--pg-restart needs --postgres")
    shlex.split(args.pg_restart or "")  # a malformed command fails here, not mid-run
    report = run(config)
    print(report.table())
    return 0 if not any(report.zeros.values()) and not report.problems else 1


if __name__ == "__main__":
    sys.exit(main())
