"""The organisation's payment policy, asked of Accounts on each payment."""

from __future__ import annotations

import grpc
from collect.accounts.v1 import accounts_pb2, accounts_pb2_grpc

from runtime.clients import call, payment_policy
from services.payments.domain import Policy


class PolicyClient:
    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._channel = channel
        self._stub = accounts_pb2_grpc.AccountsServiceStub(channel)

    async def get(self, organization_id: str) -> Policy:
        found = await payment_policy(self._channel, organization_id)
        return Policy(
            organization_id=found.organization_id,
            stripe_account_id=found.stripe_account_id,
            charge_model=found.charge_model,
            fee_percent_bps=found.fee_percent_bps,
            fee_minimum=found.fee_minimum,
            charges_enabled=found.charges_enabled,
            default_currency=found.default_currency,
            timezone=found.timezone,
        )

    async def check_member(self, organization_id: str, member_id: str) -> None:
        """NotFound unless the member belongs to the organisation."""
        await call(
            self._stub.GetMember, accounts_pb2.GetMemberRequest(organization_id=organization_id, member_id=member_id)
        )
