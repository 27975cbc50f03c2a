"""The signature vector published in docs/outside-apis.md (Qonto section)."""

from __future__ import annotations

from runtime.webhook_signatures import compute_signature, sign, verify_qonto_signature

BODY = b'{"test":"data"}'
SECRET = "test-secret"
T = 1704110400


def test_known_vector() -> None:
    digest = compute_signature(BODY, SECRET, T)
    assert digest.startswith("56aff06d")
    assert digest.endswith("3805")
    assert len(digest) == 64


def test_known_vector_header_verifies() -> None:
    header = sign(BODY, SECRET, T)
    assert header == f"t={T},v1={compute_signature(BODY, SECRET, T)}"
    verify_qonto_signature(header, BODY, [SECRET], now=T + 10)
