"""README's "Going live", followed as an operator would: the documented commands run as written.

The backup and restore drill runs README's own `pg_dump` and `pg_restore` lines (PostgreSQL only, as production
runs it; skipped without TEST_DATABASE_URL or the PostgreSQL client tools), then the app on the restored copy.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from bot.models import Booking
from bot.staff import personal
from tests import staffkit

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
        pytest.skip("the PostgreSQL client tools are not installed")
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
