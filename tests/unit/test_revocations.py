"""Token revocation by member and moment (token times are whole seconds)."""

from __future__ import annotations

import time

import pytest

from runtime.auth import AGENT, TokenSigner
from runtime.errors import Unauthenticated

SECRET = "unit-test-secret-0123456789abcdefghij"


def test_tokens_issued_before_the_change_are_refused_and_later_ones_kept() -> None:
    signer = TokenSigner(SECRET)
    change = float(int(time.time())) + 0.4
    old = signer.issue("m1", "o1", AGENT, now=change - 5)
    same_second = signer.issue("m1", "o1", AGENT, now=change)
    other_member = signer.issue("m2", "o1", AGENT, now=change - 5)
    signer.revocations.revoke("m1", change)
    with pytest.raises(Unauthenticated) as refused:
        signer.verify(old)
    assert refused.value.code == "token_revoked"
    assert signer.verify(same_second).member_id == "m1"  # signing in again right away works
    assert signer.verify(other_member).member_id == "m2"


def test_a_token_verified_before_is_refused_once_revoked_and_an_older_change_lifts_nothing() -> None:
    signer = TokenSigner(SECRET)
    token = signer.issue("m1", "o1", AGENT, now=time.time() - 3)
    issued_at = signer.verify(token).issued_at  # now remembered as verified
    signer.revocations.revoke("m1", issued_at + 1)
    with pytest.raises(Unauthenticated):
        signer.verify(token)
    signer.revocations.revoke("m1", issued_at - 100)
    with pytest.raises(Unauthenticated):
        signer.verify(token)
