"""The gateway follows Accounts' `WatchRevocations`: a member disabled or given another role has
the tokens issued before refused at once (401 `token_revoked`), not only when they expire.

While the stream is down, what was already heard stays in force and nothing new is learnt:
tokens then last at most their lifetime, as without the stream; on reconnecting, Accounts sends
again every change within a token's lifetime.
"""

from __future__ import annotations

import asyncio
from typing import Any

from collect.accounts.v1 import accounts_pb2, accounts_pb2_grpc

from runtime.auth import TokenSigner
from runtime.clients import ServiceTokens, follow


def follow_revocations(
    stub: accounts_pb2_grpc.AccountsServiceStub, signer: TokenSigner, tokens: ServiceTokens
) -> asyncio.Task[None]:
    def heard(message: Any) -> None:
        if message.member_id and message.HasField("revoked_before"):
            at = message.revoked_before  # to the microsecond, as tokens' issue times
            signer.revocations.revoke(message.member_id, at.seconds * 1_000_000 + at.nanos // 1_000)

    def lost() -> None:
        pass  # what was heard stays in force

    return asyncio.get_running_loop().create_task(
        follow(
            lambda: stub.WatchRevocations(
                accounts_pb2.WatchRevocationsRequest(), metadata=(("authorization", f"Bearer {tokens()}"),)
            ),
            heard,
            lost,
            what="revocations watch",
        ),
        name="revocations-watch",
    )
