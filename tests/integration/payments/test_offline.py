"""Offline batches: cash, forwarded card intents, duplicates, rejections, and the batch limit."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from tests.fixtures.organizations import OrgContext, onboarded_organization, organization_body
from tests.fixtures.stack import Stack

DAY = (datetime.now(UTC) - timedelta(days=2)).date().isoformat()
AT = f"{DAY}T10:00:00Z"


def item(local_id: str | None = None, **fields: Any) -> dict[str, Any]:
    return {
        "local_id": uuid.uuid4().hex if local_id is None else local_id,
        "amount": 1000,
        "method": "cash",
        "created_at": AT,
        **fields,
    }


async def submit(
    stack: Stack, org: OrgContext, items: list[Any], headers: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    answer = await stack.http.post(
        "/v1/payments/offline-batch", headers=headers or org.agent_headers, json={"transactions": items}
    )
    assert answer.status_code == 200, answer.text
    results: list[dict[str, Any]] = answer.json()["results"]
    return results


async def paid_intent(stack: Stack, account: str, amount: int = 1500) -> str:
    """A card_present intent the phone created and confirmed on its own while offline."""
    client = stack.extras["stripe_sandbox"].client()
    intent = await client.v1.payment_intents.create_async(
        params={"amount": amount, "currency": "eur", "payment_method_types": ["card_present"]},
        options={"stripe_account": account},
    )
    await client.v1.payment_intents.confirm_async(
        intent.id, params={"payment_method": "pm_card_present"}, options={"stripe_account": account}
    )
    return str(intent.id)


async def test_cash_duplicates_and_rejections(stack: Stack, org: OrgContext) -> None:
    cash = item()
    results = await submit(
        stack,
        org,
        [cash, dict(cash), item(amount=0), item(method="cheque"), item(created_at=None), item(local_id=""), "junk"],
    )
    assert [r["status"] for r in results] == ["created", "duplicate", *["rejected"] * 5]
    assert results[1]["payment_id"] == results[0]["payment_id"]
    assert all(r["error"] for r in results[2:])
    again = await submit(stack, org, [cash, item()])
    assert [r["status"] for r in again] == ["duplicate", "created"]
    assert again[0]["payment_id"] == results[0]["payment_id"]
    payment = (await stack.http.get(f"/v1/payments/{results[0]['payment_id']}", headers=org.agent_headers)).json()
    assert payment["status"] == "succeeded" and payment["method"] == "cash"
    assert payment["stripe_payment_intent_id"] is None and payment["local_id"] == cash["local_id"]
    assert payment["created_at"] == AT
    stats = await stack.http.get(f"/v1/organizations/{org.id}/stats?from={DAY}&to={DAY}", headers=org.admin_headers)
    assert stats.json()["totals"]["gross"] == 2000 and stats.json()["totals"]["count"] == 2


async def test_card_items_link_verified_intents(stack: Stack, org: OrgContext) -> None:
    assert org.stripe_account_id
    good = await paid_intent(stack, org.stripe_account_id)
    other = await onboarded_organization(stack)
    assert other.stripe_account_id
    foreign = await paid_intent(stack, other.stripe_account_id)
    first = item(method="card", amount=1500, stripe_payment_intent_id=good)
    results = await submit(
        stack,
        org,
        [
            first,
            item(method="card", amount=1500, stripe_payment_intent_id=foreign),
            item(method="card", amount=1400, stripe_payment_intent_id=good),
            item(method="card", amount=1500),
            item(method="card", amount=1500, stripe_payment_intent_id="pi_doesnotexist"),
        ],
    )
    assert [r["status"] for r in results] == ["created", "rejected", "rejected", "rejected", "rejected"], results
    payment = (await stack.http.get(f"/v1/payments/{results[0]['payment_id']}", headers=org.agent_headers)).json()
    assert payment["status"] == "succeeded" and payment["stripe_payment_intent_id"] == good
    assert payment["method"] == "card_present" and payment["amount_captured"] == 1500
    # The same intent under another local_id is refused; the same local_id is a duplicate.
    replay = await submit(stack, org, [first, item(method="card", amount=1500, stripe_payment_intent_id=good)])
    assert [r["status"] for r in replay] == ["duplicate", "rejected"]


async def test_batch_limit(stack: Stack, org: OrgContext) -> None:
    too_many = await stack.http.post(
        "/v1/payments/offline-batch", headers=org.agent_headers, json={"transactions": [item() for _ in range(501)]}
    )
    assert too_many.status_code == 400
    results = await submit(stack, org, [item() for _ in range(500)])
    assert {r["status"] for r in results} == {"created"}


async def test_cash_payments_refund_locally(stack: Stack, org: OrgContext) -> None:
    created = await submit(stack, org, [item(amount=800)])
    payment_id = created[0]["payment_id"]
    refund = await stack.http.post(
        f"/v1/payments/{payment_id}/refunds",
        headers={**org.admin_headers, "Idempotency-Key": uuid.uuid4().hex},
        json={"amount": 300},
    )
    assert refund.status_code == 201, refund.text
    assert refund.json()["status"] == "succeeded" and refund.json()["stripe_refund_id"] is None
    payment = (await stack.http.get(f"/v1/payments/{payment_id}", headers=org.admin_headers)).json()
    assert payment["amount_refunded"] == 300
    # The refund belongs to the day it happened (today in Paris), not to the sale's day two days ago.
    today = datetime.now(ZoneInfo("Europe/Paris")).date().isoformat()
    sale_day, refund_day = [
        (
            await stack.http.get(f"/v1/organizations/{org.id}/stats?from={day}&to={day}", headers=org.admin_headers)
        ).json()["totals"]
        for day in (DAY, today)
    ]
    assert (sale_day["gross"], sale_day["refunded"]) == (800, 0), sale_day
    assert (refund_day["gross"], refund_day["refunded"]) == (0, 300), refund_day


async def test_only_the_organisations_currency_is_taken(stack: Stack, org: OrgContext) -> None:
    results = await submit(
        stack,
        org,
        [item(currency="eur"), item(currency="usd"), item(currency="jpy"), item(currency="xyz"), item(amount=500)],
    )
    assert [r["status"] for r in results] == ["created", "rejected", "rejected", "rejected", "created"], results
    assert "eur" in results[1]["error"]
    for currency in ("zzz", "usd"):
        online = await stack.http.post(
            "/v1/payments",
            headers={**org.agent_headers, "Idempotency-Key": uuid.uuid4().hex},
            json={"amount": 1000, "currency": currency},
        )
        assert online.status_code == 400 and online.json()["code"] == "currency_not_accepted", online.text
    listed = await stack.http.get("/v1/payments", headers=org.admin_headers)
    assert len(listed.json()["data"]) == 2  # nothing recorded for the refused ones
    stats = (
        await stack.http.get(f"/v1/organizations/{org.id}/stats?from={DAY}&to={DAY}", headers=org.admin_headers)
    ).json()
    assert stats["totals"] == {**stats["totals"], "currency": "eur", "gross": 1500, "count": 2}
    assert [(t["currency"], t["gross"]) for t in stats["totals_by_currency"]] == [("eur", 1500)]
    admin = await stack.admin_headers()
    bad = await stack.http.post("/v1/organizations", headers=admin, json=organization_body(default_currency="xyz"))
    assert bad.status_code == 400 and "default_currency" in bad.text


async def another_agent(stack: Stack, org: OrgContext) -> dict[str, str]:
    email = f"agent-{uuid.uuid4().hex[:10]}@example.test"
    made = await stack.http.post(
        f"/v1/organizations/{org.id}/members",
        headers=org.admin_headers,
        json={"email": email, "name": "Second Agent", "role": "agent", "password": org.password},
    )
    assert made.status_code == 201, made.text
    return await stack.login(email, org.password)


async def test_local_ids_are_each_phones_own(stack: Stack, org: OrgContext) -> None:
    """Two agents' phones both number their first sale 1: both are recorded; each replay is a duplicate."""
    second = await another_agent(stack, org)
    first = await submit(stack, org, [item("1", amount=1000)])
    other = await submit(stack, org, [item("1", amount=700)], headers=second)
    assert first[0]["status"] == other[0]["status"] == "created", (first, other)
    assert first[0]["payment_id"] != other[0]["payment_id"]
    again = await submit(stack, org, [item("1", amount=700)], headers=second)
    assert again[0]["status"] == "duplicate" and again[0]["payment_id"] == other[0]["payment_id"]
    mine = await submit(stack, org, [item("1", amount=1000)])
    assert mine[0]["status"] == "duplicate" and mine[0]["payment_id"] == first[0]["payment_id"]
    stats = await stack.http.get(f"/v1/organizations/{org.id}/stats?from={DAY}&to={DAY}", headers=org.admin_headers)
    assert stats.json()["totals"]["gross"] == 1700 and stats.json()["totals"]["count"] == 2


async def test_created_at_outside_the_window_is_rejected_item_by_item(stack: Stack, org: OrgContext) -> None:
    now = datetime.now(UTC)
    at = [
        "2001-01-01T10:00:00Z",
        (now - timedelta(days=31)).isoformat(),
        (now + timedelta(hours=1)).isoformat(),
        (now - timedelta(days=29)).isoformat(),
        (now + timedelta(seconds=30)).isoformat(),
    ]
    results = await submit(stack, org, [item(created_at=moment) for moment in at])
    assert [r["status"] for r in results] == ["rejected", "rejected", "rejected", "created", "created"], results
    assert "30 days" in results[0]["error"] and "future" in results[2]["error"]
    old = await stack.http.get(
        f"/v1/organizations/{org.id}/stats?from=2001-01-01&to=2001-01-01", headers=org.admin_headers
    )
    assert old.json()["totals"]["count"] == 0
