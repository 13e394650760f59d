"""`dataperf serve --processes 2`: two web processes share the port and a `dataperf worker`
beside them runs the evaluation slots; a submission through it is scored, and SIGTERM stops
every one of them."""

from __future__ import annotations

from pathlib import Path

from dataperf.registry import get_challenge
from dataperf.server.db import Database
from dataperf.server.models import State
from platform_harness import fast_settings
from process_harness import registered_workers, start_server, states, wait_for, wait_until_up

CHALLENGE = "vision-selection"


def children(pid: int) -> list[tuple[int, str]]:
    """The processes whose parent is ``pid``, with their command lines (from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            command = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, IndexError, ValueError):
            continue  # it ended while being read
        if parent == pid:
            found.append((int(stat.parent.name), command))
    return found


def test_two_web_processes_and_a_worker_score_a_submission_and_stop_together(
        tmp_path: Path) -> None:
    settings = fast_settings(tmp_path / "home")
    server = start_server(settings, options=("--processes", "2", "--workers", "1"))
    try:
        wait_until_up(server)
        started = children(server.popen.pid)
        web = [pid for pid, command in started if "multiprocessing.spawn" in command]
        worker = [pid for pid, command in started if "dataperf worker --slots 1" in command]
        assert (len(web), len(worker)) == (2, 1), (started, server.log_tail())

        token = server.live.register("two@example.org", team="Two processes")["token"]
        challenge = get_challenge(CHALLENGE)
        files = challenge.run_algorithm("random", challenge.edition("offline"), random_state=0)
        with server.live.api(token) as api:
            answers = [api.post(f"/challenges/{CHALLENGE}/submissions",
                                files=[("files", (n, d)) for n, d in sorted(files.items())])
                       for _ in range(3)]
        assert [a.status_code for a in answers] == [202] * 3, [a.text for a in answers]
        db = Database(settings.sqlalchemy_url)
        wait_for(lambda: states(db).get(State.scored) == 3, 240,
                 f"not scored: {states(db)}\n{server.log_tail()}")
        assert len(registered_workers(db)) == 1  # the web processes run no slots
        db.dispose()
    finally:
        code = server.stop()
    assert code == 0, server.log_tail()
    assert not [pid for pid in web + worker if Path(f"/proc/{pid}").exists()]
