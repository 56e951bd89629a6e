"""The database: SQLite made safe for several processes, PostgreSQL row locks, migrations run once."""
from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, inspect, select, text

from bot.db import Database, upgrade_schema
from bot.models import AppSetting, OutboxMessage, TermsVersion
from tests.sqlwatch import watch

ROOT = Path(__file__).resolve().parent.parent


# -- SQLite -------------------------------------------------------------------------------------

@pytest.fixture
def sqlite_db(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'safe.sqlite3'}")
    upgrade_schema(db)
    yield db
    db.dispose()


def test_sqlite_uses_wal_a_busy_timeout_full_sync_and_foreign_keys(sqlite_db):
    with sqlite_db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 5000
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL: durability never weakened
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_sqlite_write_transactions_take_the_lock_up_front_and_reads_do_not(sqlite_db):
    with watch(sqlite_db.engine) as seen:
        with sqlite_db.transaction() as s:
            s.add(AppSetting(key="k", value="v"))
        assert seen[0] == "BEGIN IMMEDIATE"
        seen.clear()
        with sqlite_db.reading() as s:
            assert s.scalar(select(AppSetting.value)) == "v"
        assert seen[0] == "BEGIN"


def test_a_failed_transaction_leaves_nothing(sqlite_db):
    with pytest.raises(RuntimeError):
        with sqlite_db.transaction() as s:
            s.add(AppSetting(key="half", value="done"))
            s.flush()
            raise RuntimeError("boom")
    with sqlite_db.reading() as s:
        assert s.scalar(select(func.count()).select_from(AppSetting)) == 0


def _counter_stress(databases: list[Database], rounds: int) -> list[Exception]:
    """Each database object (a process's engine) increments one counter `rounds` times, read-then-write."""
    errors: list[Exception] = []
    barrier = threading.Barrier(len(databases))

    def work(db: Database):
        barrier.wait(timeout=10)
        for _ in range(rounds):
            try:
                with db.transaction() as s:
                    setting = s.scalars(select(AppSetting).where(AppSetting.key == "counter")
                                        .with_for_update()).one()
                    setting.value = str(int(setting.value) + 1)
            except Exception as exc:  # noqa: BLE001 - counted below
                errors.append(exc)

    threads = [threading.Thread(target=work, args=(db,)) for db in databases]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return errors


def test_concurrent_read_then_write_transactions_never_fail_as_locked(database_url):
    """The upgrade from a read to a write lock is where deferred SQLite transactions fail at once."""
    databases = [Database(database_url) for _ in range(4)]  # four engines: like four processes
    try:
        upgrade_schema(databases[0])
        with databases[0].transaction() as s:
            s.add(AppSetting(key="counter", value="0"))
        errors = _counter_stress(databases, 25)
        assert errors == []
        with databases[0].reading() as s:
            assert s.scalar(select(AppSetting.value).where(AppSetting.key == "counter")) == "100"
    finally:
        for db in databases:
            db.dispose()


def test_deferred_sqlite_transactions_would_fail_here(tmp_path):
    """Why BEGIN IMMEDIATE: the same work on plain deferred transactions hits 'database is locked'. The race is
    played out step by step (two transactions read, one writes and commits, the other then writes), so that it
    happens on every run: the second writer's snapshot is stale and SQLite refuses it at once, busy timeout or
    not."""
    path = tmp_path / "plain.sqlite3"
    first, second = (sqlite3.connect(path, timeout=5, isolation_level=None) for _ in range(2))
    try:
        first.execute("PRAGMA journal_mode=WAL")
        first.execute("CREATE TABLE counter (n INTEGER)")
        first.execute("INSERT INTO counter VALUES (0)")
        first.execute("BEGIN")
        second.execute("BEGIN")
        [(n,)] = first.execute("SELECT n FROM counter").fetchall()
        [(m,)] = second.execute("SELECT n FROM counter").fetchall()
        first.execute("UPDATE counter SET n = ?", (n + 1,))
        first.execute("COMMIT")
        with pytest.raises(sqlite3.OperationalError, match="locked|busy"):
            second.execute("UPDATE counter SET n = ?", (m + 1,))
    finally:
        first.close()
        second.close()


# -- PostgreSQL ---------------------------------------------------------------------------------

def test_postgresql_locks_the_conversation_row(rt, sakata_user):
    if rt.db.sqlite:
        pytest.skip("PostgreSQL only (SQLite serialises writers with BEGIN IMMEDIATE)")
    with watch(rt.db.engine) as seen:
        sakata_user.says("予約")
    assert any(s.startswith("SELECT") and "FROM conversations" in s and s.endswith("FOR UPDATE") for s in seen)


def test_postgresql_outbox_claims_skip_rows_another_worker_holds(rt):
    if rt.db.sqlite:
        pytest.skip("PostgreSQL only")
    with watch(rt.db.engine) as seen:
        rt.sender().send_due()
    assert any("FROM outbox" in s and "FOR UPDATE OF outbox SKIP LOCKED" in s for s in seen)


