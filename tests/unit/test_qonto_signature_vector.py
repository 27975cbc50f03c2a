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


def test_make_run_hands_the_qonto_sandbox_a_secret_that_starts_with_a_dash() -> None:
    """`make run` generates the webhook secret (token_urlsafe: 1 in 64 start with "-")."""
    from pathlib import Path

    from sandbox.qonto.__main__ import _arguments
    from stack.launcher import qonto_sandbox_arguments

    parsed = _arguments(qonto_sandbox_arguments(8123, Path("/tmp/q.json"), "http://gw/webhooks/qonto", "-Zx9_s"))
    assert (parsed.webhook_secret, parsed.port, parsed.webhook_url) == ("-Zx9_s", 8123, "http://gw/webhooks/qonto")
