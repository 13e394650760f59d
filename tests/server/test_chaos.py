"""A short chaos run (``tests/chaos.py``; ``make chaos`` runs a long one): workers killed in
the middle of evaluations, a server replica killed in the middle of an upload, the file
storage failing on write, all while teams submit past their quotas. Nothing is lost, stuck,
scored twice or charged wrongly, and no orphan rows or files are left."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from chaos import Config, run
from platform_harness import POSTGRES_ENV


def test_a_short_chaos_run_counts_zero_everywhere(tmp_path: Path) -> None:
    # PostgreSQL where the suite has one (CI always does), else SQLite.
    config = Config(admin_url=os.environ.get(POSTGRES_ENV), worker_kills=4, server_kills=1,
                    storage_faults=1, teams=2, daily_quota=3, extra=1,
                    folder=tmp_path, settle_timeout=120)
    report = run(config)
    print(report.table())
    assert report.zeros == dict.fromkeys(report.zeros, 0), report.table()
    assert (report.worker_kills, report.server_kills) == (4, 1), report.table()
    if not report.storage_note:  # made where the file system allows (it does in CI)
        assert report.storage_faults == 1
        assert report.answers_5xx, "the storage fault refused nothing: " + report.table()
    # Each team's quota, and the uploads the faults were made around.
    assert report.accepted == 2 * 3 + report.server_kills + report.storage_faults
    assert report.refused_quota == 2
    assert report.max_attempts > 1, "no evaluation was interrupted: " + report.table()
    assert report.workers_exited == 0, report.table()
    assert not report.problems, report.table()


pytestmark = pytest.mark.slow
