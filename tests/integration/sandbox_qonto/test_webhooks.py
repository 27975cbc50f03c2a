"""Signed webhooks from the sandbox: shape, signature, retries, duplicates and shuffling."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from runtime.webhook_signatures import InvalidSignature, sign, verify_qonto_signature
from sandbox.qonto.testing import RunningQontoSandbox, run_qonto_sandbox

from .conftest import Receiver


async def test_created_and_updated_events_are_signed(qonto: RunningQontoSandbox, receiver: Receiver) -> None:
    subscription = await qonto.add_webhook(receiver.url, secret="whsec-qonto-test")
    txn = await qonto.inject(amount_cents=900, status="pending", reference="po_9")
    await qonto.update(txn["id"], status="completed")
    await qonto.wait_for_deliveries()

    assert len(receiver.requests) == 2
    # Deliveries run concurrently, so arrival order is not guaranteed (nor is it at Qonto).
    created, updated = sorted((json.loads(d.body) for d in receiver.requests), key=lambda e: e["event_type"])
    for delivery in receiver.requests:
        verify_qonto_signature(delivery.headers["x-qonto-signature"], delivery.body, [subscription.secret])
        assert delivery.headers["content-type"] == "application/json"

    assert created["event_type"] == "transaction.created" and updated["event_type"] == "transaction.updated"
    assert created["event_id"] != updated["event_id"]
    assert created["organization_id"] == qonto.state.organization_id
    assert created["created_at"].endswith("Z")
    assert created["data"]["transaction"]["status"] == "pending"
    assert updated["data"]["transaction"]["status"] == "completed"
    assert updated["data"]["transaction"]["updated_at"] > created["data"]["transaction"]["updated_at"]
    # Qonto's own v1/transactions shape rides along.
    assert created["type"] == "v1/transactions" and created["id"] == created["event_id"]
    assert created["subscription_id"] == subscription.id
    assert created["data"]["event"] == "created" and created["data"]["id"] == txn["id"]
    assert created["data"]["amount_cents"] == 900


async def test_tampered_or_stale_deliveries_do_not_verify(qonto: RunningQontoSandbox, receiver: Receiver) -> None:
    subscription = await qonto.add_webhook(receiver.url)
    assert subscription.secret.startswith("qwhsec_")
    await qonto.inject(amount_cents=1)
    await qonto.wait_for_deliveries()
    (delivery,) = receiver.requests
    header = delivery.headers["x-qonto-signature"]
    with pytest.raises(InvalidSignature):
        verify_qonto_signature(
            header, delivery.body.replace(b'"amount_cents":1', b'"amount_cents":9'), [subscription.secret]
        )
    with pytest.raises(InvalidSignature):
        verify_qonto_signature(header, delivery.body, ["another-secret"])
    with pytest.raises(InvalidSignature):
        verify_qonto_signature(header, delivery.body, [subscription.secret], now=time.time() + 301)
    stale = sign(delivery.body, subscription.secret, int(time.time()) - 600)
    with pytest.raises(InvalidSignature):
        verify_qonto_signature(stale, delivery.body, [subscription.secret])


async def test_failed_deliveries_are_retried(qonto: RunningQontoSandbox, receiver: Receiver) -> None:
    receiver.fail_first = 2
    subscription = await qonto.add_webhook(receiver.url)
    await qonto.inject(amount_cents=5)
    await qonto.wait_for_deliveries()

    assert len(receiver.requests) == 3 and len(receiver.accepted) == 1
    event_ids = {json.loads(d.body)["event_id"] for d in receiver.requests}
    assert len(event_ids) == 1  # the same event each time, so receivers can dedupe
    for delivery in receiver.requests:
        verify_qonto_signature(delivery.headers["x-qonto-signature"], delivery.body, [subscription.secret])
    attempts = [(a.attempt, a.status_code) for a in qonto.state.dispatcher.attempts]
    assert attempts == [(1, 503), (2, 503), (3, 204)]


async def test_unreachable_receiver_is_given_up_after_max_attempts(qonto: RunningQontoSandbox) -> None:
    # A port nobody listens on: connection refused at every attempt.
    await qonto.add_webhook("http://127.0.0.1:9/hook")
    await qonto.inject(amount_cents=5)
    await qonto.wait_for_deliveries()
    attempts = qonto.state.dispatcher.attempts
    assert [a.attempt for a in attempts] == [1, 2, 3, 4]
    assert all(a.status_code is None and a.error for a in attempts)


async def test_duplicates_and_shuffle(receiver: Receiver) -> None:
    async with run_qonto_sandbox(webhook_duplicates=2, webhook_shuffle=True) as qs:
        await qs.add_webhook(receiver.url)
        for n in range(10):
            await qs.inject(amount_cents=n + 1)
        await qs.wait_for_deliveries()
    bodies = [json.loads(d.body) for d in receiver.requests]
    assert len(bodies) == 20
    amounts = [b["data"]["transaction"]["amount_cents"] for b in bodies]
    assert sorted(amounts) == sorted(list(range(1, 11)) * 2)
    assert len({b["event_id"] for b in bodies}) == 10
    # 20 deliveries spread over 200 ms arrive in creation order with odds of 1 in millions.
    assert amounts != sorted(amounts)


async def test_webhook_subscription_endpoints(
    qonto: RunningQontoSandbox, http: httpx.AsyncClient, receiver: Receiver
) -> None:
    created = await http.post("/_sandbox/webhooks", json={"url": receiver.url, "secret": "my-secret"})
    assert created.status_code == 201
    body = created.json()
    assert body["secret"] == "my-secret" and body["url"] == receiver.url
    listed = (await http.get("/_sandbox/webhooks")).json()["webhooks"]
    assert [w["id"] for w in listed] == [body["id"]] and "secret" not in listed[0]

    generated = (await http.post("/_sandbox/webhooks", json={"url": receiver.url + "?2"})).json()
    assert generated["secret"]
    await http.post("/_sandbox/transactions", json={"amount_cents": 10})
    await qonto.wait_for_deliveries()
    assert len(receiver.requests) == 2
    deliveries = (await http.get("/_sandbox/webhook_deliveries")).json()
    assert deliveries["pending"] == 0 and all(d["ok"] for d in deliveries["deliveries"])

    assert (await http.delete(f"/_sandbox/webhooks/{body['id']}")).status_code == 204
    assert (await http.delete(f"/_sandbox/webhooks/{body['id']}")).status_code == 404
    assert (await http.post("/_sandbox/webhooks", json={"url": "ftp://x"})).status_code == 422


async def test_configured_webhook(receiver: Receiver) -> None:
    async with run_qonto_sandbox(webhook_url=receiver.url, webhook_secret="from-config") as qs:
        await qs.inject(amount_cents=77)
        await qs.wait_for_deliveries()
        qs.reset()
        assert [s.url for s in qs.state.subscriptions.values()] == [receiver.url]
    (delivery,) = receiver.requests
    verify_qonto_signature(delivery.headers["x-qonto-signature"], delivery.body, ["from-config"])
