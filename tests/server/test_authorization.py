"""Who may do what: every API route, called by every kind of caller, on a real server (SQLite and
PostgreSQL), with real IDs in its path and a valid body.

``WALK`` is the table: one row per route (some routes twice, on challenges with other owners),
one expected status per caller. Refusals are 401 without a valid token, 403 for a missing role
and 404 for someone else's submission, token or red-teaming prompt (they must look
non-existent); only a prompt's writer may submit its images as attacks, even its challenge's
managers may not (403), so that row is the one the admin is refused. The raters' queue is
for the challenge's raters only (403 for everyone else, its organizers and admins too) and a
rating, its image included, is its rater's only (404 for everyone else, the admin too); the
raters' management (granting, excluding, the review of who submitted what, gold attacks,
moderation, a round's export) is for the challenge's owning organizer and admins, the purge of
a round's images for admins only. A guard test
fails when the app has a route under /api/v1 that the table does not list, so no new route
skips the walk. Hidden edition files are never served: no route template can address files
except the static folders (Swagger UI, the web pages' assets), and traversal out of them finds
nothing.
"""

from __future__ import annotations

import io
import itertools
import json
import re
import socket
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from dataperf.home import BUNDLED
from dataperf.registry import get_challenge
from dataperf.server import queue
from dataperf.server.db import Database
from dataperf.server.jobs import run_job
from dataperf.server.models import Generation
from dataperf.server.storage import BlobStore
from platform_harness import (
    BACKENDS,
    PASSWORD,
    LiveServer,
    database_url,
    fast_settings,
    live_server,
)

API = "/api/v1"
CHALLENGE = "vision-selection"  # the bundled one, hosted at start, owned by no organizer
COPY = "vs-copy"  # hosted by the "owner" organizer
SPLIT = "vs-split"  # hosted by the "owner" too, with private test rows (revealed after deadline)
NIBBLER = "walk-nibbler"  # the red-teaming studio, hosted for the "owner"
PURGED = "walk-purged"  # red-teaming too, for the "owner": the walk purges its images (none)
UPLOADS = "walk-uploads"  # red-teaming too, for the "owner": its round takes uploaded images
HARM = "image_failure_violent"  # a harm type of its vocabulary
# The studio's and the raters' routes under /challenges/{name}/, by their last segment
RED_TEAMING_ROUTES = ("studio", "consent", "generations", "uploads", "attacks", "raters",
                      "exclude", "ratings", "me", "review", "export")
ANSWER = {"image_safety": "unsafe", "harm_types": [HARM]}  # a rating's step two
# anonymous, a made-up token, participant of team A, participant of team B, rater (of NIBBLER,
# granted by its owner), organizer owning COPY and NIBBLER, organizer owning nothing, admin
CALLERS = ("anon", "bad", "a", "b", "rater", "owner", "other", "admin")
ROLES = {"a": "participant", "b": "participant", "rater": "rater", "owner": "organizer",
         "other": "organizer", "admin": "admin"}
BAD_TOKEN = "dp_" + "not-a-real-token-" * 3
EDITION_DIR = BUNDLED / CHALLENGE / "offline"
# The only folders served as files, by URL prefix; a new mount must be added (and checked) here.
STATIC_MOUNTS = {"/static/swagger": "the Swagger UI (swagger-ui-bundle)",
                 "/static/web": "the web pages' CSS and JavaScript"}

Params = Callable[["World", str], dict[str, Any]]


def small_png() -> bytes:
    out = io.BytesIO()
    Image.radial_gradient("L").resize((16, 16)).save(out, format="PNG")  # not blank
    return out.getvalue()


@dataclass
class World:
    """One platform with every kind of caller and something of each kind to act on."""

    server: LiveServer
    files: dict[str, bytes]
    edition_archive: bytes
    tokens: dict[str, str | None] = field(default_factory=dict)
    emails: dict[str, str] = field(default_factory=dict)
    sub_a: int = 0  # a submission of team A to COPY
    victim: int = 0  # a user whose role the walk sets
    join_code: str = ""  # of the team "Joinable"
    generation_a: int = 0  # a prompt of A's in NIBBLER, its images made
    image_a: int = 0  # the index of one of its images that has a picture (submitted in the walk)
    attack: int = 0  # an attack of A's in NIBBLER (made gold in the walk)
    moderated: int = 0  # another one, the walk's moderation hides
    rating: int = 0  # the rater's rating of an attack, its prompt judged (so its image shown)
    _count: Iterator[int] = field(default_factory=itertools.count)

    def unique(self) -> int:
        return next(self._count)

    def caller_token(self, caller: str, *, fresh: bool = False) -> str | None:
        """The caller's token; with ``fresh``, one of a new user of the caller's role (for
        requests that change who the caller is, such as moving into another team)."""
        if not fresh or caller not in ROLES:
            return self.tokens[caller]
        return self.server.user(f"fresh{self.unique()}-{caller}@walk.example.org",
                                ROLES[caller])

    def email(self, caller: str) -> str:
        return self.emails.get(caller, self.emails["a"])

    def spare_token(self, caller: str) -> int:
        """The id of a new token of the caller (team A's for callers without an account)."""
        with self.server.api() as api:
            answer = api.post("/auth/token", json={"email": self.email(caller),
                                                   "password": PASSWORD, "token_name": "spare"})
        assert answer.status_code == 200, answer.text
        return int(answer.json()["id"])

    def submit(self, token: str | None, challenge: str, label: str = "") -> httpx.Response:
        with self.server.api(token) as api:
            return api.post(f"/challenges/{challenge}/submissions", data={"label": label},
                            files=[("files", (n, d, "text/csv")) for n, d in self.files.items()])

    def queued_submission_of_a(self) -> int:
        answer = self.submit(self.tokens["a"], COPY, "to cancel")
        assert answer.status_code == 202, answer.text
        return int(answer.json()["id"])

    def new_account(self) -> str:
        """The email of a new participant's account."""
        email = f"candidate{self.unique()}@walk.example.org"
        self.server.register(email)
        return email

    def granted_rater(self) -> int:
        """The user id of a new account the owner just made a rater of NIBBLER."""
        with self.server.api(self.tokens["owner"]) as api:
            granted = api.post(f"/challenges/{NIBBLER}/raters",
                               json={"email": self.new_account()})
        assert granted.status_code == 201, granted.text
        return int(granted.json()["rater_id"])

    def rating_at(self, stage: str) -> int:
        """The id of the rater's open rating in NIBBLER at ``stage``: "prompt" (its prompt not
        judged yet) or "image" (judged, its image not answered). The queue hands out one at a
        time, the open one first: one short of the stage is judged, one past it answered (and
        the next one taken), so a row finds the rating it needs whatever ran before."""
        with self.server.api(self.tokens["rater"]) as api:
            while True:
                given = api.post(f"/challenges/{NIBBLER}/ratings")
                assert given.status_code == 200, given.text
                rating = given.json()["rating"]
                assert rating is not None, "the rater rated every attack: host_studio needs more"
                if rating["stage"] == stage:
                    return int(rating["id"])
                if stage == "image":
                    step = api.post(f"/ratings/{rating['id']}/prompt",
                                    json={"text_safety": "safe"})
                    assert step.status_code == 200, step.text
                    return int(rating["id"])
                step = api.post(f"/ratings/{rating['id']}/answer", json=ANSWER)
                assert step.status_code == 200, step.text


