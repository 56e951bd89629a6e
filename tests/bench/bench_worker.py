"""Push delivery by the worker: N push rows queued, `flask --app app worker` processes send them; none twice."""
from __future__ import annotations

import time
import uuid
from datetime import datetime
from pathlib import Path

from sqlalchemy import func, select

from bot.clock import TOKYO
from bot.db import Database
from bot.models import OutboxMessage
from tests.bench.fake_server import FakeProcess
from tests.bench.servers import start_flask, stop

PUSH_TEXT = "Your request has been received. (benchmark push)"


def driver_url(url: str) -> str:
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


def queue_pushes(db: Database, count: int) -> str:
    """`count` due pushes, each to its own user (so per-user order never holds one back); returns the batch id."""
    from bot import outbox

    batch = uuid.uuid4().hex[:8]
    now = datetime.now(TOKYO)
    with db.transaction() as s:
        for i in range(count):
            outbox.add(s, office="sakata", kind="push", recipient=f"U{batch}{i:024d}",
                       messages=[{"type": "text", "text": PUSH_TEXT}], now=now, purpose=f"bench-{batch}")
    return batch


def _sent(db: Database, batch: str) -> int:
    with db.reading() as s:
        return s.scalar(select(func.count()).select_from(OutboxMessage).where(
            OutboxMessage.purpose == f"bench-{batch}", OutboxMessage.status == "sent")) or 0


def measure(database_url: str, env: dict[str, str], fake: FakeProcess, pushes: int, workers: int,
            logs: Path, timeout: float = 120) -> dict:
    """Queue `pushes`, start `workers` worker processes, wait until every row is sent."""
    db = Database(driver_url(database_url))
    try:
        batch = queue_pushes(db, pushes)
        fake.reset()
        started = time.monotonic()
        processes = [start_flask(["worker"], env, logs / f"worker-{batch}-{n}.log") for n in range(workers)]
        try:
            deadline = started + timeout
            sent = 0
            while sent < pushes and time.monotonic() < deadline:
                time.sleep(0.1)
                sent = _sent(db, batch)
            wall = time.monotonic() - started
        finally:
            for process in processes:
                stop(process)
        summary = fake.summary()
    finally:
        db.dispose()
    first, last = summary["first_push_at"], summary["last_push_at"]
    sending = (last - first) if first is not None and last is not None and last > first else None
    return {
        "workers": workers,
        "pushes": pushes,
        "sent": sent,
        "delivered": summary["deliveries"].get("push", 0),
        "duplicated": summary["deliveries"].get("push", 0) - summary["push_recipients"],  # extra deliveries
        "pushes_per_s": round(pushes / sending, 1) if sending else None,
        "seconds_first_to_last": round(sending, 2) if sending else None,
        "seconds_with_start_up": round(wall, 2),
    }
