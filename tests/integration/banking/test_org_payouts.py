"""An organisation's payouts: the schedule at Stripe, a manual payout (once per key), the list, a failure."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.fixtures.organizations import onboarded_organization
from tests.fixtures.stack import Stack

from .conftest import account_events, deliver, eventually, sell


async def _payout(stack: Stack, org_id: str, headers: dict[str, str], key: str, **body: Any) -> httpx.Response:
    return await stack.http.post(
        f"/v1/organizations/{org_id}/payouts", headers={**headers, "Idempotency-Key": key}, json=body
    )


async def test_a_manual_payout_pays_the_available_balance_once_and_is_listed(bank_stack: Stack) -> None:
    stack = bank_stack
    org = await onboarded_organization(stack)
    assert org.stripe_account_id
    await sell(stack, org, [2500, 1500])
    sandbox = stack.extras["stripe_sandbox"].client(stripe_account=org.stripe_account_id)
    available = (await sandbox.v1.balance.retrieve_async()).available[0].amount
    assert available > 0

    key = uuid.uuid4().hex
    first = await _payout(stack, org.id, org.admin_headers, key)
    assert first.status_code == 201, first.text
    payout = first.json()
    assert (payout["amount"], payout["currency"], payout["organization_id"]) == (available, "eur", org.id)
    again = await _payout(stack, org.id, org.admin_headers, key)
    assert again.status_code == 201 and again.json()["id"] == payout["id"]
    at_stripe = (await sandbox.v1.payouts.list_async(params={"limit": 100})).data
    assert [p.id for p in at_stripe] == [payout["stripe_payout_id"]], "one payout at Stripe for one key"

    listed = await stack.http.get(f"/v1/organizations/{org.id}/payouts", headers=org.admin_headers)
    assert listed.status_code == 200, listed.text
    assert [p["id"] for p in listed.json()["data"]] == [payout["id"]]
    nothing_left = await _payout(stack, org.id, org.admin_headers, uuid.uuid4().hex)
    assert nothing_left.status_code == 409 and nothing_left.json()["code"] == "balance_insufficient", nothing_left.text

    # The audit trail holds the payout once, though its key was used twice.
    async def forwarded() -> bool:
        return await stack.deps["banking"].pool.fetchval("SELECT count(*) FROM audit_outbox") == 0

    await eventually(forwarded, "banking's audit records chained")
    audit = await stack.http.get("/v1/audit", headers=org.admin_headers, params={"action": "payout.created"})
    [entry] = audit.json()["data"]
    assert entry["targets"] == {"payout_id": payout["id"], "stripe_payout": payout["stripe_payout_id"]}
    assert (entry["actor_id"], entry["after"]) == (org.admin_id, {"amount": available, "currency": "eur"})
    assert entry["request_id"] == first.headers["x-request-id"]


async def test_payouts_are_the_organisations_own(bank_stack: Stack) -> None:
    stack = bank_stack
    org, other = await onboarded_organization(stack), await onboarded_organization(stack)
    for headers in (other.admin_headers, other.agent_headers):
        seen = await stack.http.get(f"/v1/organizations/{org.id}/payouts", headers=headers)
        assert seen.status_code in (403, 404), seen.text
    agent = await stack.http.get(f"/v1/organizations/{org.id}/payouts", headers=org.agent_headers)
    assert agent.status_code == 403, agent.text
    paid_by_agent = await _payout(stack, org.id, org.agent_headers, uuid.uuid4().hex)
    assert paid_by_agent.status_code == 403, paid_by_agent.text
    by_other = await _payout(stack, org.id, other.admin_headers, uuid.uuid4().hex)
    assert by_other.status_code == 404, by_other.text


async def test_the_schedule_is_set_at_stripe_and_an_automatic_one_refuses_manual_payouts(bank_stack: Stack) -> None:
    stack = bank_stack
    org = await onboarded_organization(stack)
    url = f"/v1/organizations/{org.id}/payout-schedule"
    no_anchor = await stack.http.patch(url, headers=org.admin_headers, json={"interval": "weekly"})
    assert no_anchor.status_code == 400, no_anchor.text
    assert [e["field"] for e in no_anchor.json()["errors"]] == ["weekly_anchor"]
    unknown = await stack.http.patch(url, headers=org.admin_headers, json={"interval": "hourly"})
    assert unknown.status_code == 400 and unknown.json()["errors"][0]["field"] == "interval"

    weekly = await stack.http.patch(
        url, headers=org.admin_headers, json={"interval": "weekly", "weekly_anchor": "friday"}
    )
    assert weekly.status_code == 200, weekly.text
    assert weekly.json()["interval"] == "weekly" and weekly.json()["weekly_anchor"] == "friday"
    account = await stack.extras["stripe_sandbox"].client().v1.accounts.retrieve_async(org.stripe_account_id)
    assert account.settings.payouts.schedule.interval == "weekly"
    read = await stack.http.get(url, headers=org.admin_headers)
    assert read.status_code == 200 and read.json()["weekly_anchor"] == "friday", read.text
    assert (await stack.http.get(url, headers=org.agent_headers)).status_code == 403
    other = await onboarded_organization(stack, onboard=False)
    assert (await stack.http.get(url, headers=other.admin_headers)).status_code == 404
    # An agent is refused before its body is read, whatever the body.
    assert (await stack.http.patch(url, headers=org.agent_headers, content=b"\xff")).status_code == 403

    refused = await _payout(stack, org.id, org.admin_headers, uuid.uuid4().hex)
    assert refused.status_code == 409 and refused.json()["code"] == "payout_schedule_not_manual", refused.text
    back = await stack.http.patch(url, headers=org.admin_headers, json={"interval": "manual"})
    assert back.json() == {"interval": "manual", "weekly_anchor": None, "delay_days": 2}


async def test_a_failed_payout_shows_why(bank_stack: Stack) -> None:
    stack = bank_stack
    org = await onboarded_organization(stack)
    assert org.stripe_account_id
    await sell(stack, org, [3000])
    created = await _payout(stack, org.id, org.admin_headers, uuid.uuid4().hex)
    assert created.status_code == 201, created.text
    stripe_payout_id = created.json()["stripe_payout_id"]
    sandbox = stack.extras["stripe_sandbox"]
    async with httpx.AsyncClient(base_url=sandbox.url) as http:
        failed = await http.post(f"/_sandbox/payouts/{stripe_payout_id}/fail", json={"failure_code": "account_closed"})
    assert failed.status_code == 200, failed.text
    events = [
        e
        for e in await account_events(stack, org.stripe_account_id, "payout.failed")
        if e["data"]["object"]["id"] == stripe_payout_id
    ]
    assert events, "the sandbox sent payout.failed"
    await deliver(stack, "banking", events)

    async def failure_listed() -> dict[str, Any] | None:
        listed = await stack.http.get(f"/v1/organizations/{org.id}/payouts", headers=org.admin_headers)
        found: dict[str, Any] = listed.json()["data"][0]
        return found if found["status"] == "failed" else None

    shown = await eventually(failure_listed, what="the failed payout listed as failed")
    assert shown["failure_code"] == "account_closed" and shown["failure_message"]


async def _pages(stack: Stack, path: str, headers: dict[str, str], **params: str) -> list[dict[str, Any]]:
    """Every payout a listing answers, one per page (each page's cursor followed)."""
    found: list[dict[str, Any]] = []
    cursor = ""
    while True:
        query = {"limit": "1", **params, **({"cursor": cursor} if cursor else {})}
        answer = await stack.http.get(path, params=query, headers=headers)
        assert answer.status_code == 200, answer.text
        found += answer.json()["data"]
        cursor = answer.json()["next_cursor"] or ""
        if not cursor:
            return found


async def test_the_banking_payouts_listing_gives_an_org_admin_only_its_own(bank_stack: Stack) -> None:
    # `GET /v1/banking/payouts` is ListPayouts' second binding: every account's payouts for a
    # platform admin, the caller's own organisation's for an org_admin, whatever it names.
    stack = bank_stack
    admin = await stack.admin_headers()
    org, other = await onboarded_organization(stack), await onboarded_organization(stack)
    made: dict[str, set[str]] = {org.id: set(), other.id: set()}
    for owner in (org, other, org, other):  # two payouts each, interleaved in time
        await sell(stack, owner, [1200])
        paid = await _payout(stack, owner.id, owner.admin_headers, uuid.uuid4().hex)
        assert paid.status_code == 201, paid.text
        made[owner.id].add(paid.json()["id"])

    everything = {p["id"]: p["organization_id"] for p in await _pages(stack, "/v1/banking/payouts", admin)}
    assert made[org.id] | made[other.id] <= everything.keys()
    narrowed = await _pages(stack, "/v1/banking/payouts", admin, organization_id=org.id)
    assert {p["id"] for p in narrowed} == made[org.id]

    for path in ("/v1/banking/payouts", f"/v1/organizations/{org.id}/payouts"):
        own = await _pages(stack, path, org.admin_headers)
        assert {p["id"] for p in own} == made[org.id], path
        assert {p["organization_id"] for p in own} == {org.id}
        assert (await stack.http.get(path, headers=org.agent_headers)).status_code == 403

    # Naming the other organisation, in the query or in the path: 404 and none of its ids.
    for path, params in (
        ("/v1/banking/payouts", {"organization_id": other.id}),
        (f"/v1/organizations/{other.id}/payouts", {}),
    ):
        refused = await stack.http.get(path, params=params, headers=org.admin_headers)
        assert refused.status_code == 404, refused.text
        assert not any(payout_id in refused.text for payout_id in made[other.id])

    # The other organisation's cursors only position the org_admin's own listing.
    first = await stack.http.get("/v1/banking/payouts", params={"limit": "1"}, headers=other.admin_headers)
    cursor = first.json()["next_cursor"]
    assert cursor and [p["organization_id"] for p in first.json()["data"]] == [other.id]
    for path in ("/v1/banking/payouts", f"/v1/organizations/{org.id}/payouts"):
        after = await stack.http.get(path, params={"cursor": cursor, "limit": "100"}, headers=org.admin_headers)
        assert after.status_code == 200, after.text
        assert {p["organization_id"] for p in after.json()["data"]} <= {org.id}
        assert not made[other.id] & {p["id"] for p in after.json()["data"]}
