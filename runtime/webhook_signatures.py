"""Webhook signatures of the form ``t=<unix>,v1=<hex>`` (Stripe and Qonto).

Both providers sign ``f"{t}.{raw_body}"`` with HMAC-SHA256 and the endpoint secret, so
one implementation serves both; the public functions only differ by name, which keeps
call sites explicit about which provider they trust.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Sequence

__all__ = [
    "DEFAULT_TOLERANCE_SECONDS",
    "InvalidSignature",
    "compute_signature",
    "sign",
    "verify_qonto_signature",
    "verify_stripe_signature",
]

DEFAULT_TOLERANCE_SECONDS = 300

_SCHEME = "v1"


class InvalidSignature(Exception):
    """The signature header is missing, malformed, stale, or matches no secret."""


def compute_signature(payload: bytes, secret: str, t: int) -> str:
    """Hex HMAC-SHA256 of ``f"{t}.{payload}"`` keyed by ``secret``."""
    signed = str(t).encode("ascii") + b"." + payload
    return hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()


def sign(payload: bytes, secret: str, t: int) -> str:
    """Build a signature header value ``t=<t>,v1=<hex>`` for ``payload``.

    Used by the sandboxes when they deliver webhooks, and by tests.
    """
    return f"t={t},{_SCHEME}={compute_signature(payload, secret, t)}"


def verify_stripe_signature(
    header: str,
    raw_body: bytes,
    secrets: Sequence[str],
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> None:
    """Check a ``Stripe-Signature`` header against any of ``secrets``.

    Raises :class:`InvalidSignature` unless one ``v1`` value matches one secret and
    ``t`` is within ``tolerance`` seconds of ``now`` (either direction).
    """
    _verify(header, raw_body, secrets, tolerance, now)


def verify_qonto_signature(
    header: str,
    raw_body: bytes,
    secrets: Sequence[str],
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> None:
    """Check an ``X-Qonto-Signature`` header against any of ``secrets``.

    Same rules as :func:`verify_stripe_signature`.
    """
    _verify(header, raw_body, secrets, tolerance, now)


def _parse(header: str) -> tuple[int, list[bytes]]:
    timestamp: int | None = None
    signatures: list[bytes] = []
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if not sep:
            raise InvalidSignature("malformed signature header")
        key, value = key.strip(), value.strip()
        if key == "t":
            # Two timestamps would let an attacker pick which one we check.
            if timestamp is not None:
                raise InvalidSignature("duplicate timestamp in signature header")
            if not value.isascii() or not value.isdigit():
                raise InvalidSignature("invalid timestamp in signature header")
            timestamp = int(value)
        elif key == _SCHEME:
            try:
                signatures.append(bytes.fromhex(value))
            except ValueError:
                raise InvalidSignature("signature is not hex") from None
        # Other schemes (v0, future ones) are ignored, as the providers document.
    if timestamp is None:
        raise InvalidSignature("no timestamp in signature header")
    if not signatures:
        raise InvalidSignature(f"no {_SCHEME} signature in signature header")
    return timestamp, signatures


def _verify(
    header: str,
    raw_body: bytes,
    secrets: Sequence[str],
    tolerance: int,
    now: float | None,
) -> None:
    if not header:
        raise InvalidSignature("missing signature header")
    if not secrets:
        raise InvalidSignature("no webhook secret configured")
    timestamp, signatures = _parse(header)
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        raise InvalidSignature("signature timestamp outside the tolerance")
    matched = False
    # Check every pair without returning early, so timing does not reveal which matched.
    for secret in secrets:
        expected = bytes.fromhex(compute_signature(raw_body, secret, timestamp))
        for candidate in signatures:
            matched |= hmac.compare_digest(expected, candidate)
    if not matched:
        raise InvalidSignature("no signature matches")
