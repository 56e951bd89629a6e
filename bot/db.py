"""Engine and sessions: SQLite (WAL, busy timeout, BEGIN IMMEDIATE) or PostgreSQL (row locks)."""
from __future__ import annotations

import ast
import contextlib
import fcntl
import logging
import time
import traceback
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterator, Sequence

from sqlalchemy import create_engine, event, exc, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
ADVISORY_LOCK_ID = 0x6D61646F  # "mado"
IDLE_PING_SECONDS = 10.0  # a pooled connection idle this long is checked before use
# Bounded waits on PostgreSQL, set once per connection when it is opened (never a statement per event). LINE
# wants the webhook's answer within 2 s: an event stuck behind a row lock gives up after LOCK_TIMEOUT_MS, runs
# once more (the holder has usually finished: `Dispatcher.handle`) and gives up again, and its apology (which
# takes the same lock) too, leaving the reply budget (1 s) to send the apology, so the answer comes within
# about 1.75 s. STATEMENT_TIMEOUT_MS stops any other statement of a web process that hangs;
# the dashboard's and the webhook's statements take milliseconds. Commands (the worker, its jobs, migrations,
# broadcasts, purges) run long statements legitimately: they keep no statement or lock timeout
# (`Database.allow_long_statements`). CONNECT_TIMEOUT_SECONDS is the least the driver allows (libpq's 2 s).
CONNECT_TIMEOUT_SECONDS = 2
LOCK_TIMEOUT_MS = 250
STATEMENT_TIMEOUT_MS = 500
MIGRATION_LOCK_WAIT_MS = 300_000   # a process starting waits this long for another's migration or seeding


def describe_error(exc: BaseException, frames: int = 4) -> str:
    """An exception for the log without its message: the message of a database error may quote
    the values of a row (PostgreSQL's DETAIL does, whatever `hide_parameters` says), and those can
    be personal data. Type names, SQLSTATE and where it happened are enough to find the bug."""
    kind = type(exc).__name__
    orig = getattr(exc, "orig", None)
    if orig is not None:
        code = getattr(orig, "sqlstate", None) or getattr(orig, "sqlite_errorname", None)
        kind += f" ({type(orig).__name__}{', ' + code if code else ''})"
    where = [f"{Path(f.filename).name}:{f.lineno} {f.name}"
             for f in traceback.extract_tb(exc.__traceback__)[-frames:]]
    described = f"{kind} at {' < '.join(reversed(where))}" if where else kind
    return f"{described}; {SCHEMA_BEHIND_HINT}" if _is_missing_schema(orig) else described


# What the operator does when the database lacks a table or column this release uses.
SCHEMA_BEHIND_HINT = ("the database schema is older than this release: run `flask --app app db upgrade` "
                      "(the release process)")


def _is_missing_schema(orig: BaseException | None) -> bool:
    """A driver error saying a table or column does not exist (PostgreSQL's SQLSTATE, SQLite's message)."""
    if orig is None:
        return False
    if getattr(orig, "sqlstate", None) in ("42P01", "42703"):  # undefined_table, undefined_column
        return True
    return type(orig).__name__ == "OperationalError" and str(orig).startswith(("no such table",
                                                                              "no such column"))


def database_problem(error: BaseException, url: str) -> str | None:
    """What the operator does about a database error that stops a command, or None when it is not the setting's
    or the release's: the database cannot be reached, or its schema is older than this release."""
    if not isinstance(error, exc.DBAPIError):
        return None
    return connect_problem(error, url) or (SCHEMA_BEHIND_HINT if _is_missing_schema(error.orig) else None)


def connect_problem(error: exc.DBAPIError, url: str) -> str | None:
    """The database could not be reached: the error came while connecting (no statement), and the driver's
    reason says why (no row is in it)."""
    if error.statement is not None:
        return None
    reason = (str(error.orig).strip().splitlines() or [""])[0] or type(error.orig).__name__
    return f"cannot connect to the database at {shown_url(url)} ({reason}): check DATABASE_URL and {_SERVER_UP}"


_SERVER_UP = "that the database server is running and accepts connections from here"


