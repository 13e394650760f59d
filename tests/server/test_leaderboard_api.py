"""Leaderboard views over HTTP: per task, weighted aggregates (organizer defaults and viewer
weights), history with the best so far, and clear errors for bad views or weights."""

from __future__ import annotations

from dataperf.registry import get_challenge
from platform_harness import LiveServer

CHALLENGE = "vision-selection"
TASKS = ("Trouser", "Sneaker", "Shirt")


def test_views_weights_and_history(server: LiveServer) -> None:
    challenge = get_challenge(CHALLENGE)
    edition = challenge.edition("offline")
    admin = server.user("root@example.org", role="admin")
    teams = {}
    for seed, algorithm in enumerate(("random", "confidence", "random")):
        token = server.user(f"team{seed}@example.org")
        files = challenge.run_algorithm(algorithm, edition, random_state=seed)
        with server.api(token) as api:
            answer = api.post(f"/challenges/{CHALLENGE}/submissions",
                              files=[("files", (n, d)) for n, d in files.items()])
            assert answer.status_code == 202, answer.text
        teams[answer.json()["id"]] = server.wait(token, answer.json()["id"])

    def board(**params: str) -> dict:  # type: ignore[type-arg]
        with server.api() as api:
            answer = api.get(f"/challenges/{CHALLENGE}/leaderboard", params=params)
        assert answer.status_code == 200, answer.text
        return answer.json()  # type: ignore[no-any-return]

    def task_value(submission_id: int, task: str) -> float:
        scores = teams[submission_id]["scores"]["all"]["tasks"]
        return next(s["value"] for s in scores if s["task"] == task)  # type: ignore[no-any-return]

    for task in TASKS:
        rows = board(view=task)["rows"]
        values = [r["score"]["value"] for r in rows]
        assert values == sorted(values, reverse=True)
        assert values == [task_value(r["submission_id"], task) for r in rows]

    only_shirt = board(weights="Trouser=0,Sneaker=0,Shirt=1")
    assert only_shirt["weights"] == {"Trouser": 0.0, "Sneaker": 0.0, "Shirt": 1.0}
    by_shirt = board(view="Shirt")["rows"]
    assert [r["submission_id"] for r in only_shirt["rows"]] == \
        [r["submission_id"] for r in by_shirt]
    assert [r["score"]["value"] for r in only_shirt["rows"]] == \
        [r["score"]["value"] for r in by_shirt]

    with server.api(admin) as api:
        edited = api.patch(f"/challenges/{CHALLENGE}/rounds/1",
                           json={"task_weights": {"Trouser": 0, "Sneaker": 1, "Shirt": 0}})
        assert edited.status_code == 200, edited.text
        unknown = api.patch(f"/challenges/{CHALLENGE}/rounds/1",
                            json={"task_weights": {"Pants": 1}})
        assert unknown.status_code == 422
        assert "Pants" in unknown.json()["error"]["message"]
    default = board()
    assert default["weights"] == {"Trouser": 0, "Sneaker": 1, "Shirt": 0}
    assert [r["submission_id"] for r in default["rows"]] == \
        [r["submission_id"] for r in board(view="Sneaker")["rows"]]

    with server.api() as api:
        bad_view = api.get(f"/challenges/{CHALLENGE}/leaderboard", params={"view": "Pants"})
        bad_weights = api.get(f"/challenges/{CHALLENGE}/leaderboard",
                              params={"weights": "Shirt=-1"})
        history = api.get(f"/challenges/{CHALLENGE}/history", params={"view": "Trouser"}).json()
    assert bad_view.status_code == 400
    assert "Trouser" in bad_view.json()["error"]["message"]
    assert bad_weights.status_code == 400
    points = history["points"]
    assert [p["submission_id"] for p in points] == sorted(teams)
    bests = [p["best"] for p in points]
    assert bests == [max(p["value"] for p in points[: i + 1]) for i in range(len(points))]
    assert points[0]["is_best"]