def _drop_app_connections(database_url: str) -> int:
    """What a database restart does to the app: every server process of its connections ends."""
    from sqlalchemy.engine import make_url

    admin = create_engine(database_url.replace("postgresql://", "postgresql+psycopg://", 1),
                          isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            return len(conn.execute(text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = :name AND pid <> pg_backend_pid()"), {"name": make_url(database_url).database}
            ).all())
    finally:
        admin.dispose()


def test_postgresql_an_event_survives_its_connection_dropping(rt, sakata_user, database_url, caplog):
    """A busy pooled connection is used without a ping; when it turns out dead, the event runs again."""
    if rt.db.sqlite:
        pytest.skip("PostgreSQL only")
    sakata_user.follows()
    assert _drop_app_connections(database_url) >= 1
    caplog.set_level("WARNING", logger="bot.dispatch")
    sakata_user.says("予約")
    assert sakata_user.texts(), "the event was handled and answered"
    assert "running it again" in caplog.text
    with rt.db.reading() as s:
        assert s.scalar(text("SELECT count(*) FROM processed_events")) == 2
        assert s.scalar(text("SELECT state FROM conversations")) != "idle"


def test_an_event_whose_commit_landed_as_the_connection_was_lost_is_still_answered_once(rt, sakata_user, fake_line,
                                                                                       monkeypatch, caplog):
    """The database took the event's COMMIT, then the connection went before its answer came: the event's second
    run finds it handled (a duplicate) — and the replies the first run reserved, never tried, go all the same."""
    import contextlib

    from sqlalchemy.exc import OperationalError

    from bot import dispatch

    real, lost = dispatch.event_rows.transaction, []

    @contextlib.contextmanager
    def committed_then_lost(db):
        with real(db) as tx:
            yield tx
        if not lost:
            lost.append(True)
            raise OperationalError("COMMIT", {}, Exception("server closed the connection unexpectedly"),
                                   connection_invalidated=True)

    monkeypatch.setattr(dispatch.event_rows, "transaction", committed_then_lost)
    caplog.set_level("WARNING", logger="bot.dispatch")
    assert sakata_user.says("予約").status_code == 200
    assert lost and "running it again" in caplog.text
    assert len(sakata_user.texts()) == 1, "the reply, once"
    with rt.db.reading() as s:
        assert s.scalars(select(OutboxMessage.status)).all() == ["sent"]
        assert s.scalar(text("SELECT count(*) FROM processed_events")) == 1


def test_postgresql_an_idle_connection_is_checked_before_use(rt, sakata_user, database_url, caplog,
                                                             monkeypatch):
    if rt.db.sqlite:
        pytest.skip("PostgreSQL only")
    import bot.db

    sakata_user.follows()
    monkeypatch.setattr(bot.db, "IDLE_PING_SECONDS", 0.0)
    assert _drop_app_connections(database_url) >= 1
    caplog.set_level("WARNING", logger="bot.dispatch")
    sakata_user.says("予約")
    assert sakata_user.texts()
    assert "running it again" not in caplog.text  # the ping found the dead connection first


# -- migrations ---------------------------------------------------------------------------------

def test_upgrade_is_idempotent_and_reaches_every_head(empty_database_url):
    database_url = empty_database_url
    from alembic.script import ScriptDirectory
    from alembic.config import Config as AlembicConfig

    db = Database(database_url)
    try:
        upgrade_schema(db)
        upgrade_schema(db)
        cfg = AlembicConfig()
        cfg.set_main_option("script_location", str(ROOT / "migrations"))
        heads = set(ScriptDirectory.from_config(cfg).get_heads())
        with db.engine.connect() as conn:
            applied = {row[0] for row in conn.execute(text("SELECT version_num FROM alembic_version"))}
        assert applied == heads
        assert "outbox" in inspect(db.engine).get_table_names()
    finally:
        db.dispose()


def test_an_upgrade_with_nothing_to_apply_leaves_alembic_alone(database_url, monkeypatch):
    """Every start outside production upgrades the schema: at head, that is one read, not Alembic's machinery."""
    from alembic import command

    def refuse(*_args, **_kwargs):
        raise AssertionError("Alembic ran")

    monkeypatch.setattr(command, "upgrade", refuse)
    db = Database(database_url)
    try:
        upgrade_schema(db)
        with db.engine.begin() as conn:  # no revision recorded: now Alembic has work to do
            conn.execute(text("DELETE FROM alembic_version"))
        with pytest.raises(AssertionError, match="Alembic ran"):
            upgrade_schema(db)
    finally:
        db.dispose()


def test_db_upgrade_command_twice(app):
    runner = app.test_cli_runner()
    for _ in range(2):
        result = runner.invoke(args=["db", "upgrade"])
        assert result.exit_code == 0, result.output
        assert "up to date" in result.output
    rt = app.extensions["madoguchi"]
    with rt.db.reading() as s:
        versions = s.execute(select(TermsVersion.office_id, TermsVersion.version)).all()
    assert len(versions) == len(set(versions)) > 0


def test_schema_upgrade_is_safe_when_several_processes_start_at_once(tmp_path, empty_database_url):
    """Three `flask --app app db upgrade` against a fresh database at the same moment: all succeed."""
    database_url = empty_database_url
    env = {**os.environ, "APP_ENV": "development", "DATABASE_URL": database_url,
           "INSTANCE_PATH": str(tmp_path / "instance"), "LINE_API_BASE_URL": "http://127.0.0.1:9",
           "LINE_API_DATA_BASE_URL": "http://127.0.0.1:9"}
    env.pop("APP_FAKE_NOW", None)
    procs = [subprocess.Popen([sys.executable, "-m", "flask", "--app", "app", "db", "upgrade"], cwd=ROOT,
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for _ in range(3)]
    outputs = []
    try:
        for proc in procs:
            out, _ = proc.communicate(timeout=120)
            outputs.append((proc.returncode, out.decode(errors="replace")))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    for code, out in outputs:
        assert code == 0, out
    db = Database(database_url)
    try:
        with db.reading() as s:
            versions = s.execute(select(TermsVersion.office_id, TermsVersion.version)).all()
        assert len(versions) == len(set(versions)) > 0
    finally:
        db.dispose()


# -- health -------------------------------------------------------------------------------------

def test_healthz_answers_when_the_app_and_database_do(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_healthz_is_503_when_the_database_does_not_answer(app, rt, tmp_path):
    rt.db.engine.dispose()
    broken = create_engine(f"sqlite:///{tmp_path / 'missing' / 'dir' / 'x.sqlite3'}")
    healthy = rt.db.engine
    rt.db.engine = broken
    try:
        response = app.test_client().get("/healthz")
    finally:
        rt.db.engine = healthy
    assert response.status_code == 503
    assert response.get_json() == {"status": "database unavailable"}


def test_a_process_starting_waits_for_another_ones_migration_lock(empty_database_url):
    """At start-up the shipped data is seeded under the migration lock, on an ordinary connection (whose lock and
    statement timeouts are an event's, 250 and 500 ms). Another process starting at the same moment may hold the
    lock for a whole migration, for seconds: this one waits for it rather than failing to start (CI saw three
    `db upgrade` at once fail so)."""
    if not empty_database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL only (SQLite's lock is a file lock without a timeout)")
    from bot.db import ADVISORY_LOCK_ID

    holder, waiter = Database(empty_database_url), Database(empty_database_url)
    taken, done = threading.Event(), threading.Event()

    def hold() -> None:
        with holder.engine.connect() as conn:
            conn.execute(text("SELECT set_config('statement_timeout', '0', true)"))
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": ADVISORY_LOCK_ID})
            conn.commit()
            taken.set()
            done.wait(1.2)                     # a migration of over a second
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": ADVISORY_LOCK_ID})
            conn.commit()

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert taken.wait(10)
        with waiter.migration_lock():
            pass
        with waiter.engine.connect() as conn:       # the lock's connection, back in the pool: an event's bounds
            assert conn.execute(text("SHOW lock_timeout")).scalar() == "250ms"
    finally:
        done.set()
        thread.join(10)
        holder.dispose()
        waiter.dispose()


def test_an_event_committed_as_the_connection_was_lost_and_not_run_again_still_gets_its_reply(
        rt, sakata_user, monkeypatch, caplog):
    """The event's commit landed but its answer was lost with the connection, and running it again failed too (the
    database still restarting). When the apology then finds the event handled (the first run's claim committed),
    no apology goes, and nor must the first run's reply be left behind: it goes, once, not `unknown` after the
    lease (never sent, the user left without an answer)."""
    import contextlib

    from sqlalchemy.exc import OperationalError

    from bot import dispatch

    real, runs = dispatch.event_rows.transaction, []

    @contextlib.contextmanager
    def committed_then_lost(db):
        runs.append(True)
        if len(runs) == 2:   # the run again: no connection yet
            raise OperationalError("BEGIN", {}, Exception("the database system is starting up"),
                                   connection_invalidated=True)
        with real(db) as tx:
            yield tx
        if len(runs) == 1:
            raise OperationalError("COMMIT", {}, Exception("server closed the connection unexpectedly"),
                                   connection_invalidated=True)

    monkeypatch.setattr(dispatch.event_rows, "transaction", committed_then_lost)
    assert sakata_user.says("予約").status_code == 200
    assert len(runs) == 2
    texts = sakata_user.texts()
    assert len(texts) == 1 and "同意" in texts[0], texts
    with rt.db.reading() as s:
        assert s.scalars(select(OutboxMessage.status)).all() == ["sent"]
