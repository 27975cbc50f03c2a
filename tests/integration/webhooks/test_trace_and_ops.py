"""One trace per delivery, and the operations on the inboxes (list, replay)."""

from __future__ import annotations

import time
import uuid

import orjson
from opentelemetry.trace import SpanKind

from runtime.webhook_signatures import sign
from tests.conftest import SPANS
from tests.integration.webhooks.conftest import WebhookPlatform


async def test_gateway_span_and_owner_span_share_the_trace(platform: WebhookPlatform) -> None:
    event_id = f"evt_trace_{uuid.uuid4().hex}"
    body = orjson.dumps({"id": event_id, "type": "payment_intent.created", "created": int(time.time())})
    SPANS.clear()
    answer = await platform.stack.http.post(
        "/webhooks/stripe",
        content=body,
        headers={"Stripe-Signature": sign(body, platform.stripe_secrets[0], int(time.time()))},
    )
    assert answer.status_code == 200, answer.text
    spans = SPANS.get_finished_spans()
    gateway = [s for s in spans if s.kind == SpanKind.SERVER and "/webhooks/stripe" in s.name]
    owner = [s for s in spans if s.kind == SpanKind.SERVER and s.name.endswith("EventSinkService/DeliverEvent")]
    assert gateway and owner, [(s.name, s.kind) for s in spans]
    assert owner[0].context.trace_id == gateway[0].context.trace_id
    assert answer.headers.get("traceparent", "").split("-")[1] == format(gateway[0].context.trace_id, "032x")


async def test_failed_events_are_listed_and_replayed(platform: WebhookPlatform) -> None:
    event_id = f"evt_ops_{uuid.uuid4().hex}"
    payload = orjson.dumps({"id": event_id, "type": "ops_test.unknown", "created": int(time.time())}).decode()
    await platform.pool("accounts").execute(
        """INSERT INTO inbox_events (source, event_id, type, payload, status, attempts, last_error, next_attempt_at)
           VALUES ('stripe', $1, 'ops_test.unknown', $2::jsonb, 'failed', 20, 'RuntimeError: boom', NULL)""",
        event_id,
        payload,
    )
    http, headers = platform.stack.http, await platform.stack.admin_headers()
    listed = await http.get("/v1/ops/events", params={"status": "failed", "limit": 1000}, headers=headers)
    assert listed.status_code == 200, listed.text
    [item] = [e for e in listed.json()["data"] if e["event_id"] == event_id]
    assert item["service"] == "accounts" and item["last_error"] == "RuntimeError: boom" and item["attempts"] == 20
    assert listed.json()["services"]["accounts"] == "ok"

    replayed = await http.post(
        "/v1/ops/events/replay", json={"event_id": event_id, "service": "accounts"}, headers=headers
    )
    assert replayed.status_code == 200, replayed.text
    assert replayed.json()["replayed"] == 1 and replayed.json()["failed"] == 0
    status = await platform.pool("accounts").fetchval("SELECT status FROM inbox_events WHERE event_id = $1", event_id)
    assert status in ("applied", "ignored")
    again = await http.post("/v1/ops/events/replay", json={}, headers=headers)
    assert again.status_code == 200 and set(again.json()["services"]) == {"accounts", "payments", "terminal", "banking"}


async def test_operations_need_a_platform_admin(platform: WebhookPlatform) -> None:
    http = platform.stack.http
    assert (await http.get("/v1/ops/events")).status_code == 401
    assert (await http.post("/v1/ops/events/replay", json={})).status_code == 401
    headers = await platform.stack.admin_headers()
    bad = await http.get("/v1/ops/events", params={"status": "lost", "limit": "0"}, headers=headers)
    assert bad.status_code == 400 and {e["field"] for e in bad.json()["errors"]} == {"status", "limit"}
    assert (await http.post("/v1/ops/events/replay", json={"service": "nope"}, headers=headers)).status_code == 400


async def test_the_webhook_and_operations_routes_are_in_the_openapi_document(platform: WebhookPlatform) -> None:
    paths = (await platform.stack.http.get("/openapi.json")).json()["paths"]
    assert {"/webhooks/stripe", "/webhooks/qonto", "/v1/ops/events", "/v1/ops/events/replay"} <= set(paths)
    assert paths["/webhooks/stripe"]["post"]["security"] == []
