"""Shared settings rows (the development clock) and seeding of shipped data."""
from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite

from bot.db import Database
from bot.models import AppSetting
from bot.services import terms

log = logging.getLogger(__name__)
CLOCK_OFFSET = "clock_offset"
CLOCK_FAKE_START = "clock_fake_start"


def _get(db: Database, key: str) -> str | None:
    with db.reading() as s:
        return s.scalar(select(AppSetting.value).where(AppSetting.key == key))


def _put(session, key: str, value: str | None) -> None:
    """Set or clear one setting; an upsert, so processes starting together cannot collide."""
    if value is None:
        session.execute(delete(AppSetting).where(AppSetting.key == key))
        return
    insert = postgresql.insert if session.bind.dialect.name == "postgresql" else sqlite.insert
    stmt = insert(AppSetting).values(key=key, value=value)
    session.execute(stmt.on_conflict_do_update(index_elements=["key"], set_={"value": value}))


def clock_offset(db: Database) -> float:
    value = _get(db, CLOCK_OFFSET)
    return float(value) if value else 0.0


def set_clock(db: Database, target: datetime | None) -> None:
    """Move the shared development clock so that now == target (None: real time)."""
    with db.transaction() as s:
        if target is None:
            _put(s, CLOCK_OFFSET, None)
        else:
            offset = (target - datetime.now(target.tzinfo)).total_seconds()
            _put(s, CLOCK_OFFSET, repr(offset))


def start_fake_clock(db: Database, start: datetime) -> None:
    """APP_FAKE_NOW: set the clock once per value, so processes starting later keep the same time."""
    marker = start.isoformat()
    with db.migration_lock(), db.transaction() as s:
        # Serialised: of several processes starting together, the first sets it, the rest keep it.
        current = s.scalar(select(AppSetting.value).where(AppSetting.key == CLOCK_FAKE_START))
        if current == marker:
            return
        _put(s, CLOCK_FAKE_START, marker)
        _put(s, CLOCK_OFFSET, repr((start - datetime.now(start.tzinfo)).total_seconds()))


def seed(rt) -> None:
    """Shipped data the database must hold (terms versions); idempotent."""
    with rt.db.migration_lock():
        with rt.db.transaction() as s:
            added = terms.seed(s, rt.offices, rt.clock.now())
    if added:
        log.info("seeded %d terms versions", added)
