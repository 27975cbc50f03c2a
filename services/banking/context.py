"""What Banking's use cases share: pool, settings, Stripe and Qonto clients, stubs of the other services."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import asyncpg
import grpc
import httpx
import stripe
from collect.accounts.v1 import accounts_pb2 as accounts_pb
from collect.accounts.v1 import accounts_pb2_grpc
from collect.common.v1 import common_pb2 as common_pb
from collect.payments.v1 import payments_pb2_grpc

from runtime.crypto import FieldCipher
from services.banking.qonto import QontoClient
from services.banking.settings import BankingSettings

log = logging.getLogger("services.banking")

# Advisory lock keys of the background jobs (one replica runs each).
SYNC_LOCK = 0x0BA4_0001
RECONCILE_LOCK = 0x0BA4_0002
REPORT_LOCK = 0x0BA4_0003
PENNYLANE_LOCK = 0x0BA4_0011


@dataclass
class Banking:
    pool: asyncpg.Pool
    settings: BankingSettings
    stripe: stripe.StripeClient
    accounts: accounts_pb2_grpc.AccountsServiceStub
    payments: payments_pb2_grpc.PaymentsServiceStub
    http: httpx.AsyncClient
    connected_accounts: dict[str, str] = field(default_factory=dict)
    # Seals secrets kept in the schema (Pennylane tokens); None without BANKING_ENCRYPTION_KEYS.
    cipher: FieldCipher | None = None

    def qonto(self) -> QontoClient:
        return QontoClient(self.settings.qonto_api_base, self.settings.qonto_login, self.settings.qonto_secret_key)

    async def organization_of(self, stripe_account_id: str) -> str | None:
        """The organisation of a connected account (Accounts), or None when unknown / unreachable."""
        if not stripe_account_id:
            return None
        if stripe_account_id in self.connected_accounts:
            return self.connected_accounts[stripe_account_id]
        try:
            answer = await self.accounts.ResolveStripeAccount(
                accounts_pb.ResolveStripeAccountRequest(stripe_account_id=stripe_account_id)
            )
        except grpc.aio.AioRpcError as error:
            log.warning("cannot resolve a connected account: %s", error.code().name)
            return None
        if answer.organization_id:
            self.connected_accounts[stripe_account_id] = answer.organization_id
        return answer.organization_id or None

    async def organization_names(self) -> dict[str, str]:
        """id → name of every organisation; empty when Accounts cannot list them (names are cosmetic)."""
        names: dict[str, str] = {}
        cursor = ""
        try:
            while True:
                answer = await self.accounts.ListOrganizations(
                    accounts_pb.ListOrganizationsRequest(page=common_pb.PageRequest(limit=100, cursor=cursor))
                )
                for org in answer.organizations:
                    names[org.id] = org.name
                    if org.stripe_account_id:
                        self.connected_accounts[org.stripe_account_id] = org.id
                cursor = answer.next_cursor
                if not cursor:
                    return names
        except grpc.aio.AioRpcError as error:
            log.warning("cannot list organisations: %s", error.code().name)
            return names
