"""The day LINE misbehaves and the database restarts: what the bot promises still holds.

Each test plays one outage the others do not (tests/test_outbox.py, tests/test_faults.py and
tests/test_crash_recovery.py play the rest) through the loopback fake Messaging API's fault injection.
"""
from __future__ import annotations

import pytest
from sqlalchemy.exc import OperationalError

from tests.test_outbox import ACK_DEADLINE, private_fake, timed, user_on  # noqa: F401 - fixture

pytestmark = pytest.mark.usefixtures("fake_line")


def _database_down(monkeypatch, db) -> None:
    """Every new transaction fails as when PostgreSQL refuses connections (restarting)."""
    def down(*args, **kwargs):
        raise OperationalError("SELECT 1", {}, Exception("connection refused"))

    for name in ("transaction", "connected", "reading"):
        monkeypatch.setattr(db, name, down)


def test_database_down_and_line_slow_a_batch_is_still_acknowledged_in_time(make_app, private_fake, monkeypatch):
    """Direct apologies (nothing can be queued) share the request's reply budget: one slow call, not one per
    event, so a body of several events is acknowledged within LINE's deadline."""
    app = make_app(line_api_base_url=private_fake.url)
    user = user_on(app, private_fake)
    _database_down(monkeypatch, app.extensions["madoguchi"].db)
    private_fake.set_delay(3)  # slower than the whole reply budget
    events = [user.text_event(word, timestamp=1_000 + n) for n, word in enumerate(["予約", "はい", "はい", "はい"])]
    response, elapsed = timed(lambda: user.send(*events))
    assert response.status_code == 200
    assert len(private_fake.calls_to("/reply")) == 1, "one apology tried within the budget, the others not"
    assert elapsed < ACK_DEADLINE
