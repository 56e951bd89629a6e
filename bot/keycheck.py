"""Does DATA_ENCRYPTION_KEY still open what is stored? A cheap check when a process starts.

A key replaced instead of added before `keys rotate` (`<new>` where `<new>,<old>` was meant), or a backup
restored under the wrong key, leaves every request's details unreadable: staff pages then say so one booking
at a time, and the retention jobs cannot erase the sensitive answers inside them, without a word at start-up.
This samples the newest few encrypted request details (one small query on the primary key) and logs a
warning naming the setting and the remedy when any of them opens with none of the configured keys.

The worker checks when it starts; the web process once, on its first health check that finds the schema current
(the answer of /healthz does not change), not in create_app: in production building the app reads no database,
and one that does not answer must not hold up gunicorn's boot. Counts only: no key, no value, no booking id is logged.
"""
from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from bot import crypto
from bot.db import describe_error
from bot.models import Booking

log = logging.getLogger(__name__)
SAMPLE = 5   # the newest request details tried


def unreadable_sample(session, vault: crypto.Vault, sample: int = SAMPLE) -> tuple[int, int]:
    """(tried, unreadable): the newest `sample` request details, and how many of them no key opens."""
    tokens = session.scalars(select(Booking.details).where(Booking.details.is_not(None))
                             .order_by(Booking.id.desc()).limit(sample)).all()
    unreadable = 0
    for token in tokens:
        try:
            vault.decrypt(token)
        except crypto.InvalidToken:
            unreadable += 1
        except ValueError:   # a key opened it (not as the JSON the form stores: no key matter)
            pass
    return len(tokens), unreadable


def warn_if_keys_open_nothing(rt) -> bool:
    """Log a warning when sampled request details open with no key of DATA_ENCRYPTION_KEY; True when warned.
    A database that does not answer (or has no schema yet) is left to the checks that say so."""
    keys = rt.config.data_encryption_keys
    try:
        with rt.db.reading() as session:
            tried, unreadable = unreadable_sample(session, crypto.for_config(rt.config))
    except SQLAlchemyError as exc:
        log.debug("key check skipped: %s", describe_error(exc))
        return False
    if not unreadable:
        return False
    log.warning(
        "DATA_ENCRYPTION_KEY opens %d of the %d newest stored request details (%d key(s) configured): they were "
        "stored under a key that is no longer in the setting (replaced instead of added before `keys rotate`, or "
        "a backup restored under another key). Staff cannot read them and the retention jobs cannot erase the "
        "sensitive answers in them. Put the old key back after the new one (DATA_ENCRYPTION_KEY=<new>,<old>, "
        "newest first), restart web and worker, then run `flask --app app keys rotate`",
        tried - unreadable, tried, len(keys))
    return True
