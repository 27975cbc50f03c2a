"""Wiring of the Banking service."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from pathlib import Path

import grpc
import httpx
from collect.banking.v1 import banking_pb2, banking_pb2_grpc
from collect.payments.v1 import payments_pb2_grpc

from runtime import metrics
from runtime.audit import register_audit_outbox
from runtime.clients import accounts_stub
from runtime.crypto import FieldCipher, parse_keys
from runtime.db import Connection
from runtime.inbox import IGNORED, InboundEvent, register_event_sink
from runtime.service import ServiceDeps
from runtime.stripe_api import close_stripe_client, make_stripe_client
from services.banking import payouts, pennylane, reports, repository, sync
from services.banking.context import Banking
from services.banking.servicer import BankingServicer
from services.banking.settings import BankingSettings

SCHEMA = "banking"
MIGRATIONS = Path(__file__).parent / "migrations"
SERVICE_NAME = banking_pb2.DESCRIPTOR.services_by_name["BankingService"].full_name
on_start = None


def make_banking(deps: ServiceDeps) -> Banking:
    settings = BankingSettings.from_env(deps.env)
    keys = parse_keys(deps.env.optional("BANKING_ENCRYPTION_KEYS") or "", "BANKING_ENCRYPTION_KEYS")
    banking = Banking(
        pool=deps.pool,
        settings=settings,
        stripe=make_stripe_client(deps.settings.stripe_api_key, deps.settings.stripe_api_base),
        accounts=accounts_stub(deps.channel("accounts")),
        payments=payments_pb2_grpc.PaymentsServiceStub(deps.channel("payments")),
        http=httpx.AsyncClient(timeout=settings.slack_timeout_seconds),
        cipher=FieldCipher(keys) if keys else None,
    )
    return banking


def event_handler(banking: Banking):  # type: ignore[no-untyped-def]
    async def handle(conn: Connection, event: InboundEvent) -> str:
        if event.source == "qonto":
            return await sync.apply_qonto_event(conn, event)
        if event.source == "stripe" and event.type.startswith("payout."):
            return await payouts.apply_payout_event(banking, conn, event)
        return IGNORED

    return handle


def wire(deps: ServiceDeps, server: grpc.aio.Server) -> Iterable[str]:
    banking = make_banking(deps)
    banking_pb2_grpc.add_BankingServiceServicer_to_server(BankingServicer(banking), server)
    register_audit_outbox(deps)  # its actions' audit records, to Accounts
    sink = register_event_sink(deps, server, event_handler(banking), apply_now=lambda e: e.source != "qonto")
    loop = asyncio.get_running_loop()
    jobs = [
        loop.create_task(reports.run_jobs(banking), name="banking-jobs"),
        loop.create_task(pennylane.run_push_job(banking), name="banking-pennylane-push"),
    ]
    stop_sampling = metrics.add_sampler(lambda: sample_unmatched_payouts(banking))
    stop_pennylane_sampling = metrics.add_sampler(lambda: sample_pennylane_backlog(banking))

    async def stop() -> None:
        stop_sampling()
        stop_pennylane_sampling()
        for job in jobs:
            job.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await job
        await banking.http.aclose()
        await close_stripe_client(banking.stripe)

    deps.cleanups.append(stop)
    return [SERVICE_NAME, sink]


async def sample_unmatched_payouts(banking: Banking) -> None:
    async with banking.pool.acquire() as conn:
        row = await repository.unmatched_payouts_summary(conn)
    metrics.unmatched_payouts.set(row["unmatched"])
    metrics.unmatched_payout_age.set(float(row["oldest_age"]))


async def sample_pennylane_backlog(banking: Banking) -> None:
    async with banking.pool.acquire() as conn:
        metrics.pennylane_unpushed.set(await repository.pennylane_unpushed_count(conn))
