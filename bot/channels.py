"""The channels store: each office's LINE channel secret and access token, encrypted, in the database.

For deployments with many offices, where hundreds of `LINE_CHANNEL_*_<OFFICE>` variables are unwieldy. The
environment always wins, setting by setting; the store fills only what the environment leaves empty. Values
are a Fernet token (`DATA_ENCRYPTION_KEY`, newest key first: MultiFernet) over a small JSON object, so the
table holds no plaintext. `flask --app app channels set` writes them (bot/cli/channels.py).

The store is read once, at start-up (`attach`), and only when some enabled office misses a setting in the
environment: the webhook path never queries it, and a deployment configured by environment alone never
touches it. A change takes effect when the processes restart.
"""
from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy import LargeBinary, String, inspect, select
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.orm import Mapped, Session, mapped_column

from bot.config import Config, ConfigError
from bot.db import connect_problem
from bot.models import Base

log = logging.getLogger(__name__)

SECRET, TOKEN = "secret", "token"
# How long a starting process waits for a database that does not answer (restarting) before refusing to start:
# under gunicorn's 30 s boot timeout.
STARTUP_WAIT_SECONDS = 20.0
ENV_PREFIX = {SECRET: "LINE_CHANNEL_SECRET", TOKEN: "LINE_CHANNEL_ACCESS_TOKEN"}


class ChannelCredentials(Base):
    """One office's channel secret and access token, encrypted together."""

    __tablename__ = "channel_credentials"
    office_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    credentials: Mapped[bytes] = mapped_column(LargeBinary)  # Fernet token over {"secret": ..., "token": ...}
    updated_at: Mapped[datetime]


def _fernet(keys: Sequence[str]) -> MultiFernet:
    if not keys:
        raise ValueError("the channels store needs DATA_ENCRYPTION_KEY")
    return MultiFernet([Fernet(k.encode()) for k in keys])


def _open(fernet: MultiFernet, blob: bytes) -> dict[str, str]:
    data = json.loads(fernet.decrypt(bytes(blob)).decode("utf-8"))
    return {k: v for k, v in data.items() if k in (SECRET, TOKEN) and isinstance(v, str) and v}


def put(session: Session, keys: Sequence[str], office_id: str, values: Mapping[str, str], now: datetime) -> None:
    """Store the given settings (`secret`, `token`) of an office, keeping the one not given."""
    fernet = _fernet(keys)
    row = session.get(ChannelCredentials, office_id)
    current = _open(fernet, row.credentials) if row is not None else {}
    current.update({k: v for k, v in values.items() if k in (SECRET, TOKEN) and v})
    blob = fernet.encrypt(json.dumps(current, separators=(",", ":")).encode("utf-8"))
    if row is None:
        session.add(ChannelCredentials(office_id=office_id, credentials=blob, updated_at=now))
    else:
        row.credentials, row.updated_at = blob, now


def remove(session: Session, office_id: str) -> bool:
    row = session.get(ChannelCredentials, office_id)
    if row is None:
        return False
    session.delete(row)
    return True


def stored(session: Session, keys: Sequence[str], office_ids: Iterable[str] | None = None) -> dict[str, dict]:
    """{office id: {"secret": ..., "token": ...}} for the rows the keys open (others are logged by id)."""
    return read(session, keys, office_ids)[0]


def read(session: Session, keys: Sequence[str],
         office_ids: Iterable[str] | None = None) -> tuple[dict[str, dict], list[str]]:
    """The rows the keys open, as `stored` gives them, and the offices whose row none of the keys opens."""
    fernet = _fernet(keys)
    query = select(ChannelCredentials)
    if office_ids is not None:
        query = query.where(ChannelCredentials.office_id.in_(list(office_ids)))
    found: dict[str, dict] = {}
    unreadable: list[str] = []
    for row in session.scalars(query):
        try:
            found[row.office_id] = _open(fernet, row.credentials)
        except (InvalidToken, ValueError):
            log.warning("channels store: office=%s cannot be decrypted with DATA_ENCRYPTION_KEY", row.office_id)
            unreadable.append(row.office_id)
    return found, unreadable


def listing(session: Session) -> dict[str, datetime]:
    """Offices with stored credentials and when they were last set (no values)."""
    return dict(session.execute(select(ChannelCredentials.office_id, ChannelCredentials.updated_at)).tuples().all())


def reencrypt(session: Session, keys: Sequence[str]) -> int:
    """Re-encrypt every row under the newest key (for key rotation); returns the rows rewritten."""
    fernet = _fernet(keys)
    count = 0
    for row in session.scalars(select(ChannelCredentials)):
        row.credentials = fernet.rotate(bytes(row.credentials))
        count += 1
    return count


def missing_from_env(cfg: Config, office_ids: Iterable[str]) -> list[str]:
    """Offices for which the environment lacks the secret or the token."""
    return [o for o in office_ids
            if not all(cfg.env.get(f"{prefix}_{o.upper()}") for prefix in ENV_PREFIX.values())]


def _read_waiting(db, cfg: Config, wanted) -> tuple[dict[str, dict], list[str]]:
    """The stored credentials of `wanted`, waiting up to STARTUP_WAIT_SECONDS for a database that does not answer
    (a production process started while it restarts must not refuse to start for want of a channel the store
    holds). Outside production nothing waits: the simulator needs no channel, and the schema's upgrade, next,
    names the database that does not answer."""
    deadline, pause = time.monotonic() + STARTUP_WAIT_SECONDS, 0.5
    while True:
        try:
            if not inspect(db.engine).has_table(ChannelCredentials.__tablename__):
                return {}, []
            with db.reading() as session:
                return read(session, cfg.data_encryption_keys, wanted)
        except OperationalError as exc:
            if not cfg.is_production:  # the channels are optional here; the schema's upgrade names the database
                log.warning("channels store: the database does not answer (%s)", type(exc).__name__)
                return {}, []
            if time.monotonic() >= deadline:
                source = (f"the channels store is where {', '.join(sorted(wanted))}'s LINE channel settings would "
                          "come from")
                # Connecting failed: the driver's reason (no such database, a wrong password, nothing listening)
                # tells the operator what to fix, where "does not answer" leaves them guessing.
                if reason := connect_problem(exc, cfg.database_url):
                    raise ConfigError(f"{reason}; {source}") from None
                raise ConfigError(f"the database does not answer ({type(exc).__name__}), and {source}: start "
                                  "again once the database answers (`/healthz` says so)") from None
            log.warning("channels store: the database does not answer (%s); trying again", type(exc).__name__)
            time.sleep(pause)
            pause = min(pause * 2, 4.0)
        except SQLAlchemyError as exc:
            log.warning("channels store not readable (%s); using the environment only", type(exc).__name__)
            return {}, []


def attach(cfg: Config, db, office_ids: Iterable[str]) -> Config:
    """The config with stored credentials for the offices the environment does not fully cover."""
    wanted = missing_from_env(cfg, office_ids)
    if not wanted or not cfg.data_encryption_keys:
        return cfg
    found, unreadable = _read_waiting(db, cfg, wanted)
    if unreadable:
        cfg = replace(cfg, unreadable_channels=tuple(sorted(unreadable)))
    if not found:
        return cfg
    log.info("channels store: credentials for %d offices", len(found))
    return replace(cfg, stored_channels={**cfg.stored_channels, **found})