def privilege_problem(error: exc.DBAPIError, url: str) -> str | None:
    """The database user may not create the schema (PostgreSQL's insufficient_privilege): since PostgreSQL 15
    only the database's owner creates tables in its `public` schema, so a user made beside a database the
    administrator owns meets this on the first `db upgrade`. The driver's first line names the object only."""
    if getattr(error.orig, "sqlstate", None) != "42501":
        return None
    reason = (str(error.orig).strip().splitlines() or [""])[0]
    user = make_url(url).username or "<user>"
    return (f"the database user cannot create the schema at {shown_url(url)} ({reason}): `db upgrade` creates "
            f"and alters tables, so DATABASE_URL's user must own the database (`createdb --owner={user} <name>`, or "
            f"`ALTER DATABASE <name> OWNER TO {user}`); PostgreSQL 15 and later let no other user create tables "
            "in its public schema")


def lost_problem(error: exc.DBAPIError, url: str) -> str | None:
    """The connection went away under a statement (the database stopped or restarted while a command ran): the
    driver's error type says so (its message is not shown: a statement's error may quote a row)."""
    if not is_disconnect(error):
        return None
    return (f"the connection to the database at {shown_url(url)} was lost while the command ran "
            f"({type(error.orig).__name__}): check {_SERVER_UP}, then run the command again")


def shown_url(url: str) -> str:
    """A database URL as messages may show it: without its password."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except exc.ArgumentError:
        return "(DATABASE_URL)"


class _RowValuesHidden(logging.Filter):
    """SQLAlchemy's engine logger at DEBUG logs every row it fetches (`Row (...)`), whatever `hide_parameters`
    says: LINE user ids, a staff account's password hash, staff addresses, the text of a message waiting to go.
    An operator who turns that logger up to see the statements gets the rows' count, never their values."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg == "Row %r":
            record.msg, record.args = "Row [values hidden]", ()
        return True


# On the logger every engine of the process writes to (the app's, the migrations'), once.
ENGINE_LOGGER = logging.getLogger("sqlalchemy.engine.Engine")
if not any(isinstance(f, _RowValuesHidden) for f in ENGINE_LOGGER.filters):
    ENGINE_LOGGER.addFilter(_RowValuesHidden())


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def make_engine(url: str, long_statements=lambda: False) -> Engine:
    """An engine whose errors and logs never show bound values (they may be personal data).

    On PostgreSQL a connection waits at most CONNECT_TIMEOUT_SECONDS to open and, unless `long_statements()`
    says so when it opens, LOCK_TIMEOUT_MS for a lock and STATEMENT_TIMEOUT_MS for a statement.

    A URL this app cannot use stops the start naming DATABASE_URL (ConfigError), not with a driver traceback."""
    from bot.config import ConfigError

    try:
        if url.startswith("sqlite"):
            path = url.split("///", 1)[-1]
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False},
                                   hide_parameters=True)
            _make_sqlite_safe(engine)
        else:
            engine = create_engine(url, pool_size=5, max_overflow=5, hide_parameters=True)
            _ping_when_idle(engine)
            _bound_waits(engine, long_statements)
    except OSError as error:  # the SQLite file's folder cannot be made
        raise ConfigError(f"DATABASE_URL: cannot create the folder of the SQLite file {shown_url(url)} "
                          f"({error.strerror or error}): choose a writable path") from None
    except (exc.ArgumentError, ImportError) as error:  # not a URL, or a database without a driver here
        raise ConfigError(f"DATABASE_URL cannot be used ({error}): give a PostgreSQL URL "
                          "(postgresql://user:password@host:5432/name) or a SQLite one (sqlite:////path/to/file)"
                          ) from None
    return engine


def is_lock_timeout(error: BaseException) -> bool:
    """A statement gave up waiting for a row lock (PostgreSQL's lock_not_available, after LOCK_TIMEOUT_MS)."""
    return isinstance(error, exc.DBAPIError) and getattr(error.orig, "sqlstate", None) == "55P03"


def is_disconnect(error: BaseException) -> bool:
    """A statement failed because the connection was gone (the database restarted, a proxy cut it)."""
    return isinstance(error, exc.DBAPIError) and bool(error.connection_invalidated)


def _ping_when_idle(engine: Engine) -> None:
    """Check a pooled connection before use only when it sat idle (a database restart or an idle
    timeout may have closed it); a busy connection is used straight away.

    `pool_pre_ping` would cost a round trip on every checkout, i.e. on every event. A connection that
    died while busy makes one statement fail; that invalidates the pool, and the event is run again on a
    new connection (`Dispatcher.handle`).
    """

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_conn, record):
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_conn, record, _proxy):
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since < IDLE_PING_SECONDS:
            return
        try:
            cursor = dbapi_conn.cursor()
            cursor.execute("SELECT 1")
            cursor.close()
            dbapi_conn.rollback()
        except Exception as error:  # noqa: BLE001 - any failure means: do not use this connection
            raise exc.DisconnectionError("idle connection is gone") from error


