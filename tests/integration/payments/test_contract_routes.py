"""Payments as served from payments.proto: who may call is decided before the body is read, a
platform admin acts on a payment by its id alone, and the declared rules answer 400 with paths."""

from __future__ import annotations

from tests.fixtures.organizations import OrgContext
from tests.fixtures.stack import Stack
from tests.integration.payments.conftest import confirm, create_payment, key, settle, stripe_account_for


async def test_an_agents_refund_is_refused_before_its_body_is_read(stack: Stack, org: OrgContext) -> None:
    payment = await create_payment(stack, org.agent_headers, amount=1000)
    huge = await stack.http.post(
        f"/v1/payments/{payment['id']}/refunds",
        headers={**org.agent_headers, **key()},
        json={"amount": 2**70, "reason": "no such reason"},
    )
    assert huge.status_code == 403 and huge.json()["code"] == "forbidden", huge.text


async def test_a_platform_admin_acts_on_a_payment_by_its_id_alone(stack: Stack, org: OrgContext) -> None:
    admin = await stack.admin_headers()
    held = await create_payment(stack, org.agent_headers, amount=1500, capture_method="manual")
    read = await stack.http.get(f"/v1/payments/{held['id']}", headers=admin)
    assert read.status_code == 200 and read.json()["organization_id"] == org.id, read.text
    canceled = await stack.http.post(f"/v1/payments/{held['id']}/cancel", headers=admin, json={})
    assert canceled.status_code == 200 and canceled.json()["status"] == "canceled", canceled.text

    sold = await create_payment(stack, org.agent_headers, amount=1000)
    account = stripe_account_for(org, "direct")
    await confirm(stack, sold, account)
    assert (await settle(stack, org, sold, account))["status"] == "succeeded"
    refund = await stack.http.post(
        f"/v1/payments/{sold['id']}/refunds", headers={**admin, **key()}, json={"amount": 400}
    )
    assert refund.status_code == 201 and refund.json()["amount"] == 400, refund.text

    unknown = await stack.http.get("/v1/payments/00000000-0000-0000-0000-000000000000", headers=admin)
    assert unknown.status_code == 404 and unknown.json()["code"] == "payment_not_found"


async def test_every_field_error_is_answered_at_once_with_its_path(stack: Stack, org: OrgContext) -> None:
    answer = await stack.http.post(
        "/v1/payments",
        headers={**org.agent_headers, **key()},
        json={"amount": 2**63, "currency": "EUR", "method": "cash", "metadata": {"k": "v\u0000"}},
    )
    assert answer.status_code == 400 and answer.json()["code"] == "validation_error"
    fields = {error["field"] for error in answer.json()["errors"]}
    assert fields == {"amount", "currency", "method", "metadata.k"}, answer.text
    batch = await stack.http.post(
        "/v1/payments/offline-batch", headers=org.agent_headers, json={"transactions": [{"amount": "x"}, 3]}
    )
    # Offline items are read leniently: each bad one is rejected alone by the service.
    assert batch.status_code == 200 and [r["status"] for r in batch.json()["results"]] == ["rejected", "rejected"]
