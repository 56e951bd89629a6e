"""What the app sends to the database, seen at the driver: SQLAlchemy's statements and `bot.rawsql`'s alike.

SQLAlchemy's `before_cursor_execute` sees only what SQLAlchemy runs; the event's own rows go to the driver's
cursor directly. Here every pooled connection checked out while watching reports what it runs (SQLite: its
trace callback, which also shows BEGIN/COMMIT; psycopg: a recording cursor class).
"""
from __future__ import annotations

import contextlib
from typing import Iterator

from sqlalchemy import event


def _normal(statement: str) -> str:
    return " ".join(statement.split())


@contextlib.contextmanager
def watch(engine) -> Iterator[list[str]]:
    """Yield the list the statements are appended to (whitespace normalised) until the block ends."""
    seen: list[str] = []
    touched: dict = {}  # driver connection -> its own cursor class (psycopg)

    def record(statement) -> None:
        seen.append(_normal(statement if isinstance(statement, str) else statement.decode()))

    def on_checkout(dbapi_conn, _record, _proxy) -> None:
        if hasattr(dbapi_conn, "set_trace_callback"):
            dbapi_conn.set_trace_callback(record)
            touched[dbapi_conn] = None
            return
        own = touched.setdefault(dbapi_conn, dbapi_conn.cursor_factory)

        class Recording(own):
            def execute(self, query, params=None, **kwargs):
                record(query if isinstance(query, (str, bytes)) else query.as_string(self))
                return super().execute(query, params, **kwargs)

        dbapi_conn.cursor_factory = Recording

    def on_checkin(dbapi_conn, _record) -> None:
        if dbapi_conn in touched:
            _quiet(dbapi_conn, touched[dbapi_conn])

    event.listen(engine, "checkout", on_checkout)
    event.listen(engine, "checkin", on_checkin)
    try:
        yield seen
    finally:
        event.remove(engine, "checkout", on_checkout)
        event.remove(engine, "checkin", on_checkin)
        for dbapi_conn, own in touched.items():
            _quiet(dbapi_conn, own)


def _quiet(dbapi_conn, own) -> None:
    if hasattr(dbapi_conn, "set_trace_callback"):
        dbapi_conn.set_trace_callback(None)
    else:
        dbapi_conn.cursor_factory = own
