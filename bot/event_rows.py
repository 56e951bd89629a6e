"""The rows a webhook event reads and writes for itself: its claim, the user's conversation, its outbox rows.

Three events in four touch nothing else (a checklist answer, a sticker, ヘルプ), so these statements run on the
driver's cursor (`bot.rawsql`) and the conversation is a plain record rather than an ORM object: the ORM's load
and unit of work cost more than the rest of such an event. What the dialog asks of the services still goes
through an ORM session on the same connection and transaction (`EventTransaction`).
"""
from __future__ import annotations

import contextlib
from datetime import datetime
from typing import Any, Iterable, Iterator

from sqlalchemy import bindparam, insert, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from bot.db import Database, is_lock_timeout
from bot.models import Conversation, OutboxMessage, ProcessedEvent
from bot.rawsql import Statement, bound

_conversations = Conversation.__table__
_outbox = OutboxMessage.__table__
CONVERSATION_COLUMNS = tuple(c.name for c in _conversations.columns)
_MUTABLE = tuple(name for name in CONVERSATION_COLUMNS if name not in ("id", "office_id", "line_user_id",
                                                                         "created_at"))
_OUTBOX_COLUMNS = tuple(c.name for c in _outbox.columns if c.name != "id")


class EventTransaction:
    """One event's transaction: a connection for the event's own rows, and an ORM session on the same
    connection made only when something asks for it (a service, a group event)."""

    def __init__(self, conn: Connection):
        self.conn = conn
        self._session: Session | None = None
        self.session = _LazySession(self)

    def real_session(self) -> Session:
        if self._session is None:
            self._session = Session(bind=self.conn, join_transaction_mode="rollback_only",
                                    expire_on_commit=False)
        return self._session

    def flush(self) -> None:
        """Write what the session holds (before the event's own rows, as when it held them too)."""
        if self._session is not None:
            self._session.flush()

    def close(self) -> None:
        if self._session is not None:
            self._session.close()


class _LazySession:
    """Stands for the event's ORM session until first used.

    What a compiled statement asks of a session (`rawsql.Statement.scalar`: anything to flush, then the
    connection) is answered without making one: the dialog's reads on most steps (the terms in force) are
    such statements, and a session costs more than they do.
    """

    __slots__ = ("_tx",)
    autoflush = True

    def __init__(self, tx: EventTransaction):
        self._tx = tx

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tx.real_session(), name)

    new, dirty, deleted = (property(lambda self, name=name: () if self._tx._session is None
                                    else getattr(self._tx._session, name)) for name in ("new", "dirty", "deleted"))

    def connection(self) -> Connection:
        return self._tx.conn if self._tx._session is None else self._tx._session.connection()


@contextlib.contextmanager
def transaction(db: Database) -> Iterator[EventTransaction]:
    """Commit on success, roll back on any error (SQLite: BEGIN IMMEDIATE, as every write transaction)."""
    with db.connected() as conn:
        tx = EventTransaction(conn)
        try:
            yield tx
            tx.flush()
        finally:
            tx.close()


# -- the claim --------------------------------------------------------------------------------------------

# The same SQL on PostgreSQL and SQLite.
_CLAIM = Statement(text(
    "INSERT INTO processed_events (webhook_event_id, office_id, received_at) "
    "VALUES (:event_id, :office_id, :now) "
    "ON CONFLICT (webhook_event_id) DO NOTHING RETURNING webhook_event_id"
).bindparams(bindparam("now", type_=ProcessedEvent.__table__.c.received_at.type)))


class ClaimedElsewhere(Exception):
    """Another delivery of the same event holds its claim and has not committed: LINE sent the event again
    while the first delivery was still being handled. That delivery answers the user (or apologises)."""


def claim(conn: Connection, office_id: str, event_id: str, now: datetime,
          happened_at: datetime | None = None) -> bool:
    """Record the event as processed; False when it was already (LINE redelivered it). Raises
    `ClaimedElsewhere` when another delivery's claim of it is still uncommitted after the lock timeout.

    The mark is stamped with the later of `now` and the event's own time (`happened_at`): marks are purged
    `dedupe_days` after their stamp, and an event is refused as too old for its mark `dedupe_days` after it
    happened (`dispatch.older_than_its_marks`). An event stamped by a clock ahead of ours would otherwise lose its
    mark before it counts as too old, and a replay in between would be handled again."""
    stamp = now if happened_at is None else max(now, happened_at)
    try:
        return bool(_CLAIM.rows(conn, {"event_id": event_id, "office_id": office_id, "now": stamp}))
    except DBAPIError as error:
        if is_lock_timeout(error):
            raise ClaimedElsewhere(event_id) from error
        raise


