"""Shared fixtures: the app on SQLite and PostgreSQL, a loopback fake LINE API, users, a frozen clock."""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import threading
import time
import uuid
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from bot.clock import TOKYO
from tests.fakeline import HANDLER_THREAD_PREFIX, FakeLineApi
from tests.lineuser import LineUser, StaffGroup

# Tuesday 2026-12-01 10:00 in Tokyo: Sakata's next Mondays are 12/7, 12/14, ...
DEFAULT_NOW = datetime(2026, 12, 1, 10, 0, tzinfo=TOKYO)
PG_ENV = "TEST_DATABASE_URL"


# -- no real network ------------------------------------------------------------------------------
_real_connect = socket.socket.connect


def _guarded_connect(self, address):
    host = address[0] if isinstance(address, tuple) else address
    if isinstance(host, str) and not (host.startswith("127.") or host in ("localhost", "::1", "")) \
            and not str(host).startswith("/"):
        raise RuntimeError(f"tests may not reach the network ({host})")
    return _real_connect(self, address)


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    monkeypatch.setattr(socket.socket, "connect", _guarded_connect)


# -- skips ---------------------------------------------------------------------------------------
# With PostgreSQL configured (as `.ci/run` does) every test can run, and the one skip that stays is a PostgreSQL-only
# test's SQLite variant. Anything else skipped (a tool not installed, a race that did not happen) would hide a test
# that did not run behind a green run: it fails the run instead.
_SQLITE_VARIANT = re.compile(r"\[(?:[^\]]*-)?sqlite(?:-[^\]]*)?\]$")
_UNEXPECTED_SKIPS: list[str] = []


def pytest_runtest_logreport(report):
    if report.skipped and os.environ.get(PG_ENV) and not _SQLITE_VARIANT.search(report.nodeid):
        _UNEXPECTED_SKIPS.append(report.nodeid)


def pytest_sessionfinish(session, exitstatus):
    if _UNEXPECTED_SKIPS and exitstatus == 0 and not hasattr(session.config, "workerinput"):  # xdist's controller
        session.exitstatus = 1


def pytest_terminal_summary(terminalreporter):
    if _UNEXPECTED_SKIPS:
        terminalreporter.write_line(f"{PG_ENV} is set, so nothing but a PostgreSQL-only test's SQLite variant may "
                                    f"skip; these did (the run fails):", red=True)
        for nodeid in sorted(set(_UNEXPECTED_SKIPS)):
            terminalreporter.write_line(f"  {nodeid}", red=True)


# -- tables of cases on PostgreSQL ------------------------------------------------------------------
# A test marked `pg_sample` walks a table of cases (words, statuses × actions) whose logic does not depend on the
# database. All of its cases run on SQLite; on PostgreSQL, by default, every `every`-th case runs (the first always)
# and any the marker's `keep(params)` names (those that write, say), the rest with the `heavy` runs.
def pytest_collection_modifyitems(config, items):
    seen: dict = {}
    for item in items:
        marker = item.get_closest_marker("pg_sample")
        callspec = getattr(item, "callspec", None)
        if marker is None or callspec is None or callspec.params.get("database_url") != "postgresql":
            continue
        index = seen[item.function] = seen.get(item.function, -1) + 1
        keep = marker.kwargs.get("keep")
        if index % marker.kwargs.get("every", 4) and not (keep and keep(callspec.params)):
            item.add_marker(pytest.mark.heavy)


pytest_collection_modifyitems = pytest.hookimpl(tryfirst=True)(pytest_collection_modifyitems)   # before -m


# -- office profiles ------------------------------------------------------------------------------
def _files(directory) -> tuple[tuple[str, bytes], ...]:
    root = Path(directory)
    if not root.is_dir():
        return ()
    return tuple((str(path.relative_to(root)), path.read_bytes()) for path in sorted(root.rglob("*")) if path.is_file())


@pytest.fixture(scope="session", autouse=True)
def _profiles_read_once():
    """Each test builds its own app, and parsing the office profiles was a sixth of building one: the same
    files (byte for byte, terms included) give the same offices, which are frozen. A test that writes other
    files gets them read."""
    from bot import offices

    real = offices.load_offices
    read: dict = {}

    def load_offices(directory, terms_dir=offices.TERMS_DIR):
        key = (str(directory), str(terms_dir), _files(directory), _files(terms_dir))
        if key not in read:
            read[key] = real(directory, terms_dir)
        return dict(read[key])

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(offices, "load_offices", load_offices)
        yield


# -- databases ------------------------------------------------------------------------------------
def _pg_admin_url() -> str | None:
    url = os.environ.get(PG_ENV)
    if not url:
        return None
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return url


