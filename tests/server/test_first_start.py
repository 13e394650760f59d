"""First start: `dataperf serve` on an empty home hosts the bundled challenges and scores their
baselines, so the first visitor sees a populated leaderboard; restarts change nothing; a new
scorer version opens a new round. The API docs work offline."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from dataperf.kinds.selection import SelectionChallenge
from dataperf.server import hosting
from dataperf.server.db import Database
from dataperf.server.models import ChallengeRow, Evaluation, Round, Submission
from dataperf.server.settings import Settings
from official_layout import cli_env, dataperf_command
from platform_harness import free_port

CHALLENGE = "vision-selection"


def _serve(home: Path, port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen([*dataperf_command(), "serve", "--port", str(port)],
                            env=cli_env(home), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)


def _until(url: str, check: object, timeout: float) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while True:
        try:
            answer = httpx.get(url, timeout=10)
            if check(answer):  # type: ignore[operator]
                return answer
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, f"{url} did not become ready"
        time.sleep(0.25)


def _stop(process: subprocess.Popen[bytes]) -> None:
    """A clean stop: uvicorn shuts the app down, then re-raises SIGTERM (exit -15)."""
    process.terminate()
    code = process.wait(60)
    log = process.stderr.read().decode() if process.stderr else ""
    assert code in (0, -signal.SIGTERM), log
    assert "Application shutdown complete" in log, log


def test_serve_on_an_empty_home_shows_scored_baselines(tmp_path: Path) -> None:
    home, port = tmp_path / "home", free_port()
    base = f"http://127.0.0.1:{port}/api/v1"
    server = _serve(home, port)
    try:
        _until(f"{base}/health", lambda r: r.status_code == 200, 60)
        board = _until(f"{base}/challenges/{CHALLENGE}/leaderboard",
                       lambda r: len(r.json()["rows"]) == 3, 240).json()
        docs = httpx.get(f"http://127.0.0.1:{port}/docs").text
        script = httpx.get(f"http://127.0.0.1:{port}/static/swagger/swagger-ui-bundle.js")
        schema = httpx.get(f"{base}/openapi.json").json()
    finally:
        _stop(server)
    rows = {row["label"]: row for row in board["rows"]}
    assert set(rows) == {"random", "pseudo-label", "noise-aware"}
    assert all(r["is_baseline"] and r["rank"] is None for r in rows.values())
    assert rows["pseudo-label"]["score"]["value"] > rows["random"]["score"]["value"]
    assert board["rows"][0]["label"] == "pseudo-label"  # ordered by score
    assert "/static/swagger/swagger-ui-bundle.js" in docs
    assert "cdn." not in docs
    assert script.status_code == 200
    assert len(script.content) > 100_000
    assert "/api/v1/challenges/{name}/submissions" in schema["paths"]

    restarted = _serve(home, port)  # a restart hosts nothing twice
    try:
        again = _until(f"{base}/challenges/{CHALLENGE}/leaderboard",
                       lambda r: r.status_code == 200, 60).json()
        challenges = httpx.get(f"{base}/challenges").json()
    finally:
        _stop(restarted)
    assert [r["submission_id"] for r in again["rows"]] == \
        [r["submission_id"] for r in board["rows"]]
    assert [c["name"] for c in challenges] == [  # the bundled ones
        "adversarial-nibbler", "data-acquisition", "speech-selection", "vision-cleaning",
        CHALLENGE]
    # The released red-teaming rounds come first, closed; then every challenge's open round.
    assert [[r["number"] for r in c["rounds"]] for c in challenges] == [[1, 2, 3, 4]] + \
        [[1]] * 4


def test_a_new_scorer_version_opens_a_new_round_with_fresh_baselines(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings(home=tmp_path, baselines=("random",))
    db = Database(settings.sqlalchemy_url)
    db.migrate()
    with db.write() as session:
        assert hosting.seed(session, settings) == [
            "hosted adversarial-nibbler", "hosted data-acquisition", "hosted speech-selection",
            "hosted vision-cleaning", f"hosted {CHALLENGE}"]
    with db.write() as session:
        assert hosting.seed(session, settings) == []
    monkeypatch.setattr(SelectionChallenge, "scorer_version", "selection-2")
    with db.write() as session:
        changed = hosting.seed(session, settings)
    assert changed == [f"opened a new round of {name} (new scorer or edition)"
                       for name in ("speech-selection", CHALLENGE)]  # the selection kind

    with db.read() as session:
        rounds = session.scalars(select(Round).join(ChallengeRow)
                                 .where(ChallengeRow.name == CHALLENGE)
                                 .order_by(Round.number)).all()
        baselines = session.execute(select(Submission.round_id, Evaluation.baseline)
                                    .join(Evaluation)
                                    .where(Submission.round_id.in_([r.id for r in rounds]))
                                    ).all()
    assert [(r.number, r.closed) for r in rounds] == [(1, True), (2, False)]
    assert rounds[1].scorer_version.endswith("selection-2")
    assert sorted(baselines) == [(rounds[0].id, "random"), (rounds[1].id, "random")]
    db.dispose()
