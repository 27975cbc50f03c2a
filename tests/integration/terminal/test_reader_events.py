"""`terminal.reader.*` events update a reader's status and last seen, through the RPC the webhook ingress calls."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import grpc
import httpx
import orjson
import pytest
from collect.events.v1 import events_pb2, events_pb2_grpc

from runtime.proto import to_timestamp
from tests.fixtures.organizations import OrgContext, onboarded_organization
from tests.fixtures.stack import Stack

ADDRESS = {"line1": "3 place Bellecour", "city": "Lyon", "postal_code": "69002", "country": "FR"}


@pytest.fixture(scope="module")
async def org(stack: Stack) -> OrgContext:
    return await onboarded_organization(stack)


@pytest.fixture(scope="module")
async def sink(stack: Stack) -> AsyncIterator[events_pb2_grpc.EventSinkServiceStub]:
    async with grpc.aio.insecure_channel(stack.target("terminal")) as channel:
        yield events_pb2_grpc.EventSinkServiceStub(channel)


async def deliver(
    stack: Stack, sink: events_pb2_grpc.EventSinkServiceStub, event: dict[str, Any]
) -> events_pb2.DeliverEventResponse:
    token = stack.signer.service_token("gateway")
    message = events_pb2.Event(
        source="stripe",
        event_id=event["id"],
        type=event["type"],
        account=event.get("account") or "",
        created_at=to_timestamp(datetime.fromtimestamp(event["created"], UTC)),
        payload=orjson.dumps(event),
    )
    return await sink.DeliverEvent(
        events_pb2.DeliverEventRequest(event=message), metadata=(("authorization", f"Bearer {token}"),)
    )


async def reader_of(stack: Stack, org: OrgContext, reader_id: str) -> dict[str, Any]:
    listed = await stack.http.get("/v1/terminal/readers?limit=100", headers=org.agent_headers)
    return next(r for r in listed.json()["data"] if r["id"] == reader_id)


def reader_event(event_type: str, reader: dict[str, Any], account: str | None, created: int) -> dict[str, Any]:
    return {
        "id": f"evt_{uuid.uuid4().hex[:24]}",
        "object": "event",
        "type": event_type,
        "account": account,
        "created": created,
        "data": {"object": reader},
    }


async def test_reader_events_update_status_in_order(
    stack: Stack, org: OrgContext, sink: events_pb2_grpc.EventSinkServiceStub
) -> None:
    sandbox = stack.extras["stripe_sandbox"]
    location = await stack.http.post(
        "/v1/terminal/locations", json={"display_name": "Events", "address": ADDRESS}, headers=org.admin_headers
    )
    registered = await stack.http.post(
        "/v1/terminal/readers",
        json={"registration_code": "simulated-wpe", "label": "Events", "location_id": location.json()["id"]},
        headers=org.admin_headers,
    )
    assert registered.status_code == 201, registered.text
    ours = registered.json()
    on_account = sandbox.client(stripe_account=org.stripe_account_id)

    # A real event from the sandbox: the simulated reader takes a tap.
    intent = await on_account.v1.payment_intents.create_async(
        {"amount": 1500, "currency": "eur", "payment_method_types": ["card_present"]}
    )
    await on_account.v1.terminal.readers.process_payment_intent_async(
        ours["stripe_reader_id"], {"payment_intent": intent.id}
    )
    await on_account.v1.test_helpers.terminal.readers.present_payment_method_async(ours["stripe_reader_id"])
    assert org.stripe_account_id is not None
    async with httpx.AsyncClient(base_url=sandbox.url) as http:
        listed = await http.get(
            "/v1/events",
            params={"type": "terminal.reader.action_succeeded", "limit": 100},
            headers={"Authorization": "Bearer sk_test_sandbox", "Stripe-Account": org.stripe_account_id},
        )
    real = next(e for e in listed.json()["data"] if e["data"]["object"]["id"] == ours["stripe_reader_id"])
    real.setdefault("account", org.stripe_account_id)
    answer = await deliver(stack, sink, real)
    assert (answer.duplicate, answer.status) == (False, "applied")
    assert (await reader_of(stack, org, ours["id"]))["status"] == "online"

    # A newer event says the reader went offline; an older one saying online changes nothing.
    stripe_reader = dict(real["data"]["object"])
    offline = reader_event(
        "terminal.reader.updated",
        {**stripe_reader, "status": "offline", "last_seen_at": (real["created"] + 50) * 1000},
        org.stripe_account_id,
        real["created"] + 60,
    )
    assert (await deliver(stack, sink, offline)).status == "applied"
    after = await reader_of(stack, org, ours["id"])
    assert after["status"] == "offline"
    assert after["last_seen_at"] == datetime.fromtimestamp(real["created"] + 50, UTC).isoformat().replace("+00:00", "Z")

    older = reader_event("terminal.reader.updated", {**stripe_reader, "status": "online"}, org.stripe_account_id, 1)
    assert (await deliver(stack, sink, older)).status == "ignored"
    assert (await reader_of(stack, org, ours["id"]))["status"] == "offline"

    # A duplicate is acknowledged and changes nothing.
    duplicate = await deliver(stack, sink, offline)
    assert duplicate.duplicate is True

    # Another account's event about this reader id is ignored.
    foreign = reader_event(
        "terminal.reader.updated", {**stripe_reader, "status": "online"}, "acct_someone_else", real["created"] + 120
    )
    assert (await deliver(stack, sink, foreign)).status == "ignored"
    assert (await reader_of(stack, org, ours["id"]))["status"] == "offline"


async def test_unknown_readers_and_other_objects_are_ignored(
    stack: Stack, sink: events_pb2_grpc.EventSinkServiceStub
) -> None:
    unknown = reader_event(
        "terminal.reader.action_failed",
        {"id": "tmr_unknown", "object": "terminal.reader", "status": "online"},
        None,
        10,
    )
    assert (await deliver(stack, sink, unknown)).status == "ignored"
    odd = reader_event("terminal.reader.updated", {"id": "pi_1", "object": "payment_intent"}, None, 10)
    assert (await deliver(stack, sink, odd)).status == "ignored"
