"""The sign-in lock rule: free failures, then a lock doubling up to a ceiling; keys hold no e-mail."""

from __future__ import annotations

import hashlib
import hmac

from services.accounts.domain import (
    LOGIN_FIRST_LOCK_SECONDS,
    LOGIN_FREE_FAILURES,
    LOGIN_MAX_LOCK_SECONDS,
    login_keys,
    login_lock_seconds,
)


def test_locks_start_after_the_free_failures_and_double_up_to_the_ceiling() -> None:
    free = LOGIN_FREE_FAILURES["account"]
    locks = [login_lock_seconds("account", n) for n in range(1, free + 12)]
    assert locks[: free - 1] == [0] * (free - 1)
    assert locks[free - 1 : free + 2] == [LOGIN_FIRST_LOCK_SECONDS * f for f in (1, 2, 4)]
    assert max(locks) == locks[-1] == LOGIN_MAX_LOCK_SECONDS
    assert login_lock_seconds("account", 10_000) == LOGIN_MAX_LOCK_SECONDS
    assert login_lock_seconds("address", free) == 0  # an address has more free failures


def test_keys_are_keyed_digests_of_the_normalised_email_and_the_address() -> None:
    def index(value: str) -> bytes:
        return hmac.new(b"k" * 32, value.encode(), hashlib.sha256).digest()

    keys = login_keys(" Agent@Example.ORG ", "203.0.113.9", index)
    assert keys == login_keys("agent@example.org", "203.0.113.9", index)
    assert "agent" not in keys["account"].lower() and keys["address"] == "address:203.0.113.9"
    assert "address" not in login_keys("agent@example.org", "", index)
    for loopback in ("127.0.0.1", "::1"):  # this machine: a local proxy, not a client
        assert "address" not in login_keys("agent@example.org", loopback, index)
