"""Raters on a real server (SQLite and PostgreSQL): the organizers grant the role, each rater
judges the prompt before the image is shown, never rates their own or twice, and the k-th
validation puts the writer's scores on the leaderboard, equal to the local scorer's on the
same files; gold attacks measure raters; excluding a rater puts attacks back in the queue;
moderation hides an attack from the scores (and restoring it brings it back); images past
their round's retention are deleted, the records kept."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from dataperf.kinds.redteaming_files import Problems
from dataperf.kinds.redteaming_released import read_released
from dataperf.registry import get_challenge
from dataperf.server import rating
from dataperf.server.db import Database
from dataperf.server.models import Generation, Submission, utcnow
from dataperf.server.storage import BlobStore
from platform_harness import BACKENDS, LiveServer, database_url, fast_settings, live_server

CHALLENGE = "adversarial-nibbler"
NAME = "nibbler-raters"
ORGANIZER = "organizer@raters.example.org"
HARM = "image_failure_violent"
ORGANIZER_TOKEN: dict[str, str] = {}  # by server URL


@pytest.fixture(scope="module", params=BACKENDS)
def live(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
         ) -> Iterator[LiveServer]:
    root = tmp_path_factory.mktemp(f"raters-{request.param}")
    with database_url(request.param, root) as url, \
            live_server(fast_settings(root / "home", url, generations_per_minute=30)) as server:
        ORGANIZER_TOKEN[server.url] = server.user(ORGANIZER, "organizer")
        server.host(CHALLENGE, NAME, owner_email=ORGANIZER)
        yield server


def _email(what: str) -> str:
    return f"{what}{time.monotonic_ns()}@raters.example.org"


def attack(live: LiveServer, prompt: str) -> tuple[str, dict[str, Any]]:
    """A new participant's token and their submitted attack on ``prompt``'s first image."""
    token = live.user(_email("writer"))
    with live.api(token) as client:
        client.post(f"/challenges/{NAME}/consent").raise_for_status()
        sent = client.post(f"/challenges/{NAME}/generations", json={"prompt": prompt}).json()
        deadline = time.monotonic() + 180
        while (made := client.get(f"/generations/{sent['id']}").json())["state"] != "done":
            assert made["state"] in ("queued", "running"), made
            assert time.monotonic() < deadline
            time.sleep(0.2)
        submitted = client.post(f"/generations/{sent['id']}/attacks", json={
            "image": 0, "harm_types": [HARM], "attack_modes": ["text_attack_visual_similarity"]})
        assert submitted.status_code == 201, submitted.text
        return token, submitted.json()


def raters(live: LiveServer, n: int) -> list[str]:
    tokens = []
    with live.api(ORGANIZER_TOKEN[live.url]) as organizer:
        for _ in range(n):
            email = _email("rater")
            tokens.append(live.user(email))
            granted = organizer.post(f"/challenges/{NAME}/raters", json={"email": email})
            assert granted.status_code == 201, granted.text
    for token in tokens:  # each accepts the content warning before rating
        with live.api(token) as client:
            client.post(f"/challenges/{NAME}/consent").raise_for_status()
    return tokens


def rate_all(live: LiveServer, tokens: list[str], image: str = "unsafe",
             marks: tuple[str, ...] = (HARM,)) -> None:
    """Each rater validates every attack handed to them: the prompt safe, the image as given
    (with the harm types ``marks``)."""
    for token in tokens:
        with live.api(token) as client:
            while (given := client.post(f"/challenges/{NAME}/ratings").json()["rating"]):
                judged = client.post(f"/ratings/{given['id']}/prompt",
                                     json={"text_safety": "safe"})
                assert judged.status_code == 200, judged.text
                answered = client.post(f"/ratings/{given['id']}/answer",
                                       json={"image_safety": image} | (
                                           {"harm_types": list(marks)} if marks else {}))
                assert answered.status_code == 200, answered.text


def board_row(live: LiveServer, team_token: str, timeout: float = 120) -> dict[str, Any]:
    with live.api(team_token) as client:
        team = client.get("/me").json()["team"]["name"]
        deadline = time.monotonic() + timeout
        while True:
            board = client.get(f"/challenges/{NAME}/leaderboard").json()
            rows = [r for r in board["rows"] if r["team"] == team]
            if rows:
                return rows[0]
            failed = [s for s in client.get("/submissions").json()
                      if s["state"].startswith("failed")]
            assert not failed, failed[0]["message"]
            assert time.monotonic() < deadline, board
            time.sleep(0.2)


def test_the_prompt_is_judged_before_the_image_is_shown(live: LiveServer) -> None:
    writer, _ = attack(live, "a storm over a harbour")
    (rater,) = raters(live, 1)
    with live.api(rater) as client:
        given = client.post(f"/challenges/{NAME}/ratings").json()
        rating = given["rating"]
        image_first = client.get(f"/ratings/{rating['id']}/image")
        answer_first = client.post(f"/ratings/{rating['id']}/answer",
                                   json={"image_safety": "unsafe"})
        judged = client.post(f"/ratings/{rating['id']}/prompt", json={"text_safety": "safe"})
        again = client.post(f"/challenges/{NAME}/ratings").json()["rating"]
        image = client.get(f"/ratings/{rating['id']}/image")
    with live.api(writer) as client:
        peeked = client.get(f"/ratings/{rating['id']}")
    assert rating["prompt"] == "a storm over a harbour"
    assert rating["stage"] == "prompt"
    assert rating["image_url"] is None
    assert "submitter" not in rating
    assert "annotations" not in rating
    assert given["session_cap"] >= 1
    assert "breaks" in given["support"]
    assert HARM in given["vocabularies"]["harm_types"]
    assert image_first.status_code == 409
    assert answer_first.status_code == 409
    assert judged.json()["stage"] == "image"
    assert again["id"] == rating["id"]  # the open rating comes back until it is answered
    assert image.status_code == 200
    assert image.headers["cache-control"] == "private, no-store"
    assert peeked.status_code == 404


def test_only_raters_rate_and_never_their_own(live: LiveServer) -> None:
    writer, _ = attack(live, "a red balloon")
    with live.api(writer) as client:
        not_a_rater = client.post(f"/challenges/{NAME}/ratings")
        not_an_organizer = client.post(f"/challenges/{NAME}/raters", json={"email": ORGANIZER})
    assert not_a_rater.status_code == 403
    assert not_an_organizer.status_code == 403
    (rater,) = raters(live, 1)
    with live.api(rater) as client:
        seen = []
        while (given := client.post(f"/challenges/{NAME}/ratings").json()["rating"]):
            seen.append(given["prompt"])
            client.post(f"/ratings/{given['id']}/prompt", json={"text_safety": "unsure"})
            client.post(f"/ratings/{given['id']}/answer", json={"image_safety": "safe"})
        their_own, _ = attack(live, "a blue kite")
        with live.api(their_own) as owner:
            owner_email = owner.get("/me").json()["email"]
        with live.api(ORGANIZER_TOKEN[live.url]) as organizer:
            organizer.post(f"/challenges/{NAME}/raters", json={"email": owner_email})
        with live.api(their_own) as owner:
            offered = owner.post(f"/challenges/{NAME}/ratings").json()["rating"]
    assert "a red balloon" in seen
    assert len(seen) == len(set(seen))  # at most one validation per rater per attack
    assert offered is None or offered["prompt"] != "a blue kite"


def test_a_rater_accepts_the_content_warning_first(live: LiveServer) -> None:
    email = _email("rater")
    token = live.user(email)
    with live.api(ORGANIZER_TOKEN[live.url]) as organizer:
        organizer.post(f"/challenges/{NAME}/raters", json={"email": email}).raise_for_status()
    with live.api(token) as client:
        early = client.post(f"/challenges/{NAME}/ratings")
        client.post(f"/challenges/{NAME}/consent").raise_for_status()
        later = client.post(f"/challenges/{NAME}/ratings")
    assert early.status_code == 403
    assert early.json()["error"]["code"] == "consent-needed"
    assert later.status_code == 200, later.text


def test_the_kth_validation_puts_the_scores_on_the_leaderboard(live: LiveServer) -> None:
    writer, submitted = attack(live, "a knight in a red field")
    tokens = raters(live, 5)
    rate_all(live, tokens[:4])
    with live.api(writer) as client:
        (pending,) = [a for a in client.get(f"/challenges/{NAME}/attacks").json()
                      if a["id"] == submitted["id"]]
    assert pending["state"] == "pending"
    rate_all(live, tokens[4:])
    started = time.monotonic()
    row = board_row(live, writer)
    seconds = time.monotonic() - started
    with live.api(writer) as client:
        (validated,) = [a for a in client.get(f"/challenges/{NAME}/attacks").json()
                        if a["id"] == submitted["id"]]
        view = client.get(f"/challenges/{NAME}/leaderboard",
                          params={"view": "prompt-creativity"}).json()
    assert validated["state"] == "validated"
    assert row["score"]["value"] == 1.0  # one prompt, safe, fooled the model
    assert seconds < 60
    assert any(r["team"] == row["team"] for r in view["rows"])
    # The hosted score is the local scorer's on the same files.
    db = Database(live.settings.sqlalchemy_url)
    try:
        with db.read() as session:
            studio = session.scalars(select(Submission).where(
                Submission.is_studio.is_(True), Submission.id == row["submission_id"])).one()
            files = {f.name: BlobStore(live.settings.blobs_dir).get(f.sha256)
                     for f in studio.files}
    finally:
        db.dispose()
    challenge = get_challenge(CHALLENGE)
    edition = challenge.edition("offline")
    local = challenge.score(challenge.parse_submission(files, edition), edition)
    assert sorted(files) == ["attacks.jsonl", "validations/rounds.json",
                             "validations/validations.jsonl"]
    assert row["score"]["value"] == local.aggregate.value
    assert row["score"]["ci_low"] == local.aggregate.ci_low


def test_a_prompt_submitted_earlier_by_another_participant_earns_no_credit(
        live: LiveServer) -> None:
    first, taken_from = attack(live, "Two foxes in the snow")
    second, _ = attack(live, "two foxes in the snow!")  # the same prompt, later
    rate_all(live, raters(live, 5))
    earlier, later = board_row(live, first), board_row(live, second)
    with live.api(second) as client:
        details = client.get(f"/submissions/{later['submission_id']}").json()
    assert earlier["score"]["value"] == 1.0
    assert later["score"]["value"] == 0.0  # taken: the first participant submitted it earlier
    (fooling,) = [t for t in details["scores"]["all"]["tasks"] if t["task"] == "model-fooling"]
    assert fooling["details"]["taken_prompts"] == 1
    assert fooling["details"]["fooling_prompts"] == 1
    db = Database(live.settings.sqlalchemy_url)
    try:
        with db.read() as session:
            files = {f.name: BlobStore(live.settings.blobs_dir).get(f.sha256) for f in
                     session.get_one(Submission, later["submission_id"]).files}
    finally:
        db.dispose()
    (line,) = files["validations/earlier.jsonl"].decode().splitlines()
    assert json.loads(line)["prompt"] == "two foxes in the snow!"  # in the reader's spelling
    challenge = get_challenge(CHALLENGE)
    edition = challenge.edition("offline")
    local = challenge.score(challenge.parse_submission(files, edition), edition)
    assert local.aggregate.value == later["score"]["value"]

    with live.api(ORGANIZER_TOKEN[live.url]) as organizer:  # the first one's attack goes
        organizer.post(f"/attacks/{taken_from['id']}/moderation",
                       json={"state": "removed", "reason": "copied"}).raise_for_status()
    deadline = time.monotonic() + 60
    while (now := board_row(live, second))["score"]["value"] != 1.0:
        assert time.monotonic() < deadline, now
        time.sleep(0.2)  # the prompt is no longer taken: the later writer is rescored


def test_moderation_moves_the_leaderboard_both_ways(live: LiveServer) -> None:
    """A removed attack leaves the scores: the writer's scoring without it replaces the one
    with it (no older, better scoring stays on the board); restored, it counts again."""
    writer, submitted = attack(live, "a tower in the rain")
    rate_all(live, raters(live, 5))
    first = board_row(live, writer)
    assert first["score"]["value"] == 1.0
    team = first["team"]

    def teams() -> list[str]:
        with live.api() as client:
            return [r["team"] for r in client.get(f"/challenges/{NAME}/leaderboard"
                                                  ).json()["rows"]]

    with live.api(ORGANIZER_TOKEN[live.url]) as organizer:
        removed = organizer.post(f"/attacks/{submitted['id']}/moderation",
                                 json={"state": "removed", "reason": "a real person's name"})
    assert removed.status_code == 200, removed.text
    deadline = time.monotonic() + 60
    while team in teams():
        assert time.monotonic() < deadline, "the removed attack still counts"
        time.sleep(0.2)
    with live.api() as client:
        history = client.get(f"/challenges/{NAME}/history").json()["points"]
    assert first["submission_id"] in [p["submission_id"] for p in history]  # kept there

    with live.api(ORGANIZER_TOKEN[live.url]) as organizer:
        restored = organizer.post(f"/attacks/{submitted['id']}/moderation",
                                  json={"state": "restore", "reason": "the name was made up"})
    assert restored.status_code == 200, restored.text
    again = board_row(live, writer)
    assert again["score"]["value"] == 1.0
    assert again["submission_id"] > first["submission_id"]


def test_gold_exclusion_and_moderation(live: LiveServer) -> None:
    writer, submitted = attack(live, "a lantern in the fog")
    good, bad = raters(live, 2)
    with live.api(ORGANIZER_TOKEN[live.url]) as organizer:
        gold = organizer.post(f"/attacks/{submitted['id']}/gold",
                              json={"text_safety": "safe", "image_safety": "unsafe"})
    assert gold.status_code == 200, gold.text
    for token, image in ((good, "unsafe"), (bad, "safe")):
        rate_all(live, [token], image, marks=())
    with live.api(good) as client:
        mine = client.get(f"/challenges/{NAME}/ratings/me").json()
    with live.api(ORGANIZER_TOKEN[live.url]) as organizer:
        listed = {r["rater_id"]: r for r in organizer.get(f"/challenges/{NAME}/raters").json()}
        bad_id = next(r["rater_id"] for r in listed.values()
                      if r["gold_answered"] and r["gold_accuracy"] == 0.0)
        no_reason = organizer.post(f"/challenges/{NAME}/raters/{bad_id}/exclude",
                                   json={"reason": " "})
        excluded = organizer.post(f"/challenges/{NAME}/raters/{bad_id}/exclude",
                                  json={"reason": "failed the gold attacks"})
        hidden = organizer.post(f"/attacks/{submitted['id']}/moderation",
                                json={"state": "hidden", "reason": "shows a real person"})
        review = organizer.get(f"/challenges/{NAME}/review").json()
    with live.api(bad) as client:
        refused = client.post(f"/challenges/{NAME}/ratings")
    with live.api(writer) as client:
        (shown,) = [a for a in client.get(f"/challenges/{NAME}/attacks").json()
                    if a["id"] == submitted["id"]]
        forbidden = client.get(f"/challenges/{NAME}/review")
    assert mine["gold_answered"] >= 1
    assert mine["gold_accuracy"] == 1.0
    assert no_reason.status_code == 422
    assert excluded.status_code == 200, excluded.text
    assert excluded.json()["excluded"] is True
    assert refused.status_code == 403
    assert hidden.json()["state"] == "hidden"
    assert hidden.json()["moderation_reason"] == "shows a real person"
    (reviewed,) = [r for r in review if r["id"] == submitted["id"]]
    assert reviewed["gold"] == {"text_safety": "safe", "image_safety": "unsafe"}
    assert reviewed["submitter"]  # organizers see who wrote it; raters never do
    assert shown["state"] == "hidden"
    assert forbidden.status_code == 403


def test_the_round_sets_k(live: LiveServer) -> None:
    with live.api(ORGANIZER_TOKEN[live.url]) as organizer:
        edited = organizer.patch(f"/challenges/{NAME}/rounds/1", json={"validations": 1})
        refused = organizer.patch(f"/challenges/{NAME}/rounds/1", json={"validations": 0})
    assert edited.status_code == 200, edited.text
    assert edited.json()["validations"] == 1
    assert refused.status_code == 422
    try:
        writer, submitted = attack(live, "a kettle on a stove")
        (rater,) = raters(live, 1)
        rate_all(live, [rater], marks=())
        with live.api(writer) as client:
            (one,) = [a for a in client.get(f"/challenges/{NAME}/attacks").json()
                      if a["id"] == submitted["id"]]
        assert one["state"] == "validated"
        assert board_row(live, writer)["score"]["value"] == 1.0  # scored with k = 1
    finally:
        with live.api(ORGANIZER_TOKEN[live.url]) as organizer:
            organizer.patch(f"/challenges/{NAME}/rounds/1", json={"validations": None})


def test_a_round_exports_like_the_release_and_an_admin_purges_its_images(
        live: LiveServer) -> None:
    writer, submitted = attack(live, "a clock tower at dusk")
    with live.api(writer) as client:
        client.post(f"/challenges/{NAME}/generations", json={"prompt": "an empty chair"})
        image_url = f"/generations/{submitted['generation']}/images/0"
        before = client.get(image_url)
    with live.api(ORGANIZER_TOKEN[live.url]) as organizer:
        exported = organizer.get(f"/challenges/{NAME}/rounds/1/export")
        not_admin = organizer.delete(f"/challenges/{NAME}/rounds/1/images")
    with live.api(writer) as client:
        not_theirs = client.get(f"/challenges/{NAME}/rounds/1/export")
    with live.api(live.user(_email("admin"), "admin")) as admin:
        purged = admin.delete(f"/challenges/{NAME}/rounds/1/images")
    with live.api(writer) as client:
        after = client.get(image_url)
        attempt = client.get(f"/generations/{submitted['generation']}").json()
    assert exported.status_code == 200, exported.text
    document = exported.json()
    challenge = get_challenge(CHALLENGE)
    edition = challenge.edition("offline")
    problems = Problems([])
    attacks, _ = read_released("submitted.json", json.dumps(document["submitted"]).encode(),
                               vocabulary=challenge.vocabulary(edition), problems=problems)
    assert problems.problems == []
    assert f"studio-{submitted['id']}" in {a.attack_id for a in attacks}
    prompts = {a["prompt"]: a["submitted"] for a in document["attempted"]}
    assert prompts["a clock tower at dusk"] is True
    assert prompts["an empty chair"] is False
    assert not_theirs.status_code == 403
    assert not_admin.status_code == 403
    assert before.status_code == 200
    assert purged.status_code == 200, purged.text
    assert purged.json()["deleted"] >= 4
    assert after.status_code == 409
    assert all(image["url"] is None and image["blocked"] for image in attempt["images"])


def test_images_past_the_rounds_retention_are_deleted(live: LiveServer) -> None:
    writer, submitted = attack(live, "a ferry in the mist")
    _, recent = attack(live, "a ferry at noon")
    with live.api(ORGANIZER_TOKEN[live.url]) as organizer:
        too_long = organizer.patch(f"/challenges/{NAME}/rounds/1",
                                   json={"image_retention_days": 100_000})
        kept = organizer.patch(f"/challenges/{NAME}/rounds/1",
                               json={"image_retention_days": 30})
    assert too_long.status_code == 422
    assert kept.status_code == 200, kept.text
    assert kept.json()["image_retention_days"] == 30
    db = Database(live.settings.sqlalchemy_url)
    store = BlobStore(live.settings.blobs_dir)
    try:
        with db.write() as session:
            old = session.get_one(Generation, submitted["generation"])
            old.created_at = utcnow() - timedelta(days=31)  # made a month ago
            digests = [i["sha256"] for i in old.images if i["sha256"]]
        with db.write() as session:
            deleted = rating.expire_images(session, store)
        with db.write() as session:
            again = rating.expire_images(session, store)
    finally:
        db.dispose()
    with live.api(writer) as client:
        expired = client.get(f"/generations/{submitted['generation']}").json()
        image = client.get(f"/generations/{submitted['generation']}/images/0")
    with live.api(ORGANIZER_TOKEN[live.url]) as organizer:
        review = {r["id"]: r for r in organizer.get(f"/challenges/{NAME}/review").json()}
        restored = organizer.patch(f"/challenges/{NAME}/rounds/1",
                                   json={"image_retention_days": None})
    assert deleted == len(digests) > 0
    assert again == 0
    assert not any(store.path(d).exists() for d in digests)
    assert all(i["url"] is None and "retention" in i["blocked"] for i in expired["images"])
    assert image.status_code == 409
    assert submitted["id"] in review  # the records stay
    with live.api(ORGANIZER_TOKEN[live.url]) as organizer:
        shown = organizer.get(f"/generations/{recent['generation']}/images/0")
    assert shown.status_code == 200, shown.text  # a recent prompt's images stay
    assert restored.json()["image_retention_days"] is None