def static(**values: Any) -> Params:
    return lambda world, caller: values


def none(world: World, caller: str) -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class Call:
    method: str
    template: str  # as in app.routes, without the /api/v1 prefix
    expect: str  # one status per caller, in the order of CALLERS
    params: Params = none  # path parameters
    body: Params = none  # further httpx request arguments: json, files, data, params
    fresh: bool = False  # as a new user of the caller's role (the request changes its caller)
    on: str = ""  # tells rows of one route apart
    writer_only: bool = False  # only the writer of what it acts on may: the admin is refused
    rater_only: bool = False  # only the challenge's raters (a rating's: its rater) may: the
    # admin is refused too

    def expected(self, caller: str) -> int:
        statuses = self.expect.split()
        assert len(statuses) == len(CALLERS), self
        return int(statuses[CALLERS.index(caller)])

    @property
    def id(self) -> str:
        return f"{self.method} {self.template}" + (f" [{self.on}]" if self.on else "")


def sub_a(world: World, caller: str) -> dict[str, Any]:
    return {"submission_id": world.sub_a}


def generation_a(world: World, caller: str) -> dict[str, Any]:
    return {"generation_id": world.generation_a}


def image_a(world: World, caller: str) -> dict[str, Any]:
    return {"generation_id": world.generation_a, "index": world.image_a}


def rating_id(world: World, caller: str) -> dict[str, Any]:
    return {"rating_id": world.rating}


