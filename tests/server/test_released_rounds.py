"""The released Adversarial Nibbler rounds on the platform: on first start they are hosted as
closed rounds before the open one, each original participant a ranked entry scored on the
queue by the same scorer as `dataperf evaluate`, and the studio works in the open round."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from dataperf.registry import challenges
from platform_harness import LiveServer, fast_settings, live_server

NAME = "adversarial-nibbler"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    home = tmp_path_factory.mktemp("released") / "home"
    with live_server(fast_settings(home, released_rounds=True)) as server:
        yield server


def board(live: LiveServer, number: int, entries: int, timeout: float = 300
          ) -> dict[str, Any]:
    """The round's leaderboard once all its entries are scored."""
    deadline = time.monotonic() + timeout
    with live.api() as client:
        while True:
            found: dict[str, Any] = client.get(f"/challenges/{NAME}/leaderboard",
                                               params={"round": number}).json()
            if len(found["rows"]) == entries:
                return found
            assert time.monotonic() < deadline, f"{len(found['rows'])} of {entries} scored"
            time.sleep(0.5)


def test_released_rounds_are_closed_rounds_before_the_open_one(live: LiveServer) -> None:
    with live.api() as client:
        rounds = client.get(f"/challenges/{NAME}").json()["rounds"]
    assert [(r["number"], r["name"], r["closed"]) for r in rounds] == [
        (1, "Original round 1 (released)", True), (2, "Original round 3 (released)", True),
        (3, "Original round 4 (released)", True), (4, "Round 4", False)]


def test_each_original_participant_is_ranked_with_the_local_score(live: LiveServer) -> None:
    challenge = challenges()[NAME]
    edition = challenge.edition("offline")
    released = challenge.released_rounds(edition)
    assert [r.name for r in released] == ["round1", "round3", "round4"]
    first = released[0]
    local = challenge.score_all(  # the whole round at once, as `dataperf evaluate` scores it
        challenge.parse_submission(challenge.run_algorithm("replay", edition,
                                                           params={"round": "round1"}),
                                   edition), edition)
    expected = {f"Original participant {s.result.participant}": s.score for s in local}
    assert len(expected) == len(first.entries) == 73

    rows = board(live, 1, len(expected))["rows"]
    assert {row["team"] for row in rows} == set(expected)
    for row in rows:
        score = expected[row["team"]]
        assert row["score"]["value"] == score.aggregate.value
        assert row["tasks"]["prompt-creativity"]["value"] == pytest.approx(
            score.tasks[1].value, abs=1e-9)
        assert not row["is_baseline"]
    assert [row["rank"] for row in rows][:1] == [1]
    values = [row["score"]["value"] for row in rows]
    assert values == sorted(values, reverse=True)


def test_the_later_released_rounds_are_scored_too(live: LiveServer) -> None:
    assert len(board(live, 2, 8)["rows"]) == 8
    assert len(board(live, 3, 22)["rows"]) == 22


def test_the_studio_is_the_open_round(live: LiveServer) -> None:
    token = live.user("newcomer@released.example.org")
    with live.api(token) as client:
        assert client.post(f"/challenges/{NAME}/consent").status_code == 200
        studio = client.get(f"/challenges/{NAME}/studio").json()
    assert studio["round"] == 4


def test_the_challenge_page_shows_every_round(live: LiveServer) -> None:
    board(live, 1, 73)
    page = httpx.get(f"{live.url}/challenges/{NAME}", params={"round": 1}).text
    current = httpx.get(f"{live.url}/challenges/{NAME}").text
    assert "round 1, Original round 1 (released)" in page
    assert page.count("Original participant ") >= 73
    assert "Open the attack studio" not in page  # it is the open round's
    assert 'aria-current="page">Original round 1 (released)</a>' in page
    assert 'href="?view=aggregate&round=2#leaderboard"' in current
    assert "Round 4 (open)" in current
    assert "Open the attack studio" in current
