"""Organizers on a real server (SQLite and PostgreSQL), through the real CLI: host their own
declarative challenge, split the hidden test data into public and private parts, let teams pick
final submissions, reveal the private leaderboard at the deadline, freeze a snapshot and open a
new round. Participants download the public data and reproduce the public score locally."""

from __future__ import annotations

import json
import re
import shlex
import time
from html import unescape
from pathlib import Path
from typing import Any

import httpx

from challenges.test_declarative import NAME, write_organizer_files
from dataperf.registry import get_challenge
from official_layout import CliResult, dataperf
from platform_harness import PASSWORD, LiveServer, fast_settings, live_server

EDITION = "organizer"


def _ok(result: CliResult) -> CliResult:
    assert result.returncode == 0, result
    return result


def _login(server: LiveServer, email: str, home: Path) -> None:
    _ok(dataperf("login", "--server", server.url, "--email", email, "--password-stdin",
                 home=home, input=PASSWORD + "\n"))


def test_organizer_hosts_a_declarative_challenge_with_a_private_split(
        server: LiveServer, tmp_path: Path) -> None:
    organizer_home, participant_home = tmp_path / "organizer", tmp_path / "participant"
    server.user("olga@example.org", role="organizer")
    _login(server, "olga@example.org", organizer_home)
    files = write_organizer_files(tmp_path / "files")
    _ok(dataperf("data", "create", "spec.yaml", home=organizer_home, cwd=files))
    edition_dir = organizer_home / "editions" / NAME / EDITION
    hosted = _ok(dataperf("organize", "create", edition_dir, "--private-fraction", "0.5",
                          "--final-count", "1", "--daily-quota", "5", home=organizer_home))
    assert f"hosted {NAME}" in hosted.out

    token = server.user("pat@example.org")
    _login(server, "pat@example.org", participant_home)
    downloaded = _ok(dataperf("download", NAME, home=participant_home))
    assert "installed the public data" in downloaded.out
    assert not list((participant_home / "editions").rglob("hidden*"))  # public part only
    runs = {}
    for algorithm in ("random", "confidence"):
        runs[algorithm] = tmp_path / algorithm
        _ok(dataperf("run", NAME, "--algorithm", algorithm, "--edition", EDITION, "--out",
                     runs[algorithm], home=participant_home))
    first = _ok(dataperf("submit", NAME, runs["random"], home=participant_home))
    assert "checked locally against organizer" in first.err
    assert "public test data" in first.out
    assert "private" not in first.out  # hidden until the deadline
    _ok(dataperf("submit", NAME, runs["confidence"], home=participant_home))

    with server.api(token) as api:
        mine = api.get("/submissions", params={"challenge": NAME}).json()
        first_id, second_id = sorted(s["id"] for s in mine)
        public = api.get(f"/challenges/{NAME}/leaderboard").json()
        assert public["part"] == "public"
        assert api.get(f"/challenges/{NAME}/leaderboard",
                       params={"part": "private"}).status_code == 403
        assert api.put(f"/submissions/{first_id}/final", json={"final": True}).status_code == 200
        refused = api.put(f"/submissions/{second_id}/final", json={"final": True})
        assert refused.status_code == 409
        assert "at most 1" in refused.json()["error"]["message"]
        public_score = api.get(f"/submissions/{first_id}").json()["scores"]["public"]

    # The organizer holds the hidden data: the local scorer reproduces the public part exactly.
    local = _ok(dataperf("evaluate", NAME, runs["random"], "--edition", EDITION,
                         "--private-fraction", "0.5", "--part", "public", "--json",
                         home=organizer_home))
    assert json.loads(local.stdout)["aggregate"]["value"] == public_score["aggregate"]["value"]

    _ok(dataperf("organize", "set-round", NAME, "1", "--deadline", "2001-01-01T00:00:00Z",
                 home=organizer_home))
    with server.api(token) as api:
        private = api.get(f"/challenges/{NAME}/leaderboard", params={"part": "private"}).json()
        late = api.post(f"/challenges/{NAME}/submissions",
                        files=[("files", (p.name, p.read_bytes()))
                               for p in sorted(runs["random"].iterdir())])
        revealed = api.get(f"/submissions/{first_id}").json()["scores"]
    assert [r["submission_id"] for r in private["rows"]] == [first_id]  # the team's final
    assert late.status_code == 409
    assert "closed" in late.json()["error"]["message"]
    assert set(revealed) == {"public", "private"}

    _ok(dataperf("organize", "snapshot", NAME, "final standings", home=organizer_home))
    opened = _ok(dataperf("organize", "open-round", NAME, "--private-fraction", "0.5",
                          home=organizer_home))
    assert "opened round 2" in opened.out
    again = _ok(dataperf("submit", NAME, runs["random"], home=participant_home))
    assert "round 2" in again.out
    with server.api() as api:
        snapshots = api.get(f"/challenges/{NAME}/snapshots").json()
        rounds = api.get(f"/challenges/{NAME}").json()["rounds"]
    assert [(s["name"], s["round"]) for s in snapshots] == [("final standings", 1)]
    frozen = snapshots[0]["leaderboard"]
    assert frozen["part"] == "private"  # after the deadline: the final standings
    assert [r["submission_id"] for r in frozen["rows"]] == [first_id]
    assert [(r["number"], r["closed"]) for r in rounds] == [(1, True), (2, False)]


