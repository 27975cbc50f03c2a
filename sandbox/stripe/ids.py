"""Stripe-style object ids (`pi_...`, `ch_...`) and secrets."""

from __future__ import annotations

import base64
import os

# base64 of random bytes, with its two symbols mapped onto letters: alphanumeric like Stripe's ids,
# and far cheaper than a per-character loop on the request hot path.
_ALNUM = bytes.maketrans(b"+/", b"xZ")


def _random_part(length: int) -> str:
    raw = base64.b64encode(os.urandom((length * 3 + 3) // 4))
    return raw.translate(_ALNUM, b"=")[:length].decode()


def new_id(prefix: str, length: int = 24) -> str:
    """A fresh id such as `pi_3Qx...`, alphanumeric after the prefix like Stripe's."""
    return f"{prefix}_{_random_part(length)}"


def new_secret(prefix: str, length: int = 32) -> str:
    return f"{prefix}_{_random_part(length)}"
