"""Personal details as staff see them: decrypted for the booking page, encrypted for phone/window bookings.

One scheme with the details form (`bot.crypto`): Fernet under `DATA_ENCRYPTION_KEY` (newest first), and the
job seeker number searchable only through its keyed hash, after the form's own normalisation. What staff
write about a booking (the 職員メモ, the memo of a cancellation) is personal too: sealed the same way.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any

from bot import crypto
from bot.services import validation
from bot.services.requests import DETAILS_VERSION

INTERNAL_KEYS = frozenset({"v"})  # the details format version, not a value staff read


def decrypt(rt, blob: bytes | None) -> dict[str, Any] | None:
    """The booking's details, or None when purged or unreadable under every configured key."""
    if blob is None:
        return None
    try:
        data = crypto.for_config(rt.config).decrypt(blob)
    except (crypto.InvalidToken, ValueError, json.JSONDecodeError):
        return None
    if not isinstance(data, dict):
        return None
    return {k: v for k, v in data.items() if k not in INTERNAL_KEYS}


def encrypt(rt, details: dict[str, Any]) -> bytes:
    return crypto.for_config(rt.config).encrypt({"v": DETAILS_VERSION, **details})


def seal_note(rt, text: str | None, limit: int) -> bytes | None:
    """A note or memo as stored: its first `limit` characters (trimmed) encrypted, or None when empty."""
    text = (text or "").strip()[:limit].strip()
    return crypto.for_config(rt.config).encrypt_text(text) if text else None


def open_note(rt, token: bytes | None) -> str | None:
    """A stored note or memo as text; None when there is none or no configured key opens it."""
    if token is None:
        return None
    try:
        return crypto.for_config(rt.config).decrypt_text(token)
    except (crypto.InvalidToken, UnicodeDecodeError):
        return None


def key_set_id(rt) -> str:
    """A short name of the configured DATA_ENCRYPTION_KEY keys (a digest: no key can be read from it), which
    changes when a key is added or removed: what none of them opened may open under the next set."""
    keys = "|".join(rt.config.data_encryption_keys)
    return hashlib.sha256(("madoguchi-key-set|" + keys).encode("utf-8")).hexdigest()[:16]


def note_digest(text: str | None) -> str:
    """A short fingerprint of a note as a page showed it: saving over a note someone changed since is caught."""
    return hashlib.sha256((text or "").encode("utf-8")).hexdigest()[:16]


def normalise_seeker_number(text: str) -> str | None:
    """`12345-678901` as the form stores it (full-width, spaces, missing hyphen accepted), or None."""
    result = validation.normalise_seeker_number(text)
    return result if isinstance(result, str) else None


def seeker_hash(rt, number: str) -> str | None:
    """The keyed hash of a job seeker number as typed (normalised first), or None when it is not one."""
    normalised = normalise_seeker_number(number or "")
    if normalised is None:
        return None
    return crypto.for_config(rt.config).seeker_hash(normalised)
