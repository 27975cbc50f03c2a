"""Token revocation by member and moment, to the microsecond."""

from __future__ import annotations

import time

import jwt
import pytest

from runtime.auth import AGENT, TokenSigner, microseconds
from runtime.errors import Unauthenticated

SECRET = "unit-test-secret-0123456789abcdefghij"


def test_tokens_issued_before_the_change_are_refused_and_later_ones_kept() -> None:
    signer = TokenSigner(SECRET)
    change = float(int(time.time())) + 0.4
    old = signer.issue("m1", "o1", AGENT, now=change - 5)
    same_second_before = signer.issue("m1", "o1", AGENT, now=change - 0.000_001)
    same_second_after = signer.issue("m1", "o1", AGENT, now=change + 0.000_001)
    other_member = signer.issue("m2", "o1", AGENT, now=change - 5)
    signer.revocations.revoke("m1", microseconds(change))
    for token in (old, same_second_before):
        with pytest.raises(Unauthenticated) as refused:
            signer.verify(token)
        assert refused.value.code == "token_revoked"
    assert signer.verify(same_second_after).member_id == "m1"  # signing in again right away works
    assert signer.verify(other_member).member_id == "m2"


def test_a_token_without_microseconds_counts_from_the_end_of_its_second() -> None:
    signer = TokenSigner(SECRET)
    second = int(time.time())
    claims = {"sub": "m1", "org": "o1", "role": AGENT, "iat": second, "exp": second + 600}
    legacy = jwt.encode(claims, SECRET, algorithm="HS256")
    signer.revocations.revoke("m1", second * 1_000_000 + 999_999)
    assert signer.verify(legacy).member_id == "m1"
    signer.revocations.revoke("m1", (second + 1) * 1_000_000)
    with pytest.raises(Unauthenticated):
        signer.verify(legacy)


def test_a_token_verified_before_is_refused_once_revoked_and_an_older_change_lifts_nothing() -> None:
    signer = TokenSigner(SECRET)
    token = signer.issue("m1", "o1", AGENT, now=time.time() - 3)
    issued_at = signer.verify(token).issued_at  # now remembered as verified
    signer.revocations.revoke("m1", issued_at + 1)
    with pytest.raises(Unauthenticated):
        signer.verify(token)
    signer.revocations.revoke("m1", issued_at - 100_000_000)
    with pytest.raises(Unauthenticated):
        signer.verify(token)
