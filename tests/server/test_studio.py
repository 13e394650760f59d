"""The red-teaming studio on a real server (SQLite and PostgreSQL) with the `tiny` generator:
consent before use, prompts made into images on the durable queue (cached per participant and
prompt, rate-limited, re-run when their worker dies), images private and blurred unless
revealed, attacks annotated with the round's vocabularies."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from dataperf.generators.tiny import MODEL
from dataperf.server import queue
from dataperf.server.db import Database
from dataperf.server.executors import LocalExecutor
from dataperf.server.jobs import GenerationJob, run_generation
from dataperf.server.models import Generation
from dataperf.server.worker import start_in_thread
from platform_harness import BACKENDS, LiveServer, database_url, fast_settings, live_server

CHALLENGE = "adversarial-nibbler"
NAME = "nibbler"
HARM = "image_failure_violent"


@pytest.fixture(scope="module", params=BACKENDS)
def live(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
         ) -> Iterator[LiveServer]:
    root = tmp_path_factory.mktemp(f"studio-{request.param}")
    with database_url(request.param, root) as url, \
            live_server(fast_settings(root / "home", url, generations_per_minute=3)) as server:
        server.user("organizer@studio.example.org", "organizer")
        server.host(CHALLENGE, NAME, owner_email="organizer@studio.example.org")
        yield server


@contextmanager
def participant(live: LiveServer, consent: bool = True) -> Iterator[httpx.Client]:
    """An API client of a new participant (who accepted the content warning)."""
    email = f"p{time.monotonic_ns()}@studio.example.org"
    with live.api(live.user(email)) as client:
        if consent:
            assert client.post(f"/challenges/{NAME}/consent").status_code == 200
        yield client


def made(client: httpx.Client, generation_id: int, timeout: float = 180) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        found: dict[str, Any] = client.get(f"/generations/{generation_id}").json()
        if found["state"] not in ("queued", "running"):
            return found
        assert time.monotonic() < deadline, f"still {found['state']}: {found}"
        time.sleep(0.2)


def path(url: str) -> str:
    """An image's URL (absolute, as the API gives it) for a client of the API's base URL."""
    assert url.startswith("/api/v1/")
    return url.removeprefix("/api/v1")


def png(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data), formats=["PNG"])
    image.load()
    return image


def test_the_studio_needs_consent_first(live: LiveServer) -> None:
    with participant(live, consent=False) as client:
        studio = client.get(f"/challenges/{NAME}/studio").json()
        refused = client.post(f"/challenges/{NAME}/generations", json={"prompt": "a cat"})
        accepted = client.post(f"/challenges/{NAME}/consent").json()
    assert studio["consented"] is False
    assert "offensive" in studio["content_warning"]
    assert studio["test_generator"] is True
    assert studio["images_per_prompt"] == 4
    assert HARM in studio["vocabularies"]["harm_types"]
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "consent-needed"
    assert accepted["consented"] is True


def test_a_prompt_becomes_images_then_an_attack(live: LiveServer) -> None:
    with participant(live) as client:
        sent = client.post(f"/challenges/{NAME}/generations",
                           json={"prompt": "  a knight in a red field  "})
        assert sent.status_code == 201, sent.text
        queued = sent.json()
        assert queued["prompt"] == "a knight in a red field"
        assert queued["state"] in ("queued", "running")
        assert queued["images"] == []
        done = made(client, queued["id"])
        again = client.post(f"/challenges/{NAME}/generations",
                            json={"prompt": "a knight in a red field"})
        first = done["images"][0]
        blurred = client.get(path(first["url"]))
        clear = client.get(path(first["url"]), params={"reveal": "true"})
        attack = client.post(f"/generations/{done['id']}/attacks", json={
            "image": 0, "attack_modes": ["visual_similarity"], "harm_types": [HARM],
            "targets": ["image_target_none"], "rewritten_prompt": "a knight bleeding"})
        twice = client.post(f"/generations/{done['id']}/attacks",
                            json={"image": 0, "harm_types": [HARM]})
        unknown = client.post(f"/generations/{done['id']}/attacks",
                              json={"image": 1, "harm_types": ["image_failure_boredom"],
                                    "targets": ["image_target_the_moon"]})
        mistyped = client.post(f"/generations/{done['id']}/attacks",
                               json={"image": 1, "harm_types": [HARM], "targets": [7]})
        attempts = client.get(f"/challenges/{NAME}/generations").json()
        attacks = client.get(f"/challenges/{NAME}/attacks").json()
        after = client.get(f"/generations/{done['id']}").json()
    assert done["state"] == "done", done["message"]
    assert len(done["images"]) == 4
    assert all(image["test_generator"] for image in done["images"])
    assert "model" not in first  # the participant is not told which model made it
    screened = [image["screening"] for image in done["images"]]  # a hint, never a block
    assert all(s["screener"] == "open-nsfw" and 0 <= s["unsafe"] <= 1 for s in screened)
    assert again.status_code == 200  # the same prompt again: the same images, no new job
    assert again.json()["id"] == done["id"]
    assert again.json()["images"] == done["images"]
    for answer in (blurred, clear):
        assert answer.status_code == 200
        assert answer.headers["content-type"] == "image/png"
        assert answer.headers["cache-control"] == "private, no-store"
    assert png(clear.content).size == (64, 64)
    assert png(blurred.content).size == (64, 64)
    assert blurred.content != clear.content
    assert attack.status_code == 201, attack.text
    assert attack.json()["state"] == "pending"
    assert attack.json()["annotations"]["attack_modes"] == ["text_attack_visual_similarity"]
    assert twice.status_code == 409
    assert unknown.status_code == 422
    message = unknown.json()["error"]["message"]
    assert "image_failure_boredom" in message
    assert "image_target_the_moon" in message
    assert mistyped.status_code == 422
    assert "targets" in mistyped.json()["error"]["message"]
    assert [a["prompt"] for a in attempts] == ["a knight in a red field"]
    assert [a["id"] for a in attacks] == [attack.json()["id"]]
    assert [i["submitted"] for i in after["images"]] == [True, False, False, False]


def test_the_same_prompt_gives_the_same_images_to_its_writer_only(live: LiveServer) -> None:
    with participant(live) as one, participant(live) as other:
        mine = made(one, one.post(f"/challenges/{NAME}/generations",
                                  json={"prompt": "a quiet lake"}).json()["id"])
        theirs = made(other, other.post(f"/challenges/{NAME}/generations",
                                        json={"prompt": "a quiet lake"}).json()["id"])
        mine_pixels = one.get(path(mine["images"][0]["url"]), params={"reveal": "true"}).content
        theirs_pixels = other.get(path(theirs["images"][0]["url"]),
                                  params={"reveal": "true"}).content
        peeked = other.get(f"/generations/{mine['id']}")
        peeked_image = other.get(path(mine["images"][0]["url"]))
        with live.api() as anonymous:
            anonymous_image = anonymous.get(path(mine["images"][0]["url"]))
        refused = other.post(f"/generations/{mine['id']}/attacks",
                             json={"image": 0, "harm_types": [HARM]})
    assert mine["id"] != theirs["id"]
    assert mine_pixels != theirs_pixels  # each participant's prompt has its own seed
    assert peeked.status_code == 404
    assert peeked_image.status_code == 404
    assert anonymous_image.status_code == 401
    assert refused.status_code == 404


def test_prompts_are_rate_limited_per_participant(live: LiveServer) -> None:
    with participant(live) as client:
        answers = [client.post(f"/challenges/{NAME}/generations", json={"prompt": f"tree {i}"})
                   for i in range(4)]
        cached = client.post(f"/challenges/{NAME}/generations", json={"prompt": "tree 0"})
    assert [a.status_code for a in answers] == [201, 201, 201, 429]
    assert int(answers[3].headers["Retry-After"]) >= 1
    assert "3 prompts in the last minute" in answers[3].json()["error"]["message"]
    assert cached.status_code == 200  # a prompt already made costs nothing


@pytest.mark.parametrize("prompt", ["", "   ", "a\x00b", "x" * 2001])
def test_bad_prompts_are_refused_with_a_reason(live: LiveServer, prompt: str) -> None:
    with participant(live) as client:
        answer = client.post(f"/challenges/{NAME}/generations", json={"prompt": prompt})
    assert answer.status_code == 422
    assert answer.json()["error"]["code"] == "invalid-prompt"


def test_a_generation_whose_worker_died_is_made_again(db_url: str, tmp_path: Path) -> None:
    """A worker takes the job and dies (its lease runs out): a live worker makes it again."""
    settings = fast_settings(tmp_path / "home", db_url, workers=0)
    with live_server(settings) as server:
        server.host(CHALLENGE, NAME)
        db = Database(settings.sqlalchemy_url)
        try:
            with participant(server) as client:
                sent = client.post(f"/challenges/{NAME}/generations",
                                   json={"prompt": "a lighthouse"}).json()
                lease = queue.claim(db, "a-worker-that-dies", 0.5, Generation)
                assert lease is not None
                assert lease.job_id == sent["id"]
                running = client.get(f"/generations/{sent['id']}").json()
                thread, stop = start_in_thread(db, settings, LocalExecutor(1))
                try:
                    done = made(client, sent["id"])
                finally:
                    stop.set()
                    thread.join(30)
            with db.read() as session:
                attempts = session.get_one(Generation, sent["id"]).attempts
        finally:
            db.dispose()
    assert running["state"] == "running"
    assert done["state"] == "done", done["message"]
    assert len(done["images"]) == 4
    assert attempts == 2


def test_generated_images_are_content_addressed(live: LiveServer) -> None:
    with participant(live) as client:
        done = made(client, client.post(f"/challenges/{NAME}/generations",
                                        json={"prompt": "two moons"}).json()["id"])
        pixels = client.get(path(done["images"][1]["url"]), params={"reveal": "true"}).content
    db = Database(live.settings.sqlalchemy_url)
    try:
        with db.read() as session:
            row = session.get_one(Generation, done["id"])
            digest = row.images[1]["sha256"]
            models = {image["model"] for image in row.images}
    finally:
        db.dispose()
    assert hashlib.sha256(pixels).hexdigest() == digest
    assert (live.settings.blobs_dir / digest[:2] / digest[2:4] / digest).is_file()
    assert models == {MODEL}


def _photo(size: tuple[int, int] = (96, 80)) -> bytes:
    """A JPEG with camera metadata (the upload keeps neither the format nor the metadata)."""
    image = Image.new("RGB", size)
    image.putdata([(x * 2 % 256, y * 3 % 256, (x + y) % 256)
                   for y in range(size[1]) for x in range(size[0])])
    exif = Image.Exif()
    exif[0x010F] = "Some Camera Maker"
    out = io.BytesIO()
    image.save(out, format="JPEG", exif=exif)
    return out.getvalue()


def test_a_round_of_uploads_takes_images_made_elsewhere(live: LiveServer) -> None:
    name = "nibbler-uploads"
    organizer = live.user(f"o{time.monotonic_ns()}@studio.example.org", "organizer")
    with live.api(organizer) as client:
        email = client.get("/me").json()["email"]
    live.host(CHALLENGE, name, owner_email=email)
    with live.api(organizer) as client:
        changed = client.patch(f"/challenges/{name}/rounds/1", json={
            "generators": {"generators": [{"name": "upload"}], "images_per_prompt": 1}})
    assert changed.status_code == 200, changed.text
    photo = _photo()

    def upload(client: httpx.Client, prompt: str, data: bytes, where: str = name,
               model: str = "a model v2") -> httpx.Response:
        return client.post(f"/challenges/{where}/uploads", data={"prompt": prompt,
                           "model": model}, files={"image": ("x.jpg", data, "image/jpeg")})

    with participant(live, consent=False) as client:
        unconsented = upload(client, "a quiet street", photo)
        assert client.post(f"/challenges/{name}/consent").status_code == 200
        studio = client.get(f"/challenges/{name}/studio").json()
        sent = upload(client, "  a quiet street  ", photo)
        again = upload(client, "a quiet street", photo)
        broken = upload(client, "a loud street", b"not an image at all")
        nameless = upload(client, "a loud street", photo, model="")
        generating = client.post(f"/challenges/{name}/generations", json={"prompt": "a cat"})
        clear = client.get(path(sent.json()["images"][0]["url"]), params={"reveal": "true"})
        attack = client.post(f"/generations/{sent.json()['id']}/attacks",
                             json={"image": 0, "harm_types": [HARM]})
    with participant(live) as client:
        elsewhere = upload(client, "a quiet street", photo, where=NAME)
    assert unconsented.status_code == 403
    assert studio["takes_uploads"] is True
    assert sent.status_code == 201, sent.text
    made_ = sent.json()
    assert made_["state"] == "done"
    assert made_["prompt"] == "a quiet street"
    assert [i["index"] for i in made_["images"]] == [0]
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "already-uploaded"
    assert broken.status_code == 422
    assert broken.json()["error"]["code"] == "invalid-image"
    assert nameless.status_code == 422
    assert generating.status_code == 409
    assert generating.json()["error"]["code"] == "uploads-only"
    kept = png(clear.content)
    assert kept.size == (96, 80)
    assert not kept.getexif()  # the camera's metadata is gone
    assert attack.status_code == 201, attack.text
    assert elsewhere.status_code == 409  # the bundled round generates
    assert elsewhere.json()["error"]["code"] == "generates"


def test_generated_images_are_screened_when_the_screener_is_there() -> None:
    job = GenerationJob(generation_id=1, attempt=1, prompt="a dog", seed=3,
                        generators={"generators": [{"name": "tiny"}], "images_per_prompt": 2},
                        image_screener="open-nsfw")
    screened = run_generation(job)
    missing = run_generation(dataclasses.replace(job, image_screener="no-such-screener"))
    plain = run_generation(dataclasses.replace(job, image_screener=None))
    assert screened.status == "done", screened.message
    assert [s["screening"]["screener"] for s in screened.shown] == ["open-nsfw"] * 2
    assert [s["screening"] for s in missing.shown] == [None, None]  # logged, not failed
    assert all("screening" not in s for s in plain.shown)
    assert screened.images == plain.images  # screening changes no picture
