"""Create rules, capture (also partial), cancel, declines and Stripe events (order, duplicates)."""

from __future__ import annotations

import stripe

from tests.fixtures.organizations import OrgContext, onboarded_organization, organization_body
from tests.fixtures.stack import Stack
from tests.integration.payments.conftest import (
    confirm,
    create_payment,
    deliver,
    get_payment,
    key,
    settle,
    stripe_events,
)


async def test_amount_limits_and_fields(stack: Stack, org: OrgContext) -> None:
    for amount in (99, 50_001, 0):
        answer = await stack.http.post("/v1/payments", headers={**org.agent_headers, **key()}, json={"amount": amount})
        assert answer.status_code == 400, answer.text
        assert answer.json()["errors"][0]["field"] == "amount"
    for body in ({"amount": 1000, "method": "bitcoin"}, {"amount": 1000, "capture_method": "later"}, {"amount": "10"}):
        answer = await stack.http.post("/v1/payments", headers={**org.agent_headers, **key()}, json=body)
        assert answer.status_code == 400 and answer.json()["code"] == "validation_error", answer.text
    assert (await create_payment(stack, org.agent_headers, amount=100))["amount"] == 100
    assert (await create_payment(stack, org.agent_headers, amount=50_000))["amount"] == 50_000


async def test_refused_while_the_account_cannot_take_charges(stack: Stack) -> None:
    pending = await onboarded_organization(stack, onboard=False)
    answer = await stack.http.post("/v1/payments", headers={**pending.agent_headers, **key()}, json={"amount": 1000})
    assert answer.status_code == 409
    assert answer.json()["code"] == "charges_not_enabled"


async def test_a_fee_that_would_take_the_whole_amount_is_refused(stack: Stack) -> None:
    """A €1 sale with a €1 minimum fee is a loss for the organisation: such policies and payments are refused."""
    admin = await stack.admin_headers()
    for policy in ({"fee_minimum": 100}, {"fee_minimum": 5000}, {"fee_percent_bps": 10_000}, {"fee_percent_bps": 9999}):
        refused = await stack.http.post("/v1/organizations", headers=admin, json=organization_body(**policy))
        assert refused.status_code == 400, (policy, refused.text)
        assert refused.json()["code"] == "validation_error" and "fee" in refused.json()["errors"][0]["field"]
    org = await onboarded_organization(stack, fee_minimum=99)
    changed = await stack.http.patch(f"/v1/organizations/{org.id}", headers=admin, json={"fee_minimum": 100})
    assert changed.status_code == 400 and changed.json()["errors"][0]["field"] == "fee_minimum", changed.text
    assert (await create_payment(stack, org.agent_headers, amount=100))["application_fee_amount"] == 99

    # A policy stored before the rule (or a smaller amount allowed since) is refused per payment.
    legacy = await onboarded_organization(stack)
    await stack.deps["accounts"].pool.execute("UPDATE organizations SET fee_minimum = 5000 WHERE id = $1", legacy.id)
    answer = await stack.http.post("/v1/payments", headers={**legacy.agent_headers, **key()}, json={"amount": 1000})
    assert answer.status_code == 400, answer.text
    assert answer.json()["code"] == "fee_exceeds_amount" and answer.json()["errors"][0]["field"] == "amount"
    listed = await stack.http.get("/v1/payments", headers=legacy.admin_headers)
    assert listed.json()["data"] == []


async def test_manual_capture_partial(stack: Stack) -> None:
    org = await onboarded_organization(stack, fee_percent_bps=1000)
    payment = await create_payment(stack, org.agent_headers, amount=1000, capture_method="manual")
    assert payment["application_fee_amount"] == 100
    await confirm(stack, payment, org.stripe_account_id)
    authorised = await settle(stack, org, payment, org.stripe_account_id, want="requires_capture")
    assert authorised["status"] == "requires_capture"
    too_much = await stack.http.post(
        f"/v1/payments/{payment['id']}/capture", headers=org.agent_headers, json={"amount_to_capture": 1001}
    )
    assert too_much.status_code == 400
    captured = await stack.http.post(
        f"/v1/payments/{payment['id']}/capture", headers=org.agent_headers, json={"amount_to_capture": 600}
    )
    assert captured.status_code == 200, captured.text
    body = captured.json()
    assert body["status"] == "succeeded" and body["amount_captured"] == 600
    assert body["application_fee_amount"] == 60
    again = await stack.http.post(f"/v1/payments/{payment['id']}/capture", headers=org.agent_headers, json={})
    assert again.status_code == 200 and again.json()["amount_captured"] == 600
    # Stripe's events arrive later and change nothing.
    await deliver(stack, await stripe_events(stack, payment["stripe_payment_intent_id"], org.stripe_account_id))
    final = await get_payment(stack, org.admin_headers, payment["id"])
    assert final["amount_captured"] == 600 and final["status"] == "succeeded"
    stats = (await stack.http.get(f"/v1/organizations/{org.id}/stats", headers=org.admin_headers)).json()
    assert stats["totals"]["gross"] == 600 and stats["totals"]["count"] == 1 and stats["totals"]["fees"] == 60


