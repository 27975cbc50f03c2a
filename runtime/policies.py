"""Accounts' payment policies, cached by the services that need one on every payment.

A policy is cached only while a watch stream from Accounts is live (`WatchPaymentPolicies`):
Accounts sends the id of every organisation whose policy changed, after the change committed,
so a cached policy is dropped as soon as it is stale. When the stream ends, everything cached is
dropped and every request asks Accounts until a new stream is ready. As in Accounts' own cache,
only policies that can take charges are kept (an organisation that just finished onboarding is
never refused from a stale entry), and entries also expire after `ttl` seconds.

The stream is Accounts' `FollowPaymentPolicies`: each change is acknowledged once its entry is
dropped, and Accounts answers an organisation update only after its followers acknowledged it,
so the payment made after a fee change returned uses the new fee (read-your-writes), with no
call to Accounts per payment.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Coroutine
from typing import Any

import grpc
from collect.accounts.v1 import accounts_pb2

from runtime.clients import ServiceTokens, accounts_stub, follow, payment_policy


class PaymentPolicies:
    def __init__(
        self,
        channel: grpc.aio.Channel,
        tokens: ServiceTokens,
        *,
        ttl: float = 60.0,
        max_entries: int = 10_000,
        retry_seconds: float = 1.0,
    ) -> None:
        self._channel = channel
        self._tokens = tokens
        self._ttl = ttl
        self._max = max_entries
        self._retry = retry_seconds
        self._entries: dict[str, tuple[Any, float]] = {}
        # Bumped on every change heard: an answer asked for before a change is not cached after it.
        self._generation = 0
        self._live = False
        self._task: asyncio.Task[None] | None = None
        self._acks: asyncio.Queue[str] | None = None  # change ids to acknowledge on the live stream
        self._writer: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Follows Accounts' changes in the background (nothing is cached without it)."""
        if self._ttl > 0:
            self._task = asyncio.get_running_loop().create_task(self._watch(), name="payment-policy-watch")

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.cancel()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def get(self, organization_id: str) -> Any:
        """The organisation's `collect.accounts.v1.PaymentPolicy` (defaults filled in)."""
        if self._live:
            found = self._entries.get(organization_id)
            if found is not None and found[1] > time.monotonic():
                return found[0]
        generation = self._generation
        policy = await payment_policy(self._channel, organization_id)
        if self._live and generation == self._generation and policy.charges_enabled:
            if len(self._entries) >= self._max:
                self._entries.clear()
            self._entries[organization_id] = (policy, time.monotonic() + self._ttl)
        return policy

    def _forget(self, organization_id: str | None) -> None:
        self._generation += 1
        if organization_id is None:
            self._entries.clear()
        else:
            self._entries.pop(organization_id, None)

    def _message(self, change: Any) -> None:
        if change.ready:
            self._forget(None)
            self._live = True
        else:
            self._forget(change.organization_id)
            if change.change_id and self._acks is not None:
                self._acks.put_nowait(change.change_id)  # forgotten: the writer may answer

    def _lost(self) -> None:
        self._live = False
        self._forget(None)

    def _open(self) -> AsyncIterator[Any]:
        """A FollowPaymentPolicies stream; a writer task sends the acknowledgements `_message` queues."""
        call = accounts_stub(self._channel).FollowPaymentPolicies(
            metadata=(("authorization", f"Bearer {self._tokens()}"),)
        )
        acks: asyncio.Queue[str] = asyncio.Queue()

        async def send() -> None:
            with contextlib.suppress(grpc.aio.AioRpcError, grpc.aio.UsageError):
                while True:
                    change_id = await acks.get()
                    await call.write(accounts_pb2.FollowPaymentPoliciesRequest(change_id=change_id))

        writer = asyncio.get_running_loop().create_task(send(), name="payment-policy-acks")
        call.add_done_callback(lambda _call: writer.cancel())
        self._acks, self._writer = acks, writer
        stream: AsyncIterator[Any] = call
        return stream

    def _watch(self) -> Coroutine[Any, Any, None]:
        return follow(
            self._open,
            self._message,
            self._lost,
            what="payment policy watch",
            retry_seconds=self._retry,
        )
