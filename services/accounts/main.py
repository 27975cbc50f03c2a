"""Wiring of the Accounts service."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import grpc
from collect.accounts.v1 import accounts_pb2, accounts_pb2_grpc

from runtime.service import ServiceDeps
from services.accounts import members
from services.accounts.servicer import AccountsServicer

SCHEMA = "accounts"
MIGRATIONS = Path(__file__).parent / "migrations"
SERVICE_NAME = accounts_pb2.DESCRIPTOR.services_by_name["AccountsService"].full_name


def wire(deps: ServiceDeps, server: grpc.aio.Server) -> Iterable[str]:
    accounts_pb2_grpc.add_AccountsServiceServicer_to_server(AccountsServicer(deps.pool, deps.signer), server)
    return [SERVICE_NAME]


async def on_start(deps: ServiceDeps) -> None:
    """Seeds the platform admin named by PLATFORM_ADMIN_EMAIL / PLATFORM_ADMIN_PASSWORD, if set."""
    env = deps.env
    email, password = env.optional("PLATFORM_ADMIN_EMAIL"), env.optional("PLATFORM_ADMIN_PASSWORD")
    if email and password:
        await members.ensure_platform_admin(deps.pool, email, password)
