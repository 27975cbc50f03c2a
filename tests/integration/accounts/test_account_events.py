"""account.updated events applied through Accounts' EventSinkService: in order, out of order, twice."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import grpc
import httpx
import orjson
import pytest
from collect.accounts.v1 import accounts_pb2, accounts_pb2_grpc
from collect.events.v1 import events_pb2, events_pb2_grpc

from runtime.proto import to_timestamp
from tests.fixtures.organizations import REFRESH_URL, RETURN_URL, organization_body
from tests.fixtures.stack import Stack


@pytest.fixture(scope="module")
async def channel(stack: Stack) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(stack.target("accounts")) as opened:
        yield opened


def _metadata(stack: Stack) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {stack.signer.service_token('gateway')}"),)


async def _deliver(stack: Stack, channel: grpc.aio.Channel, event: dict[str, Any]) -> events_pb2.DeliverEventResponse:
    message = events_pb2.Event(
        source="stripe",
        event_id=event["id"],
        type=event["type"],
        account=event.get("account") or "",
        created_at=to_timestamp(datetime.fromtimestamp(event["created"], UTC)),
        payload=orjson.dumps(event),
    )
    stub = events_pb2_grpc.EventSinkServiceStub(channel)
    answer: events_pb2.DeliverEventResponse = await stub.DeliverEvent(
        events_pb2.DeliverEventRequest(event=message), metadata=_metadata(stack)
    )
    return answer


async def _organization_with_account(stack: Stack) -> tuple[str, str, dict[str, str]]:
    admin = await stack.admin_headers()
    org = (await stack.http.post("/v1/organizations", headers=admin, json=organization_body())).json()
    account = (await stack.http.post(f"/v1/organizations/{org['id']}/stripe-account", headers=admin, json={})).json()
    return org["id"], account["stripe_account_id"], admin


async def _status(stack: Stack, org_id: str, headers: dict[str, str]) -> dict[str, Any]:
    answer = await stack.http.get(f"/v1/organizations/{org_id}", headers=headers)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def _account_event(account_id: str, created: int, *, enabled: bool, due: list[str]) -> dict[str, Any]:
    return {
        "id": f"evt_test_{uuid.uuid4().hex[:16]}",
        "object": "event",
        "type": "account.updated",
        "account": account_id,
        "created": created,
        "data": {
            "object": {
                "id": account_id,
                "object": "account",
                "type": "express",
                "charges_enabled": enabled,
                "payouts_enabled": enabled,
                "details_submitted": enabled,
                "requirements": {"currently_due": due},
            }
        },
    }


async def test_onboarding_event_alone_enables_charges(stack: Stack, channel: grpc.aio.Channel) -> None:
    org_id, account_id, admin = await _organization_with_account(stack)
    link = await stack.http.post(
        f"/v1/organizations/{org_id}/onboarding-link",
        headers=admin,
        json={"return_url": RETURN_URL, "refresh_url": REFRESH_URL},
    )
    sandbox = stack.extras["stripe_sandbox"]
    async with httpx.AsyncClient() as browser:
        await browser.get(link.json()["url"], follow_redirects=False)
        listed = await browser.get(
            f"{sandbox.url}/v1/events",
            params={"type": "account.updated"},
            headers={"Authorization": "Bearer sk_test_sandbox", "Stripe-Account": account_id},
        )
    events = [e for e in listed.json()["data"] if e["data"]["object"]["charges_enabled"]]
    assert events, listed.text
    event = events[0]
    # The stored state (from the account's creation) is older than the event, unless both fall in
    # the same second; then Accounts re-reads the account, which is onboarded by now either way.
    answer = await _deliver(stack, channel, event)
    assert (answer.duplicate, answer.status) == (False, "applied")
    shown = await _status(stack, org_id, admin)
    assert shown["charges_enabled"] is True and shown["payouts_enabled"] is True and shown["requirements_due"] == []

    again = await _deliver(stack, channel, event)
    assert again.duplicate is True
    assert await _status(stack, org_id, admin) == shown


async def test_an_older_event_never_overwrites_newer_state(stack: Stack, channel: grpc.aio.Channel) -> None:
    org_id, account_id, admin = await _organization_with_account(stack)
    now = int(time.time())
    newer = _account_event(account_id, now + 20, enabled=True, due=[])
    older = _account_event(account_id, now + 10, enabled=False, due=["external_account"])

    assert (await _deliver(stack, channel, newer)).status == "applied"
    assert (await _deliver(stack, channel, older)).status == "ignored"
    shown = await _status(stack, org_id, admin)
    assert shown["charges_enabled"] is True and shown["requirements_due"] == []

    policy = await accounts_pb2_grpc.AccountsServiceStub(channel).GetPaymentPolicy(
        accounts_pb2.GetPaymentPolicyRequest(organization_id=org_id), metadata=_metadata(stack)
    )
    assert policy.policy.charges_enabled is True and policy.policy.stripe_account_id == account_id


async def test_an_ambiguous_event_is_checked_against_stripe(stack: Stack, channel: grpc.aio.Channel) -> None:
    org_id, account_id, admin = await _organization_with_account(stack)
    row = await stack.deps["accounts"].pool.fetchrow(
        "SELECT stripe_state_at FROM organizations WHERE id = $1", uuid.UUID(org_id)
    )
    assert row is not None
    # Stamped in the same second as the stored state: it may be older or newer, so Stripe decides.
    claim = _account_event(account_id, int(row["stripe_state_at"].timestamp()), enabled=True, due=[])
    assert (await _deliver(stack, channel, claim)).status in ("applied", "ignored")
    shown = await _status(stack, org_id, admin)
    assert shown["charges_enabled"] is False and "external_account" in shown["requirements_due"]


async def test_events_of_unknown_accounts_and_other_types_are_ignored(stack: Stack, channel: grpc.aio.Channel) -> None:
    unknown = _account_event("acct_unknown0000000", int(time.time()), enabled=True, due=[])
    assert (await _deliver(stack, channel, unknown)).status == "ignored"
    other = {**unknown, "id": f"evt_test_{uuid.uuid4().hex[:16]}", "type": "account.application.authorized"}
    assert (await _deliver(stack, channel, other)).status == "ignored"


async def test_members_cannot_deliver_events(stack: Stack, channel: grpc.aio.Channel) -> None:
    org_id, account_id, headers = await _organization_with_account(stack)
    agent = {"email": f"a-{uuid.uuid4().hex[:8]}@example.test", "name": "A", "role": "agent"}
    agent["password"] = "agent-password-123"
    assert (
        await stack.http.post(f"/v1/organizations/{org_id}/members", headers=headers, json=agent)
    ).status_code == 201
    agent_headers = await stack.login(agent["email"], agent["password"])
    stub = events_pb2_grpc.EventSinkServiceStub(channel)
    event = _account_event(account_id, int(time.time()) + 30, enabled=True, due=[])
    request = events_pb2.DeliverEventRequest(
        event=events_pb2.Event(source="stripe", event_id=event["id"], type=event["type"], payload=orjson.dumps(event))
    )
    with pytest.raises(grpc.aio.AioRpcError) as denied:
        await stub.DeliverEvent(request, metadata=(("authorization", agent_headers["Authorization"]),))
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_an_event_during_account_creation_waits_for_it(stack: Stack, channel: grpc.aio.Channel) -> None:
    admin = await stack.admin_headers()
    org_id = (await stack.http.post("/v1/organizations", headers=admin, json=organization_body())).json()["id"]
    account_id = f"acct_creating{uuid.uuid4().hex[:10]}"
    event = _account_event(account_id, int(time.time()) + 5, enabled=True, due=[])
    event["data"]["object"]["metadata"] = {"organization_id": org_id}
    pool = stack.deps["accounts"].pool
    async with pool.acquire() as creating:
        # What create_account does: the row is locked while Stripe answers, then the account is stored.
        transaction = creating.transaction()
        await transaction.start()
        try:
            await creating.execute("SELECT id FROM organizations WHERE id = $1 FOR UPDATE", uuid.UUID(org_id))
            delivery = asyncio.ensure_future(_deliver(stack, channel, event))
            for _ in range(500):
                waiting = await pool.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
                )
                if waiting or delivery.done():
                    break
                await asyncio.sleep(0.01)
            assert not delivery.done(), "the delivery should wait for the row, not answer before the account exists"
            await creating.execute(
                """UPDATE organizations SET stripe_account_id = $2, stripe_account_type = 'express',
                          stripe_state_at = now() WHERE id = $1""",
                uuid.UUID(org_id),
                account_id,
            )
        finally:
            await transaction.commit()
    answer = await delivery
    assert answer.status == "applied"
    shown = await _status(stack, org_id, admin)
    assert shown["stripe_account_id"] == account_id and shown["charges_enabled"] is True


async def test_deauthorization_stops_charges(stack: Stack, channel: grpc.aio.Channel) -> None:
    org_id, account_id, admin = await _organization_with_account(stack)
    now = int(time.time())
    assert (
        await _deliver(stack, channel, _account_event(account_id, now + 5, enabled=True, due=[]))
    ).status == "applied"
    deauthorized = {
        "id": f"evt_test_{uuid.uuid4().hex[:16]}",
        "object": "event",
        "type": "account.application.deauthorized",
        "account": account_id,
        "created": now + 10,
        "data": {"object": {"id": "ca_platform", "object": "application"}},
    }
    assert (await _deliver(stack, channel, deauthorized)).status == "applied"
    shown = await _status(stack, org_id, admin)
    assert shown["charges_enabled"] is False and shown["payouts_enabled"] is False
    stale = _account_event(account_id, now + 7, enabled=True, due=[])
    assert (await _deliver(stack, channel, stale)).status == "ignored"
    assert (await _status(stack, org_id, admin))["charges_enabled"] is False
