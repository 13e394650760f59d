"""The Alembic migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, MetaData, Table, inspect, select, update
from sqlalchemy.exc import IntegrityError

from dataperf.server import queue
from dataperf.server.db import Database
from dataperf.server.models import (
    Base,
    ChallengeRow,
    Consent,
    Evaluation,
    Round,
    State,
    Submission,
    User,
)
from dataperf.server.queue import AGGREGATE
from dataperf.server.security import hash_password
from platform_harness import fast_settings


def test_migrations_match_the_models(db_url: str) -> None:
    db = Database(db_url)
    db.migrate()
    db.migrate()  # applying twice changes nothing
    with db.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    db.dispose()
    assert differences == []


# Upgrading a populated database -----------------------------------------------------------------

FIRST = "0001"
T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
SCORER_32 = "selection-1.4.0+scorer-2026.11.a"  # as long as 0001 allowed (0003 widens it)
ADA_PASSWORD = "plum tuba vector orchard"
TABLES_0001 = ("teams", "workers", "users", "api_tokens", "challenges", "rounds", "snapshots",
               "submissions", "evaluations", "submission_files", "scores")
NEW_TABLES = ("consents", "generations", "attacks", "raters", "validations", "login_failures")
# Columns later migrations added to old tables, with the values old rows must get.
ADDED = {"evaluations": {"priority": 0},
         "rounds": {"generators": None, "validations": None, "image_retention_days": None,
                    "ladder_step": None},
         "submissions": {"is_studio": False, "is_superseded": False, "idempotency_key": None}}


def _at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _add(connection: Connection, table: Table, **values: Any) -> Any:
    return connection.execute(table.insert().values(**values)).inserted_primary_key[0]


def _populate(connection: Connection, tables: dict[str, Table], ada_token: str) -> None:
    """A platform's life at 0001: teams, users, tokens, two challenges, three rounds, and
    submissions in every evaluation state, with files, scores and a frozen leaderboard."""
    t = tables
    baselines = _add(connection, t["teams"], name="baselines", join_code_hash=None,
                     is_system=True, created_at=_at(0))
    owls = _add(connection, t["teams"], name="owls", join_code_hash=_sha("owls-code"),
                is_system=False, created_at=_at(1))
    larks = _add(connection, t["teams"], name="Lärchen & co", join_code_hash=_sha("larks"),
                 is_system=False, created_at=_at(2))
    _add(connection, t["workers"], id="node-7:4242", executor="local", slots=2,
         started_at=_at(3), heartbeat_at=_at(300))
    users = {}
    for email, name, role, team, password in (
            ("org@example.org", "Organizer", "organizer", None, "organizer words here ok"),
            ("ada@example.org", "Ada", "participant", owls, ADA_PASSWORD),
            ("bob@example.org", "Bob", "participant", owls, "bob's quiet garden gnome"),
            ("zoe@example.org", "Zoë Ñandú", "participant", larks, "zebra yodel quartz mint"),
            ("rae@example.org", "Rae", "rater", None, "rater reads every prompt")):
        users[email.split("@")[0]] = _add(
            connection, t["users"], email=email, name=name, password_hash=hash_password(password),
            role=role, team_id=team, created_at=_at(4 + len(users)))
    org, ada, bob, zoe = users["org"], users["ada"], users["bob"], users["zoe"]
    for user, name, secret, used, revoked in (
            (ada, "registration", ada_token, None, None),
            (ada, "laptop", "dp_ada_laptop", _at(200), None),
            (bob, "cli", "dp_bob_old", _at(50), _at(60)),
            (zoe, "registration", "dp_zoe", _at(120), None)):
        _add(connection, t["api_tokens"], user_id=user, name=name, token_hash=_sha(secret),
             prefix=secret[:8], created_at=_at(10), last_used_at=used, revoked_at=revoked)
    tasks = ["shirt", "trouser"]
    selection = _add(connection, t["challenges"], name="selection", challenge="selection",
                     title="Training-set selection", description="Pick **1,000** examples.\n",
                     kind="selection", metric="accuracy", direction="higher",
                     edition_path="bundled:offline", edition_hash=_sha("edition-1"), tasks=tasks,
                     owner_id=None, created_at=_at(0))
    cleaning = _add(connection, t["challenges"], name="org-cleaning", challenge="cleaning",
                    title="Cleaning", description="", kind="cleaning", metric="auc",
                    direction="lower", edition_path="/srv/editions/cleaning-2",
                    edition_hash=_sha("edition-2"), tasks=["all"], owner_id=org,
                    created_at=_at(20))
    rounds = []
    for challenge, number, scorer, private, weights, closed, deadline, finals in (
            (selection, 1, SCORER_32, 0.0, None, True, _at(400), 0),
            (selection, 2, "selection-1.5.0", 0.3, {"shirt": 2.0, "trouser": 1.0}, False,
             _at(60 * 24 * 400), 2),
            (cleaning, 1, "cleaning-0.9", 0.0, None, False, None, 0)):
        rounds.append(_add(
            connection, t["rounds"], challenge_id=challenge, number=number,
            name=f"Round {number}", scorer_version=scorer, edition_hash=_sha(f"ed-{challenge}"),
            opens_at=_at(0), deadline=deadline, closed=closed, daily_quota=10,
            round_quota=None if number == 1 else 25, private_fraction=private,
            split_seed=1234 + number, final_count=finals, task_weights=weights,
            created_at=_at(number), changed_at=_at(500 + number)))
    r1, r2, r3 = rounds
    _add(connection, t["snapshots"], round_id=r1, name="final standings", created_at=_at(401),
         created_by=org, data={"challenge": "selection", "round": 1, "rows": [{"team": "owls"}]})
    # (round, team, user, label, baseline, final, state, aggregate by part or None)
    plan = [
        (r1, baselines, None, "random", True, False, "scored", {"all": 0.61}),
        (r1, owls, ada, "first try", False, False, "scored", {"all": 0.72}),
        (r1, owls, bob, "bob's", False, False, "scored", {"all": 0.79}),
        (r1, larks, zoe, "larks v1", False, False, "scored", {"all": 0.75}),
        (r1, larks, zoe, "broken ids", False, False, "failed_participant", None),
        (r2, owls, ada, "final pick", False, True, "scored", {"public": 0.81, "private": 0.8}),
        (r2, larks, zoe, "waiting", False, False, "queued", None),
        (r2, owls, bob, "in flight", False, False, "running", None),
        (r2, larks, zoe, "changed my mind", False, False, "cancelled", None),
        (r3, owls, ada, "worker died", False, False, "failed_platform", None)]
    for n, (round_id, team, user, label, baseline, final, state, parts) in enumerate(plan):
        created = _at(30 + 10 * n)
        submission = _add(connection, t["submissions"], round_id=round_id, team_id=team,
                          user_id=user, label=label, is_baseline=baseline, is_final=final,
                          total_bytes=4096 + n, warnings=["3 duplicate IDs ignored"] if n == 3
                          else [], created_at=created)
        for name, content in (("selection.csv", f"ids-{n % 4}"), ("notes.txt", "shared notes")):
            if name == "notes.txt" and n % 2:
                continue
            _add(connection, t["submission_files"], submission_id=submission, name=name,
                 sha256=_sha(content), size=2048 + n)
        done = state not in ("queued", "running")
        evaluation = _add(
            connection, t["evaluations"], submission_id=submission, state=state,
            baseline=label if baseline else None, attempts=0 if state == "queued" else
            (3 if state == "failed_platform" else 1), max_attempts=3,
            lease_owner="node-7:4242" if state == "running" else None,
            lease_expires_at=_at(10_000) if state == "running" else None,
            cancel_requested=state == "cancelled",
            progress={"step": "training", "done": 3, "total": 10} if state == "running" else None,
            message={"failed_participant": "selection.csv: unknown ID 'x-17'",
                     "failed_platform": "worker lost 3 times"}.get(state),
            problems=[{"file": "selection.csv", "line": 4, "problem": "unknown ID"}]
            if state == "failed_participant" else None,
            queued_at=created, started_at=None if state == "queued" else created,
            finished_at=created + timedelta(seconds=95.5) if done else None,
            seconds=95.5 if done else None, scorer_version=SCORER_32 if state == "scored"
            else None)
        for part, aggregate in (parts or {}).items():
            for task, value in (("shirt", aggregate + 0.02), ("trouser", aggregate - 0.02),
                                (AGGREGATE, aggregate)):
                _add(connection, t["scores"], evaluation_id=evaluation, round_id=round_id,
                     part=part, task=task, is_aggregate=task == AGGREGATE, value=value,
                     ci_low=value - 0.03, ci_high=value + 0.03,
                     details={} if task == AGGREGATE else {"n": 500, "correct": 360 + n})


def _rows(connection: Connection) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table, in primary-key order, as the database holds it now."""
    tables = MetaData()
    tables.reflect(bind=connection)
    return {name: [dict(row) for row in connection.execute(
                table.select().order_by(*table.primary_key.columns)).mappings()]
            for name, table in tables.tables.items() if name != "alembic_version"}