async def test_capture_refused_when_not_authorised(stack: Stack, org: OrgContext) -> None:
    payment = await create_payment(stack, org.agent_headers, amount=1000)
    answer = await stack.http.post(f"/v1/payments/{payment['id']}/capture", headers=org.agent_headers, json={})
    assert answer.status_code == 409 and answer.json()["code"] == "payment_not_capturable"


async def test_cancel(stack: Stack, org: OrgContext) -> None:
    payment = await create_payment(stack, org.agent_headers, amount=1000, capture_method="manual")
    answer = await stack.http.post(f"/v1/payments/{payment['id']}/cancel", headers=org.agent_headers)
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "canceled"
    intent = (
        await stack.extras["stripe_sandbox"]
        .client()
        .v1.payment_intents.retrieve_async(
            payment["stripe_payment_intent_id"], options={"stripe_account": org.stripe_account_id}
        )
    )
    assert intent.status == "canceled"
    again = await stack.http.post(f"/v1/payments/{payment['id']}/capture", headers=org.agent_headers)
    assert again.status_code == 409


async def test_declined_card_is_recorded_with_its_decline_code(stack: Stack, org: OrgContext) -> None:
    payment = await create_payment(stack, org.agent_headers, amount=1000, method="card")
    try:
        await confirm(stack, payment, org.stripe_account_id, pm="pm_card_visa_chargeDeclinedInsufficientFunds")
    except stripe.CardError as error:
        assert error.code == "card_declined"
    else:
        raise AssertionError("the card should be declined")
    await deliver(stack, await stripe_events(stack, payment["stripe_payment_intent_id"], org.stripe_account_id))
    declined = await get_payment(stack, org.agent_headers, payment["id"])
    assert declined["status"] == "requires_payment_method"
    assert declined["decline_code"] == "insufficient_funds"
    # The customer tries another card: it succeeds.
    await confirm(stack, payment, org.stripe_account_id, pm="pm_card_visa")
    done = await settle(stack, org, payment, org.stripe_account_id)
    assert done["status"] == "succeeded"


async def test_older_events_never_regress_and_duplicates_change_nothing(stack: Stack, org: OrgContext) -> None:
    payment = await create_payment(stack, org.agent_headers, amount=1000, capture_method="manual")
    await confirm(stack, payment, org.stripe_account_id)
    await stack.http.post(f"/v1/payments/{payment['id']}/capture", headers=org.agent_headers, json={})
    events = await stripe_events(stack, payment["stripe_payment_intent_id"], org.stripe_account_id)
    newest_first = list(reversed(events))
    await deliver(stack, newest_first)
    current = await get_payment(stack, org.agent_headers, payment["id"])
    assert current["status"] == "succeeded" and current["amount_captured"] == 1000
    assert set(await deliver(stack, events)) == {"duplicate"}
    stats = (await stack.http.get(f"/v1/organizations/{org.id}/stats", headers=org.admin_headers)).json()
    assert stats["totals"]["count"] == 1 and stats["totals"]["gross"] == 1000


async def test_other_organisations_cannot_see_a_payment(stack: Stack, org: OrgContext) -> None:
    payment = await create_payment(stack, org.agent_headers, amount=1000)
    other = await onboarded_organization(stack)
    answer = await stack.http.get(f"/v1/payments/{payment['id']}", headers=other.admin_headers)
    assert answer.status_code == 404
    assert (await stack.http.get("/v1/payments/not-a-uuid", headers=org.agent_headers)).status_code == 404
