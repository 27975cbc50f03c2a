"""The organisation's payment policy from Accounts, cached while Accounts' change stream is live."""

from __future__ import annotations

import grpc
from collect.accounts.v1 import accounts_pb2

from runtime.clients import accounts_stub, call
from runtime.policies import PaymentPolicies
from services.payments.domain import Policy


class PolicyClient:
    def __init__(self, channel: grpc.aio.Channel, policies: PaymentPolicies) -> None:
        self._stub = accounts_stub(channel)
        self.policies = policies

    async def get(self, organization_id: str) -> Policy:
        found = await self.policies.get(organization_id)
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