# -- the conversation -------------------------------------------------------------------------------------

class ConversationRow:
    """A user's conversation row during one event, with the attributes of `models.Conversation`.

    Read locked; written back with one UPDATE of the columns that changed (`save`), as the ORM would.
    """

    __slots__ = (*CONVERSATION_COLUMNS, "_loaded")

    def __init__(self, values: Iterable[Any]):
        loaded = dict(zip(CONVERSATION_COLUMNS, values))
        for name, value in loaded.items():
            setattr(self, name, value)
        self._loaded = loaded

    def changes(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _MUTABLE if getattr(self, name) != self._loaded[name]}


def _select_conversation(lock: bool):
    query = select(_conversations).where(_conversations.c.office_id == bindparam("office_id"),
                                         _conversations.c.line_user_id == bindparam("user_id"))
    return query.with_for_update() if lock else query


_SELECT = {"postgresql": Statement(_select_conversation(lock=True))}
_SELECT_UNLOCKED = Statement(_select_conversation(lock=False))  # SQLite: the write lock is the database's


def _new_conversation(dialect: str) -> Statement:
    values = dict(office_id=bindparam("office_id"), line_user_id=bindparam("user_id"), state="idle", context={},
                  step=0, misses=0, language="ja", followed=True, booking_blocked=False, last_event_ms=0,
                  receipt_due=False, created_at=bindparam("now", type_=_conversations.c.created_at.type))
    make = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return Statement(make(_conversations).values(**values)
                     .on_conflict_do_nothing(index_elements=["office_id", "line_user_id"]))


_NEW = {name: _new_conversation(name) for name in ("postgresql", "sqlite")}


def existing_conversation(conn: Connection, office_id: str, user_id: str) -> ConversationRow | None:
    """The user's row, locked; None for a user who has none."""
    found = _SELECT.get(conn.dialect.name, _SELECT_UNLOCKED).rows(conn, {"office_id": office_id, "user_id": user_id})
    return ConversationRow(found[0]) if found else None


def conversation(conn: Connection, office_id: str, user_id: str, now: datetime) -> ConversationRow:
    """The user's row, locked; created first for a new user (a known user costs one statement)."""
    found = existing_conversation(conn, office_id, user_id)
    if found is None:
        # Two first events racing: the other waits here.
        _NEW[conn.dialect.name].rowcount(conn, {"office_id": office_id, "user_id": user_id, "now": now})
        found = existing_conversation(conn, office_id, user_id)
    return found


_UPDATES: dict[tuple[str, ...], Statement] = {}


def save(conn: Connection, conv: ConversationRow) -> None:
    """One UPDATE of the columns the event changed (none: no statement)."""
    changes = conv.changes()
    if not changes:
        return
    names = tuple(changes)
    statement = _UPDATES.get(names)
    if statement is None:  # a handful of column sets occur; each is compiled once
        statement = _UPDATES[names] = Statement(
            update(_conversations).where(_conversations.c.id == bindparam("row_id"))
            .values(bound(_conversations, names)))
    statement.rowcount(conn, {**changes, "row_id": conv.id})
    conv._loaded.update(changes)


# -- outbox rows ------------------------------------------------------------------------------------------

_INSERT_OUTBOX = Statement(insert(_outbox).values(bound(_outbox, _OUTBOX_COLUMNS)).returning(_outbox.c.id))


def _column_defaults() -> dict[str, Any]:
    defaults = {}
    for column in _outbox.columns:
        if column.default is not None:
            if not column.default.is_scalar:
                raise TypeError(f"outbox.{column.name}: only plain defaults can be written here")
            defaults[column.name] = column.default.arg
    return defaults


_OUTBOX_DEFAULTS = _column_defaults()


def insert_outbox(conn: Connection, rows: Iterable[OutboxMessage]) -> None:
    """Write rows built by `outbox` (not in any session) and give them their ids."""
    for row in rows:
        values = {}
        for name in _OUTBOX_COLUMNS:
            value = getattr(row, name)
            if value is None and _OUTBOX_DEFAULTS.get(name) is not None:
                value = _OUTBOX_DEFAULTS[name]
                setattr(row, name, value)  # the row as written, as after an ORM flush
            values[name] = value
        row.id = _INSERT_OUTBOX.rows(conn, values)[0][0]