def _foreign_keys(connection: Connection, table: str) -> list[tuple[Any, ...]]:
    return sorted((tuple(fk["constrained_columns"]), fk["referred_table"],
                   tuple(fk["referred_columns"]))
                  for fk in inspect(connection).get_foreign_keys(table))


def test_upgrading_a_populated_first_schema_keeps_every_row(db_url: str, tmp_path: Path) -> None:
    """A database filled at the first revision migrates to the newest with every row and value
    intact, the added columns' defaults, the later constraints, and the platform reading it."""
    db = Database(db_url)
    db.migrate(FIRST)
    ada_token = "dp_" + "a" * 43
    with db.write_engine.connect() as connection:
        tables = MetaData()
        tables.reflect(bind=connection)
        assert set(tables.tables) == {*TABLES_0001, "alembic_version"}
        _populate(connection, tables.tables, ada_token)
        connection.commit()
    with db.engine.connect() as connection:
        before = _rows(connection)
        keys_before = {name: _foreign_keys(connection, name) for name in TABLES_0001}
    assert {name: len(rows) for name, rows in before.items()} == {
        "teams": 3, "workers": 1, "users": 5, "api_tokens": 4, "challenges": 2, "rounds": 3,
        "snapshots": 1, "submissions": 10, "evaluations": 10, "submission_files": 15,
        "scores": 18}

    db.migrate()
    if db.is_sqlite:  # the migration's connection enforces references again
        with db.write_engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    with db.engine.connect() as connection:
        after = _rows(connection)
        assert {name: _foreign_keys(connection, name) for name in TABLES_0001} == keys_before
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
        if db.is_sqlite:
            assert connection.exec_driver_sql("PRAGMA foreign_key_check").all() == []
    assert differences == []
    assert set(after) == {*TABLES_0001, *NEW_TABLES}
    assert all(after[name] == [] for name in NEW_TABLES)
    for name, old_rows in before.items():
        added = ADDED.get(name, {})
        assert set(after[name][0]) == set(old_rows[0]) | set(added), name
        assert len(after[name]) == len(old_rows), name
        for old, new in zip(old_rows, after[name], strict=True):
            assert {column: new[column] for column in old} == old, name
            assert {column: new[column] for column in added} == added, name

    _check_the_platform_reads_it(db, db_url, tmp_path, ada_token)
    _check_later_constraints(db)
    db.dispose()


