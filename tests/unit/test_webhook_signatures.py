"""Stripe and Qonto webhook signatures: one scheme, strict parsing, tolerance, several secrets."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest

from runtime.webhook_signatures import (
    InvalidSignature,
    compute_signature,
    sign,
    verify_qonto_signature,
    verify_stripe_signature,
)

BODY = b'{"id":"evt_1","type":"payout.paid"}'
SECRET = "whsec_test"
NOW = 1_800_000_000

Verifier = Callable[..., None]
VERIFIERS = pytest.mark.parametrize("verify", [verify_stripe_signature, verify_qonto_signature])


@VERIFIERS
def test_valid_signature_passes(verify: Verifier) -> None:
    verify(sign(BODY, SECRET, NOW), BODY, [SECRET], now=NOW)


@VERIFIERS
def test_any_of_several_secrets_and_signatures(verify: Verifier) -> None:
    # Stripe sends one v1 per active secret during a rotation; receivers hold several secrets.
    header = f"t={NOW},v1={compute_signature(BODY, 'old', NOW)},v1={compute_signature(BODY, 'new', NOW)}"
    verify(header, BODY, ["unrelated", "new"], now=NOW)
    verify(header, BODY, ["old"], now=NOW)


@VERIFIERS
def test_other_schemes_and_spaces_are_tolerated(verify: Verifier) -> None:
    header = f"t={NOW}, v0=deadbeef, v1={compute_signature(BODY, SECRET, NOW)}"
    verify(header, BODY, [SECRET], now=NOW)


@VERIFIERS
def test_tampered_body_is_rejected(verify: Verifier) -> None:
    with pytest.raises(InvalidSignature, match="no signature matches"):
        verify(sign(BODY, SECRET, NOW), BODY.replace(b"paid", b"failed"), [SECRET], now=NOW)


@VERIFIERS
def test_wrong_secret_is_rejected(verify: Verifier) -> None:
    with pytest.raises(InvalidSignature):
        verify(sign(BODY, SECRET, NOW), BODY, ["other"], now=NOW)


@VERIFIERS
@pytest.mark.parametrize("offset", [-301, 301, 10_000])
def test_stale_or_future_timestamps_are_rejected(verify: Verifier, offset: int) -> None:
    with pytest.raises(InvalidSignature, match="tolerance"):
        verify(sign(BODY, SECRET, NOW + offset), BODY, [SECRET], now=NOW)


@VERIFIERS
def test_tolerance_is_configurable_and_inclusive(verify: Verifier) -> None:
    verify(sign(BODY, SECRET, NOW - 300), BODY, [SECRET], now=NOW)
    verify(sign(BODY, SECRET, NOW - 30), BODY, [SECRET], tolerance=30, now=NOW)
    with pytest.raises(InvalidSignature):
        verify(sign(BODY, SECRET, NOW - 31), BODY, [SECRET], tolerance=30, now=NOW)


@VERIFIERS
@pytest.mark.parametrize(
    "header",
    [
        "",
        "garbage",
        f"v1={'0' * 64}",
        f"t={NOW}",
        f"t={NOW},v0={'0' * 64}",
        f"t=abc,v1={'0' * 64}",
        f"t=-5,v1={'0' * 64}",
        f"t={NOW},v1=not-hex",
        f"t={NOW},t={NOW},v1={'0' * 64}",
        f"t={NOW},v1={'0' * 64}",
    ],
)
def test_malformed_headers_are_rejected(verify: Verifier, header: str) -> None:
    with pytest.raises(InvalidSignature):
        verify(header, BODY, [SECRET], now=NOW)


@VERIFIERS
def test_duplicate_timestamp_cannot_smuggle_a_fresh_one(verify: Verifier) -> None:
    header = f"t={NOW - 10_000},{sign(BODY, SECRET, NOW)}"
    with pytest.raises(InvalidSignature):
        verify(header, BODY, [SECRET], now=NOW)


@VERIFIERS
@pytest.mark.parametrize("secrets", [[], ()])
def test_no_secret_rejects_everything(verify: Verifier, secrets: Sequence[str]) -> None:
    with pytest.raises(InvalidSignature):
        verify(sign(BODY, SECRET, NOW), BODY, secrets, now=NOW)


def test_current_time_is_the_default() -> None:
    import time

    verify_stripe_signature(sign(BODY, SECRET, int(time.time())), BODY, [SECRET])
    with pytest.raises(InvalidSignature):
        verify_stripe_signature(sign(BODY, SECRET, int(time.time()) - 3600), BODY, [SECRET])
