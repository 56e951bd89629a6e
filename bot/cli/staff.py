"""`flask --app app staff …`: dashboard accounts.

`staff create-user --office <office> --username <name> [--role staff|admin] --password-stdin` reads the password
from standard input (one line; never prompts). Exit 0 created, 1 failed (e.g. the username is taken), 2 misuse.

`staff unthrottle --address <ip>` lets a client address that failed too many logins (bot/staff/throttle.py) log
in again before its 15 minutes end, and clears its count. Exit 0 (whether or not it was throttled), 2 misuse.
The throttle holds for every office, so its lifting is recorded in the audit log of no one office, which every
office's log shows: the command, the time, whether the address was throttled, and the address's keyed hash as
the throttle keeps it (never the address).
"""
from __future__ import annotations

import sys

import click
from flask import current_app
from flask.cli import AppGroup

from bot.cli.common import office_or_exit, schema_or_exit
from bot.staff import audit, auth, throttle

staff_group = AppGroup("staff", help="Staff dashboard accounts.")

MISUSE = {"username", "role", "password_short", "password_long"}


@staff_group.command("create-user")
@click.option("--office", "office_id", required=True, help="The office the account belongs to.")
@click.option("--username", required=True, help="Letters, digits, '.', '_' and '-' (3-64).")
@click.option("--role", default="staff", show_default=True, help="staff or admin (admins manage accounts).")
@click.option("--password-stdin", "password_stdin", is_flag=True, help="Read the password from standard input.")
def create_user_command(office_id: str, username: str, role: str, password_stdin: bool) -> None:
    """Create a dashboard account for an office."""
    rt = current_app.extensions["madoguchi"]
    schema_or_exit(rt)
    office_or_exit(rt, office_id)
    if role not in auth.ROLES:
        click.echo("--role must be staff or admin", err=True)
        sys.exit(2)
    if not password_stdin:
        click.echo("give the password on standard input with --password-stdin (it is never prompted for)", err=True)
        sys.exit(2)
    password = _read_password()
    try:
        with rt.db.transaction() as s:
            now = rt.clock.now()
            user = auth.create_user(s, office_id=office_id, username=username, password=password, role=role,
                                    now=now)
            audit.record(s, office_id, audit.Actor.cli(), "create_user", now, account=user.username,
                         role=role)
    except auth.AccountError as exc:
        click.echo(f"cannot create the account: {_explain(exc.code)}", err=True)
        sys.exit(2 if exc.code in MISUSE else 1)
    click.echo(f"created {role} account {user.username} for {office_id}")


@staff_group.command("unthrottle")
@click.option("--address", required=True, help="The client address, as the refusal's log line gives it (ip=).")
def unthrottle_command(address: str) -> None:
    """Lift the login throttle of a client address before its time ends."""
    rt = current_app.extensions["madoguchi"]
    schema_or_exit(rt)
    key = throttle.address_key(rt.config, address)
    if not key:
        click.echo(f"{address!r} is not an IPv4 or IPv6 address", err=True)
        sys.exit(2)
    with rt.db.transaction() as s:
        now = rt.clock.now()
        lifted = throttle.lift(s, key, now)
        audit.record(s, audit.DEPLOYMENT, audit.Actor.cli(), "unthrottle_address", now,
                     command="staff unthrottle", throttled=lifted, address_key=key)
    if lifted:
        click.echo(f"the login throttle of {address.strip()} is lifted: it may log in again")
    else:
        click.echo(f"{address.strip()} was not throttled; its count of failed logins, if any, is cleared")


def _read_password() -> str:
    stream = sys.stdin
    if stream is None or stream.closed:
        return ""
    return stream.readline().rstrip("\r\n")


def _explain(code: str) -> str:
    return {
        "username": "the username must be 3-64 letters, digits, '.', '_' or '-'",
        "role": "the role must be staff or admin",
        "password_short": f"the password must be at least {auth.MIN_PASSWORD} characters",
        "password_long": "the password is too long",
        "exists": "that username is already taken",
        "username_reserved": "that username names an actor of the audit log that is no account (system, cli, user, "
                             "line_group): choose another",
    }.get(code, code)