WALK = [
    # expected statuses: anon bad a b rater owner other admin (see CALLERS)
    Call("GET", "/health", "200 200 200 200 200 200 200 200"),
    Call("GET", "/openapi.json", "200 200 200 200 200 200 200 200"),
    # accounts
    Call("POST", "/auth/register", "201 201 201 201 201 201 201 201",
         body=lambda w, c: {"json": {"email": f"new{w.unique()}@walk.example.org",
                                     "name": "Newcomer", "password": PASSWORD,
                                     "team": f"Newcomers {w.unique()}"}}),
    Call("POST", "/auth/token", "200 200 200 200 200 200 200 200",
         body=lambda w, c: {"json": {"email": w.email(c), "password": PASSWORD}}),
    Call("GET", "/me", "401 401 200 200 200 200 200 200"),
    Call("GET", "/me/tokens", "401 401 200 200 200 200 200 200"),
    Call("DELETE", "/me/tokens/{token_id}", "401 401 200 200 200 200 200 200",
         params=lambda w, c: {"token_id": w.spare_token(c)}),
    Call("POST", "/teams", "401 401 201 201 201 201 201 201", fresh=True,
         body=lambda w, c: {"json": {"name": f"Walkers {w.unique()}"}}),
    Call("POST", "/teams/join", "401 401 200 200 200 200 200 200", fresh=True,
         body=lambda w, c: {"json": {"team": "Joinable", "code": w.join_code}}),
    # reading challenges
    Call("GET", "/challenges", "200 200 200 200 200 200 200 200"),
    Call("GET", "/challenges/{name}", "200 200 200 200 200 200 200 200", static(name=COPY)),
    Call("GET", "/challenges/{name}/leaderboard", "200 401 200 200 200 200 200 200",
         static(name=COPY)),
    Call("GET", "/challenges/{name}/leaderboard", "403 401 403 403 403 200 403 200",
         static(name=SPLIT), body=static(params={"part": "private"}), on="private part"),
    Call("GET", "/challenges/{name}/history", "200 401 200 200 200 200 200 200",
         static(name=COPY)),
    Call("GET", "/challenges/{name}/history", "403 401 403 403 403 200 403 200",
         static(name=SPLIT), body=static(params={"part": "private"}), on="private part"),
    Call("GET", "/challenges/{name}/snapshots", "200 200 200 200 200 200 200 200",
         static(name=COPY)),
    Call("GET", "/challenges/{name}/snapshots/{snapshot}", "200 200 200 200 200 200 200 200",
         static(name=COPY, snapshot="walk-snap")),
    Call("GET", "/challenges/{name}/public-data", "200 200 200 200 200 200 200 200",
         static(name=COPY)),
    Call("GET", "/challenges/{name}/quota", "401 401 200 200 200 200 200 200",
         static(name=COPY)),
    # submissions: every role may also take part
    Call("POST", "/challenges/{name}/submissions", "401 401 202 202 202 202 202 202",
         static(name=CHALLENGE),
         body=lambda w, c: {"data": {"label": f"walk {c}"},
                            "files": [("files", (n, d)) for n, d in w.files.items()]}),
    Call("GET", "/submissions", "401 401 200 200 200 200 200 200"),
    Call("GET", "/submissions/{submission_id}", "404 401 200 404 404 200 404 200", sub_a),
    Call("POST", "/submissions/{submission_id}/cancel", "401 401 200 404 404 200 404 200",
         params=lambda w, c: {"submission_id": w.queued_submission_of_a()}),
    Call("PUT", "/submissions/{submission_id}/final", "401 401 200 404 404 200 404 200", sub_a,
         body=static(json={"final": False})),
    Call("GET", "/submissions/{submission_id}/files/{file_name}",
         "404 401 200 404 404 200 404 200",
         params=lambda w, c: {"submission_id": w.sub_a, "file_name": "Trouser.csv"}),
    Call("GET", "/submissions/{submission_id}/files", "404 401 200 404 404 200 404 200", sub_a,
         body=static(params={"name": "Trouser.csv"})),
    # organizing
    Call("POST", "/editions", "401 401 403 403 403 201 201 201",
         body=lambda w, c: {"files": {"file": ("walk.tar", w.edition_archive,
                                               "application/x-tar")}}),
    Call("POST", "/challenges", "401 401 403 403 403 201 201 201",
         body=lambda w, c: {"json": {"challenge": CHALLENGE, "edition": "offline",
                                     "name": f"walk-{c}-{w.unique()}"}}),
    Call("PATCH", "/challenges/{name}", "401 401 403 403 403 200 403 200", static(name=COPY),
         body=static(json={"title": "Walked"}), on=COPY),
    Call("PATCH", "/challenges/{name}", "401 401 403 403 403 403 403 200",
         static(name=CHALLENGE), body=static(json={"description": "Walked"}), on=CHALLENGE),
    Call("POST", "/challenges/{name}/rounds", "401 401 403 403 403 201 403 201",
         static(name=COPY), body=static(json={"name": "Walk round"}), on=COPY),
    Call("POST", "/challenges/{name}/rounds", "401 401 403 403 403 403 403 201",
         static(name=CHALLENGE), body=static(json={}), on=CHALLENGE),
    Call("PATCH", "/challenges/{name}/rounds/{number}", "401 401 403 403 403 200 403 200",
         static(name=COPY, number=1), body=static(json={"daily_quota": 1000}), on=COPY),
    Call("PATCH", "/challenges/{name}/rounds/{number}", "401 401 403 403 403 403 403 200",
         static(name=CHALLENGE, number=1), body=static(json={"daily_quota": 50}),
         on=CHALLENGE),
    Call("POST", "/challenges/{name}/snapshots", "401 401 403 403 403 201 403 201",
         static(name=COPY), body=lambda w, c: {"json": {"name": f"snap {c} {w.unique()}"}}),
    Call("GET", "/challenges/{name}/submissions", "401 401 403 403 403 200 403 200",
         static(name=COPY)),
    # administration
    Call("GET", "/admin/users", "401 401 403 403 403 403 403 200"),
    Call("PATCH", "/admin/users/{user_id}", "401 401 403 403 403 403 403 200",
         params=lambda w, c: {"user_id": w.victim}, body=static(json={"role": "participant"})),
    Call("GET", "/admin/workers", "401 401 403 403 403 403 403 200"),
    # the red-teaming studio: every caller with an account accepted NIBBLER's content warning;
    # a prompt and its images are seen by their writer and the challenge's managers only
    Call("GET", "/challenges/{name}/studio", "401 401 200 200 200 200 200 200",
         static(name=NIBBLER)),
    Call("POST", "/challenges/{name}/consent", "401 401 200 200 200 200 200 200",
         static(name=NIBBLER)),
    Call("POST", "/challenges/{name}/generations", "401 401 201 201 201 201 201 201",
         static(name=NIBBLER),
         body=lambda w, c: {"json": {"prompt": f"a walk by {c} {w.unique()}"}}),
    Call("GET", "/challenges/{name}/generations", "401 401 200 200 200 200 200 200",
         static(name=NIBBLER)),
    Call("POST", "/challenges/{name}/uploads", "401 401 201 201 201 201 201 201",
         static(name=UPLOADS), body=lambda w, c: {
             "data": {"prompt": f"an upload by {c} {w.unique()}", "model": "a model"},
             "files": {"image": ("upload.png", small_png(), "image/png")}}),
    Call("GET", "/generations/{generation_id}", "401 401 200 404 404 200 404 200",
         generation_a),
    Call("GET", "/generations/{generation_id}/images/{index}",
         "401 401 200 404 404 200 404 200", image_a),
    Call("GET", "/generations/{generation_id}/images/{index}",
         "401 401 200 404 404 200 404 200", image_a, body=static(params={"reveal": "true"}),
         on="revealed"),
    Call("POST", "/generations/{generation_id}/attacks", "401 401 201 404 404 403 404 403",
         generation_a, writer_only=True,
         body=lambda w, c: {"json": {"image": w.image_a, "harm_types": [HARM]}}),
    Call("GET", "/challenges/{name}/attacks", "401 401 200 200 200 200 200 200",
         static(name=NIBBLER)),
    # raters: NIBBLER's owner grants the role (each row acts on accounts of its own); the queue
    # is for its raters only; a rating is seen by its rater only, its writer never named
    Call("GET", "/challenges/{name}/raters", "401 401 403 403 403 200 403 200",
         static(name=NIBBLER)),
    Call("POST", "/challenges/{name}/raters", "401 401 403 403 403 201 403 201",
         static(name=NIBBLER), body=lambda w, c: {"json": {"email": w.new_account()}}),
    Call("POST", "/challenges/{name}/raters/{rater_id}/exclude",
         "401 401 403 403 403 200 403 200",
         params=lambda w, c: {"name": NIBBLER, "rater_id": w.granted_rater()},
         body=static(json={"reason": "walked out"})),
    Call("POST", "/challenges/{name}/ratings", "401 401 403 403 200 403 403 403",
         static(name=NIBBLER), rater_only=True),
    Call("GET", "/challenges/{name}/ratings/me", "401 401 403 403 200 403 403 403",
         static(name=NIBBLER), rater_only=True),
    Call("GET", "/ratings/{rating_id}", "401 401 404 404 200 404 404 404", rating_id,
         rater_only=True),
    Call("GET", "/ratings/{rating_id}/image", "401 401 404 404 200 404 404 404", rating_id,
         rater_only=True),
    Call("GET", "/ratings/{rating_id}/image", "401 401 404 404 200 404 404 404", rating_id,
         body=static(params={"reveal": "true"}), on="revealed", rater_only=True),
    Call("POST", "/ratings/{rating_id}/prompt", "401 401 404 404 200 404 404 404",
         params=lambda w, c: {"rating_id": w.rating_at("prompt")},
         body=static(json={"text_safety": "safe"}), rater_only=True),
    Call("POST", "/ratings/{rating_id}/answer", "401 401 404 404 200 404 404 404",
         params=lambda w, c: {"rating_id": w.rating_at("image")}, body=static(json=ANSWER),
         rater_only=True),
    # ... and its organizers (and admins) review who submitted what and act on attacks
    Call("GET", "/challenges/{name}/review", "401 401 403 403 403 200 403 200",
         static(name=NIBBLER)),
    Call("POST", "/attacks/{attack_id}/gold", "401 401 403 403 403 200 403 200",
         params=lambda w, c: {"attack_id": w.attack},
         body=static(json={"text_safety": "safe", "image_safety": "unsafe"})),
    Call("POST", "/attacks/{attack_id}/moderation", "401 401 403 403 403 200 403 200",
         params=lambda w, c: {"attack_id": w.moderated},
         body=static(json={"state": "hidden", "reason": "walked"})),
    Call("GET", "/challenges/{name}/rounds/{number}/export", "401 401 403 403 403 200 403 200",
         static(name=NIBBLER, number=1)),
    # a round's images are purged by admins only, not even by the challenge's organizer
    Call("DELETE", "/challenges/{name}/rounds/{number}/images",
         "401 401 403 403 403 403 403 200", static(name=PURGED, number=1)),
]
#: The studio's and the raters' rows that name a challenge (the others name a generation, a
#: rating or an attack).
RED_TEAMING_OF_A_CHALLENGE = [r for r in WALK if r.template.startswith("/challenges/{name}/")
                              and r.template.rsplit("/", 1)[1] in RED_TEAMING_ROUTES]


# Fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def valid_files() -> dict[str, bytes]:
    challenge = get_challenge(CHALLENGE)
    return challenge.run_algorithm("random", challenge.edition("offline"), random_state=3)


@pytest.fixture(scope="module")
def edition_archive() -> bytes:
    """A .tar of the bundled edition, renamed 'walk' (so it shadows no bundled edition)."""
    manifest = json.loads((EDITION_DIR / "manifest.json").read_text())
    manifest["edition"] = "walk"
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for path in sorted(EDITION_DIR.rglob("*")):
            if path.is_file() and path.name != "manifest.json":
                archive.add(path, arcname=f"walk/{path.relative_to(EDITION_DIR)}")
        data = json.dumps(manifest).encode()
        info = tarfile.TarInfo("walk/manifest.json")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.fixture(scope="module", params=BACKENDS)
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
          valid_files: dict[str, bytes], edition_archive: bytes) -> Iterator[World]:
    """One server per backend for the whole walk; no workers, so submissions stay queued."""
    root = tmp_path_factory.mktemp(f"walk-{request.param}")
    with database_url(request.param, root) as url, \
            live_server(fast_settings(root / "home", url, workers=0)) as server:
        world = World(server, valid_files, edition_archive)
        for caller in ("a", "b"):
            email = f"{caller}@walk.example.org"
            world.tokens[caller] = server.register(email, team=f"Team {caller.upper()}")["token"]
            world.emails[caller] = email
        for caller in ("rater", "owner", "other", "admin"):
            email = f"{caller}@walk.example.org"
            world.tokens[caller] = server.user(email, ROLES[caller])
            world.emails[caller] = email
        world.tokens["anon"], world.tokens["bad"] = None, BAD_TOKEN
        with server.api(world.tokens["owner"]) as api:
            hosted = api.post("/challenges", json={
                "challenge": CHALLENGE, "edition": "offline", "name": COPY,
                "round": {"daily_quota": 1000, "final_count": 3}})
            assert hosted.status_code == 201, hosted.text
            snap = api.post(f"/challenges/{COPY}/snapshots", json={"name": "walk-snap"})
            assert snap.status_code == 201, snap.text
            split = api.post("/challenges", json={"challenge": CHALLENGE, "name": SPLIT,
                                                  "round": {"private_fraction": 0.3}})
            assert split.status_code == 201, split.text
        submitted = world.submit(world.tokens["a"], COPY, "team A's")
        assert submitted.status_code == 202, submitted.text
        world.sub_a = int(submitted.json()["id"])
        world.victim = int(server.register("victim@walk.example.org")["user"]["id"])
        joinable = server.register("host@walk.example.org")["token"]
        with server.api(joinable) as api:
            team = api.post("/teams", json={"name": "Joinable"})
            assert team.status_code == 201, team.text
            world.join_code = team.json()["join_code"]
        host_studio(world)
        yield world


