"""Several server replicas on one PostgreSQL database: two `dataperf serve --workers 0`
processes and two `dataperf worker`s share the database and the file storage, and nothing a
replica keeps to itself changes an answer. Concurrent submissions through both are each scored
once; a team's quota holds across them; their leaderboards agree; and failed logins count
wherever they were tried."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy import func, select

from dataperf.registry import get_challenge
from dataperf.server.db import Database
from dataperf.server.models import Evaluation, ScoreRow, State
from platform_harness import PASSWORD, LiveServer, database_url, fast_settings
from process_harness import replicas, states, wait_for, workers

CHALLENGE = "vision-selection"
DAILY_QUOTA = 3


@dataclass
class Replicated:
    servers: list[LiveServer]
    db: Database
    runs: list[dict[str, bytes]]  # submission files, a few different ones

    def post(self, replica: int, token: str, seed: int) -> httpx.Response:
        with self.servers[replica].api(token) as api:
            return api.post(f"/challenges/{CHALLENGE}/submissions", data={"label": str(seed)},
                            files=[("files", (n, d))
                                   for n, d in sorted(self.runs[seed % len(self.runs)].items())])

    def settled(self) -> bool:
        found = states(self.db)
        return not found.get(State.queued) and not found.get(State.running)


@pytest.fixture(scope="module")
def replicated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replicated]:
    root = tmp_path_factory.mktemp("replicas")
    with database_url("postgresql", root) as url:
        settings = fast_settings(root / "home", url, workers=0)
        with ThreadPoolExecutor(1) as pool:  # made while the replicas start
            runs = pool.submit(_runs)
            with replicas(settings, 2, daily_quota=DAILY_QUOTA) as servers, \
                    workers(settings, 2, slots=1):
                db = Database(url)
                yield Replicated([s.live for s in servers], db, runs.result())
                db.dispose()


def _runs() -> list[dict[str, bytes]]:
    challenge = get_challenge(CHALLENGE)
    edition = challenge.edition("offline")
    return [challenge.run_algorithm("random", edition, random_state=seed) for seed in (0, 1)]


def test_concurrent_submissions_through_both_replicas_are_each_scored_once(
        replicated: Replicated) -> None:
    tokens = [replicated.servers[i % 2].register(f"r{i}@example.org", team=f"Replica {i}")
              ["token"] for i in range(3)]
    jobs = [(i % 2, tokens[i % 3], i) for i in range(6)]  # 2 per team: under the quota
    with ThreadPoolExecutor(len(jobs)) as pool:
        answers = list(pool.map(lambda job: replicated.post(*job), jobs))
    assert [a.status_code for a in answers] == [202] * len(jobs), [a.text for a in answers]
    owners = {a.json()["id"]: token for a, (_, token, _) in zip(answers, jobs, strict=True)}
    ids = set(owners)
    assert len(ids) == len(jobs)
    wait_for(replicated.settled, 240, "the evaluations did not finish")

    with replicated.db.read() as session:
        finished = session.execute(select(Evaluation.submission_id, Evaluation.state,
                                          Evaluation.attempts)
                                   .where(Evaluation.submission_id.in_(ids))).all()
        scores = dict(session.execute(
            select(Evaluation.submission_id, func.count(ScoreRow.id)).join(ScoreRow)
            .where(Evaluation.submission_id.in_(ids)).group_by(Evaluation.submission_id)).all())
    assert sorted(s for s, _, _ in finished) == sorted(ids)
    assert {(state, attempts) for _, state, attempts in finished} == {(State.scored, 1)}
    assert scores == dict.fromkeys(ids, 4)  # 3 tasks and their mean, once each
    for submission_id, token in owners.items():  # either replica shows each the same
        shown = []
        for replica in replicated.servers:
            with replica.api(token) as api:
                shown.append(api.get(f"/submissions/{submission_id}").json())
        assert shown[0]["state"] == "scored"
        assert shown[0] == shown[1]


def test_a_teams_quota_holds_across_replicas(replicated: Replicated) -> None:
    token = replicated.servers[0].register("quota@example.org", team="Quota race")["token"]
    count = 3 * DAILY_QUOTA
    with ThreadPoolExecutor(count) as pool:
        answers = list(pool.map(lambda i: replicated.post(i % 2, token, i), range(count)))
    codes = [a.status_code for a in answers]
    assert codes.count(202) == DAILY_QUOTA, [a.text for a in answers]
    refused = [a for a in answers if a.status_code != 202]
    assert {a.status_code for a in refused} == {429}
    assert {a.json()["error"]["code"] for a in refused} == {"quota-exceeded"}
    for replica in replicated.servers:
        with replica.api(token) as api:
            quota = api.get(f"/challenges/{CHALLENGE}/quota").json()
            assert (quota["daily_used"], quota["daily_limit"]) == (DAILY_QUOTA, DAILY_QUOTA)
            assert len(api.get("/submissions").json()) == DAILY_QUOTA
    accepted = [a.json()["id"] for a in answers if a.status_code == 202]
    for submission_id in accepted:
        assert replicated.servers[1].wait(token, submission_id, timeout=240)["state"] == "scored"


def test_both_replicas_show_the_same_leaderboards(replicated: Replicated) -> None:
    wait_for(replicated.settled, 240, "the evaluations did not finish")
    task = get_challenge(CHALLENGE).edition("offline").tasks[0]
    views = [{}, {"round": 1, "part": "all"}, {"view": task}]
    for view in views:
        boards = []
        for replica in replicated.servers:
            with replica.api() as api:
                answer = api.get(f"/challenges/{CHALLENGE}/leaderboard", params=view)
                assert answer.status_code == 200, answer.text
                boards.append(answer.json())
        assert boards[0] == boards[1]
        assert boards[0]["rows"], f"an empty leaderboard proves nothing: {view}"
    with replicated.servers[0].api() as first, replicated.servers[1].api() as second:
        assert first.get(f"/challenges/{CHALLENGE}/history").json() \
            == second.get(f"/challenges/{CHALLENGE}/history").json()


def _login(server: LiveServer, email: str, password: str) -> int:
    with server.api() as api:
        return api.post("/auth/token", json={"email": email, "password": password}) \
            .status_code


def test_failed_logins_count_on_every_replica(replicated: Replicated) -> None:
    """The throttle is kept in the database (``logins``): five failures, four through one
    replica and one through the other, lock this client out of the account on both."""
    first, second = replicated.servers
    first.register("guessed@example.org")
    assert [_login(first, "guessed@example.org", "wrong guess!") for _ in range(4)] == [401] * 4
    assert _login(second, "guessed@example.org", "wrong guess!") == 401
    assert _login(second, "guessed@example.org", PASSWORD) == 429
    assert _login(first, "guessed@example.org", PASSWORD) == 429

    # Fewer failures than the limit, through the first: the second still lets the owner in,
    # and that login clears them for both.
    second.register("careful@example.org")
    assert [_login(first, "careful@example.org", "wrong guess!") for _ in range(4)] == [401] * 4
    assert _login(second, "careful@example.org", PASSWORD) == 200
    assert [_login(second, "careful@example.org", "wrong guess!") for _ in range(4)] \
        == [401] * 4
    assert _login(first, "careful@example.org", PASSWORD) == 200


def test_the_replicas_are_separate_processes_on_one_database(replicated: Replicated) -> None:
    """What the tests above rely on: two addresses, and a row written through one replica is
    read through the other at once."""
    first, second = replicated.servers
    assert first.url != second.url
    token = first.register("both@example.org")["token"]
    with second.api(token) as api:
        assert api.get("/me").json()["email"] == "both@example.org"
