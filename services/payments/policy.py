"""The organisation's payment policy, asked of Accounts on each payment."""

from __future__ import annotations

import grpc
from collect.accounts.v1 import accounts_pb2, accounts_pb2_grpc

from runtime import errors
from services.payments.domain import DEFAULT_TIMEZONE, Policy


class PolicyClient:
    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._stub = accounts_pb2_grpc.AccountsServiceStub(channel)

    async def get(self, organization_id: str) -> Policy:
        try:
            answer = await self._stub.GetPaymentPolicy(
                accounts_pb2.GetPaymentPolicyRequest(organization_id=organization_id)
            )
        except grpc.aio.AioRpcError as error:
            raise errors.from_rpc_error(error) from error
        found = answer.policy
        return Policy(
            organization_id=found.organization_id or organization_id,
            stripe_account_id=found.stripe_account_id,
            charge_model=found.charge_model or "direct",
            fee_percent_bps=found.fee_percent_bps,
            fee_minimum=found.fee_minimum,
            charges_enabled=found.charges_enabled,
            default_currency=(found.default_currency or "eur").lower(),
            timezone=found.timezone or DEFAULT_TIMEZONE,
        )

    async def check_member(self, organization_id: str, member_id: str) -> None:
        """NotFound unless the member belongs to the organisation."""
        try:
            await self._stub.GetMember(
                accounts_pb2.GetMemberRequest(organization_id=organization_id, member_id=member_id)
            )
        except grpc.aio.AioRpcError as error:
            raise errors.from_rpc_error(error) from error