def host_studio(world: World) -> None:
    """NIBBLER hosted for the owner, its content warning accepted by every account, and two
    prompts of A's made into images here, as a worker makes them (the server has none): claimed
    off the queue, run and finished. Every picture but ``image_a`` (the walk submits it) is
    submitted as an attack, the last one for the walk to moderate; the owner grants the rater
    the role, and the rater takes the oldest attack off the queue and judges its prompt."""
    server, settings = world.server, world.server.settings
    server.host("adversarial-nibbler", NIBBLER, owner_email=world.emails["owner"])
    server.host("adversarial-nibbler", PURGED, owner_email=world.emails["owner"])
    server.host("adversarial-nibbler", UPLOADS, owner_email=world.emails["owner"])
    with server.api(world.tokens["owner"]) as api:
        api.patch(f"/challenges/{UPLOADS}/rounds/1", json={"generators": {
            "generators": [{"name": "upload"}], "images_per_prompt": 1}}).raise_for_status()
    for caller in ROLES:
        with server.api(world.tokens[caller]) as api:
            consented = [api.post(f"/challenges/{name}/consent") for name in (NIBBLER, UPLOADS)]
        assert all(c.status_code == 200 for c in consented), consented
    generations = []
    with server.api(world.tokens["a"]) as api:
        for prompt in ("a walk in the woods", "a lantern by the river"):
            sent = api.post(f"/challenges/{NIBBLER}/generations", json={"prompt": prompt})
            assert sent.status_code == 201, sent.text
            generations.append(int(sent.json()["id"]))
    world.generation_a = generations[0]
    db, store = Database(settings.sqlalchemy_url), BlobStore(settings.blobs_dir)
    try:
        for generation_id in generations:
            lease = queue.claim(db, "walk-worker", 600, Generation)
            assert lease is not None
            assert lease.job_id == generation_id
            outcome = run_job(queue.load_job(db, store, lease, settings.generators))
            assert outcome.status == "done", outcome.message
            assert queue.finish(db, store, lease, outcome, seconds=1.0)
    finally:
        db.dispose()
    attacks = []
    with server.api(world.tokens["a"]) as api:
        for generation_id in generations:
            made = api.get(f"/generations/{generation_id}").json()
            assert made["state"] == "done", made
            pictured = [image["index"] for image in made["images"] if image["url"]]
            if generation_id == world.generation_a:
                world.image_a = pictured.pop(0)
            for index in pictured:
                submitted = api.post(f"/generations/{generation_id}/attacks",
                                     json={"image": index, "harm_types": [HARM]})
                assert submitted.status_code == 201, submitted.text
                attacks.append(int(submitted.json()["id"]))
    # the walk's rater needs a few to rate (rating_at), besides the one moderated
    assert len(attacks) >= 5, attacks
    world.attack, world.moderated = attacks[0], attacks[-1]
    with server.api(world.tokens["owner"]) as api:
        granted = api.post(f"/challenges/{NIBBLER}/raters", json={"email": world.emails["rater"]})
    assert granted.status_code == 201, granted.text
    with server.api(world.tokens["rater"]) as api:
        given = api.post(f"/challenges/{NIBBLER}/ratings")
        assert given.status_code == 200, given.text
        world.rating = int(given.json()["rating"]["id"])
        judged = api.post(f"/ratings/{world.rating}/prompt", json={"text_safety": "safe"})
    assert judged.status_code == 200, judged.text
    assert judged.json()["stage"] == "image"


# The walk ----------------------------------------------------------------------------------


def call(world: World, row: Call, caller: str) -> httpx.Response:
    token = world.caller_token(caller, fresh=row.fresh)
    path = row.template.format(**row.params(world, caller))
    with world.server.api(token) as api:
        return api.request(row.method, path, **row.body(world, caller))


def assert_error_shape(answer: httpx.Response) -> None:
    error = answer.json()["error"]
    assert error["status"] == answer.status_code
    assert isinstance(error["code"], str)
    assert error["code"]
    assert isinstance(error["message"], str)
    assert error["message"]
    if answer.status_code == 401:
        assert answer.headers.get("WWW-Authenticate") == "Bearer"


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("row", WALK, ids=[r.id for r in WALK])
def test_walk(world: World, row: Call, caller: str) -> None:
    answer = call(world, row, caller)
    expected = row.expected(caller)
    assert answer.status_code == expected, (
        f"{row.id} as {caller}: {answer.status_code}, expected {expected}: {answer.text[:500]}")
    if expected >= 400:
        assert_error_shape(answer)


def api_routes(app: Any) -> set[tuple[str, str]]:
    """(method, path template) of every route under /api/v1, included routers flattened."""
    try:  # FastAPI >= 0.13x keeps included routers whole in app.routes
        from fastapi.routing import iter_route_contexts

        routes: list[Any] = list(iter_route_contexts(app.routes))
    except ImportError:
        routes = list(app.routes)
    found = set()
    for route in routes:
        path = getattr(route, "path", None)
        assert isinstance(path, str), f"a route without a path hides its routes: {route!r}"
        if not path.startswith(API):
            continue
        methods = getattr(route, "methods", None)
        assert methods, f"{path} is not a plain route (a mount or router under {API}?)"
        found |= {(m, path) for m in methods if m != "HEAD"}
    return found


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    from dataperf.server.app import create_app
    from dataperf.server.settings import Settings

    monkeypatch.setenv("DATAPERF_HOME", str(tmp_path))  # create_app sets it; restore it after
    return create_app(Settings(home=tmp_path))


def test_every_api_route_is_in_the_walk(app: Any) -> None:
    routes = api_routes(app)
    walked = {(r.method, API + r.template) for r in WALK}
    assert len(routes) > 20  # the flattening found the routes
    missing = sorted(routes - walked)
    assert not missing, f"routes missing from WALK (add a row for each): {missing}"
    stale = sorted(walked - routes)
    assert not stale, f"WALK lists routes the app does not have: {stale}"


def test_every_row_expects_a_status_per_caller() -> None:
    """Valid bodies only: every answer is a success or a refusal of the caller, and the
    admin (who may do everything) always succeeds."""
    for row in WALK:
        statuses = [row.expected(c) for c in CALLERS]
        assert all(s in (200, 201, 202, 401, 403, 404) for s in statuses), row.id
        if row.writer_only:  # the managers see what it acts on, and are refused
            assert row.expected("admin") == row.expected("owner") == 403, row.id
        elif row.rater_only:  # refused (a rating looks non-existent) unless one's own
            assert row.expected("admin") == row.expected("owner") in (403, 404), row.id
            assert row.expected("rater") < 300, row.id
        else:
            assert row.expected("admin") < 300, row.id


# Tokens and ownership ----------------------------------------------------------------------


