"""`POST /webhooks/stripe` and `/webhooks/qonto` with locally signed bodies: signatures, routing, dedupe."""

from __future__ import annotations

import time
import uuid
from typing import Any

import orjson
import pytest

from runtime.webhook_signatures import sign
from tests.integration.webhooks.conftest import PREVIOUS_STRIPE_SECRET, WebhookPlatform


def stripe_body(event_type: str = "account.updated", **extra: Any) -> tuple[str, bytes]:
    event_id = f"evt_test_{uuid.uuid4().hex}"
    event = {
        "id": event_id,
        "object": "event",
        "type": event_type,
        "created": int(time.time()),
        "data": {"object": {"id": f"obj_{uuid.uuid4().hex[:12]}", "object": event_type.split(".")[0]}},
        **extra,
    }
    return event_id, orjson.dumps(event)


async def post_stripe(platform: WebhookPlatform, body: bytes, secret: str | None = None, t: int | None = None) -> Any:
    secret = secret or platform.stripe_secrets[0]
    header = sign(body, secret, int(time.time()) if t is None else t)
    return await platform.stack.http.post(
        "/webhooks/stripe", content=body, headers={"Stripe-Signature": header, "Content-Type": "application/json"}
    )


async def recorded_anywhere(platform: WebhookPlatform, event_id: str) -> bool:
    return bool(await platform.owners_of(event_id))


async def test_signed_event_is_recorded_by_its_owner(platform: WebhookPlatform) -> None:
    event_id, body = stripe_body("account.updated", account="acct_test123")
    answer = await post_stripe(platform, body)
    assert answer.status_code == 200, answer.text
    assert answer.json()["received"] is True
    assert answer.json()["duplicate"] is False
    assert answer.json()["owner"] == "accounts"
    rows = await platform.inbox_rows("accounts", event_id)
    assert len(rows) == 1
    assert rows[0]["account"] == "acct_test123"
    assert rows[0]["source"] == "stripe"
    assert rows[0]["status"] in ("applied", "ignored", "pending")


@pytest.mark.parametrize("which", ["platform", "connect", "previous"])
async def test_every_configured_secret_is_accepted(platform: WebhookPlatform, which: str) -> None:
    secret = {"platform": platform.stripe_secrets[0], "connect": platform.stripe_secrets[1]}.get(
        which, PREVIOUS_STRIPE_SECRET
    )
    event_id, body = stripe_body("account.updated")
    answer = await post_stripe(platform, body, secret)
    assert answer.status_code == 200, answer.text
    assert await recorded_anywhere(platform, event_id)


async def test_a_duplicate_is_acknowledged_and_recorded_once(platform: WebhookPlatform) -> None:
    event_id, body = stripe_body("account.updated")
    first, second = await post_stripe(platform, body), await post_stripe(platform, body)
    assert (first.status_code, second.status_code) == (200, 200)
    assert (first.json()["duplicate"], second.json()["duplicate"]) == (False, True)
    assert len(await platform.inbox_rows("accounts", event_id)) == 1


async def test_unsigned_delivery_is_refused(platform: WebhookPlatform) -> None:
    event_id, body = stripe_body()
    answer = await platform.stack.http.post("/webhooks/stripe", content=body)
    assert answer.status_code == 400
    assert answer.json()["code"] == "invalid_signature"
    assert answer.headers["content-type"] == "application/problem+json"
    assert not await recorded_anywhere(platform, event_id)


async def test_wrong_secret_is_refused(platform: WebhookPlatform) -> None:
    event_id, body = stripe_body()
    answer = await post_stripe(platform, body, "whsec_someone_else")
    assert answer.status_code == 400
    assert answer.json()["code"] == "invalid_signature"
    assert not await recorded_anywhere(platform, event_id)


@pytest.mark.parametrize("offset", [-301, -3600, 301])
async def test_stale_or_future_timestamp_is_refused(platform: WebhookPlatform, offset: int) -> None:
    event_id, body = stripe_body()
    answer = await post_stripe(platform, body, t=int(time.time()) + offset)
    assert answer.status_code == 400
    assert not await recorded_anywhere(platform, event_id)


async def test_body_changed_after_signing_is_refused(platform: WebhookPlatform) -> None:
    event_id, body = stripe_body("payment_intent.succeeded")
    header = sign(body, platform.stripe_secrets[0], int(time.time()))
    tampered = body.replace(b"payment_intent.succeeded", b"payment_intent.canceled")
    answer = await platform.stack.http.post("/webhooks/stripe", content=tampered, headers={"Stripe-Signature": header})
    assert answer.status_code == 400
    assert not await recorded_anywhere(platform, event_id)