def _check_later_constraints(db: Database) -> None:
    """0003's wider scorer versions, 0002's, 0004's and 0005's server defaults, 0004's tables
    referring to old rows and 0006's one idempotency key per user hold on the upgraded tables."""
    with db.write() as session:
        long_version = "selection-" + "9" * 100 + "+scorer-v2"
        assert len(long_version) == 120
        session.execute(update(Round).where(Round.number == 2).values(scorer_version=long_version))
        ada = session.scalars(select(User.id).where(User.email == "ada@example.org")).one()
        first = session.scalars(select(Submission).order_by(Submission.id)).first()
        assert first is not None
        selection = session.scalars(select(ChallengeRow.id).where(ChallengeRow.name == "selection")
                                    ).one()
        session.add(Consent(user_id=ada, challenge_id=selection))
        for key in ("retry-1", None, None):
            session.add(Submission(round_id=first.round_id, team_id=first.team_id, user_id=ada,
                                   label="after upgrade", idempotency_key=key))
    with db.read() as session:
        assert session.scalars(select(Round.scorer_version).where(Round.number == 2)
                               ).all() == [long_version]
    with pytest.raises(IntegrityError), db.write() as session:
        session.add(Submission(round_id=first.round_id, team_id=first.team_id, user_id=ada,
                               label="same key", idempotency_key="retry-1"))
    with db.write_engine.connect() as connection:  # rows that leave out the added columns
        submissions = Table("submissions", MetaData(), autoload_with=connection)
        evaluations = Table("evaluations", MetaData(), autoload_with=connection)
        new = _add(connection, submissions, round_id=first.round_id, team_id=first.team_id,
                   user_id=None, label="core", is_baseline=False, is_final=False,
                   total_bytes=0, warnings=[], created_at=_at(900))
        _add(connection, evaluations, submission_id=new, state="queued", attempts=0,
             max_attempts=3, cancel_requested=False, queued_at=_at(900))
        assert connection.execute(select(submissions.c.is_studio, submissions.c.is_superseded)
                                  .where(submissions.c.id == new)).one() == (False, False)
        assert connection.execute(select(evaluations.c.priority)
                                  .where(evaluations.c.submission_id == new)).scalar() == 0
        connection.rollback()