def _box_commands(server: LiveServer, name: str) -> list[list[str]]:
    """The commands of a challenge page's "Data and baselines" box, as a user copies them."""
    page = httpx.get(f"{server.url}/challenges/{name}").text
    box = page.split("Data and baselines", 1)[1].split("</details>", 1)[0]
    found = re.search(r"<pre><code>(.*?)</code></pre>", box, re.S)
    assert found, box
    lines = [line.split("#", 1)[0].strip() for line in unescape(found.group(1)).splitlines()]
    commands = [shlex.split(line) for line in lines if line]
    assert all(words[0] == "dataperf" for words in commands), commands
    return [words[1:] for words in commands]


def test_the_challenge_pages_commands_work_as_copied(server: LiveServer, tmp_path: Path) -> None:
    """For an organizer's challenge (public data to download, its own edition name) and for a
    bundled one (nothing to download), every command in the page's box runs as it stands and
    the last one submits."""
    organizer_home, participant_home = tmp_path / "organizer", tmp_path / "participant"
    server.user("olive@example.org", role="organizer")
    _login(server, "olive@example.org", organizer_home)
    files = write_organizer_files(tmp_path / "files")
    _ok(dataperf("data", "create", "spec.yaml", home=organizer_home, cwd=files))
    _ok(dataperf("organize", "create", organizer_home / "editions" / NAME / EDITION,
                 home=organizer_home))
    token = server.user("cody@example.org")
    _login(server, "cody@example.org", participant_home)
    for name, first in ((NAME, "download"), ("vision-selection", "algorithms")):
        commands = _box_commands(server, name)
        assert commands[0][0] == first
        assert commands[-1][:2] == ["submit", name]
        if name == NAME:
            assert commands[2][2:4] == ["--edition", EDITION]  # run the downloaded edition
        work = tmp_path / name
        work.mkdir()
        for words in commands:
            _ok(dataperf(*words, home=participant_home, cwd=work))
    with server.api(token) as api:
        submitted = sorted(s["challenge"] for s in api.get("/submissions").json())
    assert submitted == sorted([NAME, "vision-selection"])


def test_queue_position_cancel_and_quota(tmp_path: Path) -> None:
    """With no worker running, submissions wait in order (ahead of the queued baselines, which
    fill idle time); cancelling one frees its quota."""
    from dataperf.registry import get_challenge
    from platform_harness import database_url, fast_settings, live_server

    challenge = get_challenge("vision-selection")
    files = challenge.run_algorithm("random", challenge.edition("offline"))
    upload = [("files", (n, d)) for n, d in files.items()]
    with database_url("sqlite", tmp_path) as url, \
            live_server(fast_settings(tmp_path / "home", url, workers=0, daily_quota=2,
                                      baselines=("random",))) as live:
        token = live.user("queue@example.org")
        with live.api(token) as api:
            first = api.post("/challenges/vision-selection/submissions", files=upload).json()
            second = api.post("/challenges/vision-selection/submissions", files=upload).json()
            full = api.post("/challenges/vision-selection/submissions", files=upload)
            assert (first["position"], second["position"]) == (0, 1)
            assert full.status_code == 429
            assert "next one frees up at" in full.json()["error"]["message"]
            cancelled = api.post(f"/submissions/{first['id']}/cancel").json()
            assert cancelled["state"] == "cancelled"
            assert api.get(f"/submissions/{second['id']}").json()["position"] == 0
            assert api.get("/challenges/vision-selection/quota").json()["daily_used"] == 1
            assert api.post("/challenges/vision-selection/submissions",
                            files=upload).status_code == 202
            again = api.post(f"/submissions/{first['id']}/cancel")
            assert again.status_code == 409


def test_a_new_split_scores_the_baselines_again_and_is_refused_after_entries(
        db_url: str, tmp_path: Path) -> None:
    """Changing a round's private share once only baselines are in scores them again on the
    new split (they used to vanish from the public board); once a participant has submitted,
    the change is refused, saying why and what to do instead."""
    settings = fast_settings(tmp_path / "home", db_url, seed_bundled=False,
                             baselines=("random",))
    with live_server(settings) as live:
        organizer = live.user("sam@example.org", role="organizer")
        live.host("vision-selection", "split-check", owner_email="sam@example.org")
        board = _board_when(live, "split-check", lambda rows: len(rows) == 1)
        before = board["rows"][0]["score"]["value"]
        with live.api(organizer) as api:
            changed = api.patch("/challenges/split-check/rounds/1",
                                json={"private_fraction": 0.5})
            assert changed.status_code == 200, changed.text
        public = _board_when(live, "split-check", lambda rows: len(rows) == 1)
        assert public["part"] == "public"
        assert public["rows"][0]["score"]["value"] != before  # scored on the public half

        participant = live.user("pia@example.org")
        challenge = get_challenge("vision-selection")
        files = challenge.run_algorithm("random", challenge.edition("offline"), random_state=2)
        with live.api(participant) as api:
            assert api.post("/challenges/split-check/submissions", files=[
                ("files", (n, d)) for n, d in files.items()]).status_code == 202
        with live.api(organizer) as api:
            refused = api.patch("/challenges/split-check/rounds/1",
                                json={"private_fraction": 0.3})
            unchanged = api.get("/challenges/split-check").json()["rounds"][0]
    assert refused.status_code == 409
    assert "1 submission(s)" in refused.json()["error"]["message"]
    assert "open a new round" in refused.json()["error"]["message"]
    assert unchanged["private_fraction"] == 0.5


def _board_when(live: LiveServer, name: str, ready: Any, timeout: float = 120) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        with live.api() as api:
            board = api.get(f"/challenges/{name}/leaderboard").json()
        if ready(board["rows"]):
            return board
        assert time.monotonic() < deadline, board
        time.sleep(0.2)
