"""The hosted platform takes a cleaning submission (one ordering file per task, all at once)
and ranks it on per-task and mean leaderboards where lower is better."""

from __future__ import annotations

from pathlib import Path

import httpx

from dataperf.registry import get_challenge
from dataperf.server.web.session import SESSION_COOKIE
from platform_harness import database_url, fast_settings, live_server

CHALLENGE = "vision-cleaning"


def test_cleaning_submissions_are_scored_and_ranked_lower_is_better(tmp_path: Path) -> None:
    challenge = get_challenge(CHALLENGE)
    edition = challenge.edition("offline")
    files = challenge.run_algorithm("random", edition, random_state=1)
    assert len(files) == len(edition.tasks) == 9
    with database_url("sqlite", tmp_path) as url, \
            live_server(fast_settings(tmp_path / "home", url)) as live:
        token = live.user("cleaner@example.org")
        with live.api(token) as api:
            broken = dict(files)
            broken["Bag-random.txt"] = b"0\n0\n"
            refused = api.post(f"/challenges/{CHALLENGE}/submissions",
                               files=[("files", (n, d)) for n, d in broken.items()])
            accepted = api.post(f"/challenges/{CHALLENGE}/submissions",
                                files=[("files", (n, d)) for n, d in files.items()])
        assert refused.status_code == 422
        assert {p["rule"] for p in refused.json()["error"]["problems"]} >= {"duplicate-index"}
        assert accepted.status_code == 202, accepted.text
        scored = live.wait(token, accepted.json()["id"], timeout=600)
        assert scored["state"] == "scored", scored["message"]
        page = httpx.get(f"{live.url}/submissions/{scored['id']}", cookies={
            SESSION_COOKIE: token}, timeout=60)
        with live.api() as api:
            board = api.get(f"/challenges/{CHALLENGE}/leaderboard").json()
            per_task = api.get(f"/challenges/{CHALLENGE}/leaderboard",
                               params={"view": "Trouser-random"}).json()
    assert board["direction"] == "lower"
    (row,) = board["rows"]
    assert row["score"]["value"] == scored["scores"]["all"]["aggregate"]["value"]
    assert 0 < row["score"]["value"] < 1
    assert set(row["tasks"]) == set(edition.tasks)
    assert per_task["rows"][0]["score"]["value"] == row["tasks"]["Trouser-random"]["value"]
    assert page.status_code == 200  # a curve per task, beside the leading entry's
    assert page.text.count(": test accuracy as labels are fixed in order") == len(edition.tasks)
    assert page.text.count("<polyline") >= 2 * len(edition.tasks)
    assert "best entry (" in page.text
