"""The participant's path on a real server (SQLite and PostgreSQL): register, log in with the
CLI, submit with the CLI, and find the entry on the leaderboard with exactly the score that
``dataperf evaluate`` gives for the same files."""

from __future__ import annotations

import json
from pathlib import Path

from dataperf.registry import get_challenge
from dataperf.submission_files import write_submission
from official_layout import dataperf
from platform_harness import PASSWORD, LiveServer

CHALLENGE = "vision-selection"


def test_register_login_submit_and_leaderboard_match_local_evaluate(
        server: LiveServer, tmp_path: Path) -> None:
    user_home = tmp_path / "participant"
    server.register("ada@example.org", "Ada", team="Analytical Engines")
    login = dataperf("login", "--server", server.url, "--email", "ada@example.org",
                     "--password-stdin", home=user_home, input=PASSWORD + "\n")
    assert login.returncode == 0, login
    assert "logged in" in login.out
    assert "Ada" in login.out
    assert (user_home / "credentials.json").stat().st_mode & 0o077 == 0  # owner only

    challenge = get_challenge(CHALLENGE)
    files = challenge.run_algorithm("random", challenge.edition("offline"), random_state=3)
    submission = write_submission(files, tmp_path / "mine")

    submitted = dataperf("submit", CHALLENGE, submission, "--label", "random 3", home=user_home)
    assert submitted.returncode == 0, submitted
    assert "checked locally" in submitted.err
    assert "scored" in submitted.out

    local = dataperf("evaluate", CHALLENGE, submission, "--json", home=user_home)
    assert local.returncode == 0, local
    expected = json.loads(local.stdout)

    with server.api() as api:
        board = api.get(f"/challenges/{CHALLENGE}/leaderboard").json()
        per_task = {t: api.get(f"/challenges/{CHALLENGE}/leaderboard",
                               params={"view": t}).json() for t in board["rows"][0]["tasks"]}
    (row,) = [r for r in board["rows"] if r["team"] == "Analytical Engines"]
    assert row["rank"] == 1
    assert row["label"] == "random 3"
    assert row["score"] == {"value": expected["aggregate"]["value"],
                            "ci_low": expected["aggregate"]["ci_low"],
                            "ci_high": expected["aggregate"]["ci_high"]}
    for task in expected["tasks"]:
        (task_row,) = per_task[task["task"]]["rows"]
        assert task_row["score"]["value"] == task["value"]
        assert task_row["score"]["ci_low"] == task["ci_low"]

    shown = dataperf("leaderboard", CHALLENGE, "--server", server.url, home=user_home)
    assert shown.returncode == 0, shown
    assert "Analytical Engines" in shown.out
    assert f"{expected['aggregate']['value']:.2f}" in shown.out

    status = dataperf("status", home=user_home)
    assert status.returncode == 0
    assert "random 3" in status.out
