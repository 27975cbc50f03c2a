"""Wiring of the Payments service."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path

import asyncpg
import grpc
from collect.payments.v1 import payments_pb2, payments_pb2_grpc

from runtime.audit import register_audit_outbox
from runtime.errors import DomainError
from runtime.inbox import register_event_sink
from runtime.money import payment_bounds
from runtime.policies import PaymentPolicies
from runtime.service import ServiceDeps
from runtime.settings import Env
from services.payments import disputes, receipts, refunding
from services.payments import repository as repo
from services.payments.context import Context
from services.payments.domain import Settings
from services.payments.lifecycle import event_handler
from services.payments.policy import PolicyClient
from services.payments.servicer import PaymentsServicer
from services.payments.stripe_calls import StripePayments

SCHEMA = "payments"
MIGRATIONS = Path(__file__).parent / "migrations"
SERVICE_NAME = payments_pb2.DESCRIPTOR.services_by_name["PaymentsService"].full_name
on_start = None
log = logging.getLogger("payments")


def read_settings(env: Env) -> Settings:
    min_amount, max_amount = payment_bounds(env)
    return Settings(
        min_amount=min_amount,
        max_amount=max_amount,
        rate_limit_per_minute=env.integer("PAYMENT_RATE_LIMIT_PER_MINUTE", 10),
        smtp_host=env.optional("SMTP_HOST"),
        smtp_port=env.integer("SMTP_PORT", 25),
        receipt_from=env.text("RECEIPT_FROM", "receipts@collect.example"),
        offline_max_age_days=env.integer("OFFLINE_MAX_AGE_DAYS", Settings.offline_max_age_days),
        offline_max_ahead_seconds=env.integer("OFFLINE_MAX_AHEAD_SECONDS", Settings.offline_max_ahead_seconds),
    )


def wire(deps: ServiceDeps, server: grpc.aio.Server) -> Iterable[str]:
    stripe = StripePayments(deps.settings.stripe_api_key, deps.settings.stripe_api_base)
    accounts = deps.channel("accounts")
    policies = PaymentPolicies(accounts, deps.tokens, ttl=deps.env.number("PAYMENT_POLICY_CACHE_SECONDS", 60.0))
    policies.start()
    ctx = Context(deps.pool, stripe, PolicyClient(accounts, policies), read_settings(deps.env))
    deps.extras["context"] = ctx  # the seam tests inject failures through
    payments_pb2_grpc.add_PaymentsServiceServicer_to_server(PaymentsServicer(ctx), server)
    register_audit_outbox(deps)  # its actions' audit records, to Accounts
    events = register_event_sink(deps, server, event_handler(ctx))
    refund_sweep_after = deps.env.number("REFUND_SWEEP_AFTER_SECONDS", 120.0)
    dispute_retry_after = deps.env.number("DISPUTE_TRANSFER_RETRY_AFTER_SECONDS", 600.0)
    loop = asyncio.get_running_loop()
    workers = [
        loop.create_task(receipts.run_worker(ctx), name="payments-receipts"),
        loop.create_task(_expire_keys(ctx, deps.env.integer("IDEMPOTENCY_KEY_TTL_HOURS", 24)), name="payments-keys"),
        # Refunds left pending by an unknown outcome; dispute transfer moves Stripe refused.
        loop.create_task(
            _repeat(
                deps.env.number("REFUND_SWEEP_EVERY_SECONDS", 60.0),
                lambda: refunding.sweep_refunds(ctx, refund_sweep_after),
                "refund sweep",
            ),
            name="payments-refund-sweep",
        ),
        loop.create_task(
            _repeat(
                deps.env.number("DISPUTE_SWEEP_EVERY_SECONDS", 60.0),
                lambda: disputes.sweep_transfers(ctx, dispute_retry_after),
                "dispute sweep",
            ),
            name="payments-dispute-sweep",
        ),
    ]

    async def stop() -> None:
        for worker in workers:
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker
        await stripe.close()
        await policies.close()

    deps.cleanups.append(stop)
    return [SERVICE_NAME, events]


async def _repeat(every: float, job: Callable[[], Awaitable[object]], what: str) -> None:
    """Runs `job` every `every` seconds; a database or Stripe failure is logged and the next run tries again."""
    while True:
        await asyncio.sleep(every)
        try:
            await job()
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, DomainError) as error:
            log.warning("%s: %s", what, error)


async def _expire_keys(ctx: Context, hours: int, every: float = 600.0) -> None:
    while True:
        try:
            async with ctx.pool.acquire() as conn:
                await repo.expire_keys(conn, hours)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            log.warning("idempotency key expiry: %s", error)
        await asyncio.sleep(every)