class PgDatabases:
    """PostgreSQL databases for tests, each a test's own while it runs.

    Most tests start from the migrated schema with no rows. The first such database of a test process is a
    copy of one template migrated once per session (`CREATE DATABASE ... TEMPLATE`: about 0.15 s, and 8 MB of
    WAL); after its test it is emptied and lent to the next one (about 10 ms): its other connections ended, its
    rows deleted, its sequences restarted. A test that changed the schema or the recorded revision gets its
    database dropped instead. A lent database gets a new name, so that nothing of the test before reaches it.
    Tests of the migrations themselves ask for an empty database (`empty_database_url`), created and dropped
    each time.
    """

    def __init__(self, admin_url: str):
        self.admin_url = admin_url
        self.engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        self._template: str | None = None
        self._template_shape: str | None = None
        self._lent: set[str] = set()
        self._free: list[str] = []

    def create(self, migrated: bool = False) -> str:
        if migrated and self._free:
            name = self._free.pop()
        else:
            name = f"madoguchi_t_{uuid.uuid4().hex[:12]}"
            template = f' TEMPLATE "{self._migrated_template()}"' if migrated else ""
            with self.engine.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"{template}'))
        if migrated:
            self._lent.add(name)
        return self._url(name)

    def drop(self, url: str) -> None:
        name = make_url(url).database
        if name in self._lent:
            self._lent.discard(name)
            if self._emptied(name) and (renamed := self._renamed(name)):
                self._free.append(renamed)
                return
        self._drop(name)

    def close(self) -> None:
        for name in [*self._free, *self._lent, *([self._template] if self._template else [])]:
            self._drop(name)
        self.engine.dispose()

    def _migrated_template(self) -> str:
        if self._template is None:
            name = f"madoguchi_t_template_{uuid.uuid4().hex[:12]}"
            with self.engine.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
            _migrate(self._url(name))  # disposed after: a template may have no open connection
            with self._connect(name) as conn:
                self._template_shape = conn.execute(text(_SHAPE)).scalar_one()
            self._template = name
        return self._template

    def _emptied(self, name: str) -> bool:
        """Make a database its test is done with as it was created; False if it cannot be (schema changed)."""
        with self._connect(name) as conn:
            conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                              "WHERE datname = current_database() AND pid <> pg_backend_pid()"))
            if conn.execute(text(_SHAPE)).scalar_one() != self._template_shape:
                return False
            tables = conn.scalars(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                                       "AND tablename <> 'alembic_version'")).all()
            conn.execute(text("SET session_replication_role = replica"))  # rows deleted in any order
            # One simple query: one transaction, one commit.
            conn.exec_driver_sql("".join(f'DELETE FROM "{table}";' for table in tables)
                                 + "SELECT setval(c.oid, s.seqstart, false) FROM pg_class c "
                                   "JOIN pg_sequence s ON s.seqrelid = c.oid "
                                   "WHERE c.relnamespace = 'public'::regnamespace")
        return True

    def _renamed(self, name: str) -> str | None:
        """The emptied database under a new name: anything of the test before it still running (a thread, a
        process) that connects again finds no database, instead of writing into the next test's rows (whose
        ids start again at 1). None if something is connected to it (it is dropped instead)."""
        fresh = f"madoguchi_t_{uuid.uuid4().hex[:12]}"
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :name"),
                             {"name": name})
                conn.execute(text(f'ALTER DATABASE "{name}" RENAME TO "{fresh}"'))
        except DBAPIError:
            return None
        return fresh

    def _connect(self, name: str):
        return contextlib.closing(create_engine(self._url(name), poolclass=NullPool,
                                                isolation_level="AUTOCOMMIT").connect())

    def _drop(self, name: str) -> None:
        with self.engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    def _url(self, name: str) -> str:
        return make_url(self.admin_url).set(database=name).render_as_string(hide_password=False)


# The schema and the recorded revision, in one value: a database whose test changed either is not lent again.
_SHAPE = """
SELECT md5(string_agg(line, '|' ORDER BY line)) FROM (
  SELECT 'col ' || c.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
         || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
         || coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), '') AS line
    FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
   WHERE c.relnamespace = 'public'::regnamespace AND a.attnum > 0 AND NOT a.attisdropped
  UNION ALL SELECT 'rel ' || relname || ' ' || relkind::text FROM pg_class WHERE relnamespace = 'public'::regnamespace
  UNION ALL SELECT 'con ' || conname || ' ' || pg_get_constraintdef(oid) FROM pg_constraint
   WHERE connamespace = 'public'::regnamespace
  UNION ALL SELECT 'trg ' || tgname FROM pg_trigger WHERE NOT tgisinternal
  UNION ALL SELECT 'fn ' || proname FROM pg_proc WHERE pronamespace = 'public'::regnamespace
  UNION ALL SELECT 'rev ' || version_num FROM alembic_version
) shape
"""


