"""The platform examples of the guides, run against a real server that is started the way the
operator guide says (``dataperf serve``), by the people each guide addresses, each with a HOME
of their own (so ``~/.dataperf`` is their ``DATAPERF_HOME``):

1. the operator, the operator guide up to its last block that starts a server or a worker (the
   embedded server, the first users, then the server without embedded workers and a separate
   ``dataperf worker``, which scores everything that follows);
2. the organizer, the whole organizer guide (its local blocks create the edition it then hosts);
3. the participant, the user guide's server blocks (after the guide's ``dataperf run`` lines
   that make the folders those blocks submit);
4. the operator again, the rest of the operator guide (backups and monitoring), once there is
   something to back up.

Every ``$`` line runs in bash (so ``~`` and ``$DATAPERF_TOKEN`` expand) and must succeed, except
setup lines (``pip install``, ``make``); blocks marked ``# illustration`` are skipped (see
``tests/test_docs.py``); Python blocks run in a fresh interpreter. What the tests change, and
why:

- the server listens on a free port: ``http://127.0.0.1:8000`` is replaced by its address, and
  ``dataperf serve`` gets ``--port``;
- short leases and heartbeats and one cheap baseline (``random``) come from ``DATAPERF_*``
  variables, as an operator would set them;
- there is no terminal, so password prompts read standard input: every command gets the guides'
  example password there;
- ``DATAPERF_TOKEN`` holds the token that the person's ``dataperf login`` saved, as the guides
  say.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from dataperf.registry import get_challenge
from dataperf.submission_files import read_submission
from platform_harness import PASSWORD, free_port
from test_docs import (
    DOCS,
    SETUP,
    blocks,
    commands,
    fenced,
    needs_server,
    prompt_lines,
    runs_nowhere,
    write_organizer_files,
)

DOC_URL = "http://127.0.0.1:8000"
BIN = Path(sys.executable).parent
FAST = {"DATAPERF_LEASE_SECONDS": "4", "DATAPERF_HEARTBEAT_SECONDS": "0.5",
        "DATAPERF_POLL_SECONDS": "0.1", "DATAPERF_BASELINES": '["random"]'}
Block = tuple[str, str]  # (language, body)


@dataclass(frozen=True)
class Person:
    name: str
    home: Path  # their HOME: ~/.dataperf is their DATAPERF_HOME
    cwd: Path

    @property
    def dataperf_home(self) -> Path:
        return self.home / ".dataperf"

    def token(self) -> str | None:
        saved = self.dataperf_home / "credentials.json"
        return str(json.loads(saved.read_text())["token"]) if saved.is_file() else None


def person(root: Path, name: str) -> Person:
    found = Person(name, root / name, root / name / "work")
    found.cwd.mkdir(parents=True)
    return found


def runnable(path: Path, *, server_only: bool = False) -> list[Block]:
    """The blocks of a guide that run here, in order: console blocks not marked as
    illustrations (only those that need a server, if asked) and Python blocks."""
    found = []
    for language, body in fenced(path):
        if language == "console" and not runs_nowhere(body):
            if not server_only or needs_server(body):
                found.append((language, body))
        elif language == "python" and not server_only:
            found.append((language, body))
    return found


def starts_processes(block: Block) -> bool:
    return any(line.startswith(("dataperf serve", "dataperf worker"))
               for line in prompt_lines(block[1]))


class Platform:
    """The server and workers the guides start, and the runner of their other commands."""

    def __init__(self, root: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.logs = root / "logs"
        self.logs.mkdir()
        self.server: subprocess.Popen[bytes] | None = None
        self.workers: list[subprocess.Popen[bytes]] = []

    def env(self, who: Person) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DATAPERF_")}
        env.update({"HOME": str(who.home), "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}",
                    "COLUMNS": "120", "NO_COLOR": "1", "TERM": "dumb", **FAST})
        token = who.token()
        if token:
            env["DATAPERF_TOKEN"] = token
        return env

    def run_blocks(self, found: list[Block], who: Person) -> None:
        for language, body in found:
            if language == "python":
                result = subprocess.run([sys.executable, "-c", body], cwd=who.cwd,
                                        env=self.env(who), capture_output=True, text=True,
                                        timeout=300)
                assert result.returncode == 0, f"Python block failed:\n{body}\n{result.stderr}"
                continue
            for line in prompt_lines(body):
                self.run_line(line, who)

    def run_line(self, line: str, who: Person) -> subprocess.CompletedProcess[str] | None:
        command = line.replace(DOC_URL, self.url)
        if command.startswith(SETUP):
            return None
        words = shlex.split(command)
        if words[:2] == ["dataperf", "serve"]:
            self.stop_server()
            self.server = self._start(f"{command} --port {self.port}", who, "serve")
            self._wait_until_up()
            return None
        if words[:2] == ["dataperf", "worker"]:
            self.workers.append(self._start(command, who, f"worker-{len(self.workers)}"))
            return None
        if shutil.which(words[0], path=self.env(who)["PATH"]) is None:
            # e.g. no sqlite3 program: the reader would install it; the test machine has not
            warnings.warn(f"not run, {words[0]} is not installed: {command}", stacklevel=2)
            return None
        result = subprocess.run(["bash", "-c", command], cwd=who.cwd, env=self.env(who),
                                input=PASSWORD + "\n", capture_output=True, text=True,
                                timeout=600, start_new_session=True)  # no terminal
        shown = f"{who.name}: {command}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
        assert result.returncode == 0, shown
        assert "Traceback" not in result.stderr, shown
        if words[0] == "curl":
            assert result.stdout.strip(), shown
            assert not result.stdout.lstrip().startswith('{"error"'), shown
        return result

    def _start(self, command: str, who: Person, name: str) -> subprocess.Popen[bytes]:
        log = open(self.logs / f"{name}.log", "ab")  # noqa: SIM115 (closed with the process)
        return subprocess.Popen(["bash", "-c", f"exec {command}"], cwd=who.cwd,
                                env=self.env(who), stdin=subprocess.DEVNULL, stdout=log,
                                stderr=log, start_new_session=True)

    def _wait_until_up(self) -> None:
        assert self.server is not None
        deadline = time.monotonic() + 120
        while True:
            assert self.server.poll() is None, (self.logs / "serve.log").read_text()
            try:
                if httpx.get(f"{self.url}/api/v1/health", timeout=5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the server did not answer in 120 s"
            time.sleep(0.2)

    def stop_server(self) -> None:
        if self.server is not None:
            self.server.send_signal(signal.SIGINT)  # Ctrl-C
            try:
                self.server.wait(60)
            except subprocess.TimeoutExpired:
                self.server.kill()
                self.server.wait()
            self.server = None

    def stop(self) -> list[int]:
        """Stop the workers (SIGTERM) and the server; the workers' exit codes."""
        codes = []
        for worker in self.workers:
            worker.send_signal(signal.SIGTERM)
            try:
                codes.append(worker.wait(60))
            except subprocess.TimeoutExpired:
                worker.kill()
                codes.append(worker.wait())
        self.workers = []
        self.stop_server()
        return codes

    def api(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=f"{self.url}/api/v1", headers=headers, timeout=60)


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[Platform]:
    running = Platform(tmp_path)
    try:
        yield running
    finally:
        running.stop()


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


