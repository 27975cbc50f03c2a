"""Encryption at rest of organisation fields, and the blind index that keeps e-mails searchable.

The cipher is `runtime.crypto`'s: AES-256-GCM tokens `v1:<key id>:<nonce>:<ciphertext>` (URL-safe base64) whose
associated data binds the row id and the column, so a value copied to another row or column
does not decrypt. The first key of `ACCOUNTS_ENCRYPTION_KEYS` encrypts; every listed key
decrypts, so keys can rotate. The blind index is HMAC-SHA256 of the normalised e-mail under a
separate key (`ACCOUNTS_BLIND_INDEX_KEY`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass

from runtime.crypto import DecryptionError, FieldCipher, parse_keys
from runtime.settings import Env, SettingsError

__all__ = ["BlindIndex", "DecryptionError", "FieldCipher", "Secrets", "secrets_from_env"]


class BlindIndex:
    """A keyed, deterministic digest of a normalised value, for equality lookups."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("the blind index key must be at least 16 bytes")
        self._key = key

    def __call__(self, value: str) -> bytes:
        return hmac.new(self._key, value.strip().lower().encode(), hashlib.sha256).digest()


@dataclass(frozen=True)
class Secrets:
    cipher: FieldCipher
    email_index: BlindIndex


def secrets_from_env(env: Env) -> Secrets:
    """The cipher and blind index from the environment; both are required (no public defaults)."""
    keys = parse_keys(env.text("ACCOUNTS_ENCRYPTION_KEYS"), "ACCOUNTS_ENCRYPTION_KEYS")
    if not keys:
        raise SettingsError("missing required setting ACCOUNTS_ENCRYPTION_KEYS")
    raw_index = env.text("ACCOUNTS_BLIND_INDEX_KEY")
    try:
        index_key = base64.b64decode(raw_index, validate=True)
    except binascii.Error:
        raise SettingsError("ACCOUNTS_BLIND_INDEX_KEY must be base64 (at least 16 bytes)") from None
    if len(index_key) < 16:
        raise SettingsError("ACCOUNTS_BLIND_INDEX_KEY must be base64 (at least 16 bytes)")
    return Secrets(FieldCipher(keys), BlindIndex(index_key))
