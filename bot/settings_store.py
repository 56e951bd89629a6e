"""Shared settings rows (the development clock) and seeding of shipped data."""
from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select

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
    row = session.get(AppSetting, key)
    if value is None:
        if row is not None:
            session.delete(row)
    elif row is None:
        session.add(AppSetting(key=key, value=value))
    else:
        row.value = value


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
    with db.transaction() as s:
        row = s.get(AppSetting, CLOCK_FAKE_START)
        if row is not None and row.value == marker:
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
