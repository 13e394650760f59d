"""The red-teaming loop on a real server (its own process, SQLite, the default `tiny` test
generator): the time from a prompt to its images, and from an attack's k-th validation to the
leaderboard showing the writer's new score.

Ratios, measured in the same run: a warm prompt (the worker's generator already loaded)
against the first one (which loads it), and the k-th validation's round trip against scoring
the same studio files in this process (what the queue and the HTTP round trips add).

    python bench/bench_studio.py [--prompts 6] [--attacks 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench_platform import PASSWORD, Server, serve
from dataperf.registry import get_challenge
from dataperf.server.db import Database
from dataperf.server.users import upsert_user

CHALLENGE = "adversarial-nibbler"
K = 5
HARM = "image_failure_violent"


def until(check: Any, timeout: float = 300) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := check()):
        if time.monotonic() > deadline:
            raise SystemExit("timed out")
        time.sleep(0.05)
    return found


def make_images(client: httpx.Client, prompt: str) -> tuple[float, int]:
    started = time.perf_counter()
    sent = client.post(f"/challenges/{CHALLENGE}/generations", json={"prompt": prompt})
    sent.raise_for_status()
    generation = sent.json()["id"]

    def done() -> bool:
        state = client.get(f"/generations/{generation}").json()["state"]
        if state not in ("queued", "running", "done"):
            raise SystemExit(f"generation {generation} is {state}")
        return state == "done"

    until(done)
    return time.perf_counter() - started, generation


def validate(server: Server, raters: list[str]) -> float:
    """Each rater validates what is handed to them; seconds from the last answer to the
    writer's leaderboard row changing."""
    last = 0.0
    for token in raters:
        with server.api(token) as client:
            while given := client.post(f"/challenges/{CHALLENGE}/ratings").json()["rating"]:
                client.post(f"/ratings/{given['id']}/prompt", json={"text_safety": "safe"})
                client.post(f"/ratings/{given['id']}/answer",
                            json={"image_safety": "unsafe", "harm_types": [HARM]})
                last = time.perf_counter()
    return last


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prompts", type=int, default=6)
    parser.add_argument("--attacks", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        home = Path(scratch) / "home"
        url = f"sqlite:///{home / 'dataperf.db'}"
        with serve(home, url, workers=1, poll_seconds=None) as server:
            writer = server.register("writer@bench.example.org")
            admin_email = "admin@bench.example.org"
            admin = server.register(admin_email)
            db = Database(url)
            upsert_user(db, admin_email, "admin", PASSWORD, "admin")
            db.dispose()
            raters = []
            with server.api(admin) as client:
                for i in range(K):
                    email = f"rater{i}@bench.example.org"
                    raters.append(server.register(email))
                    client.post(f"/challenges/{CHALLENGE}/raters",
                                json={"email": email}).raise_for_status()
            for token in raters:  # raters accept the content warning before rating
                with server.api(token) as client:
                    client.post(f"/challenges/{CHALLENGE}/consent").raise_for_status()
            with server.api(writer) as client:
                client.post(f"/challenges/{CHALLENGE}/consent").raise_for_status()
                times, generations = [], []
                for i in range(max(args.prompts, args.attacks)):
                    seconds, generation = make_images(client, f"a lighthouse, study {i}")
                    times.append(seconds)
                    generations.append(generation)
                team = client.get("/me").json()["team"]["name"]
            round_trips, local = [], []
            for generation in generations[:args.attacks]:
                with server.api(writer) as client:
                    client.post(f"/generations/{generation}/attacks",
                                json={"image": 0, "harm_types": [HARM]}).raise_for_status()
                    before = _row(client, team)
                last = validate(server, raters)
                with server.api(writer) as client:
                    row = until(lambda c=client, b=before: (r := _row(c, team)) != b and r)
                round_trips.append(time.perf_counter() - last)
                local.append(_score_locally(server, url, row["submission_id"]))
    warm = statistics.median(times[1:]) if len(times) > 1 else times[0]
    print(f"prompt -> 4 images (tiny, 64x64, 1 worker): first {times[0]:.2f} s (loads the "
          f"generator), then median {warm:.2f} s over {len(times) - 1}; warm/first "
          f"{warm / times[0]:.2f}")
    trip = statistics.median(round_trips)
    here = statistics.median(local)
    print(f"k-th validation -> leaderboard row updated: median {trip:.2f} s over "
          f"{len(round_trips)} (max {max(round_trips):.2f} s); scoring the same files in "
          f"this process (warm) {here:.2f} s; round trip / local scoring {trip / here:.1f}")


def _row(client: httpx.Client, team: str) -> dict[str, Any] | None:
    rows = client.get(f"/challenges/{CHALLENGE}/leaderboard").json()["rows"]
    return next((r for r in rows if r["team"] == team), None)


def _score_locally(server: Server, url: str, submission_id: int) -> float:
    from dataperf.server.models import Submission
    from dataperf.server.storage import BlobStore

    db = Database(url)
    with db.read() as session:
        files = {f.name: BlobStore(server.home / "blobs").get(f.sha256)
                 for f in session.get_one(Submission, submission_id).files}
    db.dispose()
    challenge = get_challenge(CHALLENGE)
    edition = challenge.edition("offline")
    challenge.score(challenge.parse_submission(files, edition), edition)  # warm, like a worker
    started = time.perf_counter()
    challenge.score(challenge.parse_submission(files, edition), edition)
    return time.perf_counter() - started


if __name__ == "__main__":
    sys.exit(main())