def check_first_start(platform: Platform, operator: Person) -> None:
    """What README and the operator guide promise of `dataperf serve` on its defaults."""
    with httpx.Client(base_url=platform.url, timeout=60) as web:
        docs = web.get("/docs")
        assert docs.status_code == 200
        assert "swagger-ui" in docs.text
        assert web.get("/static/swagger/swagger-ui-bundle.js").status_code == 200
        assert web.get("/").status_code == 200
        assert web.get("/signup").status_code == 200
        assert "paths" in web.get("/api/v1/openapi.json").json()
    with platform.api() as api:
        assert "vision-selection" in [c["name"] for c in api.get("/challenges").json()]

        def baseline_scored() -> bool:
            rows = api.get("/challenges/vision-selection/leaderboard").json()["rows"]
            return any(r["is_baseline"] and r["rank"] is None for r in rows)

        wait_for(baseline_scored, 300, "the baseline entry to be scored")
    home = operator.dataperf_home
    assert (home / "dataperf.db").is_file()
    assert any((home / "blobs").rglob("*"))


def check_organizer(platform: Platform, operator: Person) -> None:
    with platform.api() as api:
        garment = api.get("/challenges/garment-selection").json()
        cup = api.get("/challenges/fashion-cup").json()
    first, second = garment["rounds"]
    assert first["closed"]
    assert first["daily_quota"] == 3
    assert first["final_count"] == 2
    assert first["private_fraction"] == 0.5
    assert second["name"] == "Round 2"
    assert not second["closed"]
    assert second["task_weights"] == {"Shirt": 2, "Sneaker": 1, "Trouser": 1}
    assert cup["challenge"] == "vision-selection"
    assert cup["rounds"][0]["round_quota"] == 20
    uploaded = operator.dataperf_home / "editions" / "garment-selection" / "organizer"
    assert (uploaded / "manifest.json").is_file()


