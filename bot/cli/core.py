"""Core commands: db upgrade, worker, diagram."""
from __future__ import annotations

import sys

import click
from flask import current_app
from flask.cli import AppGroup, with_appcontext

db_group = AppGroup("db", help="Database schema.")


@db_group.command("upgrade")
def db_upgrade() -> None:
    """Create or upgrade the schema and seed shipped data (idempotent)."""
    from bot.db import upgrade_schema
    from bot.settings_store import seed

    rt = current_app.extensions["madoguchi"]
    upgrade_schema(rt.db, rt.config.data_encryption_keys)
    seed(rt)
    click.echo("database is up to date")


@click.command("worker")
@click.option("--once", is_flag=True, help="Run one pass and exit.")
@click.option("--now", "now_text", default=None, help="Pretend it is this time (ISO 8601; development only).")
@with_appcontext
def worker_command(once: bool, now_text: str | None) -> None:
    """Deliver the outbox and run due jobs."""
    from bot.clock import parse_instant
    from bot.worker import Worker

    rt = current_app.extensions["madoguchi"]
    if now_text and rt.config.is_production:
        # Like APP_FAKE_NOW: on live data a pretended time purges personal details, expires requests and
        # messages users for real.
        click.echo("--now is for development only: in production the worker runs on the real clock", err=True)
        sys.exit(2)
    if now_text:
        try:
            rt.clock.freeze(parse_instant(now_text))
        except ValueError:
            click.echo("--now must be an ISO 8601 time", err=True)
            sys.exit(2)
    worker = Worker(rt)
    if once:
        figures = worker.run_once()
        click.echo(" ".join(f"{k}={v}" for k, v in figures.items()))
    else:
        worker.run_forever()


@click.command("diagram")
def diagram_command() -> None:
    """Print the conversation as a Mermaid state diagram."""
    from dialogs.diagram import mermaid

    click.echo(mermaid())
