"""Stored webhook payloads keep no personal data in clear, and are purged after their retention
while the event id, type and status stay for deduplication."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta

import orjson

from runtime.inbox import DEFAULT_PAYLOAD_RETENTION_DAYS, REDACTED, purge_payloads, redact
from tests.fixtures.organizations import organization_body
from tests.fixtures.stack import Stack
from tests.integration.payments.conftest import deliver


async def test_an_account_event_is_stored_without_personal_data_and_its_payload_purged_later(stack: Stack) -> None:
    admin = await stack.admin_headers()
    body = organization_body()
    org = (await stack.http.post("/v1/organizations", headers=admin, json=body)).json()
    account_id = (
        await stack.http.post(f"/v1/organizations/{org['id']}/stripe-account", headers=admin, json={})
    ).json()["stripe_account_id"]
    account = (await stack.extras["stripe_sandbox"].client().v1.accounts.retrieve_async(account_id)).to_dict()
    account.update(charges_enabled=True, payouts_enabled=True)
    account["metadata"] = {**account.get("metadata", {}), "contact": f"write to {body['email']} please"}
    event = {
        "id": f"evt_{uuid.uuid4().hex[:20]}",
        "object": "event",
        "type": "account.updated",
        "account": account_id,
        "created": int(time.time()) + 1,
        "data": {"object": account},
    }
    assert body["email"] in orjson.dumps(event).decode()  # the event does carry personal data
    assert await deliver(stack, [event], "accounts") == ["applied"]  # applied from the redacted payload

    pool = stack.deps["accounts"].pool
    stored = await pool.fetchval("SELECT payload::text FROM inbox_events WHERE event_id = $1", event["id"])
    assert body["email"] not in stored and body["name"] not in stored
    assert REDACTED in stored and account_id in stored  # ids stay
    # Past the retention the payload goes; the row (id, type, status) stays and dedupes.
    fresh = {**event, "id": f"evt_{uuid.uuid4().hex[:20]}", "created": event["created"] + 1}
    assert await deliver(stack, [fresh], "accounts") == ["applied"]
    await pool.execute(
        "UPDATE inbox_events SET received_at = now() - make_interval(days => $2) WHERE event_id = $1",
        event["id"],
        DEFAULT_PAYLOAD_RETENTION_DAYS + 1,
    )
    assert await purge_payloads(pool, timedelta(days=DEFAULT_PAYLOAD_RETENTION_DAYS)) >= 1
    row = await pool.fetchrow(
        "SELECT type, status, payload::text AS payload FROM inbox_events WHERE event_id = $1", event["id"]
    )
    assert row is not None and (row["type"], row["status"], row["payload"]) == ("account.updated", "applied", "{}")
    kept = await pool.fetchval("SELECT payload::text FROM inbox_events WHERE event_id = $1", fresh["id"])
    assert kept != "{}"
    assert await deliver(stack, [event], "accounts") == ["duplicate"]


def test_redaction_keeps_the_shape_and_every_non_personal_value() -> None:
    payload = {
        "id": "ch_1",
        "amount": 1200,
        "billing_details": {"name": "Jeanne Martin", "address": {"line1": "1 rue", "postal_code": "69001"}},
        "receipt_email": "jeanne@example.org",
        "individual": {"dob": {"day": 1, "month": 2, "year": 1980}, "verification": {"status": "verified"}},
        "description": "Sale for jeanne@example.org",
        "metadata": {"platform_payment_id": "p1"},
        "paid": True,
        "requirements": {"currently_due": ["individual.email"]},
    }
    redacted = redact(payload)
    text = orjson.dumps(redacted).decode()
    assert "jeanne" not in text.lower() and "Martin" not in text and "1980" not in text
    assert redacted["billing_details"]["address"]["postal_code"] == REDACTED
    assert redacted["individual"]["dob"] == {"day": None, "month": None, "year": None}
    assert redacted["individual"]["verification"]["status"] == REDACTED
    assert redacted["description"] == f"Sale for {REDACTED}"
    for kept in ("id", "amount", "metadata", "paid", "requirements"):
        assert redacted[kept] == payload[kept]
