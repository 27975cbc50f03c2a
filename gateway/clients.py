"""gRPC stubs of every service, created in the app's lifespan."""

from __future__ import annotations

from dataclasses import dataclass, field

import grpc
from collect.accounts.v1 import accounts_pb2_grpc
from collect.banking.v1 import banking_pb2_grpc
from collect.events.v1 import events_pb2_grpc
from collect.payments.v1 import payments_pb2_grpc
from collect.terminal.v1 import terminal_pb2_grpc
from grpc_health.v1 import health_pb2_grpc

from gateway.settings import GatewaySettings
from runtime.clients import ServiceTokens, make_channel


@dataclass
class Clients:
    accounts: accounts_pb2_grpc.AccountsServiceStub
    payments: payments_pb2_grpc.PaymentsServiceStub
    terminal: terminal_pb2_grpc.TerminalServiceStub
    banking: banking_pb2_grpc.BankingServiceStub
    # EventSinkService of each owner, by service name.
    events: dict[str, events_pb2_grpc.EventSinkServiceStub]
    health: dict[str, health_pb2_grpc.HealthStub]
    channels: list[grpc.aio.Channel] = field(default_factory=list)

    async def close(self) -> None:
        for channel in self.channels:
            await channel.close(None)


def connect(settings: GatewaySettings, tokens: ServiceTokens) -> Clients:
    targets = {
        "accounts": settings.accounts_addr,
        "payments": settings.payments_addr,
        "terminal": settings.terminal_addr,
        "banking": settings.banking_addr,
    }
    channels = {
        name: make_channel(target, tokens, default_timeout=settings.rpc_timeout_seconds)
        for name, target in targets.items()
    }
    return Clients(
        accounts=accounts_pb2_grpc.AccountsServiceStub(channels["accounts"]),
        payments=payments_pb2_grpc.PaymentsServiceStub(channels["payments"]),
        terminal=terminal_pb2_grpc.TerminalServiceStub(channels["terminal"]),
        banking=banking_pb2_grpc.BankingServiceStub(channels["banking"]),
        events={name: events_pb2_grpc.EventSinkServiceStub(ch) for name, ch in channels.items()},
        health={name: health_pb2_grpc.HealthStub(ch) for name, ch in channels.items()},
        channels=list(channels.values()),
    )
