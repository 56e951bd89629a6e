"""`terms broadcast --mode multicast` to many followers through the fake: calls, time, LINE's limits."""
from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

from sqlalchemy import insert

from bot.clock import TOKYO
from bot.db import Database
from bot.models import Conversation
from tests.bench.bench_worker import driver_url
from tests.bench.fake_server import FakeProcess
from tests.bench.servers import flask

MULTICAST_LIMIT = 500          # recipients per call (LINE)
MULTICAST_CALLS_PER_S = 200    # LINE's rate limit for multicast, about
INSERT_BATCH = 10_000


def add_followers(database_url: str, office: str, count: int) -> float:
    """`count` users of `office` who follow the account (bulk insert); returns the seconds taken."""
    started = time.monotonic()
    now = datetime.now(TOKYO)
    db = Database(driver_url(database_url))
    try:
        for start in range(0, count, INSERT_BATCH):
            rows = [dict(office_id=office, line_user_id=f"U{i:032x}", state="idle", context={}, step=0, misses=0,
                         language="ja", followed=True, booking_blocked=False, last_event_ms=0, created_at=now)
                    for i in range(start, min(count, start + INSERT_BATCH))]
            with db.transaction() as s:
                s.execute(insert(Conversation), rows)
    finally:
        db.dispose()
    return time.monotonic() - started


def followers_of(database_url: str, office: str) -> int:
    from sqlalchemy import func, select

    db = Database(driver_url(database_url))
    try:
        with db.reading() as s:
            return s.scalar(select(func.count()).select_from(Conversation).where(
                Conversation.office_id == office, Conversation.followed.is_(True))) or 0
    finally:
        db.dispose()


def measure(env: dict[str, str], fake: FakeProcess, office: str, logs: Path) -> dict:
    """Run the real command (`--yes`) and read what the fake received."""
    followers = followers_of(env["DATABASE_URL"], office)
    fake.reset()
    started = time.monotonic()
    result = flask(["terms", "broadcast", "--office", office, "--mode", "multicast", "--yes"], env,
                   log=logs / "broadcast.log")
    seconds = time.monotonic() - started
    summary = fake.summary()
    first, last = summary["multicast_first_at"], summary["multicast_last_at"]
    span = (last - first) if first is not None and last is not None else None
    rate = round((summary["multicast_calls"] - 1) / span, 1) if span else None
    return {
        "followers": followers,
        "calls": summary["multicast_calls"],
        "recipients": summary["multicast_recipients"],
        "distinct_recipients": summary["multicast_distinct_recipients"],
        "max_per_call": summary["multicast_max_per_call"],
        "seconds": round(seconds, 2),
        "calls_per_s": rate,
        "within_limits": summary["multicast_max_per_call"] <= MULTICAST_LIMIT
        and (rate is None or rate <= MULTICAST_CALLS_PER_S),
        "http_statuses": summary["statuses"],
        "output": result.stdout.strip().splitlines()[-1:],
    }