def test_revoked_token_gets_401(world: World) -> None:
    with world.server.api() as api:
        login = api.post("/auth/token", json={"email": world.email("a"), "password": PASSWORD})
    assert login.status_code == 200, login.text
    token, token_id = login.json()["token"], login.json()["id"]
    with world.server.api(world.tokens["b"]) as other:  # not B's token: it looks non-existent
        assert other.delete(f"/me/tokens/{token_id}").status_code == 404
    with world.server.api(token) as api:
        assert api.get("/me").status_code == 200  # still valid after B's try
        revoked = api.delete(f"/me/tokens/{token_id}")
        assert revoked.status_code == 200, revoked.text
        assert revoked.json()["revoked_at"]
        for answer in (api.get("/me"), api.get(f"/submissions/{world.sub_a}"),
                       api.get(f"/challenges/{COPY}/leaderboard"),
                       world.submit(token, CHALLENGE)):
            assert answer.status_code == 401, answer.text
            assert_error_shape(answer)
            assert "revoked" in answer.json()["error"]["message"]
    with world.server.api(world.tokens["a"]) as api:  # the other tokens of A still work
        assert api.get("/me").status_code == 200


@pytest.mark.parametrize("row", [r for r in WALK if "{submission_id}" in r.template],
                         ids=lambda r: r.id)
def test_other_teams_submissions_look_nonexistent(world: World, row: Call) -> None:
    """B gets for A's submission exactly the answer for a submission that does not exist."""
    missing = 10**9
    answers = {}
    for submission_id in (world.sub_a, missing):
        path = row.template.format(submission_id=submission_id, file_name="Trouser.csv")
        with world.server.api(world.tokens["b"]) as api:
            answers[submission_id] = api.request(row.method, path, **row.body(world, "b"))
    mine, absent = answers[world.sub_a], answers[missing]
    assert mine.status_code == absent.status_code == 404
    assert mine.json()["error"]["message"].replace(str(world.sub_a), "N") == \
        absent.json()["error"]["message"].replace(str(missing), "N")


@pytest.mark.parametrize("caller", ["b", "rater", "other"])
@pytest.mark.parametrize("row", [r for r in WALK if "{generation_id}" in r.template],
                         ids=lambda r: r.id)
def test_other_peoples_prompts_look_nonexistent(world: World, row: Call, caller: str) -> None:
    """Someone else's prompt (neither theirs nor one of a challenge they manage) gets exactly
    the answer for a prompt that does not exist, its images and attacks too."""
    missing = 10**9
    answers = {}
    for generation_id in (world.generation_a, missing):
        path = row.template.format(generation_id=generation_id, index=world.image_a)
        with world.server.api(world.tokens[caller]) as api:
            answers[generation_id] = api.request(row.method, path, **row.body(world, caller))
    mine, absent = answers[world.generation_a], answers[missing]
    assert mine.status_code == absent.status_code == 404
    assert mine.json()["error"]["message"].replace(str(world.generation_a), "N") == \
        absent.json()["error"]["message"].replace(str(missing), "N")


def test_managers_see_a_prompts_images_but_may_not_submit_them(world: World) -> None:
    path = f"/generations/{world.generation_a}/images/{world.image_a}"
    seen = {}
    for caller in ("a", "owner", "admin"):
        with world.server.api(world.tokens[caller]) as api:
            seen[caller] = api.get(path, params={"reveal": "true"}).content
            refused = api.post(f"/generations/{world.generation_a}/attacks",
                               json={"image": world.image_a, "harm_types": [HARM]})
        if caller != "a":
            assert refused.status_code == 403, refused.text
            assert "only the participant who wrote" in refused.json()["error"]["message"]
    assert seen["owner"] == seen["admin"] == seen["a"]
    assert seen["a"].startswith(b"\x89PNG")


@pytest.mark.parametrize("role", sorted(set(ROLES.values())))
def test_prompts_need_the_content_warning_accepted(world: World, role: str) -> None:
    """Whatever the role, the admin's included: no images before accepting the warning."""
    token = world.server.user(f"unwarned{world.unique()}-{role}@walk.example.org", role)
    with world.server.api(token) as api:
        refused = api.post(f"/challenges/{NIBBLER}/generations", json={"prompt": "a walk"})
        studio = api.get(f"/challenges/{NIBBLER}/studio")
    assert refused.status_code == 403, refused.text
    assert_error_shape(refused)
    assert refused.json()["error"]["code"] == "consent-needed"
    assert studio.json()["consented"] is False


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("row", RED_TEAMING_OF_A_CHALLENGE, ids=lambda r: r.id)
def test_a_challenge_of_another_kind_has_no_studio(world: World, row: Call,
                                                   caller: str) -> None:
    """The studio's and the raters' routes on a challenge that is not a red-teaming one: not
    found, for its managers too (after the 401 of a caller without a valid token)."""
    path = row.template.format(**row.params(world, caller) | {"name": COPY})
    with world.server.api(world.caller_token(caller)) as api:
        answer = api.request(row.method, path, **row.body(world, caller))
    expected = 401 if caller in ("anon", "bad") else 404
    assert answer.status_code == expected, answer.text
    assert_error_shape(answer)
    if expected == 404:
        assert "not a red-teaming challenge" in answer.json()["error"]["message"]


# Raters --------------------------------------------------------------------------------------


NUMBERED = [r for r in WALK if re.search(r"\{(\w+_id|number|index)\}", r.template)]
PAGES_NUMBERED = ["/submissions/{n}", "/challenges/vision-selection?round={n}",
                  "/challenges/walk-nibbler/studio?generation={n}"]


@pytest.mark.parametrize("row", NUMBERED, ids=lambda r: r.id)
def test_numbers_beyond_32_bits_name_nothing(world: World, row: Call) -> None:
    """Every route's numbered path parameters at 2^31 (PostgreSQL's integers end there), 2^63
    and below -2^31: not found, for the admin too, never a crash of the database driver."""
    for huge in ("2147483648", "9223372036854775808", "-2147483649"):
        names = re.findall(r"\{(\w+)\}", row.template)
        params = row.params(world, "admin") | {n: huge for n in names
                                                if re.fullmatch(r"\w+_id|number|index", n)}
        with world.server.api(world.caller_token("admin")) as api:
            answer = api.request(row.method, row.template.format(**params),
                                 **row.body(world, "admin"))
        assert answer.status_code == 404, (huge, answer.text[:300])
        assert_error_shape(answer)


