"""The database picks each team's best submission for the leaderboard (fast with 100,000
submissions); it must choose exactly what the ranking rules choose from all submissions."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from dataperf.server import leaderboard as lb
from dataperf.server.boards import load_entries
from dataperf.server.db import Database
from dataperf.server.models import (
    ChallengeRow,
    Evaluation,
    Round,
    ScoreRow,
    State,
    Submission,
    Team,
    utcnow,
)
from dataperf.server.queue import AGGREGATE

TASKS = ("a", "b")


@pytest.fixture
def round_id(db_url: str, tmp_path: Path) -> int:
    """A round with 300 scored submissions of 20 teams (and 3 baselines); many equal values."""
    db = Database(db_url)
    db.migrate()
    rng = np.random.default_rng(7)
    start = utcnow()
    with db.write() as session:
        challenge = ChallengeRow(name="c", challenge="c", title="c", description="", kind="k",
                                 metric="m", direction="higher", edition_path="e",
                                 edition_hash="h", tasks=list(TASKS))
        session.add(challenge)
        session.flush()
        round_ = Round(challenge_id=challenge.id, number=1, name="r", scorer_version="v",
                       edition_hash="h", daily_quota=5)
        teams = [Team(name=f"t{i}") for i in range(20)]
        session.add_all([round_, *teams])
        session.flush()
        for n in range(303):
            baseline = n >= 300
            submission = Submission(round_id=round_.id, team_id=teams[n % 20].id,
                                    is_baseline=baseline, label="b" if baseline else "",
                                    created_at=start + timedelta(seconds=int(rng.integers(50))))
            session.add(submission)
            session.flush()
            evaluation = Evaluation(submission_id=submission.id, state=State.scored,
                                    max_attempts=1)
            session.add(evaluation)
            session.flush()
            values = {t: float(rng.integers(0, 6)) for t in TASKS}  # few values: many ties
            values[AGGREGATE] = float(np.mean(list(values.values())))
            for task, value in values.items():
                session.add(ScoreRow(evaluation_id=evaluation.id, round_id=round_.id,
                                     part="all", task=task, is_aggregate=task == AGGREGATE,
                                     value=value, ci_low=value - 1, ci_high=value + 1))
        found = round_.id
    db.dispose()
    return found


@pytest.mark.parametrize(("view", "direction"), [("aggregate", "higher"), ("a", "higher"),
                                                 ("b", "lower"), ("aggregate", "lower")])
def test_the_database_picks_the_rows_the_rules_pick(db_url: str, round_id: int, view: str,
                                                    direction: str) -> None:
    db = Database(db_url)
    task = AGGREGATE if view == "aggregate" else view
    with db.read() as session:
        every = load_entries(session, round_id, "all")
        best = load_entries(session, round_id, "all", best_by=(task, direction))
    db.dispose()
    assert len(every) == 303
    assert len(best) == 23  # one per team, and every baseline
    expected = lb.rank_entries(every, direction=direction, view=view)  # type: ignore[arg-type]
    found = lb.rank_entries(best, direction=direction, view=view)  # type: ignore[arg-type]
    assert [(r.rank, r.entry.submission_id) for r in found] == \
        [(r.rank, r.entry.submission_id) for r in expected]
