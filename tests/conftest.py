"""Shared fixtures: the app on SQLite and PostgreSQL, a loopback fake LINE API, users, a frozen clock."""
from __future__ import annotations

import contextlib
import os
import shutil
import socket
import sqlite3
import uuid
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bot.clock import TOKYO
from tests.fakeline import FakeLineApi
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
    """Fresh PostgreSQL databases for tests, each created and dropped around its test.

    Most tests start from the migrated schema: their databases are copies of one template migrated once
    per session (`CREATE DATABASE ... TEMPLATE`: about 0.15 s, against 0.36 s to create and migrate).
    Tests of the migrations themselves ask for an empty database (`empty_database_url`).
    """

    def __init__(self, admin_url: str):
        self.admin_url = admin_url
        self.engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        self._template: str | None = None

    def create(self, migrated: bool = False) -> str:
        name = f"madoguchi_t_{uuid.uuid4().hex[:12]}"
        template = f' TEMPLATE "{self._migrated_template()}"' if migrated else ""
        with self.engine.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"{template}'))
        return self._url(name)

    def drop(self, url: str) -> None:
        self._drop(make_url(url).database)

    def close(self) -> None:
        if self._template:
            self._drop(self._template)
        self.engine.dispose()

    def _migrated_template(self) -> str:
        if self._template is None:
            name = f"madoguchi_t_template_{uuid.uuid4().hex[:12]}"
            with self.engine.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
            _migrate(self._url(name))  # disposed after: a template may have no open connection
            self._template = name
        return self._template

    def _drop(self, name: str) -> None:
        with self.engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    def _url(self, name: str) -> str:
        return make_url(self.admin_url).set(database=name).render_as_string(hide_password=False)


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
@pytest.fixture(scope="session")
def _fake_line_server():
    fake = FakeLineApi().start()
    yield fake
    fake.stop()


@pytest.fixture
def fake_line(_fake_line_server):
    _fake_line_server.reset()
    yield _fake_line_server
    _fake_line_server.reset()


# -- the app --------------------------------------------------------------------------------------
@pytest.fixture
def make_app(tmp_path, database_url, fake_line):
    """Build an app (several may share a database: like several gunicorn workers)."""
    apps = []

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