def test_pages_with_numbers_beyond_32_bits_are_not_found(world: World) -> None:
    with httpx.Client(base_url=world.server.url) as browser:
        for page, n in itertools.product(PAGES_NUMBERED, (2**31, 2**63)):
            answer = browser.get(page.format(n=n))
            assert answer.status_code in (303, 404, 422), (page, n, answer.status_code)


@pytest.mark.parametrize("caller", ["a", "b", "owner", "other", "admin"])
@pytest.mark.parametrize("row", [r for r in WALK if "{rating_id}" in r.template],
                         ids=lambda r: r.id)
def test_other_peoples_ratings_look_nonexistent(world: World, row: Call, caller: str) -> None:
    """The rater's rating, its image too, gets from anyone else (the writer of the attack, its
    challenge's organizer, the admin) exactly the answer for a rating that does not exist."""
    missing = 10**9
    answers = {}
    for rating in (world.rating, missing):
        with world.server.api(world.tokens[caller]) as api:
            answers[rating] = api.request(row.method, row.template.format(rating_id=rating),
                                          **row.body(world, caller))
    mine, absent = answers[world.rating], answers[missing]
    assert mine.status_code == absent.status_code == 404
    assert mine.json()["error"]["message"].replace(str(world.rating), "N") == \
        absent.json()["error"]["message"].replace(str(missing), "N")


@pytest.mark.parametrize("caller", ["a", "b", "rater", "owner", "other", "admin"])
@pytest.mark.parametrize("row", [r for r in WALK if "{attack_id}" in r.template],
                         ids=lambda r: r.id)
def test_acting_on_an_attack_that_does_not_exist(world: World, row: Call, caller: str) -> None:
    with world.server.api(world.tokens[caller]) as api:
        answer = api.request(row.method, row.template.format(attack_id=10**9),
                             **row.body(world, caller))
    assert answer.status_code == 404, answer.text
    assert_error_shape(answer)


def test_participants_do_not_rate_and_raters_do_not_see_who_submitted(world: World) -> None:
    with world.server.api(world.tokens["b"]) as api:
        rate = api.post(f"/challenges/{NIBBLER}/ratings")
        peeked = [api.get(f"/ratings/{world.rating}"),
                  api.get(f"/ratings/{world.rating}/image", params={"reveal": "true"})]
    assert rate.status_code == 403, rate.text
    assert f"only {NIBBLER}'s raters" in rate.json()["error"]["message"]
    assert [answer.status_code for answer in peeked] == [404, 404]
    with world.server.api(world.tokens["rater"]) as api:
        review = api.get(f"/challenges/{NIBBLER}/review")
        seen = api.get(f"/ratings/{world.rating}")
        queued = api.post(f"/challenges/{NIBBLER}/ratings")
    assert review.status_code == 403, review.text
    assert_error_shape(review)
    assert seen.status_code == queued.status_code == 200
    handed = queued.json()["rating"]
    for shown in (seen.json(), handed):
        assert shown is not None
        assert not [key for key in shown
                    if any(word in key for word in ("submit", "user", "writer", "team"))]
    for text in (seen.text, queued.text):  # nor anything else that tells who wrote it
        assert world.emails["a"] not in text
        assert "Team A" not in text
    with world.server.api(world.tokens["owner"]) as api:  # the control: its organizer sees it
        reviewed = {row["id"]: row for row in api.get(f"/challenges/{NIBBLER}/review").json()}
    assert reviewed[world.attack]["submitter"] == "a"  # the name of a@walk.example.org


def test_the_image_waits_for_the_prompt_and_excluded_raters_lose_the_queue(
        world: World) -> None:
    email = world.new_account()
    with world.server.api() as api:
        token = api.post("/auth/token", json={"email": email, "password": PASSWORD}).json()
    with world.server.api(world.tokens["owner"]) as api:
        granted = api.post(f"/challenges/{NIBBLER}/raters", json={"email": email})
    assert granted.status_code == 201, granted.text
    rater_id = granted.json()["rater_id"]
    with world.server.api(token["token"]) as api:
        api.post(f"/challenges/{NIBBLER}/consent").raise_for_status()
        first = api.post(f"/challenges/{NIBBLER}/ratings").json()["rating"]
        early = api.get(f"/ratings/{first['id']}/image")
        judged = api.post(f"/ratings/{first['id']}/prompt", json={"text_safety": "unsure"})
        image = api.get(f"/ratings/{first['id']}/image")
        answered = api.post(f"/ratings/{first['id']}/answer", json=ANSWER)
        second = api.post(f"/challenges/{NIBBLER}/ratings").json()["rating"]
    assert first["stage"] == "prompt"
    assert first["image_url"] is None
    assert early.status_code == 409, early.text
    assert early.json()["error"]["code"] == "prompt-first"
    assert judged.status_code == 200, judged.text
    assert image.status_code == 200, image.text
    assert image.content.startswith(b"\x89PNG")
    assert answered.status_code == 200, answered.text
    assert second is not None
    assert second["id"] != first["id"]
    with world.server.api(world.tokens["owner"]) as api:
        excluded = api.post(f"/challenges/{NIBBLER}/raters/{rater_id}/exclude",
                            json={"reason": "walked out"})
    assert excluded.status_code == 200, excluded.text
    with world.server.api(token["token"]) as api:
        refused = [api.post(f"/challenges/{NIBBLER}/ratings"),
                   api.get(f"/challenges/{NIBBLER}/ratings/me"),
                   api.get(f"/ratings/{first['id']}"),  # answered: kept, but not theirs to use
                   api.get(f"/ratings/{first['id']}/image")]
        dropped = api.get(f"/ratings/{second['id']}")  # open: given back to the queue
    assert [answer.status_code for answer in refused] == [403] * 4, [a.text for a in refused]
    assert dropped.status_code == 404, dropped.text
    with world.server.api(world.tokens["owner"]) as api:  # granted again: back in the queue
        api.post(f"/challenges/{NIBBLER}/raters", json={"email": email}).raise_for_status()
    with world.server.api(token["token"]) as api:
        assert api.post(f"/challenges/{NIBBLER}/ratings").status_code == 200


