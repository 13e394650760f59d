"""A real two-node Ray cluster on this machine (``ray start --head``, then ``ray start
--address``, one CPU each) and a ``dataperf worker --ray-address`` process: evaluations run on
both nodes, and an evaluation whose node is lost (its raylet killed) runs again and is scored
exactly once. Each node is started in a session of its own: its Ray processes (the tasks'
workers included) are found by that session, which tells the node a task runs on and what to
kill when the cluster goes."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from dataperf.registry import get_challenge
from dataperf.server.db import Database
from dataperf.server.models import Evaluation, ScoreRow, State
from dataperf.server.settings import Settings
from official_layout import cli_env, dataperf_command
from platform_harness import (
    LiveServer,
    fast_settings,
    free_port,
    live_server,
    queue_baselines,
    require_ray,
)

require_ray()

pytestmark = pytest.mark.slow
CHALLENGE = "vision-selection"
SLOW_BASELINE = "pseudo-label"  # seconds on a Ray worker: long enough to be seen and stopped
TASK_TITLE = b"ray::dataperf-evaluations-"  # Ray titles a task's process ray::<task name>
HEAD, SECOND = "head", "second"


def _ray_command() -> str:
    script = Path(sys.executable).with_name("ray")
    found = str(script) if script.is_file() else shutil.which("ray")
    assert found, "the ray command is not installed in this environment"
    return found


def _stat(pid: str) -> tuple[str, int] | None:
    """A process's state letter and session id; None if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return fields[0], int(fields[3])


def _processes(session: int) -> list[int]:
    """The live (not zombie) processes of a session."""
    found = []
    for entry in Path("/proc").iterdir():
        stat = _stat(entry.name) if entry.name.isdigit() else None
        if stat is not None and stat[1] == session and stat[0] != "Z":
            found.append(int(entry.name))
    return found


class Cluster:
    """Two Ray nodes on this machine; ``nodes`` maps a node's name to the session of its
    processes (the pid of the ``ray start`` that started it)."""

    def __init__(self, home: Path) -> None:
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        # A token of this cluster's own: neither a token in ~/.ray nor another cluster's.
        self.env = cli_env(home) | {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "token",
                                    "RAY_AUTH_TOKEN": secrets.token_hex(32)}
        self.nodes: dict[str, int] = {}
        self.lost: list[int] = []  # sessions of lost nodes, whose leftovers are yet to go
        self._dirs: list[str] = []

    def _start(self, name: str, *args: str) -> None:
        # Ray's socket paths must stay under 107 characters: a short directory in /tmp.
        temp_dir = tempfile.mkdtemp(prefix="ray", dir="/tmp")
        self._dirs.append(temp_dir)
        start = subprocess.Popen(
            [_ray_command(), "start", "--node-ip-address", "127.0.0.1", "--num-cpus", "1",
             "--resources", f'{{"{name}_node": 1}}', "--temp-dir", temp_dir,
             "--dashboard-agent-listen-port", str(free_port()), *args],
            env=self.env, start_new_session=True, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True)
        self.nodes[name] = start.pid  # first: a failed start is cleaned up too
        output, _ = start.communicate(timeout=120)
        assert start.returncode == 0, output

    def start_head(self) -> None:
        self._start(HEAD, "--head", "--port", str(self.port), "--include-dashboard", "false",
                    "--dashboard-port", str(free_port()), "--disable-usage-stats")

    def start_second(self) -> None:
        if SECOND not in self.nodes:
            self._start(SECOND, "--address", self.address)

    def raylet(self, name: str) -> int:
        (pid,) = [p for p in _processes(self.nodes[name])
                  if Path(f"/proc/{p}/comm").read_text().strip() == "raylet"]
        return pid

    def lose_second(self) -> None:
        """Kill the second node's raylet, as a crashed machine would lose it."""
        os.kill(self.raylet(SECOND), signal.SIGKILL)
        self.lost.append(self.nodes.pop(SECOND))

    def running(self) -> dict[int, str]:
        """The node of each evaluation whose Ray task runs now."""
        node_of = {session: name for name, session in self.nodes.items()}
        found = {}
        for entry in Path("/proc").iterdir():
            stat = _stat(entry.name) if entry.name.isdigit() else None
            if stat is None or stat[1] not in node_of:
                continue
            try:
                title = (entry / "cmdline").read_bytes().split(b"\0")[0]
            except OSError:
                continue
            if title.startswith(TASK_TITLE) and title[len(TASK_TITLE):].isdigit():
                found[int(title[len(TASK_TITLE):])] = node_of[stat[1]]
        return found

    def stop(self) -> None:
        """Kill every process of every node started, and check that none is left."""
        sessions = [*self.nodes.values(), *self.lost]
        for session in sessions:
            for pid in _processes(session):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while any(_processes(session) for session in sessions):
            assert time.monotonic() < deadline, "Ray processes outlived SIGKILL"
            time.sleep(0.1)
        for temp_dir in self._dirs:
            shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.fixture
def backend() -> str:
    """PostgreSQL only, the database of a platform that scales out (the queue is the same
    code on SQLite, tested with Ray's local mode in test_ray_executor.py)."""
    return "postgresql"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    ray_cluster = Cluster(tmp_path_factory.mktemp("ray-home"))
    try:
        ray_cluster.start_head()
        yield ray_cluster
    finally:
        ray_cluster.stop()