def check_participant(platform: Platform, participant: Person) -> None:
    """Ada's team is ranked with exactly the score `dataperf evaluate` gives her files."""
    challenge = get_challenge("vision-selection")
    edition = challenge.edition("offline")
    files = read_submission(participant.cwd / "runs" / "fps-cv")
    local = challenge.score(challenge.parse_submission(files, edition), edition)
    with platform.api() as api:
        rows = api.get("/challenges/vision-selection/leaderboard").json()["rows"]
    (row,) = [r for r in rows if r["team"] == "Analytical Engines"]
    assert row["rank"] is not None
    assert not row["is_baseline"]
    assert row["score"]["value"] == local.aggregate.value
    with platform.api() as api:
        board = api.get("/challenges/garment-selection/leaderboard").json()
    assert board["round"] == 2
    assert board["part"] == "public"
    assert [r["team"] for r in board["rows"] if not r["is_baseline"]] == ["Analytical Engines"]
    assert all(r["rank"] is None for r in board["rows"] if r["is_baseline"])  # every round


def check_backups(operator: Person) -> None:
    backup = operator.cwd / "dataperf-backup.db"
    with sqlite3.connect(backup) as copy:
        emails = {e for (e,) in copy.execute("SELECT email FROM users")}
    assert {"admin@example.org", "grace@example.org", "ada@example.org"} <= emails
    assert any(p.is_file() for p in (operator.cwd / "backup" / "blobs").rglob("*"))
    assert (operator.cwd / "backup" / "editions" / "garment-selection" / "organizer"
            / "manifest.json").is_file()


@pytest.mark.slow
def test_the_guides_platform_examples_run(platform: Platform, tmp_path: Path) -> None:
    if shutil.which("curl") is None:
        pytest.skip("the guides' HTTP examples use curl, which is not installed")
    operator = person(tmp_path, "operator")
    organizer = person(tmp_path, "organizer")
    participant = person(tmp_path, "participant")

    operations = runnable(DOCS / "operator-guide.md")
    setup = 1 + max(i for i, block in enumerate(operations) if starts_processes(block))
    platform.run_blocks(operations[:setup], operator)
    assert platform.server is not None, "the guide leaves no server running"
    assert platform.workers, "the guide starts no worker"
    check_first_start(platform, operator)

    guide = DOCS / "organizer-guide.md"
    yaml_block, _ = blocks(guide, "yaml")  # the garment challenge (then a keyword one)
    (organizer.cwd / "garment-selection.yaml").write_text(yaml_block, encoding="utf-8")
    write_organizer_files(organizer.cwd)
    platform.run_blocks(runnable(guide), organizer)
    check_organizer(platform, operator)

    guide = DOCS / "user-guide.md"
    server_blocks = runnable(guide, server_only=True)
    submitted = "\n".join(body for _, body in server_blocks)
    for words in commands(guide):
        if words[1] == "run" and words[words.index("--out") + 1] in submitted:
            platform.run_line(shlex.join(words), participant)
    platform.run_blocks(server_blocks, participant)
    check_participant(platform, participant)

    platform.run_blocks(operations[setup:], operator)
    check_backups(operator)
    workers = len(platform.workers)
    assert platform.stop() == [0] * workers, "a worker did not stop cleanly"
