"""The users of the load benchmark (run by ``run.py``, which passes its set-up in
``DATAPERF_LOAD_SETUP``: a JSON file of the API tokens, the submission files' folder, the
challenge and its tasks, and where to write every request's timing and end).

- ``Submitter`` (``fixed_count`` of them): uploads the same vision-selection submission through
  the API, then thinks 2 to 4 s.
- ``Reader`` (the other users): one team member (a submitter's token, round robin) browsing,
  1 to 3 s between requests: the home page, the challenge page, its leaderboard of one task,
  the leaderboard JSON, the history JSON, the team's submissions and one of them.

Requests are named by route template (``/api/v1/submissions/{id}``), not by concrete URL.
Only the standard library and locust are imported: this runs in locust's gevent process.
"""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Iterator
from itertools import count
from pathlib import Path
from typing import Any

from locust import FastHttpUser, HttpUser, between, events, task

SETUP: dict[str, Any] = json.loads(Path(os.environ["DATAPERF_LOAD_SETUP"]).read_text())
CHALLENGE: str = SETUP["challenge"]
FILES = sorted(Path(SETUP["files"]).iterdir())
TIMINGS: dict[str, list[float]] = {}
MOMENTS: dict[str, list[float]] = {}  # when each request ended, seconds since the epoch
ERRORS: dict[str, list[str]] = {}
ACCEPTED: list[int] = []
WINDOW: dict[str, float] = {}


def tokens() -> Iterator[str]:
    """The teams' tokens in turn: each user acts for one team."""
    for k in count():
        yield SETUP["tokens"][k % len(SETUP["tokens"])]


@events.request.add_listener
def record(request_type: str, name: str, response_time: float, exception: Any, **_: Any) -> None:
    route = f"{request_type} {name}"
    TIMINGS.setdefault(route, []).append(response_time / 1000)
    MOMENTS.setdefault(route, []).append(time.time())
    if exception is not None:
        ERRORS.setdefault(route, []).append(str(exception)[:200])


@events.test_start.add_listener
def started(**_: Any) -> None:
    WINDOW["start"] = time.time()


@events.spawning_complete.add_listener
def ramped(**_: Any) -> None:
    """Every user started: the steady part of the run begins."""
    WINDOW["ramped"] = time.time()


@events.test_stop.add_listener
def stopped(**_: Any) -> None:
    """Every request's time (seconds) and end by route, the errors and the accepted
    submissions."""
    WINDOW["stop"] = time.time()
    Path(SETUP["out"]).write_text(
        json.dumps({"window": WINDOW, "timings": TIMINGS, "moments": MOMENTS, "errors": ERRORS,
                    "accepted": ACCEPTED})
    )


class Submitter(HttpUser):
    """Uploads (multipart, as the CLI does) with its team's token."""

    fixed_count = int(SETUP["submitters"])
    wait_time = between(2, 4)
    teams = tokens()  # one submitter per team

    def on_start(self) -> None:
        self.client.headers["Authorization"] = f"Bearer {next(self.teams)}"
        self.upload = [("files", (p.name, p.read_bytes(), "application/octet-stream"))
                       for p in FILES]

    @task
    def submit(self) -> None:
        with self.client.post(
            f"/api/v1/challenges/{CHALLENGE}/submissions",
            data={"label": "load"},
            files=self.upload,
            name="/api/v1/challenges/{name}/submissions",
            catch_response=True,
        ) as answer:
            if answer.status_code != 202:
                answer.failure(f"{answer.status_code} {answer.text[:200]}")
            else:
                ACCEPTED.append(int(answer.json()["id"]))


class Reader(FastHttpUser):
    """Reads pages and JSON as a team member (its team's submissions with a token)."""

    wait_time = between(1, 3)
    teams = tokens()

    def on_start(self) -> None:
        self.auth = {"Authorization": f"Bearer {next(self.teams)}"}

    @task(1)
    def home(self) -> None:
        self.client.get("/", name="/")

    @task(2)
    def challenge_page(self) -> None:
        self.client.get(f"/challenges/{CHALLENGE}", name="/challenges/{name}")

    @task(2)
    def leaderboard_page(self) -> None:
        self.client.get(
            f"/challenges/{CHALLENGE}?view={random.choice(SETUP['tasks'])}",
            name="/challenges/{name}?view={task}",
        )

    @task(4)
    def leaderboard(self) -> None:
        self.client.get(
            f"/api/v1/challenges/{CHALLENGE}/leaderboard",
            name="/api/v1/challenges/{name}/leaderboard",
        )

    @task(1)
    def history(self) -> None:
        self.client.get(
            f"/api/v1/challenges/{CHALLENGE}/history", name="/api/v1/challenges/{name}/history"
        )

    @task(2)
    def submissions(self) -> None:
        """The team's latest submissions, then one of them (as a client polling it)."""
        answer = self.client.get(
            f"/api/v1/submissions?challenge={CHALLENGE}&limit=20",
            headers=self.auth,
            name="/api/v1/submissions",
        )
        found = answer.json() if answer.status_code == 200 else []
        if found:
            self.client.get(
                f"/api/v1/submissions/{random.choice(found)['id']}",
                headers=self.auth,
                name="/api/v1/submissions/{id}",
            )
