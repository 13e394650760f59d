"""The Ladder on a round's public board (Blum & Hardt, 2015): its rule, what it does to a
simulated adaptive attacker that overfits the public rows, and the hosted round that uses it
(the board, the history and a team's own submissions show released values; organizers and the
private part see the real scores)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from dataperf.registry import get_challenge
from dataperf.server import leaderboard as lb
from platform_harness import fast_settings, live_server

START = datetime(2026, 1, 1, tzinfo=UTC)


def _entry(sid: int, value: float, *, team: int = 1, baseline: bool = False) -> lb.Entry:
    cell = lb.Cell(value, value - 0.05, value + 0.05)
    return lb.Entry(sid, team, f"team {team}", START + timedelta(minutes=sid), {"t": cell},
                    cell, is_baseline=baseline)


def _released(entries: list[lb.Entry], direction: str = "higher", step: float = 0.1
              ) -> list[float]:
    return [e.aggregate.value for e in lb.laddered(entries, direction=direction,  # type: ignore[arg-type]
                                                   step=step)]


def test_a_new_value_is_released_only_past_the_best_by_more_than_the_step() -> None:
    values = [0.52, 0.55, 0.61, 0.66, 0.74, 0.70, 0.86]
    assert _released([_entry(i, v) for i, v in enumerate(values)]) == \
        [0.5, 0.5, 0.6, 0.6, 0.7, 0.7, 0.9]
    # Lower is better: the step counts downwards; teams are laddered apart.
    losses = [_entry(0, 0.52), _entry(1, 0.44, team=2), _entry(2, 0.40), _entry(3, 0.27)]
    assert _released(losses, "lower") == [0.5, 0.4, 0.5, 0.3]


def test_intervals_go_baselines_stay_and_order_is_kept() -> None:
    entries = [_entry(2, 0.66), _entry(1, 0.52), _entry(3, 0.9, baseline=True)]
    found = lb.laddered(entries, direction="higher", step=0.1)
    assert [e.submission_id for e in found] == [2, 1, 3]
    assert found[0].aggregate == lb.Cell(0.7)
    assert found[0].tasks == {"t": lb.Cell(0.7)}
    assert found[2] is entries[2]
    with pytest.raises(ValueError, match="positive"):
        lb.laddered(entries, direction="higher", step=0.0)


# A simulated adaptive attacker ---------------------------------------------------------------

ROWS, SUBMISSIONS, STEP = 4000, 300, 0.02


def _attack(ladder: bool, seed: int) -> tuple[float, float]:
    """Blum & Hardt's boosting attack on binary labels: submit random labellings, keep those
    whose shown public score beats chance, submit their majority vote. Returns the public score
    the board shows for the team and the private score of that same submission."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 2, ROWS)
    public = rng.permutation(ROWS)[: ROWS // 2]
    private = np.setdiff1d(np.arange(ROWS), public)
    guesses: list[np.ndarray] = []
    entries: list[lb.Entry] = []

    def submit(guess: np.ndarray) -> float:
        """The public score the team is shown for its new submission."""
        guesses.append(guess)
        score = float(np.mean(guess[public] == truth[public]))
        entries.append(lb.Entry(len(entries), 1, "attacker", START + timedelta(
            seconds=len(entries)), {"t": lb.Cell(score)}, lb.Cell(score)))
        shown = lb.laddered(entries, direction="higher", step=STEP) if ladder else entries
        return shown[-1].aggregate.value

    kept = [g for g in (rng.integers(0, 2, ROWS) for _ in range(SUBMISSIONS))
            if submit(g) > 0.5]
    submit((np.mean(kept, axis=0) > 0.5).astype(int) if kept else guesses[0])
    board = lb.laddered(entries, direction="higher", step=STEP) if ladder else entries
    (row, *_) = lb.rank_entries(board, direction="higher")
    chosen = guesses[row.entry.submission_id]
    return row.score.value, float(np.mean(chosen[private] == truth[private]))


def test_the_ladder_board_does_not_overstate_an_adaptive_attacker() -> None:
    """The plain public board rewards overfitting the public rows: its score overstates the
    attacker's private score (chance, 0.5) by about 0.09; the Ladder's by about 0.02, the step
    (what is left: the best of many random labellings on the public rows, rounded)."""
    plain = [_attack(ladder=False, seed=s) for s in range(5)]
    ladder = [_attack(ladder=True, seed=s) for s in range(5)]
    overstated = [shown - real for shown, real in plain]
    honest = [shown - real for shown, real in ladder]
    assert all(abs(real - 0.5) < 0.03 for _, real in plain + ladder)  # nothing was learnt
    assert min(overstated) > 0.06, overstated
    assert max(honest) < 3 * STEP, honest
    assert np.mean(overstated) > 3 * np.mean(honest), (overstated, honest)


# A hosted round that uses it -------------------------------------------------------------------

def test_a_hosted_round_shows_released_public_scores(tmp_path: Path) -> None:
    settings = fast_settings(tmp_path / "home", seed_bundled=False)
    challenge = get_challenge("vision-selection")
    edition = challenge.edition("offline")
    with live_server(settings) as live:
        organizer = live.user("lee@example.org", role="organizer")
        live.host("vision-selection", "ladder-check", owner_email="lee@example.org")
        with live.api(organizer) as api:
            refused = api.patch("/challenges/ladder-check/rounds/1", json={"ladder_step": 0.5})
            assert refused.status_code == 422
            assert "private share" in refused.json()["error"]["message"]
            saved = api.patch("/challenges/ladder-check/rounds/1",
                              json={"private_fraction": 0.5, "ladder_step": 0.5})
            assert saved.status_code == 200, saved.text
            assert saved.json()["ladder_step"] == 0.5
        token = live.user("ada@example.org")
        ids = []
        with live.api(token) as api:
            for seed in range(3):
                files = challenge.run_algorithm("random", edition, random_state=seed)
                answer = api.post("/challenges/ladder-check/submissions",
                                  files=[("files", (n, d)) for n, d in files.items()])
                assert answer.status_code == 202, answer.text
                ids.append(answer.json()["id"])
        mine = [live.wait(token, i) for i in ids]
        with live.api(organizer) as api:
            real = [api.get(f"/submissions/{i}").json() for i in ids]
        with live.api() as api:
            board = api.get("/challenges/ladder-check/leaderboard").json()
            points = api.get("/challenges/ladder-check/history").json()["points"]

    raw = [r["scores"]["public"]["aggregate"]["value"] for r in real]
    assert all(r["scores"]["public"]["aggregate"]["ci_low"] is not None for r in real)
    shown = [m["scores"]["public"] for m in mine]
    assert "private" not in mine[0]["scores"]
    for released in shown:
        cell = released["aggregate"]
        assert (cell["ci_low"], cell["ci_high"]) == (None, None)
        assert math.isclose(cell["value"] / 0.5, round(cell["value"] / 0.5))
        assert all(t["details"] == {} and t["ci_low"] is None for t in released["tasks"])
    assert shown[0]["aggregate"]["value"] == round(raw[0] / 0.5) * 0.5
    ((row,),) = [board["rows"]]
    assert row["score"]["value"] == max(s["aggregate"]["value"] for s in shown)
    assert row["score"]["ci_low"] is None
    assert [p["value"] for p in points] == [s["aggregate"]["value"] for s in shown]
