"""README's "Going live", followed as an operator would: the documented commands run as written.

The backup and restore drill runs README's own `pg_dump` and `pg_restore` lines (PostgreSQL only, as production
runs it; skipped without TEST_DATABASE_URL or the PostgreSQL client tools), then the app on the restored copy.
"""
from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from bot.models import Booking
from bot.staff import personal
from tests import staffkit
from tests.staffkit import fast_password_hashing  # noqa: F401 - autouse fixture

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _section(title: str) -> str:
    start = README.index(title)
    end = README.find("\n### ", start + len(title))
    return README[start:end if end != -1 else None]


def _inline_commands(text: str, program: str) -> list[str]:
    """The `…` spans of a section that run `program`."""
    return [span for span in re.findall(r"`([^`\n]+)`", text) if span.startswith(program + " ")]


def _libpq_url(url: str) -> str:
    """The URL as pg_dump and psql read it (no SQLAlchemy driver name)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def test_backups_section_gives_one_backup_and_one_restore_command():
    backups = _section("### 7. Backups")
    assert len(_inline_commands(backups, "pg_dump")) == 1
    assert len(_inline_commands(backups, "pg_restore")) == 1


def test_readme_backup_and_restore_drill_restores_a_readable_copy(database_url, pg_databases, make_app, rt,
                                                                  tmp_path):
    if not database_url.startswith("postgresql"):
        pytest.skip("backups are PostgreSQL's (pg_dump)")
    if not (shutil.which("pg_dump") and shutil.which("pg_restore")):
        pytest.fail("TEST_DATABASE_URL is set but the PostgreSQL client tools (pg_dump, pg_restore) are not installed")
    reference = staffkit.make_request(rt, "sakata")
    backups = _section("### 7. Backups")
    [backup] = _inline_commands(backups, "pg_dump")
    [restore] = _inline_commands(backups, "pg_restore")
    scratch = pg_databases.create()  # a new, empty database: the usual place to rehearse a restore
    try:
        env = {**os.environ, "DATABASE_URL": _libpq_url(database_url), "SCRATCH_URL": _libpq_url(scratch)}
        for command in (backup, restore, restore):  # the second restore: into a copy restored before
            command = re.sub(r"madoguchi-\d{4}-\d{2}-\d{2}\.dump", "madoguchi-*.dump", command)  # the dump just made
            done = subprocess.run(["bash", "-c", command], cwd=tmp_path, env=env, capture_output=True, text=True,
                                  timeout=120)
            assert done.returncode == 0, f"{command}\n{done.stderr[-2000:]}"
            assert "error" not in done.stderr.lower(), done.stderr[-2000:]
        restored_app = make_app(database_url=scratch, data_encryption_keys=rt.config.data_encryption_keys)
        restored = restored_app.extensions["madoguchi"]
        with restored.db.reading() as s:
            assert s.scalar(select(func.count()).select_from(Booking)) == 1
            row = s.scalar(select(Booking).where(Booking.reference == reference))
            assert personal.decrypt(restored, row.details)["name"] == staffkit.DETAILS["sakata"]["name"]
        checked = restored_app.test_cli_runner().invoke(args=["keys", "rotate"])  # README's check of the keys
        assert checked.exit_code == 0, checked.output
        assert not re.search(r"unreadable=[1-9]", checked.output), checked.output
    finally:
        pg_databases.drop(scratch)


# -- the schema and the release process --------------------------------------------------------------------

def _production_app(url: str, tmp_path, fake_line):
    """The app as production starts it on `url`: no schema work at start-up (that is the release process's)."""
    from cryptography.fernet import Fernet

    from app import create_app

    env = {f"LINE_{kind}_{office.upper()}": f"{kind}-{office}" for office in ("sakata", "otaru")
           for kind in ("CHANNEL_SECRET", "CHANNEL_ACCESS_TOKEN")}
    return create_app({"app_env": "production", "database_url": url, "env": env, "secret_key": "p" * 64,
                       "data_encryption_keys": (Fernet.generate_key().decode(),), "testing": True,
                       "instance_path": str(tmp_path / "instance"), "line_api_base_url": fake_line.url,
                       "line_api_data_base_url": fake_line.url, "line_timeout_seconds": 2.0})


def test_healthz_is_503_and_names_db_upgrade_until_the_release_process_ran(empty_database_url, tmp_path,
                                                                             fake_line, caplog):
    app = _production_app(empty_database_url, tmp_path, fake_line)
    rt = app.extensions["madoguchi"]
    try:
        answer = app.test_client().get("/healthz")
        assert answer.status_code == 503
        assert "flask --app app db upgrade" in answer.get_json()["status"]
        assert "flask --app app db upgrade" in caplog.text
        result = app.test_cli_runner().invoke(args=["db", "upgrade"])
        assert result.exit_code == 0, result.output
        answer = app.test_client().get("/healthz")
        assert (answer.status_code, answer.get_json()) == (200, {"status": "ok"})
    finally:
        rt.db.dispose()


def test_a_missing_table_in_the_logs_names_db_upgrade(empty_database_url, tmp_path, fake_line, caplog):
    from bot.worker import Worker
    from tests.lineuser import LineUser

    app = _production_app(empty_database_url, tmp_path, fake_line)
    rt = app.extensions["madoguchi"]
    try:
        user = LineUser(app.test_client(), "sakata", channel_secret="CHANNEL_SECRET-sakata")
        assert user.says("予約").status_code == 200
        failed = [r.getMessage() for r in caplog.records if "failed" in r.getMessage()]
        assert failed and all("run `flask --app app db upgrade`" in line for line in failed), failed
        with pytest.raises(Exception) as raised:
            Worker(rt).run_once()
        from bot.db import describe_error
        assert "run `flask --app app db upgrade`" in describe_error(raised.value)
    finally:
        rt.db.dispose()


def _stamp(rt, revision: str) -> None:
    from sqlalchemy import text

    with rt.db.connected() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = :r"), {"r": revision})


def test_db_upgrade_of_an_older_release_refuses_a_newer_database_plainly(production_app, rt):
    _stamp(rt, "0099_from_a_newer_release")
    result = production_app.test_cli_runner().invoke(args=["db", "upgrade"])
    assert result.exit_code == 1
    assert "upgraded by a newer release" in result.output and "0099_from_a_newer_release" in result.output
    assert "Traceback" not in result.output


def test_healthz_reads_the_schema_without_alembic_log_lines(production_app, caplog):
    caplog.set_level(logging.INFO)
    assert production_app.test_client().get("/healthz").status_code == 200
    assert not [r for r in caplog.records if r.name.startswith("alembic")], caplog.text


def test_the_release_revisions_read_from_the_scripts_are_alembics():
    from alembic.script import ScriptDirectory

    from bot.db import alembic_config, release_revisions

    scripts = ScriptDirectory.from_config(alembic_config("sqlite://"))
    known, heads = release_revisions()
    assert known == {script.revision for script in scripts.walk_revisions()}
    assert heads == tuple(sorted(scripts.get_heads()))


def test_a_production_health_check_does_not_load_alembic(database_url, tmp_path):
    """A web process reads the schema's state on its health check without Alembic and the migration scripts
    (about 10 MB in each web worker): only the release process migrates."""
    script = (
        "import sys, warnings; warnings.simplefilter('ignore')\n"
        "from app import create_app\n"
        "env = {f'LINE_{k}_{o}': 'x' for o in ('SAKATA', 'OTARU') for k in ('CHANNEL_SECRET', 'CHANNEL_ACCESS_TOKEN')}\n"
        f"app = create_app({{'app_env': 'production', 'database_url': {database_url!r}, 'secret_key': 'p' * 64,\n"
        f"    'env': env, 'instance_path': {str(tmp_path / 'instance')!r},\n"
        "    'data_encryption_keys': ('TzN3ZWtIYVh2b0N0cFp0T0xQZmVxR3NqQ1J4bEFfV0s=',)})\n"
        "print(app.test_client().get('/healthz').status_code, 'alembic' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.stdout.split() == ["200", "False"], done.stdout + done.stderr


def test_healthz_stays_200_while_a_newer_release_upgrades_the_schema(production_app, rt):
    _stamp(rt, "0099_from_a_newer_release")  # the old processes keep serving until they are replaced
    answer = production_app.test_client().get("/healthz")
    assert (answer.status_code, answer.get_json()) == (200, {"status": "ok"})


# -- keys ------------------------------------------------------------------------------------------------------

def test_details_under_a_key_no_longer_configured_are_not_shown_as_erased(make_app, rt, caplog):
    """A backup restored after its key was dropped, or the old key removed before `keys rotate` finished."""
    from cryptography.fernet import Fernet

    reference = staffkit.make_request(rt, "sakata")
    staffkit.create_staff(rt)
    other_keys = make_app(data_encryption_keys=(Fernet.generate_key().decode(),))
    client = other_keys.test_client()
    staffkit.login(client)
    staffkit.reveal(client, reference)
    page = client.get(f"/staff/bookings/{reference}").get_data(as_text=True)
    assert "暗号鍵では読めません" in page and "削除されたのではありません" in page
    assert "申込内容はありません" not in page
    assert f"booking={staffkit.booking(rt, reference).id} details open under no key in DATA_ENCRYPTION_KEY" \
        in caplog.text


def test_a_staff_note_under_a_key_no_longer_configured_is_not_overwritten(make_app, rt, client):
    """Saving the 職員メモ would replace a note no configured key opens: the page says so and offers no box,
    and a save sent anyway is refused, the stored note kept."""
    from cryptography.fernet import Fernet

    reference = staffkit.make_request(rt, "sakata")
    staffkit.create_staff(rt)
    staffkit.login(client)
    staffkit.post(client, f"/staff/bookings/{reference}/note", note="折り返しは午後に",
                  note_seen=personal.note_digest(None))
    sealed = staffkit.booking(rt, reference).staff_note
    assert sealed is not None

    other_keys = make_app(data_encryption_keys=(Fernet.generate_key().decode(),))
    other = other_keys.test_client()
    staffkit.login(other)
    staffkit.reveal(other, reference)
    page = other.get(f"/staff/bookings/{reference}").get_data(as_text=True)
    assert 'id="note-unreadable"' in page and 'name="note_seen"' not in page
    answer = staffkit.post(other, f"/staff/bookings/{reference}/note", note="", note_seen=personal.note_digest(None))
    assert "上書きしないよう、保存しませんでした" in other.get(answer.headers["Location"]).get_data(as_text=True)
    assert staffkit.booking(rt, reference).staff_note == sealed


def _run_worker_briefly(worker_rt) -> None:
    """Start the worker as its process does (run_forever), and stop it once it has started."""
    import threading

    from bot.worker import Worker

    worker = Worker(worker_rt)
    thread = threading.Thread(target=worker.run_forever)
    thread.start()
    worker.stop()
    thread.join(timeout=30)
    assert not thread.is_alive()


def test_a_key_that_opens_no_stored_details_is_said_when_worker_and_web_start(make_app, rt, caplog):
    """DATA_ENCRYPTION_KEY replaced (`<new>` where `<new>,<old>` was meant) before `keys rotate`: the worker says
    so when it starts, and the web process on its first health check, the answer unchanged; no key is logged."""
    from cryptography.fernet import Fernet

    staffkit.make_request(rt, "sakata")
    staffkit.make_request(rt, "otaru", start=staffkit.OTARU_WEDNESDAY)
    new = Fernet.generate_key().decode()
    replaced = make_app(data_encryption_keys=(new,)).extensions["madoguchi"]
    caplog.set_level(logging.INFO)
    _run_worker_briefly(replaced)
    said = [r.getMessage() for r in caplog.records if "DATA_ENCRYPTION_KEY opens" in r.getMessage()]
    assert len(said) == 1 and "opens 0 of the 2 newest stored request details" in said[0], caplog.text
    assert "DATA_ENCRYPTION_KEY=<new>,<old>" in said[0] and "keys rotate" in said[0]
    assert new not in caplog.text and rt.config.data_encryption_keys[0] not in caplog.text

    caplog.clear()
    client = make_app(data_encryption_keys=(new,)).test_client()
    for _ in range(2):   # once per process
        answer = client.get("/healthz")
        assert (answer.status_code, answer.get_json()) == (200, {"status": "ok"})
    assert sum("DATA_ENCRYPTION_KEY opens 0 of the 2" in r.getMessage() for r in caplog.records) == 1


def test_keys_that_open_the_stored_details_say_nothing_at_start(make_app, rt, caplog):
    """The new key first and the old one after it (rotation under way), or no details stored yet: no warning."""
    from cryptography.fernet import Fernet

    caplog.set_level(logging.INFO)
    _run_worker_briefly(rt)   # nothing stored
    staffkit.make_request(rt, "sakata")
    both = make_app(data_encryption_keys=(Fernet.generate_key().decode(), *rt.config.data_encryption_keys))
    _run_worker_briefly(both.extensions["madoguchi"])
    assert both.test_client().get("/healthz").status_code == 200
    assert "worker started" in caplog.text and "DATA_ENCRYPTION_KEY opens" not in caplog.text


# -- commands in the order an operator might guess ---------------------------------------------------------

@pytest.mark.parametrize("args, stdin", [
    (["channels", "set", "--office", "otaru", "--secret-stdin", "--token-stdin"], "secret\ntoken\n"),
    (["channels", "list"], ""),
    (["staff", "create-user", "--office", "sakata", "--username", "tanaka", "--password-stdin"],
     "correct horse battery staple\n"),
    (["keys", "rotate"], ""),
    (["terms", "consents", "--office", "sakata"], ""),
])
def test_a_command_before_the_first_db_upgrade_says_to_run_it(empty_database_url, tmp_path, fake_line, args,
                                                                stdin):
    """README's step 1 offers `channels set` before step 3 creates the schema."""
    app = _production_app(empty_database_url, tmp_path, fake_line)
    try:
        result = app.test_cli_runner().invoke(args=args, input=stdin)
        assert result.exit_code == 1, result.output
        assert "run `flask --app app db upgrade` first" in result.output
        assert "(the database has no schema yet; this release needs 00" in result.output   # not "at no schema"
        assert result.exception is None or isinstance(result.exception, SystemExit)
    finally:
        app.extensions["madoguchi"].db.dispose()


def test_db_upgrade_as_a_user_who_may_not_create_tables_says_to_make_it_the_owner(empty_database_url, tmp_path,
                                                                                fake_line):
    """PostgreSQL 15 and later let only a database's owner create tables in its public schema: an operator who
    made the bot's user beside a database of their own met a 120-line traceback on the first `db upgrade`."""
    if not empty_database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL's privileges")
    import secrets

    import sqlalchemy as sa

    role, password = f"madoguchi_{secrets.token_hex(4)}", secrets.token_hex(8)
    admin = sa.create_engine(make_url(empty_database_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE ROLE {role} LOGIN PASSWORD '{password}'"))
    try:
        url = make_url(empty_database_url).set(username=role, password=password).render_as_string(
            hide_password=False)
        app = _production_app(url, tmp_path, fake_line)
        try:
            result = app.test_cli_runner().invoke(args=["db", "upgrade"])
        finally:
            app.extensions["madoguchi"].db.dispose()
        assert result.exit_code == 1, result.output
        assert "Traceback" not in result.output and password not in result.output
        assert "permission denied for schema public" in result.output
        assert f"DATABASE_URL's user must own the database (`createdb --owner={role} <name>`" in result.output
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP ROLE {role}"))
        admin.dispose()


def test_the_worker_before_the_first_db_upgrade_says_to_run_it(empty_database_url, tmp_path, fake_line):
    """`worker --once` (a rehearsal, a cron pass) on a database the release process has not upgraded was a
    driver traceback ending in "no such table" / "relation does not exist"."""
    app = _production_app(empty_database_url, tmp_path, fake_line)
    try:
        result = app.test_cli_runner().invoke(args=["worker", "--once"])
        assert result.exit_code == 1, result.output
        assert "run `flask --app app db upgrade`" in result.output and "Traceback" not in result.output
        assert isinstance(result.exception, SystemExit)
    finally:
        app.extensions["madoguchi"].db.dispose()


UNREACHABLE = "postgresql://madoguchi:sekret@127.0.0.1:1/madoguchi"  # nothing listens on port 1


@pytest.mark.parametrize("args", [["db", "upgrade"], ["worker", "--once"], ["channels", "list"],
                                  ["staff", "create-user", "--office", "sakata", "--username", "tanaka",
                                   "--password-stdin"]])
def test_a_command_on_an_unreachable_database_names_the_setting(tmp_path, fake_line, args):
    app = _production_app(UNREACHABLE, tmp_path, fake_line)
    try:
        result = app.test_cli_runner().invoke(args=args, input="correct horse battery staple\n")
        assert result.exit_code == 1, result.output
        assert "cannot connect to the database at postgresql+psycopg://madoguchi:***@127.0.0.1:1/madoguchi" \
               in result.output and "check DATABASE_URL" in result.output
        assert "sekret" not in result.output and isinstance(result.exception, SystemExit)
    finally:
        app.extensions["madoguchi"].db.dispose()


@pytest.mark.parametrize("url,expected", [
    (UNREACHABLE, "cannot connect to the database at postgresql+psycopg://madoguchi:***@127.0.0.1:1/madoguchi"),
    ("postgres//madoguchi@db/madoguchi", "DATABASE_URL cannot be used"),
    ("mysql://madoguchi@db/madoguchi", "DATABASE_URL cannot be used (No module named"),
])
def test_a_database_setting_that_stops_the_start_is_named(tmp_path, fake_line, url, expected):
    """Development prepares the database on start (`flask --app app dev`, `run`, any command): an unusable
    DATABASE_URL stopped it with a driver traceback; it is a ConfigError now, which every command and gunicorn
    print as the message alone."""
    from app import create_app
    from bot.config import ConfigError

    with pytest.raises(ConfigError) as refused:
        create_app({"database_url": url, "instance_path": str(tmp_path / "instance"), "testing": True,
                    "line_api_base_url": fake_line.url, "line_api_data_base_url": fake_line.url})
    assert expected in str(refused.value) and "sekret" not in str(refused.value)


def test_production_missing_a_channel_says_how_to_use_the_channels_store(tmp_path, monkeypatch):
    from bot.config import ConfigError, check_production, load_config

    cfg = load_config({"app_env": "production", "secret_key": "p" * 64}, environ={
        "INSTANCE_PATH": str(tmp_path), "DATA_ENCRYPTION_KEY": "x" * 43 + "="})
    with pytest.raises(ConfigError) as refused:
        check_production(cfg, ["otaru"])
    message = str(refused.value)
    assert "LINE_CHANNEL_SECRET_OTARU" in message
    assert "enabled: false" in message and "channels set --office <office>" in message


# -- an office that cannot send ------------------------------------------------------------------------------

def test_a_refused_channel_token_is_a_warning_naming_the_setting(rt, sakata_user, fake_line, caplog):
    from tests.staffkit import run_worker

    caplog.set_level(logging.INFO)
    fake_line.access_token = "the token LINE issued"  # the app's is another
    try:
        assert sakata_user.says("予約").status_code == 200
        run_worker(rt)
    finally:
        fake_line.access_token = None
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and r.name == "bot.outbox"]
    assert warnings and all("LINE_CHANNEL_ACCESS_TOKEN_SAKATA" in line for line in warnings), caplog.text
    assert "the token LINE issued" not in caplog.text


def test_a_used_up_monthly_quota_is_a_warning(make_app, fake_line, caplog):
    app = make_app(env={"LINE_STAFF_GROUP_ID_SAKATA": "C" + "0" * 32})
    rt = app.extensions["madoguchi"]
    caplog.set_level(logging.INFO)
    fake_line.quota_limit = 0
    try:
        staffkit.make_request(rt, "sakata")  # the staff card is a push
        staffkit.run_worker(rt)
    finally:
        fake_line.quota_limit = None
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and r.name == "bot.outbox"]
    assert warnings and all("office=sakata's monthly message quota is used up" in line for line in warnings)


def test_healthz_logs_why_the_database_cannot_be_reached(tmp_path, fake_line, caplog):
    """A 503 "database unavailable" leaves the operator a log line naming the cause and the setting to check
    (the address with its password hidden), as the commands print it."""
    app = _production_app("postgresql://madoguchi:hunter2@127.0.0.1:1/madoguchi", tmp_path, fake_line)
    rt = app.extensions["madoguchi"]
    try:
        answer = app.test_client().get("/healthz")
        assert (answer.status_code, answer.get_json()) == (503, {"status": "database unavailable"})
        [line] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("healthz:")]
        assert line.startswith("healthz: cannot connect to the database at postgresql+psycopg://madoguchi:***@"
                               "127.0.0.1:1/madoguchi (")
        assert "check DATABASE_URL" in line and "hunter2" not in caplog.text
    finally:
        rt.db.dispose()


def test_healthz_is_200_once_the_database_is_back_though_its_pooled_connection_was_cut(production_app, rt,
                                                                                        database_url):
    """The database restarted (or a failover cut the connections): once it answers again, `/healthz` says 200 on
    the first check. A pooled connection the restart closed is no outage: the check tries again on a new one,
    instead of answering 503 once per process and connection and making the monitor flap."""
    from sqlalchemy import create_engine, text

    if database_url.startswith("sqlite"):
        pytest.skip("a SQLite file has no server to cut a connection")
    app_db = production_app.extensions["madoguchi"].db
    with app_db.engine.connect() as conn:   # the pooled connection the next check will take
        pid = conn.execute(text("SELECT pg_backend_pid()")).scalar()
    other = create_engine(rt.config.database_url)
    try:
        with other.connect() as conn:
            assert conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar()
    finally:
        other.dispose()
    answer = production_app.test_client().get("/healthz")
    assert (answer.status_code, answer.get_json()) == (200, {"status": "ok"})