def _start_worker(settings: Settings, cluster: Cluster, log: Path) -> subprocess.Popen[bytes]:
    env = cli_env(settings.home) | {k: cluster.env[k] for k in ("RAY_AUTH_MODE",
                                                                "RAY_AUTH_TOKEN")}
    env.update({"DATAPERF_DATABASE_URL": settings.sqlalchemy_url,
                "DATAPERF_LEASE_SECONDS": str(settings.lease_seconds),
                "DATAPERF_HEARTBEAT_SECONDS": "0.5", "DATAPERF_POLL_SECONDS": "0.1"})
    with log.open("wb") as stderr:
        return subprocess.Popen([*dataperf_command(), "worker", "--ray-address", cluster.address,
                                 "--slots", "2"], env=env, stdout=subprocess.DEVNULL,
                                stderr=stderr)


def _evaluations(db: Database) -> dict[int, tuple[State, int]]:
    """The state and attempts of every evaluation."""
    with db.read() as session:
        rows = session.execute(select(Evaluation.id, Evaluation.state, Evaluation.attempts))
        return {i: (State(state), attempts) for i, state, attempts in rows}


def _watch(cluster: Cluster, worker: subprocess.Popen[bytes], log: Path,
           seen: dict[int, list[str]], until: Callable[[], bool], timeout: float = 180) -> None:
    """Record where evaluations run (``seen``: the nodes of each one's runs, in order) until
    ``until()`` holds."""
    deadline = time.monotonic() + timeout
    while True:
        for evaluation_id, node in cluster.running().items():
            runs = seen.setdefault(evaluation_id, [])
            if not runs or runs[-1] != node:
                runs.append(node)
        if until():
            return
        assert worker.poll() is None, f"the worker stopped: {log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"timed out; runs seen: {seen}"
        time.sleep(0.05)


def _scored(db: Database, ids: list[int]) -> Callable[[], bool]:
    def done() -> bool:
        found = _evaluations(db)
        return all(found[i][0] == State.scored for i in ids)

    return done


def test_evaluations_run_on_both_nodes_and_a_lost_node_costs_one_rerun(
        cluster: Cluster, db_url: str, tmp_path: Path) -> None:
    """An API submission and slow baselines, on a worker with two slots and two one-CPU
    nodes; the second node is lost in the middle of an evaluation."""
    cluster.start_second()  # again if an earlier test lost it
    settings = fast_settings(tmp_path / "home", db_url, workers=0)
    with live_server(settings) as server:
        db = Database(settings.sqlalchemy_url)
        log = tmp_path / "worker.log"
        worker = _start_worker(settings, cluster, log)
        try:
            _run_the_scenario(server, db, cluster, worker, log)
        finally:
            worker.send_signal(signal.SIGTERM)  # hands back what runs, as without Ray
            try:
                code = worker.wait(60)
            finally:
                worker.kill()  # only if it did not stop
                db.dispose()
    assert code == 0, log.read_text()[-3000:]


def _run_the_scenario(server: LiveServer, db: Database, cluster: Cluster,
                      worker: subprocess.Popen[bytes], log: Path) -> None:
    challenge = get_challenge(CHALLENGE)
    edition = challenge.edition("offline")
    files = challenge.run_algorithm("random", edition)
    token = server.user("ray@example.org")
    with server.api(token) as api:
        answer = api.post(f"/challenges/{CHALLENGE}/submissions", data={"label": "random"},
                          files=[("files", (n, d)) for n, d in files.items()])
    assert answer.status_code == 202, answer.text
    submission_id = answer.json()["id"]
    seen: dict[int, list[str]] = {}

    # Two slow evaluations at once, on two one-CPU nodes: one runs on each.
    first = queue_baselines(server.settings, CHALLENGE, SLOW_BASELINE, 2)
    _watch(cluster, worker, log, seen, _scored(db, first))
    scored = server.wait(token, submission_id, timeout=60)
    assert scored["state"] == "scored", scored
    assert {seen.get(i, ["unseen"])[0] for i in first} == {HEAD, SECOND}, seen

    # Two more; the second node is lost while one of them runs there.
    second = queue_baselines(server.settings, CHALLENGE, SLOW_BASELINE, 2)

    def both_running() -> bool:
        return sorted(seen.get(i, [""])[-1] for i in second) == [HEAD, SECOND]

    _watch(cluster, worker, log, seen, both_running)
    (lost,) = [i for i in second if seen[i] == [SECOND]]
    cluster.lose_second()
    _watch(cluster, worker, log, seen, _scored(db, second))
    assert seen[lost] == [SECOND, HEAD], seen  # run again, on the node that is left

    evaluations = _evaluations(db)
    assert {i: state for i, (state, _) in evaluations.items()} == {
        i: State.scored for i in evaluations}
    assert {i: attempts for i, (_, attempts) in evaluations.items()} == {
        i: 2 if i == lost else 1 for i in evaluations}
    with db.read() as session:
        per_evaluation = dict(session.execute(
            select(ScoreRow.evaluation_id, func.count()).group_by(ScoreRow.evaluation_id)).all())
    assert per_evaluation == {i: 4 for i in evaluations}  # 3 tasks + their mean, once each
    with server.api(token) as api:  # baselines use no quota
        assert api.get(f"/challenges/{CHALLENGE}/quota").json()["daily_used"] == 1
    local = challenge.score(challenge.parse_submission(files, edition), edition)
    assert scored["scores"]["all"]["aggregate"]["value"] == local.aggregate.value
