"""What the commands share: finding the office they were asked about, a database ready for them."""
from __future__ import annotations

import sys

import click


def office_or_exit(rt, office_id: str):
    """The office's profile, or exit 2 (misuse) naming the known offices."""
    office = rt.offices.get(office_id)
    if office is None:
        click.echo(f"unknown office: {office_id} (known: {', '.join(sorted(rt.offices))})", err=True)
        sys.exit(2)
    return office


def schema_or_exit(rt) -> None:
    """Exit 1 before touching a database that `db upgrade` has not brought to this release (its first run
    included): a command run in the order an operator might guess says what to run, not a driver traceback."""
    from bot.db import schema_state

    state = schema_state(rt.db)
    if state.behind:
        click.echo(f"the database is not ready for this release ({state.describe()}): "
                   "run `flask --app app db upgrade` first", err=True)
        sys.exit(1)


def simulator_hint(rt, status: int | None = None) -> str:
    """In development the LINE API is `flask --app app dev`'s simulator: when it does not answer, how to reach it
    (a command does not know the port `dev` serves on; it reads PUBLIC_BASE_URL like the app). When something
    answers there but serves no simulator (404), most likely the production web process: the command ran without
    the APP_ENV the Procfile gives only its processes. Empty otherwise."""
    cfg = rt.config
    if cfg.is_production or cfg.line_api_base_url != f"{cfg.public_base_url}/simulator/api":
        return ""
    if status == 404:
        return (f"; this command ran in development (APP_ENV is not `production`), where LINE is the simulator at "
                f"{cfg.line_api_base_url}, and that address serves none: to reach LINE, run it with "
                "APP_ENV=production, as the Procfile's processes run")
    return (f"; in development this is the simulator: start `flask --app app dev`, and when it serves another "
            f"--port, run this command with PUBLIC_BASE_URL=http://localhost:<port> (now {cfg.public_base_url})")
