"""Qonto → Banking: incremental pull (pages, status changes), webhooks into the same upsert."""

from __future__ import annotations

import uuid
from typing import Any

import grpc
import orjson
from collect.events.v1 import events_pb2 as events_pb
from collect.events.v1 import events_pb2_grpc

from tests.fixtures.polling import eventually
from tests.fixtures.stack import Stack


async def _sync(stack: Stack) -> dict[str, int]:
    answer = await stack.http.post("/v1/banking/sync", headers=await stack.admin_headers())
    assert answer.status_code == 200, answer.text
    return answer.json()


async def _transactions(stack: Stack, **params: str) -> list[dict[str, Any]]:
    headers = await stack.admin_headers()
    found: list[dict[str, Any]] = []
    cursor = ""
    while True:
        query = {"limit": "100", **params, **({"cursor": cursor} if cursor else {})}
        answer = await stack.http.get("/v1/banking/transactions", params=query, headers=headers)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        found += body["data"]
        cursor = body["next_cursor"]
        if not cursor:
            return found


async def test_pull_reads_every_page_and_updates_a_status_change_in_place(stack: Stack) -> None:
    qonto = stack.extras["qonto_sandbox"]
    await _sync(stack)  # start from the current cursor
    tag = uuid.uuid4().hex[:8]
    created = [
        await qonto.inject(amount_cents=100 + i, side="credit", label=f"PAGE {tag}", reference=f"{tag}-{i}")
        for i in range(230)
    ]
    pending = await qonto.inject(amount_cents=4242, label=f"PENDING {tag}", status="pending")
    first = await _sync(stack)
    assert first["inserted"] >= 231 and first["fetched"] >= 231  # three pages of 100
    mine = [t for t in await _transactions(stack) if (t["label"] or "").endswith(tag)]
    assert len(mine) == 231
    assert sum(t["amount"] for t in mine) == sum(100 + i for i in range(230)) + 4242

    await qonto.update(pending["id"], status="completed")
    second = await _sync(stack)
    assert second["updated"] >= 1
    again = [t for t in await _transactions(stack) if t["transaction_id"] == pending["transaction_id"]]
    assert len(again) == 1 and again[0]["status"] == "completed"
    assert again[0]["iban"] and again[0]["side"] == "credit"
    assert created[0]["transaction_id"] in {t["transaction_id"] for t in mine}

    third = await _sync(stack)  # nothing changed: the overlap re-reads without counting changes
    assert third["inserted"] == 0 and third["updated"] == 0


async def test_webhook_events_feed_the_same_upsert_and_duplicates_change_nothing(stack: Stack) -> None:
    qonto = stack.extras["qonto_sandbox"]
    tag = uuid.uuid4().hex[:8]
    txn = await qonto.inject(amount_cents=777, label=f"HOOK {tag}", status="pending")
    channel = grpc.aio.insecure_channel(stack.target("banking"))
    stub = events_pb2_grpc.EventSinkServiceStub(channel)
    metadata = (("authorization", f"Bearer {stack.signer.service_token('test')}"),)

    def event(event_id: str, body: dict[str, Any]) -> events_pb.DeliverEventRequest:
        payload = {"id": event_id, "event_type": "transaction.updated", "data": {"transaction": body}}
        return events_pb.DeliverEventRequest(
            event=events_pb.Event(
                source="qonto", event_id=event_id, type="transaction.updated", payload=orjson.dumps(payload)
            )
        )

    completed = await qonto.update(txn["id"], status="completed")
    # The newer version first, then a duplicate of it, then the older version (out of order).
    answers = [
        await stub.DeliverEvent(event("evt-new-" + tag, completed), metadata=metadata),
        await stub.DeliverEvent(event("evt-new-" + tag, completed), metadata=metadata),
        await stub.DeliverEvent(event("evt-old-" + tag, txn), metadata=metadata),
    ]
    assert [a.duplicate for a in answers] == [False, True, False]
    assert answers[0].status == "pending"  # recorded fast, applied by the inbox worker
    await channel.close(None)

    async def both_applied() -> bool:
        rows = await stack.deps["banking"].pool.fetch(
            "SELECT status FROM inbox_events WHERE event_id = ANY($1::text[])", ["evt-new-" + tag, "evt-old-" + tag]
        )
        return len(rows) == 2 and all(r["status"] == "applied" for r in rows)

    await eventually(both_applied, "both events applied by the inbox worker")
    rows = await stack.deps["banking"].pool.fetch(
        "SELECT status, amount_cents FROM bank_transactions WHERE transaction_id = $1", txn["transaction_id"]
    )
    assert [(r["status"], r["amount_cents"]) for r in rows] == [("completed", 777)]


async def test_pull_backs_off_when_qonto_rate_limits(stack: Stack) -> None:
    qonto = stack.extras["qonto_sandbox"]
    tag = uuid.uuid4().hex[:8]
    txn = await qonto.inject(amount_cents=999, label=f"LIMITED {tag}")
    qonto.inject_faults(429, count=2, retry_after=0)
    counts = await _sync(stack)
    assert counts["inserted"] >= 1
    assert txn["transaction_id"] in {t["transaction_id"] for t in await _transactions(stack)}


async def test_qonto_unavailable_answers_503(stack: Stack) -> None:
    qonto = stack.extras["qonto_sandbox"]
    headers = await stack.admin_headers()
    qonto.inject_faults(429, count=5, retry_after=0)  # every attempt of one request
    answer = await stack.http.post("/v1/banking/sync", headers=headers)
    assert answer.status_code == 503 and answer.json()["code"] == "qonto_unavailable"
    assert (await stack.http.post("/v1/banking/sync", headers=headers)).status_code == 200
