"""Encryption at rest of single column values (AES-256-GCM), shared by the services that keep secrets.

Ciphertexts are tokens `v1:<key id>:<nonce>:<ciphertext>` (URL-safe base64) whose associated data
binds the table, the row id and the column, so a value copied to another row or column does not
decrypt. The first key of a service's key list encrypts; every listed key decrypts, so keys can
rotate. Keys are configured as `kid:base64key,kid:base64key` (16, 24 or 32 byte keys).
"""

from __future__ import annotations

import base64
import binascii
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from runtime.settings import SettingsError

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


def parse_keys(raw: str, setting: str) -> list[tuple[str, bytes]]:
    """`kid:base64key,...` from the setting named `setting`; SettingsError when malformed."""
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
            raise SettingsError(f"{setting} must be comma-separated `kid:base64key` (16/24/32 bytes)")
        keys.append((kid.strip(), key))
    return keys
