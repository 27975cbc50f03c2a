"""Encryption at rest of organisation fields, and the blind index that keeps e-mails searchable.

Ciphertexts are AES-256-GCM tokens `v1:<key id>:<nonce>:<ciphertext>` (URL-safe base64) whose
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
import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from runtime.settings import Env, SettingsError

_VERSION = "v1"
_NONCE_BYTES = 12


class DecryptionError(Exception):
    """A stored value cannot be decrypted (unknown key id, tampered, or moved to another row)."""


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class FieldCipher:
    """Encrypts and decrypts one column value of one row."""

    def __init__(self, keys: list[tuple[str, bytes]]) -> None:
        if not keys:
            raise ValueError("at least one encryption key is required")
        for kid, key in keys:
            if not kid or ":" in kid or len(key) not in (16, 24, 32):
                raise ValueError("encryption keys are `kid:base64key` with a 16, 24 or 32 byte key")
        self.current_key_id = keys[0][0]
        self._keys = {kid: AESGCM(key) for kid, key in keys}

    @staticmethod
    def _associated_data(table: str, row_id: str, column: str) -> bytes:
        return f"{table}:{row_id}:{column}".encode()

    def encrypt(self, plaintext: str, *, table: str, row_id: str, column: str) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._keys[self.current_key_id].encrypt(
            nonce, plaintext.encode(), self._associated_data(table, row_id, column)
        )
        return f"{_VERSION}:{self.current_key_id}:{_b64encode(nonce)}:{_b64encode(sealed)}"

    def decrypt(self, token: str, *, table: str, row_id: str, column: str) -> str:
        try:
            version, kid, nonce, sealed = token.split(":")
        except ValueError:
            raise DecryptionError("malformed ciphertext") from None
        aead = self._keys.get(kid)
        if version != _VERSION or aead is None:
            raise DecryptionError(f"no key {kid!r} to decrypt with")
        try:
            plain = aead.decrypt(_b64decode(nonce), _b64decode(sealed), self._associated_data(table, row_id, column))
        except (InvalidTag, binascii.Error, ValueError):
            raise DecryptionError("ciphertext does not authenticate") from None
        return plain.decode()

    def key_id_of(self, token: str) -> str:
        return token.split(":")[1] if token.count(":") == 3 else ""


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


def _parse_keys(raw: str) -> list[tuple[str, bytes]]:
    keys: list[tuple[str, bytes]] = []
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        kid, sep, encoded = item.partition(":")
        try:
            key = base64.b64decode(encoded, validate=True) if sep else b""
        except binascii.Error:
            key = b""
        if not kid or len(key) not in (16, 24, 32):
            raise SettingsError("ACCOUNTS_ENCRYPTION_KEYS must be comma-separated `kid:base64key` (16/24/32 bytes)")
        keys.append((kid.strip(), key))
    return keys


def secrets_from_env(env: Env) -> Secrets:
    """The cipher and blind index from the environment; both are required (no public defaults)."""
    keys = _parse_keys(env.text("ACCOUNTS_ENCRYPTION_KEYS"))
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
