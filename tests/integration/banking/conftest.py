"""A platform of its own for the banking tests: fresh database, Stripe, Qonto and Pennylane sandboxes, a fake Slack.

The Stripe sandbox credits the Qonto sandbox when a payout is paid; the Qonto sandbox sends its
signed webhooks to this stack's gateway. Slack is a local endpoint that can be told to fail. The
Pennylane sandbox allows 4 requests per second per token, so that pushes meet its 429s.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import grpc
import httpx
import orjson
import pytest
from collect.events.v1 import events_pb2, events_pb2_grpc
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from runtime.asgi_server import serve_asgi
from runtime.config import SERVICES
from runtime.migrations import provision_schema, service_dsn
from sandbox.pennylane.testing import run_pennylane_sandbox
from sandbox.qonto.testing import run_qonto_sandbox
from sandbox.stripe.testing import run_sandbox
from tests.fixtures.database import TEST_ROLE_PASSWORD, PlatformDatabase
from tests.fixtures.organizations import OrgContext
from tests.fixtures.polling import eventually  # noqa: F401 - the banking tests import it from here
from tests.fixtures.stack import Stack, sandbox_env, start_stack

QONTO_WEBHOOK_SECRET = "banking-tests-qonto-secret"


@dataclass
class FakeSlack:
    """An incoming-webhook endpoint that answers 503 to the next `fail_next` posts."""

    url: str = ""
    fail_next: int = 0
    received: list[dict[str, Any]] = field(default_factory=list)
    refused: int = 0

    async def handle(self, request: Request) -> Response:
        body = orjson.loads(await request.body())
        if self.fail_next > 0:
            self.fail_next -= 1
            self.refused += 1
            return Response("unavailable", status_code=503)
        self.received.append(body)
        return Response("ok")


@pytest.fixture(scope="module")
async def fresh_database(postgres_admin_url: str) -> AsyncIterator[PlatformDatabase]:
    name = f"banking_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(postgres_admin_url)
    try:
        await admin.execute(f"CREATE DATABASE {name}")
    finally:
        await admin.close()
    base, _, _ = postgres_admin_url.rpartition("/")
    admin_url = f"{base}/{name}"
    conn = await asyncpg.connect(admin_url)
    try:
        for schema in SERVICES:
            await provision_schema(conn, schema, TEST_ROLE_PASSWORD)
    finally:
        await conn.close()
    yield PlatformDatabase(admin_url, {s: service_dsn(admin_url, s, TEST_ROLE_PASSWORD) for s in SERVICES})


@pytest.fixture(scope="module")
async def bank_stack(fresh_database: PlatformDatabase, smtp_server: Any) -> AsyncIterator[Stack]:
    slack = FakeSlack()
    app = Starlette(routes=[Route("/hooks/slack", slack.handle, methods=["POST"])])
    async with (
        run_qonto_sandbox(webhook_retry_base_seconds=0.05, webhook_max_attempts=5) as qonto,
        run_sandbox(
            webhook_retry_base_seconds=0.05,
            webhook_max_attempts=5,
            qonto_credit_url=f"{qonto.url}/_sandbox/transactions",
            qonto_credit_auth=f"{qonto.login}:{qonto.secret_key}",
        ) as stripe_sandbox,
        serve_asgi(app) as slack_url,
        run_pennylane_sandbox(rate_limit=4, rate_window_seconds=1.0) as pennylane,
    ):
        slack.url = f"{slack_url}/hooks/slack"
        env = {
            **sandbox_env(stripe_sandbox, qonto, smtp_server),
            "SLACK_WEBHOOK_URL": slack.url,
            "QONTO_WEBHOOK_SECRETS": QONTO_WEBHOOK_SECRET,
            "DAILY_REPORT_ENABLED": "false",
            "DAILY_REPORT_RETRY_SECONDS": "0.05",
            "BANKING_JOB_INTERVAL_SECONDS": "0.1",
            "BANK_ACCOUNT_ENTITIES": "FR7616958000010000000000140=holding",
            "PENNYLANE_API_BASE": pennylane.api_base,
            "PENNYLANE_PUSH_INTERVAL_SECONDS": "0",
            "PENNYLANE_PUSH_DELAY_DAYS": "0",
            "PENNYLANE_RETRY_SECONDS": "0.05",
        }
        async with start_stack(fresh_database, env) as stack:
            stack.extras.update(stripe_sandbox=stripe_sandbox, qonto_sandbox=qonto, slack=slack, pennylane=pennylane)
            await qonto.add_webhook(f"{stack.gateway_url}/webhooks/qonto", QONTO_WEBHOOK_SECRET)
            yield stack


def today() -> str:
    return datetime.now(ZoneInfo("Europe/Paris")).date().isoformat()


async def deliver(stack: Stack, service: str, events: list[dict[str, Any]], source: str = "stripe") -> list[str]:
    """Hands events (Stripe's unless `source` says) to a service's EventSinkService, as the webhook ingress does."""
    channel = grpc.aio.insecure_channel(stack.target(service))
    try:
        stub = events_pb2_grpc.EventSinkServiceStub(channel)
        metadata = (("authorization", f"Bearer {stack.signer.service_token('tests')}"),)
        statuses = []
        for event in events:
            answer = await stub.DeliverEvent(
                events_pb2.DeliverEventRequest(
                    event=events_pb2.Event(
                        source=source,
                        event_id=event["id"],
                        type=event["type"],
                        account=event.get("account") or "",
                        payload=orjson.dumps(event),
                    )
                ),
                metadata=metadata,
            )
            statuses.append("duplicate" if answer.duplicate else answer.status)
        return statuses
    finally:
        await channel.close(None)


async def account_events(stack: Stack, account: str, prefix: str) -> list[dict[str, Any]]:
    client = stack.extras["stripe_sandbox"].client()
    listed = await client.v1.events.list_async(params={"limit": 100}, options={"stripe_account": account})
    found = [e.to_dict() for e in listed.data if e.type.startswith(prefix)]
    return sorted(found, key=lambda e: (e["created"], e["id"]))


async def sell(stack: Stack, org: OrgContext, amounts: list[int]) -> None:
    """Card-present sales confirmed as the phone would, with Stripe's events handed to Payments."""
    client = stack.extras["stripe_sandbox"].client()
    intents = []
    for amount in amounts:
        answer = await stack.http.post(
            "/v1/payments",
            headers={**org.agent_headers, "Idempotency-Key": uuid.uuid4().hex},
            json={"amount": amount},
        )
        assert answer.status_code == 201, answer.text
        payment = answer.json()
        await client.v1.payment_intents.confirm_async(
            payment["stripe_payment_intent_id"],
            params={"payment_method": "pm_card_present"},
            options={"stripe_account": org.stripe_account_id},
        )
        intents.append(payment["stripe_payment_intent_id"])
    assert org.stripe_account_id
    events = [
        e
        for e in await account_events(stack, org.stripe_account_id, "")
        if e["data"]["object"].get("id") in intents or e["data"]["object"].get("payment_intent") in intents
    ]
    await deliver(stack, "payments", events)


async def pay_out(stack: Stack, org: OrgContext, **params: Any) -> dict[str, Any]:
    """Pays the account's whole available balance out; hands `payout.*` events to Banking."""
    assert org.stripe_account_id
    client = stack.extras["stripe_sandbox"].client(stripe_account=org.stripe_account_id)
    available = (await client.v1.balance.retrieve_async()).available[0].amount
    payout = await client.v1.payouts.create_async(params={"amount": available, "currency": "eur", **params})
    await stack.extras["stripe_sandbox"].wait_for_deliveries()
    paid = await client.v1.payouts.retrieve_async(payout.id)
    assert paid.status == "paid"
    events = [
        e
        for e in await account_events(stack, org.stripe_account_id, "payout.")
        if e["data"]["object"]["id"] == payout.id
    ]
    assert {e["type"] for e in events} == {"payout.created", "payout.paid"}
    await deliver(stack, "banking", events)
    result: dict[str, Any] = paid.to_dict()
    return result


async def fail_payout(stack: Stack, org: OrgContext, payout_id: str) -> None:
    """Stripe fails the (paid) payout; its `payout.failed` event handed to Banking, applied."""
    sandbox = stack.extras["stripe_sandbox"]
    async with httpx.AsyncClient(base_url=sandbox.url) as http:
        assert (await http.post(f"/_sandbox/payouts/{payout_id}/fail", json={})).status_code == 200
    await sandbox.wait_for_deliveries()
    assert org.stripe_account_id
    failed = [
        e
        for e in await account_events(stack, org.stripe_account_id, "payout.failed")
        if e["data"]["object"]["id"] == payout_id
    ]
    assert await deliver(stack, "banking", failed) == ["applied"]
