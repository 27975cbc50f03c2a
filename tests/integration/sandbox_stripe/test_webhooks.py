"""Webhook delivery: Stripe signatures, platform vs connect endpoints, filtering, retries, delivery modes."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest
import stripe
from stripe.params import PaymentIntentCreateParams

from runtime.webhook_signatures import sign
from sandbox.stripe.testing import RunningSandbox, run_sandbox
from tests.fixtures.stripe_types import given

PAY: PaymentIntentCreateParams = {"amount": 1_000, "currency": "eur", "confirm": True, "payment_method": "pm_card_visa"}


def _events(receiver: Any, path_suffix: str = "") -> list[dict[str, object]]:
    return [json.loads(d.body) for d in receiver.accepted if d.path.endswith(path_suffix)]


async def _endpoint(
    sandbox: RunningSandbox, url: str, events: list[Any], connect: bool = False
) -> stripe.WebhookEndpoint:
    return await sandbox.client().v1.webhook_endpoints.create_async(
        params={"url": url, "enabled_events": events, "connect": connect}
    )


async def test_signatures_verify_with_the_sdk(receiver: Any) -> None:
    async with run_sandbox() as sandbox:
        endpoint = await _endpoint(sandbox, f"{receiver.url}/a", ["payment_intent.succeeded"])
        secret = given(endpoint.secret)
        assert secret.startswith("whsec_") and endpoint.id.startswith("we_")
        fetched = await sandbox.client().v1.webhook_endpoints.retrieve_async(endpoint.id)
        assert "secret" not in fetched
        await sandbox.client().v1.payment_intents.create_async(params=PAY)
        await sandbox.wait_for_deliveries()
        assert len(receiver.accepted) == 1
        delivery = receiver.accepted[0]
        header = delivery.headers["stripe-signature"]
        event = stripe.Webhook.construct_event(delivery.body, header, secret)
        assert event.type == "payment_intent.succeeded" and event.data.object.status == "succeeded"
        assert event.id.startswith("evt_") and "account" not in event
        tampered = delivery.body.replace(b'"succeeded"', b'"canceled"', 1)
        with pytest.raises(stripe.SignatureVerificationError):
            stripe.Webhook.construct_event(tampered, header, secret)
        stale = sign(delivery.body, secret, int(time.time()) - 400)
        with pytest.raises(stripe.SignatureVerificationError):
            stripe.Webhook.construct_event(delivery.body, stale, secret)
        with pytest.raises(stripe.SignatureVerificationError):
            stripe.Webhook.construct_event(delivery.body, header, "whsec_wrong")
        listed = await sandbox.client().v1.webhook_endpoints.list_async()
        assert [e.id for e in listed.data] == [endpoint.id]
        removed = await sandbox.client().v1.webhook_endpoints.delete_async(endpoint.id)
        assert removed.deleted


async def test_platform_and_connect_endpoints_get_their_events(receiver: Any) -> None:
    async with run_sandbox() as sandbox:
        await _endpoint(sandbox, f"{receiver.url}/platform", ["*"])
        await _endpoint(sandbox, f"{receiver.url}/connect", ["charge.succeeded", "account.updated"], connect=True)
        account = await sandbox.create_connected_account()
        await account.client.v1.payment_intents.create_async(params=PAY)
        await account.platform.v1.payment_intents.create_async(params=PAY)
        await sandbox.wait_for_deliveries()
        connect = _events(receiver, "/connect")
        assert sorted(str(e["type"]) for e in connect) == ["account.updated", "charge.succeeded"]
        assert all(e["account"] == account.id for e in connect)
        platform = _events(receiver, "/platform")
        assert all("account" not in e for e in platform)
        assert {"payment_intent.created", "charge.succeeded", "payment_intent.succeeded"} <= {
            str(e["type"]) for e in platform
        }
        event = await account.client.v1.events.retrieve_async(str(connect[0]["id"]))
        assert event.pending_webhooks == 0


async def test_failed_deliveries_are_retried(receiver: Any) -> None:
    receiver.fail_first = 2
    async with run_sandbox(webhook_retry_base_seconds=0.01) as sandbox:
        endpoint = await _endpoint(sandbox, f"{receiver.url}/a", ["payment_intent.created"])
        await sandbox.client().v1.payment_intents.create_async(params={"amount": 100, "currency": "eur"})
        await sandbox.wait_for_deliveries()
        assert len(receiver.requests) == 3 and len(receiver.accepted) == 1
        assert len({json.loads(d.body)["id"] for d in receiver.requests}) == 1
        async with httpx.AsyncClient(base_url=sandbox.url) as http:
            attempts = (await http.get("/_sandbox/webhooks/attempts")).json()["data"]
            assert (await http.get("/_sandbox/webhooks/pending")).json() == {"pending": 0}
        assert [a["status"] for a in reversed(attempts)] == [500, 500, 200]
        assert all(a["endpoint"] == endpoint.id for a in attempts)


async def test_unreachable_endpoint_gives_up_after_max_attempts() -> None:
    async with run_sandbox(webhook_retry_base_seconds=0.001, webhook_max_attempts=3) as sandbox:
        await _endpoint(sandbox, "http://127.0.0.1:9/unreachable", ["*"])
        await sandbox.client().v1.payment_intents.create_async(params={"amount": 100, "currency": "eur"})
        await sandbox.wait_for_deliveries()
        attempts = list(sandbox.state.webhooks.attempts)
        assert len(attempts) == 3 and all(a["status"] is None and a["error"] for a in attempts)


async def test_duplicate_and_shuffle_modes(receiver: Any) -> None:
    async with run_sandbox(webhook_duplicates=3) as sandbox:
        await _endpoint(sandbox, f"{receiver.url}/dup", ["payment_intent.created"])
        await sandbox.client().v1.payment_intents.create_async(params={"amount": 100, "currency": "eur"})
        await sandbox.wait_for_deliveries()
        ids = [e["id"] for e in _events(receiver, "/dup")]
        assert len(ids) == 3 and len(set(ids)) == 1

    async with run_sandbox(webhook_shuffle=True, webhook_shuffle_window_seconds=0.05) as sandbox:
        await _endpoint(sandbox, f"{receiver.url}/shuffled", ["payment_intent.created"])
        created = [
            (await sandbox.client().v1.payment_intents.create_async(params={"amount": 100 + i, "currency": "eur"})).id
            for i in range(12)
        ]
        await sandbox.wait_for_deliveries()
        got = [e["data"]["object"]["id"] for e in _events(receiver, "/shuffled")]  # type: ignore[index]
        assert sorted(got) == sorted(created)
