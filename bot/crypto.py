"""Personal details at rest: Fernet encryption with key rotation, and a keyed hash for look-ups.

Two shapes of plaintext go in: a request's details (a JSON object) and the free text staff write about a
booking (the staff note, the memo of a cancellation on the user's behalf), each one token under the same keys.

`DATA_ENCRYPTION_KEY` holds one or more Fernet keys, newest first: data is always encrypted under
the newest; every listed key can still decrypt (MultiFernet), and `rotate` re-encrypts a token
under the newest. The job seeker number is searchable only through an HMAC-SHA256 whose key is
derived from `SECRET_KEY` (SHA-256 over a purpose label and the secret, the same derivation the staff
dashboard's search uses), so the hash means nothing without the app's secret. Changing SECRET_KEY
changes every hash: search by number then finds only requests made after the change.

Nothing here logs or keeps plaintext.
"""
from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

HASH_KEY_LABEL = "madoguchi-seeker-hash|"

__all__ = ["Vault", "InvalidToken", "for_config"]


class Vault:
    """Encrypts and decrypts the details of a request; hashes job seeker numbers."""

    def __init__(self, keys: Sequence[str], secret_key: str):
        if not keys:
            raise ValueError("at least one data encryption key is needed")
        if not secret_key:
            raise ValueError("a secret key is needed for the keyed hash")
        self._fernets = [Fernet(k.encode() if isinstance(k, str) else k) for k in keys]
        self._multi = MultiFernet(self._fernets)
        self._hash_key = hashlib.sha256((HASH_KEY_LABEL + secret_key).encode("utf-8")).digest()

    # -- details ----------------------------------------------------------------------------------
    def encrypt(self, details: Mapping[str, Any]) -> bytes:
        """The details as a Fernet token under the newest key."""
        plain = json.dumps(dict(details), ensure_ascii=False, sort_keys=True, separators=(",", ":"))
        return self._multi.encrypt(plain.encode("utf-8"))

    def decrypt(self, token: bytes) -> dict[str, Any]:
        """The details back; InvalidToken when no configured key opens the token."""
        return json.loads(self._multi.decrypt(bytes(token)).decode("utf-8"))

    # -- free text (staff notes and memos) --------------------------------------------------------
    def encrypt_text(self, text: str) -> bytes:
        """A text as a Fernet token under the newest key (its UTF-8 bytes, nothing around them)."""
        return self._multi.encrypt(text.encode("utf-8"))

    def decrypt_text(self, token: bytes) -> str:
        """The text back; InvalidToken when no configured key opens the token."""
        return self._multi.decrypt(bytes(token)).decode("utf-8")

    # -- rotation ---------------------------------------------------------------------------------
    def is_current(self, token: bytes) -> bool:
        """Is the token encrypted under the newest key?"""
        try:
            self._fernets[0].decrypt(bytes(token))
        except InvalidToken:
            return False
        return True

    def rotate(self, token: bytes) -> bytes:
        """The same plaintext re-encrypted under the newest key (InvalidToken if no key opens it)."""
        return self._multi.rotate(bytes(token))

    # -- look-ups ---------------------------------------------------------------------------------
    def seeker_hash(self, normalised_number: str) -> str:
        """Keyed hash (hex, 64 characters) of a job seeker number already in its normal form."""
        return hmac.new(self._hash_key, normalised_number.encode("utf-8"), hashlib.sha256).hexdigest()


@lru_cache(maxsize=8)
def _vault(keys: tuple[str, ...], secret_key: str) -> Vault:
    return Vault(keys, secret_key)


def for_config(config) -> Vault:
    """The vault for the app's settings (built once per key set)."""
    return _vault(tuple(config.data_encryption_keys), config.secret_key)
