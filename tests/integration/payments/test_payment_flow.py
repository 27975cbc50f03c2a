"""The main flow through the gateway with the Stripe sandbox: create, confirm, webhook, refunds, stats."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from tests.fixtures.organizations import onboarded_organization
from tests.fixtures.stack import Stack
from tests.integration.payments.conftest import confirm, create_payment, key, settle, stripe_account_for


@pytest.mark.parametrize("charge_model", ["direct", "destination"])
async def test_card_present_payment_refunds_and_stats(stack: Stack, charge_model: str) -> None:
    org = await onboarded_organization(stack, charge_model=charge_model, fee_percent_bps=150, fee_minimum=20)
    payment = await create_payment(stack, org.agent_headers, amount=1000, currency="eur")
    assert payment["status"] == "requires_payment_method"
    assert payment["amount"] == 1000 and payment["currency"] == "eur" and payment["method"] == "card_present"
    assert payment["application_fee_amount"] == 20  # max(20, round(1000 * 1.5 %) = 15)
    assert payment["stripe_payment_intent_id"].startswith("pi_")
    assert payment["client_secret"].startswith(payment["stripe_payment_intent_id"])
    account = stripe_account_for(org, charge_model)

    sandbox = stack.extras["stripe_sandbox"]
    intent = await sandbox.client().v1.payment_intents.retrieve_async(
        payment["stripe_payment_intent_id"], options={"stripe_account": account} if account else {}
    )
    assert intent.metadata["platform_payment_id"] == payment["id"]
    assert intent.metadata["organization_id"] == org.id and intent.metadata["member_id"] == org.agent_id
    assert intent.application_fee_amount == 20
    if charge_model == "destination":
        assert intent.on_behalf_of == org.stripe_account_id
        assert intent.transfer_data.destination == org.stripe_account_id

    await confirm(stack, payment, account)
    done = await settle(stack, org, payment, account)
    assert done["status"] == "succeeded" and done["amount_captured"] == 1000
    assert done["application_fee_amount"] == 20

    refund_url = f"/v1/payments/{payment['id']}/refunds"
    first = await stack.http.post(refund_url, headers={**org.admin_headers, **key()}, json={"amount": 200})
    assert first.status_code == 201, first.text
    assert first.json()["status"] == "succeeded" and first.json()["amount"] == 200
    assert first.json()["application_fee_refunded"] == 4  # 200 * 20 / 1000
    second = await stack.http.post(refund_url, headers={**org.admin_headers, **key()}, json={"amount": 900})
    assert second.status_code == 409, second.text
    assert second.json()["code"] == "refund_exceeds_remaining"

    after = await settle(stack, org, payment, account)
    assert after["amount_refunded"] == 200 and len(after["refunds"]) == 1
    stripe_refund = await sandbox.client().v1.refunds.retrieve_async(
        after["refunds"][0]["stripe_refund_id"], options={"stripe_account": account} if account else {}
    )
    assert stripe_refund.amount == 200

    today = datetime.now(UTC).astimezone(ZoneInfo("Europe/Paris")).date().isoformat()
    stats = await stack.http.get(f"/v1/organizations/{org.id}/stats", headers=org.agent_headers)
    assert stats.status_code == 200, stats.text
    body = stats.json()
    assert body["totals"]["gross"] == 1000 and body["totals"]["refunded"] == 200
    assert body["totals"]["count"] == 1 and body["totals"]["fees"] == 16
    assert body["totals"]["net"] == 1000 - 200 - 16
    assert [d["date"] for d in body["days"]] == [today]
    mine = await stack.http.get(f"/v1/members/{org.agent_id}/stats", headers=org.agent_headers)
    assert mine.status_code == 200 and mine.json()["totals"]["gross"] == 1000
    admins = await stack.http.get(f"/v1/members/{org.admin_id}/stats", headers=org.admin_headers)
    assert admins.json()["totals"]["gross"] == 0


async def test_one_trace_covers_every_hop_of_a_create(stack: Stack) -> None:
    """Gateway → Payments → Accounts (policy) → Stripe (the SDK's HTTP call) → PostgreSQL, one trace."""
    from opentelemetry.trace import SpanKind

    from tests.conftest import SPANS

    org = await onboarded_organization(stack)
    SPANS.clear()
    payment = await create_payment(stack, org.agent_headers, amount=1000, currency="eur")
    create = [s for s in SPANS.get_finished_spans() if s.kind == SpanKind.SERVER and "CreatePayment" in s.name]
    assert len(create) == 1, [s.name for s in SPANS.get_finished_spans()]
    trace_id = create[0].context.trace_id
    spans = [s for s in SPANS.get_finished_spans() if s.context.trace_id == trace_id]
    names = [(s.name, s.kind.name) for s in spans]
    assert any(s.kind == SpanKind.CLIENT and "PaymentPolicy" in s.name for s in spans), names
    stripe_calls = [
        s
        for s in spans
        if s.kind == SpanKind.CLIENT
        and any(str(v).endswith("/v1/payment_intents") for v in (s.attributes or {}).values())
    ]
    assert stripe_calls, names
    assert any((s.attributes or {}).get("db.system") == "postgresql" for s in spans), names
    assert payment["stripe_payment_intent_id"].startswith("pi_")
