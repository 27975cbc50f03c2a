"""The field cipher and blind index of Accounts (pure units)."""

from __future__ import annotations

import base64
import os

import pytest

from runtime.settings import Env, SettingsError
from services.accounts.crypto import BlindIndex, DecryptionError, FieldCipher, secrets_from_env

ROW = "5f0c2a1e-0000-4000-8000-000000000001"


def _key() -> bytes:
    return os.urandom(32)


def test_round_trip_hides_the_plaintext_and_binds_row_and_column() -> None:
    cipher = FieldCipher([("k1", _key())])
    token = cipher.encrypt("Amicale de Lyon", table="organizations", row_id=ROW, column="name")
    assert "Amicale" not in token and token.startswith("v1:k1:")
    assert cipher.decrypt(token, table="organizations", row_id=ROW, column="name") == "Amicale de Lyon"
    assert token != cipher.encrypt("Amicale de Lyon", table="organizations", row_id=ROW, column="name")
    with pytest.raises(DecryptionError):
        cipher.decrypt(token, table="organizations", row_id=ROW, column="email")
    with pytest.raises(DecryptionError):
        cipher.decrypt(token, table="organizations", row_id="another-row", column="name")


def test_tampered_or_malformed_ciphertexts_fail() -> None:
    cipher = FieldCipher([("k1", _key())])
    token = cipher.encrypt("x@example.org", table="t", row_id=ROW, column="email")
    head, sealed = token.rsplit(":", 1)
    flipped = sealed[:-2] + ("AA" if sealed[-2:] != "AA" else "BB")
    for bad in (f"{head}:{flipped}", "plain text", "v2:k1:a:b", token.replace("v1:k1:", "v1:k9:")):
        with pytest.raises(DecryptionError):
            cipher.decrypt(bad, table="t", row_id=ROW, column="email")


def test_keys_rotate() -> None:
    old, new = ("old", _key()), ("new", _key())
    token = FieldCipher([old]).encrypt("secret", table="t", row_id=ROW, column="c")
    rotated = FieldCipher([new, old])
    assert rotated.decrypt(token, table="t", row_id=ROW, column="c") == "secret"
    fresh = rotated.encrypt("secret", table="t", row_id=ROW, column="c")
    assert rotated.key_id_of(fresh) == "new" and rotated.key_id_of(token) == "old"
    with pytest.raises(DecryptionError):
        FieldCipher([new]).decrypt(token, table="t", row_id=ROW, column="c")


def test_blind_index_is_keyed_and_normalised() -> None:
    index = BlindIndex(_key())
    assert index(" Org@Example.ORG ") == index("org@example.org")
    assert index("org@example.org") != index("other@example.org")
    assert BlindIndex(_key())("org@example.org") != index("org@example.org")


def test_secrets_from_env(caplog: pytest.LogCaptureFixture) -> None:
    key = base64.b64encode(_key()).decode()
    secrets = secrets_from_env(
        Env({"ACCOUNTS_ENCRYPTION_KEYS": f"k2:{key}, k1:{key}", "ACCOUNTS_BLIND_INDEX_KEY": key})
    )
    assert secrets.cipher.current_key_id == "k2"
    assert key not in caplog.text and not caplog.records

    # No public development keys: a missing key stops start-up.
    for missing in ({}, {"ACCOUNTS_ENCRYPTION_KEYS": f"k1:{key}"}, {"ACCOUNTS_BLIND_INDEX_KEY": key}):
        with pytest.raises(SettingsError, match="missing required setting ACCOUNTS_"):
            secrets_from_env(Env(missing))

    for bad in ("k1", "k1:not-base64!", f":{key}", "k1:" + base64.b64encode(b"short").decode()):
        with pytest.raises(SettingsError):
            secrets_from_env(Env({"ACCOUNTS_ENCRYPTION_KEYS": bad}))
    with pytest.raises(SettingsError):
        secrets_from_env(Env({"ACCOUNTS_ENCRYPTION_KEYS": f"k1:{key}", "ACCOUNTS_BLIND_INDEX_KEY": "c2hvcnQ="}))
