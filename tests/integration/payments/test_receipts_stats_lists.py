"""Receipts sent once, stats in the organisation's time zone, lists with filters and cursors, rate limit."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from tests.fixtures.organizations import OrgContext, onboarded_organization
from tests.fixtures.polling import eventually
from tests.fixtures.stack import Stack
from tests.integration.payments.conftest import confirm, create_payment, deliver, key, settle, stripe_events


async def test_receipt_is_sent_once_on_success(stack: Stack, org: OrgContext) -> None:
    smtp = stack.extras["smtp_server"]
    email = f"buyer-{uuid.uuid4().hex[:8]}@example.test"
    payment = await create_payment(stack, org.agent_headers, amount=1234, receipt_email=email, description="Calendrier")
    await confirm(stack, payment, org.stripe_account_id)
    await settle(stack, org, payment, org.stripe_account_id)

    async def received() -> bool:
        return bool(smtp.to(email))

    await eventually(received, "the receipt at the SMTP server", attempts=100)
    again = await deliver(stack, await stripe_events(stack, payment["stripe_payment_intent_id"], org.stripe_account_id))
    assert set(again) == {"duplicate"}, again
    # A later receipt goes through the same worker, which sends the oldest due first: once it has
    # arrived, a second receipt for the first payment would have been sent too.
    later_email = f"buyer-{uuid.uuid4().hex[:8]}@example.test"
    later = await create_payment(stack, org.agent_headers, amount=100, receipt_email=later_email)
    await confirm(stack, later, org.stripe_account_id)
    await settle(stack, org, later, org.stripe_account_id)

    async def later_received() -> bool:
        return bool(smtp.to(later_email))

    await eventually(later_received, "the later receipt at the SMTP server", attempts=100)
    messages = smtp.to(email)
    assert len(messages) == 1
    assert "12.34 EUR" in messages[0]["Subject"]
    assert payment["id"] in messages[0].get_payload()
    assert messages[0]["From"] == "receipts@platform.test"
    row = await stack.deps["payments"].pool.fetchrow("SELECT status FROM receipts WHERE payment_id = $1", payment["id"])
    assert row is not None and row["status"] == "sent"


async def test_stats_use_the_organisation_time_zone(stack: Stack, org: OrgContext) -> None:
    # 23:30 UTC is the next day in Paris, 21:30 UTC the same day (summer and winter time alike).
    day = datetime.now(UTC).date() - timedelta(days=5)
    first, next_day, last = (
        day.isoformat(),
        (day + timedelta(days=1)).isoformat(),
        (day + timedelta(days=2)).isoformat(),
    )
    late = {"local_id": uuid.uuid4().hex, "amount": 700, "method": "cash", "created_at": f"{first}T23:30:00Z"}
    early = {"local_id": uuid.uuid4().hex, "amount": 300, "method": "cash", "created_at": f"{first}T21:30:00Z"}
    answer = await stack.http.post(
        "/v1/payments/offline-batch", headers=org.agent_headers, json={"transactions": [late, early]}
    )
    assert [r["status"] for r in answer.json()["results"]] == ["created", "created"]
    stats = await stack.http.get(f"/v1/organizations/{org.id}/stats?from={first}&to={last}", headers=org.agent_headers)
    assert [(d["date"], d["gross"]) for d in stats.json()["days"]] == [(first, 300), (next_day, 700)]
    member = await stack.http.get(f"/v1/members/{org.agent_id}/stats?from={first}&to={last}", headers=org.admin_headers)
    assert member.json()["totals"]["gross"] == 1000
    # An instant picks the local day it falls in; `to` is exclusive (Paris midnight ends the day before).
    paris_midnight = datetime.combine(day + timedelta(days=1), time(), ZoneInfo("Europe/Paris")).isoformat()
    by_instants = await stack.http.get(
        f"/v1/organizations/{org.id}/stats",
        params={"from": f"{first}T12:00:00Z", "to": paris_midnight},
        headers=org.agent_headers,
    )
    assert by_instants.status_code == 200, by_instants.text
    assert [(d["date"], d["gross"]) for d in by_instants.json()["days"]] == [(first, 300)]
    # The list takes the stats' form too: local days, inclusive; and an instant still means an instant.
    for since, until, amounts in (
        (first, first, [300]),
        (next_day, next_day, [700]),
        (first, next_day, [700, 300]),
        (f"{first}T22:00:00Z", next_day, [700]),
    ):
        listed = await stack.http.get("/v1/payments", params={"from": since, "to": until}, headers=org.agent_headers)
        assert listed.status_code == 200, listed.text
        assert [
            p["amount"] for p in listed.json()["data"] if p["local_id"] in (late["local_id"], early["local_id"])
        ] == (amounts), (since, until)
    for bad_bound in ("2026-13-01", "2026-12-01T10:00", "0001-01-01", "1 déc."):
        refused = await stack.http.get("/v1/payments", params={"from": bad_bound}, headers=org.agent_headers)
        assert refused.status_code == 400 and refused.json()["errors"][0]["field"] == "from", (bad_bound, refused.text)
    # An agent sees only itself: another member's figures are not found (as GET of the member is).
    forbidden = await stack.http.get(f"/v1/members/{org.admin_id}/stats", headers=org.agent_headers)
    assert forbidden.status_code == 404
    other = await onboarded_organization(stack)
    hidden = await stack.http.get(f"/v1/members/{org.agent_id}/stats", headers=other.admin_headers)
    assert hidden.status_code == 404
    not_mine = await stack.http.get(f"/v1/organizations/{org.id}/stats", headers=other.admin_headers)
    assert not_mine.status_code == 404
    bad = await stack.http.get(
        f"/v1/organizations/{org.id}/stats?from=2026-02-01&to=2026-01-01", headers=org.admin_headers
    )
    assert bad.status_code == 400


async def test_lists_filter_and_page(stack: Stack, org: OrgContext) -> None:
    made = [await create_payment(stack, org.agent_headers, amount=1000 + i) for i in range(3)]
    mine = await create_payment(stack, org.admin_headers, amount=5000)
    seen: list[str] = []
    cursor = ""
    while True:
        page = await stack.http.get(f"/v1/payments?limit=2&cursor={cursor}", headers=org.admin_headers)
        assert page.status_code == 200, page.text
        seen += [p["id"] for p in page.json()["data"]]
        cursor = page.json()["next_cursor"] or ""
        if not cursor:
            break
    assert seen == [mine["id"], *[p["id"] for p in reversed(made)]]
    agent = await stack.http.get("/v1/payments", headers=org.agent_headers)
    assert {p["id"] for p in agent.json()["data"]} == {p["id"] for p in made}
    by_member = await stack.http.get(f"/v1/payments?member_id={org.admin_id}", headers=org.admin_headers)
    assert [p["id"] for p in by_member.json()["data"]] == [mine["id"]]
    succeeded = await stack.http.get("/v1/payments?status=succeeded", headers=org.admin_headers)
    assert succeeded.json()["data"] == []
    later = await stack.http.get("/v1/payments?from=2999-01-01T00:00:00Z", headers=org.admin_headers)
    assert later.json()["data"] == []
    bad = await stack.http.get("/v1/payments?status=lost", headers=org.admin_headers)
    assert bad.status_code == 400


async def test_payment_creation_is_rate_limited_per_member(stack: Stack) -> None:
    org = await onboarded_organization(stack)
    answers = [
        await stack.http.post("/v1/payments", headers={**org.agent_headers, **key()}, json={"amount": 1000})
        for _ in range(11)
    ]
    assert [a.status_code for a in answers] == [201] * 10 + [429]
    assert answers[-1].json()["code"] == "rate_limited"
    assert 1 <= int(answers[-1].headers["retry-after"]) <= 60
    # A replay is not a new payment; another member has their own budget.
    replay = await stack.http.post(
        "/v1/payments",
        headers={**org.agent_headers, "Idempotency-Key": answers[0].request.headers["idempotency-key"]},
        json={"amount": 1000},
    )
    assert replay.status_code == 201
    assert (
        await stack.http.post("/v1/payments", headers={**org.admin_headers, **key()}, json={"amount": 1000})
    ).status_code == 201
