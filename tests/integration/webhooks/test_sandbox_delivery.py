"""Real signed deliveries from the sandboxes: duplicates, shuffling, concurrency, an owner that is down."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest

from runtime.server import start_grpc_server
from tests.integration.webhooks.conftest import WebhookPlatform, event_sinks_everywhere


async def emit_stripe_events(platform: WebhookPlatform, accounts: int = 4, payments: int = 4) -> None:
    """Connect events (account.updated on onboarding) and platform events (payment intents, charges)."""
    for _ in range(accounts):
        await platform.stripe.create_connected_account()
    client = platform.stripe.client()
    for index in range(payments):
        await client.v1.payment_intents.create_async(
            params={
                "amount": 1000 + index,
                "currency": "eur",
                "payment_method": "pm_card_visa",
                "confirm": True,
            }
        )


def stripe_attempts(platform: WebhookPlatform) -> list[dict[str, Any]]:
    return list(platform.stripe.state.webhooks.attempts)


async def assert_each_recorded_once(platform: WebhookPlatform, event_ids: set[str]) -> None:
    for event_id in event_ids:
        owners = await platform.owners_of(event_id)
        assert len(owners) == 1, (event_id, owners)
        [rows] = owners.values()
        assert len(rows) == 1


async def test_duplicated_shuffled_concurrent_deliveries_are_recorded_once(platform: WebhookPlatform) -> None:
    platform.stripe.state.webhooks.attempts.clear()
    await platform.configure_stripe(webhook_duplicates=10, webhook_shuffle=True, webhook_shuffle_window_seconds=0.2)
    try:
        await emit_stripe_events(platform)
        await platform.stripe.wait_for_deliveries(60)
    finally:
        await platform.configure_stripe(webhook_duplicates=1, webhook_shuffle=False)
    attempts = stripe_attempts(platform)
    copies = Counter(a["event"] for a in attempts)
    assert len(copies) >= 12
    assert set(copies.values()) == {10}, "every event was delivered 10 times"
    assert {a["status"] for a in attempts} == {200}, "every copy was acknowledged"
    await assert_each_recorded_once(platform, set(copies))
    types = {a["type"] for a in attempts}
    assert {"account.updated", "payment_intent.succeeded", "charge.succeeded"} <= types


async def test_connect_events_carry_their_account(platform: WebhookPlatform) -> None:
    connected = await platform.stripe.create_connected_account()
    await platform.stripe.wait_for_deliveries(30)
    rows = await platform.pool("accounts").fetch(
        "SELECT * FROM inbox_events WHERE account = $1 AND type = 'account.updated'", connected.id
    )
    assert rows, "the onboarding's account.updated reached Accounts"
    intent = await connected.client.v1.payment_intents.create_async(params={"amount": 1500, "currency": "eur"})
    await platform.stripe.wait_for_deliveries(30)
    rows = await platform.pool("payments").fetch(
        "SELECT * FROM inbox_events WHERE account = $1 AND type = 'payment_intent.created'", connected.id
    )
    assert [r["payload"] for r in rows] and intent.id in rows[0]["payload"]


async def test_an_owner_that_is_down_fails_the_delivery_and_the_retry_succeeds(platform: WebhookPlatform) -> None:
    stack = platform.stack
    running = stack.servers["accounts"]
    port = running.port
    await platform.configure_stripe(webhook_retry_base_seconds=0.3, webhook_max_attempts=8)
    platform.stripe.state.webhooks.attempts.clear()
    await running.stop(0)
    try:
        connected = await platform.stripe.create_connected_account()
        for _ in range(100):
            if any(a["status"] == 503 for a in stripe_attempts(platform)):
                break
            await asyncio.sleep(0.05)
        else:
            pytest.fail("no delivery failed while Accounts was down")
    finally:
        import services.accounts.main as accounts_main

        deps = stack.deps["accounts"]
        with event_sinks_everywhere():
            stack.servers["accounts"] = await start_grpc_server(
                register=lambda server: accounts_main.wire(deps, server), signer=deps.signer, port=port
            )
    await platform.stripe.wait_for_deliveries(60)
    await platform.configure_stripe(webhook_retry_base_seconds=0.05, webhook_max_attempts=6)
    attempts = stripe_attempts(platform)
    mine = [a for a in attempts if a["type"] == "account.updated"]
    assert any(a["status"] == 503 for a in mine)
    by_event: dict[str, list[int | None]] = {}
    for attempt in sorted(mine, key=lambda a: a["at"]):
        by_event.setdefault(attempt["event"], []).append(attempt["status"])
    assert all(statuses[-1] == 200 for statuses in by_event.values()), by_event
    rows = await platform.pool("accounts").fetch("SELECT event_id FROM inbox_events WHERE account = $1", connected.id)
    assert {r["event_id"] for r in rows} == set(by_event)


async def test_qonto_deliveries_duplicated_and_shuffled_are_recorded_once(platform: WebhookPlatform) -> None:
    dispatcher = platform.qonto.state.dispatcher
    dispatcher.attempts.clear()
    dispatcher.duplicates, dispatcher.shuffle = 10, True
    try:
        created = [await platform.qonto.inject(amount_cents=1000 + i, side="credit", label="STRIPE") for i in range(3)]
        await platform.qonto.update(created[0]["id"], label="STRIPE PAYOUT")
        await platform.qonto.wait_for_deliveries()
    finally:
        dispatcher.duplicates, dispatcher.shuffle = 1, False
    copies = Counter(a.event_id for a in dispatcher.attempts)
    assert len(copies) == 4 and set(copies.values()) == {10}
    assert all(a.ok for a in dispatcher.attempts)
    await assert_each_recorded_once(platform, set(copies))
    rows = await platform.pool("banking").fetch(
        "SELECT type FROM inbox_events WHERE source = 'qonto' AND event_id = ANY($1::text[])", list(copies)
    )
    assert Counter(r["type"] for r in rows) == {"transaction.created": 3, "transaction.updated": 1}
