"""Core statements compiled once per dialect and run on the driver's own cursor, for the per-event hot path.

SQLAlchemy's execution of a statement (even a cached one) costs several times what the driver itself spends on
it; on the few statements every webhook event runs that overhead was a third of the event. A `Statement` is
written as an ordinary Core construct over the models' tables, compiled once per dialect, and run with the
columns' own type processing (`TypeEngine.dialect_impl(...).bind_processor/result_processor`), so values are
stored and read exactly as the ORM stores and reads them. Driver errors are raised as SQLAlchemy's
`DBAPIError`, with `connection_invalidated` set when the connection is gone, as for any other statement
(`Dispatcher.handle` runs the event again on a new connection). Bound values never reach an error or a log.
Services use the same statements inside an ORM session's transaction (`Statement.scalar`, `.execute`) for the
few reads and writes the dialog makes on its busiest steps.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

from sqlalchemy import bindparam, exc
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import Executable


def bound(table, names: Sequence[str]) -> dict[str, Any]:
    """`.values(...)` of an insert or update of these columns: each a bind parameter of the column's name and
    type (so `Statement` applies the column's own processing to the value)."""
    return {name: bindparam(name, type_=table.c[name].type) for name in names}


@dataclass(frozen=True)
class _Compiled:
    sql: str
    names: tuple[str, ...]            # bind names, in the order a positional driver wants them
    positional: bool
    binds: tuple[Callable | None, ...]
    fixed: dict[str, Any]             # values written into the statement itself (`.values(state="idle")`)
    results: tuple[Callable | None, ...]


class Statement:
    """One Core statement; `rows()` for what it returns, `rowcount()` for a statement returning nothing."""

    def __init__(self, statement: Executable):
        self._statement = statement
        self._compiled: dict[str, _Compiled] = {}

    def _for(self, dialect: Dialect) -> _Compiled:
        found = self._compiled.get(dialect.name)
        if found is None:
            compiled = self._statement.compile(dialect=dialect)
            names = tuple(compiled.positiontup) if compiled.positional else tuple(compiled.binds)
            binds = tuple(compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names)
            columns = getattr(self._statement, "exported_columns", ())
            results = tuple(column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns)
            fixed = {name: bind.effective_value for name, bind in compiled.binds.items() if not bind.required}
            found = self._compiled[dialect.name] = _Compiled(compiled.string, names, compiled.positional, binds,
                                                             fixed, results)
        return found

    def rows(self, conn: Connection, params: dict[str, Any]) -> list[tuple]:
        compiled = self._for(conn.dialect)
        found, _ = _run(conn, compiled, params, fetch=True)
        if not any(compiled.results):
            return found
        processors = compiled.results
        return [tuple(p(v) if p else v for p, v in zip(processors, row)) for row in found]

    def rowcount(self, conn: Connection, params: dict[str, Any]) -> int:
        _, count = _run(conn, self._for(conn.dialect), params, fetch=False)
        return count

    # For services, which take a session: the statement runs in the session's transaction, after what the
    # session holds is written, as the ORM's autoflush would (a read sees it; a write comes after it).
    def scalar(self, session: Session, params: dict[str, Any]) -> Any:
        """The first column of the first row, None without one."""
        found = self.rows(flushed(session), params)
        return found[0][0] if found else None

    def execute(self, session: Session, params: dict[str, Any]) -> int:
        """A statement returning nothing; how many rows it touched."""
        return self.rowcount(flushed(session), params)


def flushed(session: Session) -> Connection:
    """The session's connection, after writing what the session holds (as the ORM's autoflush before a read)."""
    if session.autoflush and (session.new or session.dirty or session.deleted):
        session.flush()
    return session.connection()


def _arguments(compiled: _Compiled, params: dict[str, Any]) -> Sequence | dict:
    if compiled.fixed:
        params = {**compiled.fixed, **params}
    values = [p(params[n]) if p else params[n] for n, p in zip(compiled.names, compiled.binds)]
    return values if compiled.positional else dict(zip(compiled.names, values))


def _run(conn: Connection, compiled: _Compiled, params: dict[str, Any], fetch: bool) -> tuple[list, int]:
    arguments = _arguments(compiled, params)
    proxied = conn.connection  # begins nothing: runs in the caller's transaction (or autocommit, as the caller set)
    dbapi = conn.dialect.loaded_dbapi
    try:
        cursor = proxied.cursor()
        try:
            cursor.execute(compiled.sql, arguments)
            return (cursor.fetchall() if fetch else []), cursor.rowcount
        finally:
            cursor.close()
    except dbapi.Error as error:
        disconnect = conn.dialect.is_disconnect(error, proxied.dbapi_connection, None)
        if disconnect:
            # As SQLAlchemy does for its own statements: this connection and every older pooled one are
            # dropped, so the event's second run starts on a new connection.
            conn.invalidate(error)
            conn.engine.dispose(close=False)
        raise exc.DBAPIError.instance(compiled.sql, None, error, dbapi.Error, hide_parameters=True,
                                      dialect=conn.dialect, connection_invalidated=disconnect) from error
