"""Wiring of the Terminal service."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import grpc
from collect.terminal.v1 import terminal_pb2, terminal_pb2_grpc

from runtime.audit import register_audit_outbox
from runtime.inbox import register_event_sink
from runtime.service import ServiceDeps
from runtime.stripe_api import close_stripe_client, make_stripe_client
from services.terminal.devices import Devices
from services.terminal.outside import Accounts, StripeTerminal
from services.terminal.servicer import TerminalServicer
from services.terminal.terminal import Terminal, apply_reader_event

SCHEMA = "terminal"
MIGRATIONS = Path(__file__).parent / "migrations"
SERVICE_NAME = terminal_pb2.DESCRIPTOR.services_by_name["TerminalService"].full_name
on_start = None


def wire(deps: ServiceDeps, server: grpc.aio.Server) -> Iterable[str]:
    settings = deps.settings
    timeout = deps.env.number("STRIPE_TIMEOUT_SECONDS", 10.0)
    stripe_client = make_stripe_client(settings.stripe_api_key, settings.stripe_api_base, timeout=timeout)
    deps.cleanups.append(lambda: close_stripe_client(stripe_client))
    accounts = Accounts(deps.channel("accounts"))
    terminal = Terminal(deps.pool, accounts, StripeTerminal(stripe_client))
    servicer = TerminalServicer(terminal, Devices(deps.pool, accounts))
    terminal_pb2_grpc.add_TerminalServiceServicer_to_server(servicer, server)
    register_audit_outbox(deps)  # its actions' audit records, to Accounts
    return [SERVICE_NAME, register_event_sink(deps, server, apply_reader_event)]
