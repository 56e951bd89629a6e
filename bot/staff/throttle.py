"""Failed dashboard logins per client address: one address cannot spray passwords over many user names.

The per-name lock-out (bot/staff/auth.py) stops guessing one name; an address trying a few passwords on each of
many names stays under it. So every login refused after a check (wrong name or password, wrong code, outside
the office's network) also counts for the client's address, as the app sees it (`request.remote_addr`, after
`TRUSTED_PROXY_HOPS`); at ADDRESS_LIMIT within ADDRESS_WINDOW the address is refused for ADDRESS_THROTTLE,
whatever name and password it sends. A `locked` answer, given before any check, does not count.

The limit is three times the per-name one. A name's own 15-minute windows meet an address's window at most
twice, and a locked name is not checked, so one name fails under 2 × LOCK_AFTER times within it: one person
typing their password wrongly never throttles the office behind its shared router (they lock only their own
name); only several people at once, or someone trying many names, do.
A successful login does not reset the address's count: behind one router it is not the same person's count,
and any account that works (a colleague's, or one an attacker holds) would otherwise wipe a spray's count.
The count ends with its window, and the throttle with its time (or earlier, lifted by an administrator:
`flask --app app staff unthrottle --address <ip>`).
An address inside an office's IP allow-list is not counted (bot/staff/auth.py): the whole office logs in
from it, often through one gateway several offices share; only the per-name lock-out holds there.

The count is a row per address in the database (several processes and hosts share it), updated in one
statement (an upsert), keyed by a keyed hash of the address; an IPv6 address counts by its /64, the range one
line or host usually holds. An address the app cannot read is not counted (counting them together would let
one client throttle everybody).
"""
from __future__ import annotations

import hashlib
import hmac
import ipaddress
from datetime import datetime, timedelta

from sqlalchemy import case, delete, literal, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from bot.staff.models import LoginAddressFailure

ADDRESS_LIMIT = 30                          # failed logins from one address within ADDRESS_WINDOW throttle it
ADDRESS_WINDOW = timedelta(minutes=15)
ADDRESS_THROTTLE = timedelta(minutes=15)

_ROW = LoginAddressFailure


def address_key(config, ip: str | None) -> str:
    """The counter of a client address: a keyed hash, never the address itself; empty when not an address."""
    try:
        address = ipaddress.ip_address((ip or "").strip())
    except ValueError:
        return ""
    if isinstance(address, ipaddress.IPv6Address):
        counted = str(address.ipv4_mapped or ipaddress.ip_network(f"{address}/64", strict=False))
    else:
        counted = str(address)
    return hmac.new(config.secret_key.encode(), f"login-address|{counted}".encode(), hashlib.sha256).hexdigest()


def throttled_for(session: Session, key: str, now: datetime) -> timedelta | None:
    """How long the address is still refused, or None when it is not."""
    if not key:
        return None
    until = session.scalar(select(_ROW.throttled_until).where(_ROW.address == key))
    return until - now if until is not None and until > now else None


def count_failure(session: Session, key: str, now: datetime) -> bool:
    """Count one failed login of the address; True when this one throttles it."""
    if not key:
        return False
    if bump(session, _ROW, _ROW.address, key, now, ADDRESS_WINDOW, _ROW.throttled_until) < ADDRESS_LIMIT:
        return False
    # Set once: a straggler counted just after (it passed the check before) does not push the end further.
    session.execute(update(_ROW).where(_ROW.address == key, _ROW.throttled_until.is_(None))
                    .values(throttled_until=now + ADDRESS_THROTTLE))
    return True


def bump(session: Session, model, key_column, key: str, now: datetime, window: timedelta, until_column) -> int:
    """Add one to a failure counter row (`count`, `first_at`, and the end of its lock in `until_column`) in one
    statement, and return the new count: a window that has passed, or a lock that has ended, starts a new count.
    Two failures at once are both counted; neither finds the other's row in its way (an upsert)."""
    over = or_(model.first_at < now - window, until_column <= now)
    insert = postgresql.insert if session.bind.dialect.name == "postgresql" else sqlite.insert
    return session.execute(
        insert(model).values({key_column: key, model.count: 1, model.first_at: now, until_column: None})
        .on_conflict_do_update(index_elements=[key_column.key], set_={
            model.count: case((over, 1), else_=model.count + 1),
            model.first_at: case((over, literal(now, model.first_at.type)), else_=model.first_at),
            until_column: case((over, None), else_=until_column)})
        .returning(model.count)).scalar_one()


def lift(session: Session, key: str, now: datetime) -> bool:
    """An administrator lets the address log in again before its time ends (`staff unthrottle`): its count goes
    too, or its next failure would throttle it again at once. True when it was throttled."""
    if not key:
        return False
    was = throttled_for(session, key, now) is not None
    session.execute(delete(_ROW).where(_ROW.address == key))
    return was


def purge(session: Session, now: datetime) -> None:
    """Counts whose window has passed and that throttle nothing any more."""
    session.execute(delete(_ROW).where(
        _ROW.first_at < now - ADDRESS_WINDOW,
        or_(_ROW.throttled_until.is_(None), _ROW.throttled_until <= now)))