def _check_the_platform_reads_it(db: Database, db_url: str, tmp_path: Path,
                                 ada_token: str) -> None:
    """The app logs in with an old password and token, lists a team's submissions, ranks
    both rounds' leaderboards; a worker claims the old queued evaluation."""
    from fastapi.testclient import TestClient

    from dataperf.server.app import create_app

    settings = fast_settings(tmp_path / "home", db_url, workers=0, seed_bundled=False)
    with TestClient(create_app(settings), base_url="http://test/api/v1") as client:
        login = {"email": "ada@example.org", "password": "not it at all, no"}
        assert client.post("/auth/token", json=login).status_code == 401
        answer = client.post("/auth/token", json=login | {"password": ADA_PASSWORD})
        assert answer.status_code == 200, answer.text
        assert answer.json()["user"]["team"]["name"] == "owls"
        old = {"Authorization": f"Bearer {ada_token}"}
        me = client.get("/me", headers=old).json()
        assert (me["email"], me["role"], me["team"]["name"]) == \
            ("ada@example.org", "participant", "owls")
        revoked = client.get("/me", headers={"Authorization": "Bearer dp_bob_old"})
        assert revoked.status_code == 401
        mine = client.get("/submissions", headers=old, params={"challenge": "selection"}).json()
        assert [(s["label"], s["state"]) for s in mine] == [
            ("in flight", "running"), ("final pick", "scored"), ("bob's", "scored"),
            ("first try", "scored")]
        first = next(s for s in mine if s["label"] == "first try")
        assert first["scorer_version"] == SCORER_32
        assert first["scores"]["all"]["aggregate"]["value"] == pytest.approx(0.72)
        assert {cell["task"] for cell in first["scores"]["all"]["tasks"]} == {"shirt", "trouser"}
        board = client.get("/challenges/selection/leaderboard", params={"round": 1}).json()
        assert [(row["rank"], row["team"], row["score"]["value"]) for row in board["rows"]] == [
            (1, "owls", pytest.approx(0.79)), (1, "Lärchen & co", pytest.approx(0.75)),
            (None, "baselines", pytest.approx(0.61))]
        board = client.get("/challenges/selection/leaderboard",
                           params={"round": 2, "part": "public"}).json()
        assert board["weights"] == {"shirt": 2.0, "trouser": 1.0}
        assert [(row["team"], row["label"]) for row in board["rows"]] == [("owls", "final pick")]
    lease = queue.claim(db, "node-7:4242", 30)
    assert lease is not None
    with db.read() as session:
        claimed = session.get_one(Evaluation, lease.job_id)
        assert (claimed.submission.label, claimed.state) == ("waiting", State.running)
