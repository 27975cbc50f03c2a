"""Wiring of the Accounts service."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import grpc
from collect.accounts.v1 import accounts_pb2, accounts_pb2_grpc

from runtime.audit import register_audit_outbox
from runtime.inbox import register_event_sink
from runtime.money import payment_bounds
from runtime.service import ServiceDeps
from runtime.stripe_api import close_stripe_client, make_stripe_client
from services.accounts import audit_trail, members
from services.accounts.connect import Connect
from services.accounts.crypto import secrets_from_env
from services.accounts.feeds import access_feed, policy_feed
from services.accounts.organizations import Organizations, PolicyCache, PolicyFollowers
from services.accounts.repository import OrganizationRows
from services.accounts.servicer import AccountsServicer

SCHEMA = "accounts"
MIGRATIONS = Path(__file__).parent / "migrations"
SERVICE_NAME = accounts_pb2.DESCRIPTOR.services_by_name["AccountsService"].full_name


def wire(deps: ServiceDeps, server: grpc.aio.Server) -> Iterable[str]:
    """AccountsService, and the EventSinkService that applies `account.*` events."""
    env = deps.env
    organizations = Organizations(
        deps.pool,
        OrganizationRows(secrets_from_env(env)),
        PolicyCache(ttl=env.number("ACCOUNTS_POLICY_CACHE_SECONDS", 3.0)),
        payment_bounds(env)[0],
        PolicyFollowers(env.number("ACCOUNTS_POLICY_ACK_SECONDS", 2.0)),
    )
    stripe_client = make_stripe_client(
        deps.settings.stripe_api_key,
        deps.settings.stripe_api_base,
        timeout=env.number("STRIPE_TIMEOUT_SECONDS", 10.0),
    )
    deps.cleanups.append(lambda: close_stripe_client(stripe_client))
    connect = Connect(organizations, stripe_client)
    feeds = [policy_feed(organizations.cache, deps.settings.database_url), access_feed(deps.settings.database_url)]
    for feed in feeds:
        feed.start()
        deps.before_stop.append(feed.end_streams)
        deps.cleanups.append(feed.close)
    register_audit_outbox(deps, audit_trail.local_sink(deps.pool))  # outside events applied here
    servicer = AccountsServicer(deps.pool, deps.signer, organizations, connect, *feeds)
    accounts_pb2_grpc.add_AccountsServiceServicer_to_server(servicer, server)
    return [SERVICE_NAME, register_event_sink(deps, server, connect.apply_event)]


async def on_start(deps: ServiceDeps) -> None:
    """Seeds the platform admin named by PLATFORM_ADMIN_EMAIL / PLATFORM_ADMIN_PASSWORD, if set."""
    env = deps.env
    email, password = env.optional("PLATFORM_ADMIN_EMAIL"), env.optional("PLATFORM_ADMIN_PASSWORD")
    if email and password:
        await members.ensure_platform_admin(deps.pool, email, password)
