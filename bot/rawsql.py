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

A `batch` sends several statements (and the commit) to PostgreSQL together and reads their answers together:
one round trip instead of one each (psycopg's pipeline mode). Every round trip costs both processes a wake-up;
an event used to wait on eight.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

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
        return _processed(compiled, found)

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


def _processed(compiled: _Compiled, found: list[tuple]) -> list[tuple]:
    processors = compiled.results
    if not any(processors):
        return found
    return [tuple(p(v) if p else v for p, v in zip(processors, row)) for row in found]


class Queued:
    """A statement added to a batch; its answer is read after the batch's block."""

    __slots__ = ("_batch", "_compiled", "_cursor", "_found", "_count")

    def __init__(self, batch: "Batch", compiled: _Compiled, cursor=None, found=None, count: int = -1):
        self._batch, self._compiled, self._cursor = batch, compiled, cursor
        self._found, self._count = found, count

    def _read(self) -> None:
        if self._batch.open:
            raise RuntimeError("a batch's answers are read after its block")
        cursor, self._cursor = self._cursor, None
        if cursor is None:
            return
        try:
            with _translated(self._batch.conn, self._compiled.sql):
                self._found = cursor.fetchall() if cursor.description is not None else []
                self._count = cursor.rowcount
        finally:
            cursor.close()

    def rows(self) -> list[tuple]:
        self._read()
        return _processed(self._compiled, self._found)

    def rowcount(self) -> int:
        self._read()
        return self._count


class Batch:
    """Statements sent together (see `batch`)."""

    def __init__(self, conn: Connection, pipelined: bool):
        self.conn = conn
        self.open = True
        self._pipelined = pipelined
        self._queued: list[Queued] = []

    def add(self, statement: Statement, params: dict[str, Any]) -> Queued:
        compiled = statement._for(self.conn.dialect)
        if not self._pipelined:  # SQLite: in process, nothing to save; run now
            found, count = _run(self.conn, compiled, params, fetch=True)
            return Queued(self, compiled, found=found, count=count)
        with _translated(self.conn, compiled.sql):
            cursor = self.conn.connection.cursor()
            try:
                cursor.execute(compiled.sql, _arguments(compiled, params))
            except BaseException:
                cursor.close()
                raise
        queued = Queued(self, compiled, cursor=cursor)
        self._queued.append(queued)
        return queued

    def commit(self) -> None:
        """End the transaction with the batch's statements, in the same round trip (PostgreSQL; the caller's
        own commit then finds nothing to do, and a statement that failed before it leaves the transaction to
        be rolled back, as any failure). Without a pipeline this does nothing: the caller's commit ends the
        transaction, as it always has (SQLAlchemy's, or SQLite's autocommit of a statement outside BEGIN)."""
        if self._pipelined:
            with _translated(self.conn, "COMMIT"):
                cursor = self.conn.connection.cursor()
                try:
                    cursor.execute("COMMIT")
                finally:
                    cursor.close()

    def _close(self, answered: bool) -> None:
        """The block has ended: read every answer (the cursors close now, not whenever they are read), or,
        after an error, drop them."""
        self.open = False
        for queued in self._queued:
            if answered:
                queued._read()
            elif queued._cursor is not None:
                queued._cursor.close()
                queued._cursor = None


@contextlib.contextmanager
def batch(conn: Connection) -> Iterator[Batch]:
    """Statements added in the block go to the server together when it ends, and every answer comes back in
    the same round trip; read them (`Queued.rows`) after the block. On PostgreSQL this is psycopg's pipeline
    mode (the statements run in order, in the connection's transaction; the first error stops the rest and is
    raised at the block's end as SQLAlchemy's `DBAPIError`). On SQLite each statement simply runs when added.
    Only `Statement`s belong in a batch: the ORM reads a statement's answer at once, which a pipeline gives
    only later."""
    driver = conn.connection.dbapi_connection
    current = Batch(conn, pipelined=conn.dialect.name == "postgresql" and hasattr(driver, "pipeline"))
    if not current._pipelined:
        try:
            yield current
        finally:
            current.open = False
        return
    try:
        with _translated(conn, "pipeline"), driver.pipeline():
            yield current
    except BaseException:
        current._close(answered=False)
        raise
    current._close(answered=True)


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
    with _translated(conn, compiled.sql):
        cursor = conn.connection.cursor()  # begins nothing: runs in the caller's transaction (or autocommit)
        try:
            cursor.execute(compiled.sql, arguments)
            return (cursor.fetchall() if fetch and cursor.description is not None else []), cursor.rowcount
        finally:
            cursor.close()


@contextlib.contextmanager
def _translated(conn: Connection, sql: str) -> Iterator[None]:
    """The driver's errors as SQLAlchemy's `DBAPIError`, without the bound values."""
    dbapi = conn.dialect.loaded_dbapi
    try:
        yield
    except dbapi.Error as error:
        disconnect = conn.dialect.is_disconnect(error, conn.connection.dbapi_connection, None)
        if disconnect:
            # As SQLAlchemy does for its own statements: this connection and every older pooled one are
            # dropped, so the event's second run starts on a new connection.
            conn.invalidate(error)
            conn.engine.dispose(close=False)
        raise exc.DBAPIError.instance(sql, None, error, dbapi.Error, hide_parameters=True,
                                      dialect=conn.dialect, connection_invalidated=disconnect) from error
