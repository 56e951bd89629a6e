"""Fault injection: bookings end to end while the fake Messaging API fails at random (tests/reliability/faults.py).

Every push arrives exactly once (retry keys) and in per-user order, replies at most once, rows held for the
monthly quota go out once it returns; the figures (sent, retried, held, failed) are printed. A few seeds run
by default; `-m heavy` runs many more, with more users and more faults. `python -m tests.reliability` prints
the same figures as a table.
"""
from __future__ import annotations

import pytest

from tests.reliability.faults import FAULT_APP_SETTINGS, run_faults
from tests.reliability.kit import skip_unless_heavy


def _run(make_app, fake_line, seed: int, rate: float, users: int):
    app = make_app(**FAULT_APP_SETTINGS)
    figures, problems = run_faults(app, fake_line, seed=seed, rate=rate, users=users)
    print("\n" + "  ".join(f"{k}={v}" for k, v in figures.row().items()), dict(figures.faults))
    assert problems == []
    assert figures.requests == users, "every user's request must be made despite the faults"
    assert sum(figures.faults.values()) > 0 and figures.held > 0, "the run injected no fault: it proves nothing"
    return figures


@pytest.mark.parametrize("seed", [1, 2])
def test_bookings_survive_random_line_faults(make_app, fake_line, seed):
    _run(make_app, fake_line, seed, rate=0.3, users=3)


@pytest.mark.heavy
@pytest.mark.parametrize("seed", range(3, 13))
def test_bookings_survive_random_line_faults_heavy(request, make_app, fake_line, seed):
    skip_unless_heavy(request)
    _run(make_app, fake_line, seed, rate=0.45, users=10)
