"""`flask --app app keys rotate`: re-encrypt everything held under DATA_ENCRYPTION_KEY with its newest key.

Rotation, step by step: put the new key first in DATA_ENCRYPTION_KEY (`new,old`), restart, run
`keys rotate`, and once it reports nothing unreadable, drop the old key. The command re-encrypts the
request details, the staff notes, the memos of the audit log (of cancellations, of attendance corrections),
override reasons and slot block reasons, the stored channel credentials and the staff second-factor secrets,
a batch per transaction, and is safe to run again (tokens already under the newest key are left alone). It also computes again the search hash of each request's
job seeker number, keyed with SECRET_KEY: run it after changing SECRET_KEY too. On SQLite it then truncates the
write-ahead log, whose earlier page images would still hold the tokens under the old key. It prints counts only,
never a value. Exit 0 when done, 1 when a token opens with no configured key (or the log was in use).
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any

import click
from cryptography.fernet import InvalidToken
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import select

from bot import crypto
from bot.cli.common import schema_or_exit
from bot.db import Database

keys_group = AppGroup("keys", help="Keys of the personal data at rest.")


# The audit log's one encrypted column (`staff_audit.note`) holds the memos of two kinds of action; each is
# reported under its own name, and a memo of any other action (none is written today) is still re-encrypted.
CANCELLATION_ACTIONS = ("cancel_for_user", "withdraw_for_user", "cancel_by_office")
CORRECTION_ACTIONS = ("correct_attendance",)


@dataclass(frozen=True)
class Target:
    """A column holding Fernet tokens: bytes, or text for a token stored as a string; `where` narrows the rows
    (one kind of memo of a shared column); a `quiet` target is reported only when it found a row."""
    label: str
    model: type
    column: str
    text: bool = False
    where: Any = None
    quiet: bool = False


@dataclass
class Tally:
    rotated: int = 0
    current: int = 0
    unreadable: list[int | str] = field(default_factory=list)


def targets() -> list[Target]:
    """Every encrypted column of the schema."""
    from bot.models import Booking, SlotBlock

    found = [Target("request details", Booking, "details"), Target("staff notes", Booking, "staff_note"),
             Target("slot block reasons", SlotBlock, "reason")]
    try:
        from bot.channels import ChannelCredentials
        found.append(Target("channel credentials", ChannelCredentials, "credentials"))
    except ImportError:  # pragma: no cover - a deployment without the channels store
        pass
    try:
        from bot.staff.models import AuditEntry, BookingHandoff, StaffUser
        memo_actions = CANCELLATION_ACTIONS + CORRECTION_ACTIONS
        found.append(Target("cancellation memos", AuditEntry, "note",
                            where=AuditEntry.action.in_(CANCELLATION_ACTIONS)))
        found.append(Target("attendance correction memos", AuditEntry, "note",
                            where=AuditEntry.action.in_(CORRECTION_ACTIONS)))
        found.append(Target("other audit memos", AuditEntry, "note", where=AuditEntry.action.not_in(memo_actions),
                            quiet=True))
        found.append(Target("override reasons", BookingHandoff, "override_reason"))
        found.append(Target("staff second factors", StaffUser, "totp_secret", text=True))
    except ImportError:  # pragma: no cover - a deployment without the dashboard
        pass
    return found


def rotate_target(db: Database, vault: crypto.Vault, target: Target, batch: int = 200) -> Tally:
    """Re-encrypt one column under the newest key, a batch of rows per transaction."""
    key = target.model.__mapper__.primary_key[0]
    return _each_row(db, target.model, target.column, batch,
                     lambda row, tally: _rotate_row(vault, target, row, key.key, tally), target.where)


def rehash_seekers(db: Database, vault: crypto.Vault, batch: int = 200) -> Tally:
    """The search hash of each request's job seeker number (`bookings.seeker_hash`), computed again from its
    details: the hash is keyed with SECRET_KEY, so after SECRET_KEY changed a search (and the check that one job
    seeker has one open booking) would find nothing until this has run. Rows whose hash is right are left alone."""
    from bot.models import Booking
    from bot.staff.personal import normalise_seeker_number

    def rehash(row, tally: Tally) -> None:
        try:
            details = vault.decrypt(bytes(row.details))
        except InvalidToken:
            tally.unreadable.append(row.id)
            return
        number = normalise_seeker_number((details or {}).get("seeker_number") or "")
        digest = vault.seeker_hash(number) if number else None
        if digest == row.seeker_hash:
            tally.current += 1
        else:
            row.seeker_hash = digest
            tally.rotated += 1

    return _each_row(db, Booking, "details", batch, rehash)


def _each_row(db: Database, model: type, column_name: str, batch: int, visit, where: Any = None) -> Tally:
    """`visit(row, tally)` for every row whose column is set (and that `where` admits), a batch of rows per
    transaction."""
    tally = Tally()
    key = model.__mapper__.primary_key[0]
    column = getattr(model, column_name)
    last = None
    while True:
        with db.transaction() as s:
            query = select(model).where(column.is_not(None)).order_by(key).limit(batch)
            if where is not None:
                query = query.where(where)
            if last is not None:
                query = query.where(key > last)
            if s.bind.dialect.name == "postgresql":
                # Locked until the batch commits: an erasure (データ削除, the retention purge) or a staff edit
                # committed between this read and the write would otherwise be overwritten with the old value.
                # SQLite's write transaction (BEGIN IMMEDIATE) already keeps every other writer out.
                query = query.with_for_update()
            rows = s.scalars(query).all()
            for row in rows:
                visit(row, tally)
            if rows:
                last = getattr(rows[-1], key.key)
        if len(rows) < batch:
            return tally


def _rotate_row(vault: crypto.Vault, target: Target, row, key_name: str, tally: Tally) -> None:
    value = getattr(row, target.column)
    token = value.encode("ascii") if target.text else bytes(value)
    if vault.is_current(token):
        tally.current += 1
        return
    try:
        rotated = vault.rotate(token)
    except InvalidToken:
        tally.unreadable.append(getattr(row, key_name))
        return
    setattr(row, target.column, rotated.decode("ascii") if target.text else rotated)
    tally.rotated += 1


@keys_group.command("rotate")
@click.option("--batch", default=200, show_default=True, type=click.IntRange(1, 10_000),
              help="Rows per transaction.")
def rotate_command(batch: int) -> None:
    """Re-encrypt personal data (and other secrets) under the newest DATA_ENCRYPTION_KEY."""
    rt = current_app.extensions["madoguchi"]
    schema_or_exit(rt)
    vault = crypto.for_config(rt.config)
    failed = False
    for target in targets():
        tally = rotate_target(rt.db, vault, target, batch)
        if target.quiet and not (tally.rotated or tally.current or tally.unreadable):
            continue
        click.echo(f"{target.label}: rotated={tally.rotated} already_current={tally.current} "
                   f"unreadable={len(tally.unreadable)}")
        if tally.unreadable:
            failed = True
            shown = ", ".join(str(i) for i in tally.unreadable[:20])
            click.echo(f"{target.label}: no configured key opens rows {shown}"
                       f"{' ...' if len(tally.unreadable) > 20 else ''}; keep the key they were written with",
                       err=True)
    hashes = rehash_seekers(rt.db, vault, batch)
    click.echo(f"search hashes: rehashed={hashes.rotated} already_current={hashes.current} "
               f"unreadable={len(hashes.unreadable)}")
    if not rt.db.truncate_log():
        failed = True
        click.echo("SQLite's write-ahead log is in use and still holds copies under the old keys: run "
                   "`keys rotate` again before removing them", err=True)
    if failed:
        sys.exit(1)
    click.echo(f"keys rotated: everything is under the newest of {len(rt.config.data_encryption_keys)} key(s)")