def _migrate(url: str) -> None:
    from bot.db import Database, upgrade_schema

    db = Database(url)
    try:
        upgrade_schema(db)
    finally:
        db.dispose()


@pytest.fixture(scope="session")
def pg_databases():
    url = _pg_admin_url()
    if url is None:
        yield None
        return
    pg = PgDatabases(url)
    yield pg
    pg.close()


@pytest.fixture(scope="session")
def _migrated_sqlite(tmp_path_factory):
    """One SQLite file migrated once per session, in rollback-journal mode so that the file alone holds it
    (the app turns WAL on when it connects); each test gets a copy."""
    path = tmp_path_factory.mktemp("template") / "migrated.sqlite3"
    _migrate(f"sqlite:///{path}")
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA journal_mode=DELETE")
    return path


def _backends():
    backends = ["sqlite"]
    if os.environ.get(PG_ENV):
        backends.append("postgresql")
    return backends


@pytest.fixture(params=_backends())
def database_url(request, tmp_path, pg_databases, _migrated_sqlite):
    """Every database test runs on SQLite, and on PostgreSQL when TEST_DATABASE_URL is set; the database
    starts migrated, with no rows."""
    if request.param == "sqlite":
        path = tmp_path / "madoguchi.sqlite3"
        shutil.copyfile(_migrated_sqlite, path)
        yield f"sqlite:///{path}"
        return
    url = pg_databases.create(migrated=True)
    yield url
    pg_databases.drop(url)


