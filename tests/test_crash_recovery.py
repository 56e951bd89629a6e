"""Crash recovery: gunicorn and the worker killed with SIGKILL at random points while people book and staff
confirm, then restarted (tests/reliability/crash.py). Nothing LINE delivered is lost, no request, booking or
push is lost or made twice, and every conversation resumes. On SQLite, and on PostgreSQL when
TEST_DATABASE_URL is set; `-m heavy` runs more seeds, people and kills.
"""
from __future__ import annotations

import pytest

from tests.reliability.crash import run_crash
from tests.reliability.kit import skip_unless_heavy


def _run(rt, fake_line, tmp_path, database_url, seed: int, users: int, kills: int):
    figures, problems, logs = run_crash(rt, fake_line, tmp_path, database_url, seed=seed, users=users, kills=kills)
    print("\n" + "  ".join(f"{k}={v}" for k, v in figures.row().items()))
    assert problems == [], "\n".join(problems) + "\n" + logs
    assert figures.web_kills >= kills // 2 and figures.worker_kills >= kills // 2 - 1, "the kills did not happen"
    assert figures.requests == users and figures.confirmed == users


def test_killed_processes_lose_and_duplicate_nothing(rt, fake_line, tmp_path, database_url):
    _run(rt, fake_line, tmp_path, database_url, seed=11, users=4, kills=4)


@pytest.mark.heavy
@pytest.mark.parametrize("seed", [21, 22, 23])
def test_killed_processes_lose_and_duplicate_nothing_heavy(request, rt, fake_line, tmp_path, database_url, seed):
    skip_unless_heavy(request)
    _run(rt, fake_line, tmp_path, database_url, seed=seed, users=12, kills=16)