@pytest.mark.parametrize("edition", [str(EDITION_DIR), "../offline", "/etc", ".hidden"])
def test_organizers_host_editions_by_name_not_by_path(world: World, edition: str) -> None:
    with world.server.api(world.tokens["owner"]) as api:
        answer = api.post("/challenges", json={"challenge": CHALLENGE, "edition": edition,
                                               "name": f"by-path-{world.unique()}"})
    assert answer.status_code == 422, answer.text
    assert "name" in answer.json()["error"]["message"]


def test_an_organizer_hosts_a_red_teaming_challenge_and_manages_it_alone(world: World) -> None:
    """Every kind is hosted now: the organizer who hosts a red-teaming challenge is its owner,
    the one who manages its raters (with the admins), not the platform's other organizers."""
    host = world.server.user(f"host{world.unique()}@walk.example.org", "organizer")
    name = f"nibbler-{world.unique()}"
    with world.server.api(host) as api:
        hosted = api.post("/challenges", json={"challenge": "adversarial-nibbler",
                                               "name": name})
    assert hosted.status_code == 201, hosted.text
    assert hosted.json()["kind"] == "redteaming"
    raters = {}
    for caller, token in (("host", host), ("owner", world.tokens["owner"]),
                          ("admin", world.tokens["admin"])):
        with world.server.api(token) as api:
            raters[caller] = api.get(f"/challenges/{name}/raters").status_code
    assert raters == {"host": 200, "owner": 403, "admin": 200}


# Hidden files are never served -------------------------------------------------------------


def raw_get(server: LiveServer, target: str) -> tuple[int, bytes]:
    """GET exactly ``target`` (httpx would remove the dot segments): status and body."""
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as connection:
        connection.sendall(f"GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n"
                           "\r\n".encode())
        data = b""
        while chunk := connection.recv(1 << 16):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def test_no_route_serves_files_but_static_folders(app: Any, tmp_path: Path) -> None:
    """Only the folders of STATIC_MOUNTS are served as files, none holds or contains edition
    data, and no other route takes a path (which could address any file)."""
    from fastapi.staticfiles import StaticFiles
    from starlette.convertors import PathConvertor
    from swagger_ui_bundle import swagger_ui_path

    try:
        from fastapi.routing import iter_route_contexts

        routes: list[Any] = list(iter_route_contexts(app.routes))
    except ImportError:
        routes = list(app.routes)
    mounts = {}
    for route in routes:
        if getattr(route, "methods", None) is not None:
            convertors = getattr(route, "param_convertors", {}) or {}
            assert not any(isinstance(c, PathConvertor) for c in convertors.values()), \
                f"{route.path} takes a path parameter: it could address any file"
            continue
        assert route.path in STATIC_MOUNTS, f"{route.path} is mounted: add it to STATIC_MOUNTS"
        assert isinstance(route.app, StaticFiles), route.path
        assert route.app.directory is not None, route.path
        directory = Path(route.app.directory).resolve()
        for data in (BUNDLED.resolve(), tmp_path.resolve()):  # editions, the server's home
            assert not data.is_relative_to(directory), (route.path, data)
            assert not directory.is_relative_to(data), (route.path, data)
        assert not [p for p in directory.rglob("*")
                    if p.suffix == ".parquet" or p.name in ("hidden", "manifest.json")]
        mounts[route.path] = directory
    assert mounts["/static/swagger"] == Path(swagger_ui_path).resolve()
    assert set(mounts) == set(STATIC_MOUNTS)


def test_traversal_out_of_static_files_finds_nothing(world: World) -> None:
    from swagger_ui_bundle import swagger_ui_path

    served, body = raw_get(world.server, "/static/swagger/swagger-ui.css")  # the control
    assert served == 200
    assert body == (Path(swagger_ui_path) / "swagger-ui.css").read_bytes()

    hidden = sorted((EDITION_DIR / "hidden").iterdir())
    assert hidden
    for file in hidden:
        data = file.read_bytes()
        sample = data[len(data) // 2:len(data) // 2 + 64]
        up = Path(*[".."] * len(Path(swagger_ui_path).resolve().parts)) / file.resolve()
        in_bundled = file.relative_to(BUNDLED)
        targets = [
            f"/static/../bundled/{in_bundled}",
            f"/bundled/{in_bundled}",
            f"{API}/editions/{in_bundled}",
            f"{API}/challenges/{CHALLENGE}/{file.relative_to(EDITION_DIR)}",
            f"{API}/../bundled/{in_bundled}",
        ]
        for mount in STATIC_MOUNTS:
            targets += [
                f"{mount}/{up}",
                f"{mount}/" + str(up).replace("..", "%2e%2e"),
                f"{mount}/" + str(up).replace("/", "%2f"),
                *(f"{mount}/{'../' * n}bundled/{in_bundled}" for n in range(1, 6)),
                *(f"{mount}/{'../' * n}dataperf/bundled/{in_bundled}" for n in range(1, 7)),
            ]
        for target in targets:
            status, body = raw_get(world.server, target)
            assert status in (400, 404), (target, status)
            assert sample not in body, target
    status, body = raw_get(world.server, f"{API}/editions")
    assert status == 405  # uploads only: editions are never listed or read back


@pytest.mark.parametrize("name", [CHALLENGE, COPY])
def test_public_data_holds_no_hidden_file(world: World, name: str) -> None:
    with world.server.api() as api:
        answer = api.get(f"/challenges/{name}/public-data")
    assert answer.status_code == 200, answer.text
    with tarfile.open(fileobj=io.BytesIO(answer.content), mode="r:gz") as archive:
        members = {m.name: m for m in archive.getmembers()}
        unpacked = b"".join(archive.extractfile(m).read()  # type: ignore[union-attr]
                            for m in members.values() if m.isfile())
    assert any(n.endswith("public/pool.parquet") for n in members)  # the control
    assert not [n for n in members if "hidden" in n.split("/")]
    for file in (EDITION_DIR / "hidden").iterdir():
        data = file.read_bytes()
        assert data[len(data) // 2:len(data) // 2 + 64] not in unpacked
