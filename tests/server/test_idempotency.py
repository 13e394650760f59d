"""Idempotent submissions (SQLite and PostgreSQL): an upload sent again with its key, however
late and however often, gives back the submission it made, charged to the quota once; the
CLI's client retries a lost answer with the same key."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from dataperf.client import Client
from dataperf.registry import get_challenge
from platform_harness import LiveServer

CHALLENGE = "vision-selection"


@pytest.fixture(scope="module")
def runs() -> list[dict[str, bytes]]:
    challenge = get_challenge(CHALLENGE)
    edition = challenge.edition("offline")
    return [challenge.run_algorithm("random", edition, random_state=seed) for seed in (1, 2)]


def _post(server: LiveServer, token: str, files: dict[str, bytes], key: str | None
          ) -> httpx.Response:
    with server.api(token) as api:
        return api.post(f"/challenges/{CHALLENGE}/submissions",
                        files=[("files", (n, d)) for n, d in sorted(files.items())],
                        headers={"Idempotency-Key": key} if key else {})


def _mine(server: LiveServer, token: str) -> list[Any]:
    with server.api(token) as api:
        return list(api.get("/submissions").json())


def test_the_same_key_gives_back_the_same_submission_charged_once(
        server: LiveServer, runs: list[dict[str, bytes]]) -> None:
    token = server.register("ida@example.org", team="Keys")["token"]
    first = _post(server, token, runs[0], "run-1")
    again = _post(server, token, runs[0], "run-1")
    assert first.status_code == again.status_code == 202
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    other = _post(server, token, runs[1], "run-1")
    assert other.status_code == 422
    assert other.json()["error"]["code"] == "idempotency-key-reused"
    assert f"submission {first.json()['id']}" in other.json()["error"]["message"]
    assert _post(server, token, runs[0], None).status_code == 202  # no key: a new one
    with server.api(token) as api:
        assert api.get(f"/challenges/{CHALLENGE}/quota").json()["daily_used"] == 2
    assert len(_mine(server, token)) == 2
    bad = _post(server, token, runs[0], "no spaces or slashes/here")
    assert bad.status_code == 422


def test_a_retry_after_the_quota_ran_out_still_gets_its_submission(
        server: LiveServer, runs: list[dict[str, bytes]]) -> None:
    token = server.register("quin@example.org", team="Quota keys")["token"]
    daily = server.settings.daily_quota
    made = [_post(server, token, runs[i % 2], f"k{i}") for i in range(daily)]
    assert all(r.status_code == 202 for r in made)
    assert _post(server, token, runs[1], "one-more").status_code == 429
    late = _post(server, token, runs[0], "k0")
    assert late.status_code == 202
    assert late.json()["id"] == made[0].json()["id"]


def test_the_same_key_sent_at_once_makes_one_submission(
        server: LiveServer, runs: list[dict[str, bytes]]) -> None:
    token = server.register("rae@example.org", team="Races")["token"]
    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda _: _post(server, token, runs[0], "same-moment"),
                                range(6)))
    assert [a.status_code for a in answers] == [202] * 6
    assert len({a.json()["id"] for a in answers}) == 1
    assert len(_mine(server, token)) == 1


class LosesFirstAnswer(httpx.HTTPTransport):
    """Delivers every request, but the first answer is lost on the way back (the server has
    committed; the client sees a broken connection)."""

    def __init__(self) -> None:
        super().__init__()
        self.sent = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        self.sent += 1
        if self.sent == 1:
            response.read()
            raise httpx.ReadError("connection reset by peer", request=request)
        return response


def test_the_client_retries_a_lost_answer_without_submitting_twice(
        server: LiveServer, runs: list[dict[str, bytes]]) -> None:
    token = server.register("sol@example.org", team="Retries")["token"]
    transport = LosesFirstAnswer()
    with Client(server.url, token, transport=transport) as client:
        found = client.submit(CHALLENGE, runs[0], waits=(0.05,))
    assert transport.sent == 2
    assert [s["id"] for s in _mine(server, token)] == [found["id"]]


def test_storage_that_cannot_take_files_refuses_with_a_retry_and_stores_nothing(
        server: LiveServer, runs: list[dict[str, bytes]]) -> None:
    """The blob folder unusable (here: a plain file in its place, which stops root too): 503
    with Retry-After, no submission, no quota used; once it is back, the same key submits."""
    token = server.register("sol@example.org", team="Storage")["token"]
    blobs = server.settings.blobs_dir
    aside = blobs.with_name("blobs-aside")
    if blobs.exists():
        blobs.rename(aside)
    blobs.write_bytes(b"")
    try:
        refused = _post(server, token, runs[0], "while-down")
    finally:
        blobs.unlink()
        if aside.exists():
            aside.rename(blobs)
    assert refused.status_code == 503, refused.text
    assert refused.json()["error"]["code"] == "storage-unavailable"
    assert int(refused.headers["Retry-After"]) > 0
    assert _mine(server, token) == []
    with server.api(token) as api:
        assert api.get(f"/challenges/{CHALLENGE}/quota").json()["daily_used"] == 0
    again = _post(server, token, runs[0], "while-down")
    assert again.status_code == 202, again.text
    assert server.wait(token, again.json()["id"])["state"] == "scored"