@pytest.mark.parametrize(
    "header", ["garbage", "t=abc,v1=00", "v1=00", "t=1,t=2,v1=00", "t=" + str(int(time.time())) + ",v1=nothex"]
)
async def test_malformed_signature_header_is_refused(platform: WebhookPlatform, header: str) -> None:
    _, body = stripe_body()
    answer = await platform.stack.http.post("/webhooks/stripe", content=body, headers={"Stripe-Signature": header})
    assert answer.status_code == 400


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b'{"type": "account.updated"}', b'{"id": "evt_1"}', b""])
async def test_signed_but_unparsable_event_is_refused(platform: WebhookPlatform, body: bytes) -> None:
    answer = await post_stripe(platform, body)
    assert answer.status_code == 400
    assert answer.json()["code"] == "invalid_event"


@pytest.mark.parametrize(
    ("event_type", "owner"),
    [
        ("account.updated", "accounts"),
        ("account.application.deauthorized", "accounts"),
        ("payment_intent.succeeded", "payments"),
        ("payment_intent.payment_failed", "payments"),
        ("charge.refunded", "payments"),
        ("charge.dispute.created", "payments"),
        ("payout.paid", "banking"),
        ("payout.failed", "banking"),
        ("terminal.reader.action_succeeded", "terminal"),
    ],
)
async def test_events_are_routed_by_type(platform: WebhookPlatform, event_type: str, owner: str) -> None:
    event_id, body = stripe_body(event_type, account="acct_routing")
    answer = await post_stripe(platform, body)
    assert answer.status_code == 200, answer.text
    assert answer.json()["owner"] == owner
    owners = await platform.owners_of(event_id)
    assert list(owners) == [owner]
    assert owners[owner][0]["type"] == event_type


async def test_unknown_type_is_recorded_and_acknowledged(platform: WebhookPlatform) -> None:
    event_id, body = stripe_body("issuing_card.created")
    answer = await post_stripe(platform, body)
    assert answer.status_code == 200, answer.text
    owners = await platform.owners_of(event_id)
    assert list(owners) == ["accounts"]
    assert owners["accounts"][0]["status"] in ("ignored", "pending")


async def test_raw_body_is_handed_to_the_owner_unchanged(platform: WebhookPlatform) -> None:
    # Amounts are not parsed by the gateway: a large integer survives as it was signed.
    event_id, body = stripe_body("charge.succeeded")
    body = body[:-1] + b',"data2":{"amount":12345678901234}}'
    assert (await post_stripe(platform, body)).status_code == 200
    row = (await platform.inbox_rows("payments", event_id))[0]
    assert orjson.loads(row["payload"])["data2"]["amount"] == 12345678901234


def qonto_body(event_type: str = "transaction.created") -> tuple[str, bytes]:
    event_id = str(uuid.uuid4())
    transaction = {"id": str(uuid.uuid4()), "amount_cents": 1234, "side": "credit", "status": "completed"}
    envelope = {
        "id": event_id,
        "event_id": event_id,
        "type": "v1/transactions",
        "event_type": event_type,
        "created_at": "2026-01-02T03:04:05.678Z",
        "data": {"event": event_type.split(".")[-1], **transaction, "transaction": transaction},
    }
    return event_id, orjson.dumps(envelope)


async def post_qonto(platform: WebhookPlatform, body: bytes, secret: str | None = None, t: int | None = None) -> Any:
    header = sign(body, secret or platform.qonto_secret, int(time.time()) if t is None else t)
    return await platform.stack.http.post("/webhooks/qonto", content=body, headers={"X-Qonto-Signature": header})


async def test_qonto_event_is_recorded_by_banking(platform: WebhookPlatform) -> None:
    event_id, body = qonto_body()
    answer = await post_qonto(platform, body)
    assert answer.status_code == 200, answer.text
    assert answer.json()["owner"] == "banking"
    rows = await platform.inbox_rows("banking", event_id)
    assert [(r["source"], r["type"]) for r in rows] == [("qonto", "transaction.created")]
    assert (await post_qonto(platform, body)).json()["duplicate"] is True


@pytest.mark.parametrize("case", ["stripe_secret", "unsigned", "stale", "tampered"])
async def test_qonto_refuses_bad_signatures(platform: WebhookPlatform, case: str) -> None:
    event_id, body = qonto_body()
    if case == "stripe_secret":
        answer = await post_qonto(platform, body, platform.stripe_secrets[0])
    elif case == "unsigned":
        answer = await platform.stack.http.post("/webhooks/qonto", content=body)
    elif case == "stale":
        answer = await post_qonto(platform, body, t=int(time.time()) - 400)
    else:
        header = sign(body, platform.qonto_secret, int(time.time()))
        answer = await platform.stack.http.post(
            "/webhooks/qonto", content=body.replace(b"1234", b"9234"), headers={"X-Qonto-Signature": header}
        )
    assert answer.status_code == 400
    assert not await recorded_anywhere(platform, event_id)


async def test_stripe_secret_is_not_accepted_on_qonto_and_back(platform: WebhookPlatform) -> None:
    _, body = stripe_body()
    assert (await post_stripe(platform, body, platform.qonto_secret)).status_code == 400
