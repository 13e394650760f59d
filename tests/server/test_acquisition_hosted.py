"""The hosted platform takes an acquisition submission (one purchase file per market, all at
once), refuses one over budget naming the market, and ranks it on per-market and mean
leaderboards where higher is better."""

from __future__ import annotations

from pathlib import Path

import httpx

from dataperf.registry import get_challenge
from dataperf.server.web.session import SESSION_COOKIE
from platform_harness import database_url, fast_settings, live_server

CHALLENGE = "data-acquisition"


def test_acquisition_submissions_are_scored_and_ranked(tmp_path: Path) -> None:
    challenge = get_challenge(CHALLENGE)
    edition = challenge.edition("offline")
    files = challenge.run_algorithm("uniform", edition, random_state=0)
    assert sorted(files) == sorted(f"{market}.txt" for market in edition.tasks)
    first = edition.tasks[0]
    sellers = files[f"{first}.txt"].decode().strip().split(",")
    over_budget = ",".join(["1000000"] * len(sellers)).encode()
    with database_url("sqlite", tmp_path) as url, \
            live_server(fast_settings(tmp_path / "home", url)) as live:
        token = live.user("buyer@example.org")
        with live.api(token) as api:
            refused = api.post(f"/challenges/{CHALLENGE}/submissions", files=[
                ("files", (n, over_budget if n == f"{first}.txt" else d))
                for n, d in files.items()])
            accepted = api.post(f"/challenges/{CHALLENGE}/submissions",
                                files=[("files", (n, d)) for n, d in files.items()])
        assert refused.status_code == 422
        problems = refused.json()["error"]["problems"]
        assert {p["rule"] for p in problems} & {"over-budget", "more-than-offered"}
        assert all(p["file"] == f"{first}.txt" for p in problems)
        assert accepted.status_code == 202, accepted.text
        scored = live.wait(token, accepted.json()["id"], timeout=600)
        assert scored["state"] == "scored", scored["message"]
        local = challenge.score(challenge.parse_submission(files, edition), edition)
        page = httpx.get(f"{live.url}/submissions/{scored['id']}", cookies={
            SESSION_COOKIE: token}, timeout=60)
        with live.api() as api:
            board = api.get(f"/challenges/{CHALLENGE}/leaderboard").json()
            per_market = api.get(f"/challenges/{CHALLENGE}/leaderboard",
                                 params={"view": first}).json()
    assert board["direction"] == "higher"
    (row,) = board["rows"]
    assert row["score"]["value"] == scored["scores"]["all"]["aggregate"]["value"]
    assert row["score"]["value"] == local.aggregate.value
    assert set(row["tasks"]) == set(edition.tasks)
    assert per_market["rows"][0]["score"]["value"] == row["tasks"][first]["value"]
    details = scored["scores"]["all"]["tasks"][0]["details"]
    assert {"accuracy", "cost", "savings"} <= set(details)
    assert page.status_code == 200  # the submission page shows each market's components
    assert all(f"<th scope=\"col\">{header}</th>" in page.text
               for header in ("Accuracy", "Cost", "Savings"))
    assert f'data-detail="cost">{details["cost"]:.3f}<' in page.text
    assert "What was bought" in page.text  # and the rows bought from each seller, per market
    assert page.text.count("<svg") >= len(edition.tasks)
    assert f"market {first}: " in page.text