@pytest.fixture(params=_backends())
def empty_database_url(request, tmp_path, pg_databases):
    """A database with no schema at all, for the tests of the migrations."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.sqlite3'}"
        return
    url = pg_databases.create()
    yield url
    pg_databases.drop(url)


# -- the fake LINE API ---------------------------------------------------------------------------
# One server per test process, each test in its own turn (`FakeLineApi.begin`): a call from a thread or process of
# a test that has ended (a worker, a request it gave up waiting for, a server) is answered 410 and kept apart, never
# recorded with a later test's calls. A test that leaves such a thread or process running fails at its teardown,
# named; a stray call that still comes fails the test during which it came, naming the test it came from.
LEFT_RUNNING_GRACE_SECONDS = 5.0
_STARTED_PROCESSES: list[subprocess.Popen] = []
_REPORTED_LEAKING: set[str] = set()


@pytest.fixture(scope="session")
def _fake_line_server():
    real_init = subprocess.Popen.__init__

    def init(self, *args, **kwargs):
        real_init(self, *args, **kwargs)
        _STARTED_PROCESSES.append(self)

    fake = FakeLineApi().start()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(subprocess.Popen, "__init__", init)
        yield fake
    fake.stop()
    problem = _strays_problem(fake, "the test process's end")
    if problem:
        pytest.fail(problem, pytrace=False)


@pytest.fixture
def fake_line(request, _fake_line_server):
    fake = _fake_line_server
    threads = set(threading.enumerate())
    _STARTED_PROCESSES.clear()
    fake.begin(request.node.nodeid)
    yield fake
    left = _left_running(threads, time.monotonic() + LEFT_RUNNING_GRACE_SECONDS)
    fake.end()
    problems = [_strays_problem(fake, "this test")]
    if left:
        _REPORTED_LEAKING.add(request.node.nodeid)   # its stray calls are not blamed on later tests again
        problems.append(f"{request.node.nodeid} left running after its end, where it can still call LINE: "
                        f"{'; '.join(left)}. Join or stop it before the test ends.")
    if any(problems):
        pytest.fail("\n".join(p for p in problems if p), pytrace=False)


def _left_running(threads_before: set, deadline: float) -> list[str]:
    """Threads and processes a test started and left running (after waiting until `deadline` for them to end); the
    fake's own connection threads are not the test's."""
    threads = [t for t in threading.enumerate() if t not in threads_before and t.is_alive()
               and not t.name.startswith(HANDLER_THREAD_PREFIX)
               and not isinstance(t, threading._DummyThread)]   # one not started by Python cannot be joined
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    processes = list(_STARTED_PROCESSES)
    _STARTED_PROCESSES.clear()
    while any(p.poll() is None for p in processes) and time.monotonic() < deadline:
        time.sleep(0.05)
    return ([f"thread {t.name!r}" for t in threads if t.is_alive()]
            + [f"process {p.pid} ({' '.join(map(str, p.args)) if isinstance(p.args, (list, tuple)) else p.args})"
               for p in processes if p.poll() is None])


def _strays_problem(fake: FakeLineApi, during: str) -> str | None:
    """What the calls from tests that had ended say (the tests they came from named), or None; the calls of a test
    that already failed for what it left running are not reported again."""
    strays = [s for s in fake.take_strays() if s.origin not in _REPORTED_LEAKING]
    if not strays:
        return None
    origins = sorted({s.origin for s in strays})
    return (f"{len(strays)} call(s) reached the fake LINE API from a test that had ended, during {during} (which "
            f"they did not affect: answered 410, not recorded): {'; '.join(s.describe() for s in strays[:5])}. "
            f"{', '.join(origins)} left a thread or process running.")


# -- the app --------------------------------------------------------------------------------------
# The reply budget in tests that do not time the acknowledgement. Production's second (the default) is for
# LINE's 2 s deadline; on a loaded test machine a reply to the loopback fake can take longer, and a reply left
# to the worker (which such a test does not run) looks like no answer at all. Tests that time the webhook
# are marked `reply_budget` and keep production's.
UNTIMED_REPLY_BUDGET_SECONDS = 10.0


@pytest.fixture(scope="session", autouse=True)
def _app_building_cached():
    """Two parts of building an app that give the same result for the same input, done once per test process:
    Werkzeug's URL builder of each route (it writes and compiles Python source for every rule of every app:
    half of building one) and the start's check of the offices' own wording (36 messages rendered for the same
    frozen offices). A test whose offices, routes or wording files differ gets its own."""
    from werkzeug.routing.rules import Rule

    from bot import render

    real_builder = Rule._compile_builder
    builders: dict = {}

    def compile_builder(rule, append_unknown=True):
        key = (rule.rule, rule.host, rule.subdomain, rule.map.host_matching, tuple(rule._trace),
               repr(sorted((rule.defaults or {}).items())),
               tuple(sorted((name, type(conv)) for name, conv in rule._converters.items())), append_unknown)
        if key not in builders:
            builders[key] = real_builder(rule, append_unknown)
        return builders[key]

    real_wording = render.office_wording_problems
    checked: dict = {}

    def wording_files(offices) -> tuple:
        """What the check reads besides the offices: their wording files, wherever the templates are."""
        found = []
        for office in offices.values():
            for language in render.LANGUAGES:
                for path in (render.own_invitation_file(office, language),
                             render.TEMPLATES_DIR / "messages" / language / f"invitation_{office.id}.j2"):
                    found.append((str(path), path.read_bytes() if path is not None and path.is_file() else None))
        return tuple(found)

    def office_wording_problems(offices):
        key = (tuple((name, id(office)) for name, office in offices.items()), wording_files(offices))
        if key not in checked:
            checked[key] = (real_wording(offices), list(offices.values()))   # the offices kept: ids stay theirs
        return list(checked[key][0])

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Rule, "_compile_builder", compile_builder)
        patch.setattr(render, "office_wording_problems", office_wording_problems)
        yield


@pytest.fixture
def make_app(request, tmp_path, database_url, fake_line):
    """Build an app (several may share a database: like several gunicorn workers)."""
    apps = []
    timed = request.node.get_closest_marker("reply_budget") is not None

    def build(**overrides):
        from app import create_app

        settings = {
            "instance_path": str(tmp_path / "instance"),
            "database_url": database_url,
            "line_api_base_url": fake_line.url,
            "line_api_data_base_url": fake_line.url,
            "testing": True,
            "line_timeout_seconds": 2.0,
        }
        if not timed:
            settings["reply_budget_seconds"] = UNTIMED_REPLY_BUDGET_SECONDS
        settings.update(overrides)
        app = create_app(settings)
        app.extensions["madoguchi"].clock.freeze(overrides.pop("now", None) or DEFAULT_NOW)
        apps.append(app)
        return app

    yield build
    for app in apps:
        app.extensions["madoguchi"].db.dispose()


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def rt(app):
    return app.extensions["madoguchi"]


@pytest.fixture
def production_app(make_app, rt):
    """The app as production runs it (every office's channel set, a long secret key), on `rt`'s database
    and keys."""
    env = {f"LINE_{kind}_{office.upper()}": f"{kind}-{office}" for office in rt.offices
           for kind in ("CHANNEL_SECRET", "CHANNEL_ACCESS_TOKEN")}
    return make_app(app_env="production", secret_key="p" * 64, env=env,
                    data_encryption_keys=rt.config.data_encryption_keys)


@pytest.fixture
def clock(rt):
    return rt.clock


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def user_factory(client, rt, fake_line):
    def make(office: str = "sakata", **kwargs) -> LineUser:
        return LineUser(client, office, channel_secret=rt.config.channel_secret(office), fake=fake_line,
                        clock=rt.clock, **kwargs)
    return make


@pytest.fixture
def sakata_user(user_factory):
    return user_factory("sakata")


@pytest.fixture
def otaru_user(user_factory):
    return user_factory("otaru")


@pytest.fixture
def staff_group_factory(client, rt, fake_line):
    def make(office: str = "sakata", **kwargs) -> StaffGroup:
        return StaffGroup(client, office, channel_secret=rt.config.channel_secret(office), fake=fake_line,
                          clock=rt.clock, **kwargs)
    return make
