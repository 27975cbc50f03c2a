"""Stripe-style object ids (`pi_...`, `ch_...`) and secrets."""

from __future__ import annotations

import os

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _random_part(length: int) -> str:
    raw = os.urandom(length)
    return "".join(_ALPHABET[b % 62] for b in raw)


def new_id(prefix: str, length: int = 24) -> str:
    """A fresh id such as `pi_3Qx...`, alphanumeric after the prefix like Stripe's."""
    return f"{prefix}_{_random_part(length)}"


def new_secret(prefix: str, length: int = 32) -> str:
    return f"{prefix}_{_random_part(length)}"
