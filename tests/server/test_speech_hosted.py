"""The hosted platform takes a speech-selection submission (one {task}_train.json per language
and budget), refuses a clip listed under the wrong word naming it, and ranks the submission on
six leaderboards and their mean, with the same score as local evaluation."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from dataperf.registry import get_challenge
from dataperf.server.web.session import SESSION_COOKIE
from platform_harness import database_url, fast_settings, live_server

CHALLENGE = "speech-selection"


def test_speech_submissions_are_scored_on_six_leaderboards(tmp_path: Path) -> None:
    challenge = get_challenge(CHALLENGE)
    edition = challenge.edition("offline")
    assert list(edition.tasks) == ["en_25", "en_60", "id_25", "id_60", "pt_25", "pt_60"]
    files = challenge.run_algorithm("random", edition, random_state=0)
    document = json.loads(files["id_25_train.json"])
    first, second = sorted(document["targets"])[:2]
    moved = document["targets"][first][0]  # listed under the wrong keyword
    document["targets"][second].append(moved)
    document["targets"][first].remove(moved)
    wrong = json.dumps(document).encode()
    with database_url("sqlite", tmp_path) as url, \
            live_server(fast_settings(tmp_path / "home", url)) as live:
        token = live.user("listener@example.org")
        with live.api(token) as api:
            refused = api.post(f"/challenges/{CHALLENGE}/submissions", files=[
                ("files", (n, wrong if n == "id_25_train.json" else d))
                for n, d in files.items()])
            accepted = api.post(f"/challenges/{CHALLENGE}/submissions",
                                files=[("files", (n, d)) for n, d in files.items()])
        assert refused.status_code == 422
        (problem,) = refused.json()["error"]["problems"]
        assert problem["rule"] == "wrong-word"
        assert problem["file"] == "id_25_train.json"
        assert problem["ids"] == [moved]
        assert accepted.status_code == 202, accepted.text
        scored = live.wait(token, accepted.json()["id"], timeout=600)
        assert scored["state"] == "scored", scored["message"]
        local = challenge.score(challenge.parse_submission(files, edition), edition)
        page = httpx.get(f"{live.url}/submissions/{scored['id']}", cookies={
            SESSION_COOKIE: token}, timeout=60)
        with live.api() as api:
            board = api.get(f"/challenges/{CHALLENGE}/leaderboard").json()
            per_task = {task: api.get(f"/challenges/{CHALLENGE}/leaderboard",
                                      params={"view": task}).json() for task in edition.tasks}
    assert board["direction"] == "higher"
    (row,) = board["rows"]
    assert row["score"]["value"] == local.aggregate.value
    assert set(row["tasks"]) == set(edition.tasks)
    for task, view in per_task.items():
        assert view["rows"][0]["score"]["value"] == row["tasks"][task]["value"]
        assert row["tasks"][task]["value"] == next(t.value for t in local.tasks if t.task == task)
    assert page.status_code == 200
    assert page.text.count("<svg") >= len(edition.tasks)  # selected clips per task
    assert "selected, a target word" in page.text  # the picture's key
    assert "selected, a nontarget word" in page.text
