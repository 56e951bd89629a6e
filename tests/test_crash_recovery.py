"""Crash recovery: gunicorn and the worker killed with SIGKILL at random points while people book and staff
confirm, then restarted (tests/reliability/crash.py). Nothing LINE delivered is lost, no request, booking or
push is lost or made twice, and every conversation resumes. On SQLite, and on PostgreSQL when
TEST_DATABASE_URL is set; `-m heavy` runs more seeds, people and kills.
"""
from __future__ import annotations

import time

import pytest

from tests.reliability.crash import CrashRun, run_crash
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


class _RecordingStack:
    """Stands for gunicorn and the worker: records what is done to them, in order. Its stop plays an event that a
    person's thread still running delivers at that moment, which is the killer's cue."""

    def __init__(self, run):
        self.run, self.done = run, []
        self.web = self.worker = self

    def kill(self) -> None:
        self.done.append("kill")

    def start(self) -> None:
        self.done.append("start")

    start_web = start

    def alive(self) -> bool:
        return True

    def stop(self) -> None:
        self.done.append("stop")
        self.run._next_kill.set()
        time.sleep(0.6)   # longer than the killer's pause between a kill and the restart


class _Broken:
    @property
    def journey(self):
        raise RuntimeError("a run that raises partway")


def test_a_run_that_raises_stops_its_killer_before_the_processes(rt, fake_line, tmp_path, database_url):
    """Nothing is killed or restarted after the stack has stopped, however run() ends."""
    run = CrashRun(rt, fake_line, tmp_path, database_url, seed=1, users=1, kills=1)
    run.kill_plan = [(0, "web")]
    run.prepare = lambda: None
    stack = run.stack = _RecordingStack(run)
    run.people = [_Broken()]
    with pytest.raises(RuntimeError, match="raises partway"):
        run.run()
    time.sleep(0.2)
    assert stack.done == ["start", "stop"], stack.done
    assert run._kills_done.is_set()
