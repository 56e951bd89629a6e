"""`flask --app app channels …`: keep offices' LINE channel credentials in the encrypted channels store.

Values are read from standard input (never from arguments, which end up in shell history and process lists)
and never printed. With both `--secret-stdin` and `--token-stdin`, the first line is the secret and the
second the token. The environment still wins; the processes pick up a change when they restart.
"""
from __future__ import annotations

import sys

import click
from flask import current_app
from flask.cli import AppGroup

from bot.cli.common import office_or_exit, schema_or_exit
from bot import channels

channels_group = AppGroup("channels", help="LINE channel credentials kept encrypted in the database.")


def _read_values(secret_stdin: bool, token_stdin: bool) -> dict[str, str]:
    names = [name for name, wanted in ((channels.SECRET, secret_stdin), (channels.TOKEN, token_stdin)) if wanted]
    lines = sys.stdin.read().splitlines()
    if len(lines) < len(names):
        click.echo(f"expected {len(names)} line(s) on standard input: " + ", then ".join(names), err=True)
        sys.exit(2)
    values = {name: line.strip() for name, line in zip(names, lines)}
    empty = [name for name, value in values.items() if not value]
    if empty:
        click.echo("empty value for: " + ", ".join(empty), err=True)
        sys.exit(2)
    return values


@channels_group.command("set")
@click.option("--office", "office_id", required=True)
@click.option("--secret-stdin", is_flag=True, help="Read the channel secret from standard input.")
@click.option("--token-stdin", is_flag=True,
              help="Read the channel access token from standard input (the line after the secret's, with both).")
def set_command(office_id: str, secret_stdin: bool, token_stdin: bool) -> None:
    """Store an office's channel secret and/or access token (encrypted with DATA_ENCRYPTION_KEY)."""
    if not (secret_stdin or token_stdin):
        click.echo("give --secret-stdin, --token-stdin or both", err=True)
        sys.exit(2)
    rt = current_app.extensions["madoguchi"]
    schema_or_exit(rt)
    office = office_or_exit(rt, office_id)
    values = _read_values(secret_stdin, token_stdin)
    with rt.db.transaction() as s:
        channels.put(s, rt.config.data_encryption_keys, office.id, values, rt.clock.now())
    click.echo(f"stored {' and '.join(values)} of {office.id} (encrypted); restart the processes to use it")
    for name in values:
        variable = f"{channels.ENV_PREFIX[name]}_{office.id.upper()}"
        if rt.config.env.get(variable):
            click.echo(f"note: {variable} is set in the environment, which wins over the store")


@channels_group.command("list")
def list_command() -> None:
    """Where each office's secret and token come from: env, store or missing (never the values)."""
    rt = current_app.extensions["madoguchi"]
    schema_or_exit(rt)
    with rt.db.reading() as s:
        updated = channels.listing(s)
        held = channels.stored(s, rt.config.data_encryption_keys)
    click.echo(f"{'office':<20} {'enabled':<8} {'secret':<8} {'token':<8} store updated")
    for office_id in sorted(set(rt.offices) | set(updated)):
        office = rt.offices.get(office_id)
        sources = []
        for name, prefix in channels.ENV_PREFIX.items():
            if rt.config.env.get(f"{prefix}_{office_id.upper()}"):
                sources.append("env")
            elif held.get(office_id, {}).get(name):
                sources.append("store")
            else:
                sources.append("missing")
        when = updated[office_id].isoformat(timespec="seconds") if office_id in updated else "-"
        enabled = "-" if office is None else ("yes" if office.enabled else "no")
        click.echo(f"{office_id:<20} {enabled:<8} {sources[0]:<8} {sources[1]:<8} {when}")


@channels_group.command("delete")
@click.option("--office", "office_id", required=True)
def delete_command(office_id: str) -> None:
    """Remove an office's stored credentials (exit 1 when none were stored)."""
    rt = current_app.extensions["madoguchi"]
    schema_or_exit(rt)
    with rt.db.transaction() as s:
        removed = channels.remove(s, office_id)
    if not removed:
        click.echo(f"nothing stored for {office_id}", err=True)
        sys.exit(1)
    click.echo(f"removed the stored credentials of {office_id}")
