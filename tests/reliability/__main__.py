"""`python -m tests.reliability`: run the fault and crash runs with given seeds and print their figures.

    .venv/bin/python -m tests.reliability                          # faults: seeds 1-3; crash: seed 11 (SQLite)
    .venv/bin/python -m tests.reliability --faults 1-10 --crash 11,12 --rate 0.4
    .venv/bin/python -m tests.reliability --postgres postgresql://postgres@127.0.0.1:5432/test

Each run starts from an empty database (a SQLite file in a scratch folder, or a fresh PostgreSQL database that is
dropped afterwards) and the loopback fake Messaging API. The table is Markdown, ready for README's
"Reliability" section. Exit 0 when every promise held in every run, 1 otherwise (the problems are listed).
"""
from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
import uuid
from datetime import datetime
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bot.clock import TOKYO
from tests.fakeline import FakeLineApi

START = datetime(2026, 12, 1, 10, 0, tzinfo=TOKYO)   # the test suite's clock: a Tuesday


def seeds(text_value: str) -> list[int]:
    """`1,2,5-8` -> [1, 2, 5, 6, 7, 8]; empty: none."""
    found: list[int] = []
    for part in filter(None, (p.strip() for p in text_value.split(","))):
        low, _, high = part.partition("-")
        found.extend(range(int(low), int(high or low) + 1))
    return found


class Databases:
    """Where each run keeps its data: a SQLite file, or a fresh PostgreSQL database."""

    def __init__(self, scratch: Path, postgres: str | None):
        self.scratch = scratch
        self.admin = None
        if postgres:
            url = postgres.replace("postgres://", "postgresql://", 1)
            if url.startswith("postgresql://"):
                url = "postgresql+psycopg://" + url[len("postgresql://"):]
            self.admin = create_engine(url, isolation_level="AUTOCOMMIT")
            self.admin_url = url

    def backends(self) -> list[str]:
        return ["sqlite"] + (["postgresql"] if self.admin is not None else [])

    def create(self, backend: str, name: str) -> str:
        if backend == "sqlite":
            return f"sqlite:///{self.scratch / name / 'madoguchi.sqlite3'}"
        database = f"madoguchi_rel_{uuid.uuid4().hex[:10]}"
        with self.admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{database}"'))
        return make_url(self.admin_url).set(database=database).render_as_string(hide_password=False)

    def drop(self, url: str) -> None:
        if self.admin is not None and not url.startswith("sqlite"):
            with self.admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'))


def build_app(workdir: Path, database_url: str, fake: FakeLineApi, **settings):
    from app import create_app

    workdir.mkdir(parents=True, exist_ok=True)
    app = create_app({"instance_path": str(workdir / "instance"), "database_url": database_url,
                      "line_api_base_url": fake.url, "line_api_data_base_url": fake.url, "testing": True,
                      **settings})
    app.extensions["madoguchi"].clock.freeze(START)
    return app


def table(rows: list[dict[str, object]]) -> str:
    if not rows:
        return ""
    heads = list(rows[0])
    lines = ["| " + " | ".join(heads) + " |", "|" + "|".join("---" for _ in heads) + "|"]
    lines += ["| " + " | ".join(str(row.get(h, "")) for h in heads) + " |" for row in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.reliability", description=__doc__.splitlines()[0])
    parser.add_argument("--faults", default="1-3", help="seeds of the fault runs, e.g. 1,2,5-8 (empty: none)")
    parser.add_argument("--rate", type=float, default=0.3, help="share of LINE calls that fail in fault runs")
    parser.add_argument("--users", type=int, default=4, help="users per fault run")
    parser.add_argument("--crash", default="11", help="seeds of the crash runs (empty: none)")
    parser.add_argument("--crash-users", type=int, default=6, help="people per crash run")
    parser.add_argument("--kills", type=int, default=6, help="SIGKILLs per crash run")
    parser.add_argument("--postgres", default=os.environ.get("TEST_DATABASE_URL"),
                        help="also run on PostgreSQL (an admin URL; default: TEST_DATABASE_URL)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder (process logs)")
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")  # figures, not chatter
    from tests.reliability.crash import run_crash
    from tests.reliability.faults import FAULT_APP_SETTINGS, run_faults

    scratch = Path(tempfile.mkdtemp(prefix="madoguchi-reliability-"))
    databases = Databases(scratch, args.postgres)
    fault_rows, crash_rows, failures = [], [], []
    fake = FakeLineApi().start()
    try:
        for backend in databases.backends():
            for seed in seeds(args.faults):
                fake.reset()
                url = databases.create(backend, f"faults-{seed}")
                app = build_app(scratch / f"faults-{backend}-{seed}", url, fake, **FAULT_APP_SETTINGS)
                try:
                    figures, problems = run_faults(app, fake, seed=seed, rate=args.rate, users=args.users)
                finally:
                    app.extensions["madoguchi"].db.dispose()
                    databases.drop(url)
                fault_rows.append({"database": backend, **figures.row()})
                failures += [f"faults seed {seed} ({backend}): {p}" for p in problems]
                print(f"fault run {backend} seed {seed}: {'ok' if not problems else 'PROBLEMS'}", file=sys.stderr)
            for seed in seeds(args.crash):
                fake.reset()
                url = databases.create(backend, f"crash-{seed}")
                workdir = scratch / f"crash-{backend}-{seed}"
                app = build_app(workdir, url, fake)
                try:
                    figures, problems, _logs = run_crash(app.extensions["madoguchi"], fake, workdir, url, seed=seed,
                                                         users=args.crash_users, kills=args.kills)
                finally:
                    app.extensions["madoguchi"].db.dispose()
                    databases.drop(url)
                crash_rows.append(figures.row())
                failures += [f"crash seed {seed} ({backend}): {p}" for p in problems]
                print(f"crash run {backend} seed {seed}: {'ok' if not problems else 'PROBLEMS'}", file=sys.stderr)
    finally:
        fake.stop()
        if databases.admin is not None:
            databases.admin.dispose()
        if args.keep:
            print(f"scratch folder kept: {scratch}", file=sys.stderr)
        else:
            shutil.rmtree(scratch, ignore_errors=True)

    if fault_rows:
        print("Fault runs (LINE failing at random; figures per run)\n")
        print(table(fault_rows) + "\n")
    if crash_rows:
        print("Crash runs (web and worker killed with SIGKILL, restarted)\n")
        print(table(crash_rows) + "\n")
    if failures:
        print("Problems:\n" + "\n".join(f"- {f}" for f in failures))
        return 1
    print("Every promise held in every run.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