def _bound_waits(engine: Engine, long_statements) -> None:
    """The timeouts go with the connection's start-up packet (libpq's `options`): no round trip of their own."""

    @event.listens_for(engine, "do_connect")
    def _on_connect(_dialect, _record, _cargs, cparams):
        cparams.setdefault("connect_timeout", CONNECT_TIMEOUT_SECONDS)
        if not long_statements():
            waits = f"-c statement_timeout={STATEMENT_TIMEOUT_MS} -c lock_timeout={LOCK_TIMEOUT_MS}"
            cparams["options"] = f"{cparams['options']} {waits}" if cparams.get("options") else waits


def _make_sqlite_safe(engine: Engine) -> None:
    """WAL + busy timeout; every write transaction takes the write lock up front."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        # FULL: a committed transaction survives a power loss too (NORMAL would trade that away).
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA foreign_keys=ON")
        # Freed space (an erased row's old bytes) overwritten with zeros, whatever the build's default.
        cur.execute("PRAGMA secure_delete=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        if conn.get_execution_options().get("readonly"):
            conn.exec_driver_sql("BEGIN")
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")


class Database:
    """Owns the engine and hands out sessions; callers own the transaction."""

    def __init__(self, url: str):
        self.url = url
        self.long_statements = False
        self.engine = make_engine(url, lambda: self.long_statements)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._read_sessions = sessionmaker(
            self.engine.execution_options(readonly=True), expire_on_commit=False
        )

    @property
    def sqlite(self) -> bool:
        return is_sqlite(self.engine)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Session]:
        """One write transaction: commit on success, roll back on any error."""
        session = self._sessions()
        try:
            with session.begin():
                yield session
        finally:
            session.close()

    @contextlib.contextmanager
    def connected(self) -> Iterator[Connection]:
        """One write transaction on a bare connection, for statements run without a session."""
        with self.engine.connect() as conn, conn.begin():
            yield conn

    @contextlib.contextmanager
    def reading(self) -> Iterator[Session]:
        """A read-only unit of work (does not take SQLite's write lock)."""
        session = self._read_sessions()
        try:
            with session.begin():
                yield session
        finally:
            session.close()

    def ping(self) -> bool:
        """The database answers. A pooled connection that a restart of the database cut is no outage: its error
        invalidates the pool, and the check is made once more on a new connection."""
        try:
            self._select_one()
        except exc.DBAPIError as error:
            if not is_disconnect(error):
                raise
            self._select_one()
        return True

    def _select_one(self) -> None:
        with self.engine.connect().execution_options(readonly=True) as conn:
            conn.execute(text("SELECT 1"))

    def allow_long_statements(self) -> None:
        """This process runs commands (the worker, migrations, broadcasts, purges), not the webhook: its
        connections, opened from now on, have no statement or lock timeout."""
        if not self.long_statements:
            self.long_statements = True
            self.engine.dispose()  # connections opened with the web's timeouts (by create_app) are closed

    def dispose(self) -> None:
        self.engine.dispose()

    def truncate_log(self) -> bool:
        """SQLite: copy the write-ahead log into the database and cut it to nothing (earlier page images, erased
        values among them, go with it); False when a reader or writer kept it. No-op elsewhere (True)."""
        if not self.sqlite:
            return True
        raw = self.engine.raw_connection()   # outside any transaction: a checkpoint cannot run inside one
        try:
            busy, _, _ = raw.cursor().execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        finally:
            raw.close()
        return busy == 0

    @contextlib.contextmanager
    def migration_lock(self) -> Iterator[None]:
        """Only one process migrates at a time; the others wait, then find nothing to do."""
        if self.sqlite:
            db_path = self.url.split("///", 1)[-1]
            lock_path = Path(db_path + ".migrate.lock") if db_path and db_path != ":memory:" else None
            if lock_path is None:
                yield
                return
            with open(lock_path, "a+") as fh:
                fcntl.flock(fh, fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(fh, fcntl.LOCK_UN)
        else:
            with self.engine.connect() as conn:
                # Another process may hold it for a whole migration: waited for longer than the connection's
                # bounds for an event's row locks and statements (set for this transaction only, which the
                # session-level lock outlives), but not for ever.
                conn.execute(text("SELECT set_config('lock_timeout', :t, true), set_config('statement_timeout', :t, "
                                  "true)"), {"t": f"{MIGRATION_LOCK_WAIT_MS}ms"})
                conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": ADVISORY_LOCK_ID})
                conn.commit()
                try:
                    yield
                finally:
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": ADVISORY_LOCK_ID})
                    conn.commit()


def upgrade_schema(database: Database, data_encryption_keys: Sequence[str] = ()) -> None:
    """Run Alembic migrations to head (idempotent; serialised across processes).

    `data_encryption_keys` (newest first) are for a migration that encrypts what was stored in the clear
    (0012: the staff notes; 0013: the override reasons); a migration that needs them and finds none refuses.
    """
    long = database
    if not database.sqlite and not database.long_statements:  # a web process's start (outside production)
        long = Database(database.url)
        long.long_statements = True  # a migration may run long, or wait for another process's migration
    try:
        _upgrade(long, data_encryption_keys)
    except exc.DBAPIError as error:
        from bot.config import ConfigError

        if problem := connect_problem(error, database.url) or privilege_problem(error, database.url):
            raise ConfigError(problem) from None
        raise
    finally:
        if long is not database:
            long.dispose()


def _upgrade(database: Database, data_encryption_keys: Sequence[str]) -> None:
    with database.migration_lock():
        state = schema_state(database)
        if state.ahead:
            from bot.config import ConfigError

            raise ConfigError(f"the database was upgraded by a newer release ({state.describe()}): this release "
                              "cannot change it back. Deploy that release or a newer one; the database is "
                              "unchanged")
        if not state.behind:
            return  # nothing to apply: Alembic and the scripts stay unloaded (every start outside production)
        from alembic import command

        cfg = alembic_config(database.url, data_encryption_keys)
        with database.engine.connect() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "heads")  # "heads": a feature branch not yet merged still applies
            conn.commit()


@dataclass(frozen=True)
class SchemaState:
    """Where the database's schema stands against this release's migrations."""
    database: tuple[str, ...]   # the revisions the database is at (none: no schema yet)
    release: tuple[str, ...]    # this release's heads
    unknown: tuple[str, ...]    # the database's revisions this release does not have (a newer release's)

    @property
    def behind(self) -> bool:
        """This release needs `db upgrade` before it can run on the database."""
        return not self.unknown and set(self.database) != set(self.release)

    @property
    def ahead(self) -> bool:
        """A newer release upgraded the database (this one may still be running beside it)."""
        return bool(self.unknown)

    def describe(self) -> str:
        at = f"database at {', '.join(self.database)}" if self.database else "the database has no schema yet"
        return f"{at}; this release needs {', '.join(self.release)}"


@lru_cache(maxsize=1)
def release_revisions() -> tuple[frozenset[str], tuple[str, ...]]:
    """This release's migration revisions and its heads (the revisions no other one follows), read from the
    scripts' `revision` and `down_revision` lines without importing Alembic or the scripts: the web processes
    ask on their health check, and those imports cost each of them about 10 MB."""
    revisions: set[str] = set()
    followed: set[str] = set()
    for path in sorted((MIGRATIONS_DIR / "versions").glob("*.py")):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                name = node.targets[0].id
                if name == "revision":
                    revisions.add(ast.literal_eval(node.value))
                elif name == "down_revision":
                    down = ast.literal_eval(node.value)
                    followed |= {down} if isinstance(down, str) else set(down or ())
    return frozenset(revisions), tuple(sorted(revisions - followed))


def schema_state(database: Database) -> SchemaState:
    """Compare the database's Alembic revisions with this release's (one read of `alembic_version`)."""
    from sqlalchemy import inspect

    known, heads = release_revisions()
    with database.engine.connect() as conn:  # read directly: Alembic's MigrationContext logs INFO lines each time
        found = inspect(conn).has_table("alembic_version")
        current = tuple(sorted(conn.scalars(text("SELECT version_num FROM alembic_version")))) if found else ()
    return SchemaState(current, heads, tuple(revision for revision in current if revision not in known))


def alembic_config(url: str, data_encryption_keys: Sequence[str] = ()):
    """Alembic's settings for our migrations folder, with the keys a data migration may need."""
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.attributes["data_encryption_keys"] = tuple(data_encryption_keys)
    return cfg
