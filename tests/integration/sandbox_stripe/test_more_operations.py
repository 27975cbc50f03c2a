"""The operations added for the platform's whole Connect + Terminal surface, with their state."""

from __future__ import annotations

import httpx
import pytest
import stripe
from stripe.params.terminal import LocationCreateParamsAddress

from sandbox.stripe.testing import ConnectedAccount, RunningSandbox
from tests.fixtures.stripe_types import given, id_of

ADDRESS: LocationCreateParamsAddress = {
    "line1": "1 rue de la Paix",
    "city": "Paris",
    "postal_code": "75002",
    "country": "FR",
}


async def test_account_capabilities_persons_external_accounts_and_reject(stripe_sandbox: RunningSandbox) -> None:
    account = await stripe_sandbox.create_connected_account()
    platform = account.platform
    capabilities = await platform.v1.accounts.capabilities.list_async(account.id)
    assert {c.id: c.status for c in capabilities.data} == {"card_payments": "active", "transfers": "active"}
    transfers = await platform.v1.accounts.capabilities.update_async(account.id, "transfers", {"requested": False})
    assert transfers.status == "inactive"
    assert given((await platform.v1.accounts.retrieve_async(account.id)).capabilities).transfers == "inactive"

    person = await platform.v1.accounts.persons.create_async(
        account.id,
        params={"first_name": "Ada", "last_name": "L", "relationship": {"representative": True}, "id_number": "1"},
    )
    assert given(person.relationship).representative and person.id_number_provided and "id_number" not in person
    await platform.v1.accounts.persons.update_async(account.id, person.id, params={"email": "ada@example.com"})
    listed = await platform.v1.accounts.persons.list_async(account.id)
    assert [(p.id, p.email) for p in listed.data] == [(person.id, "ada@example.com")]
    await platform.v1.accounts.persons.delete_async(account.id, person.id)
    assert (await platform.v1.accounts.persons.list_async(account.id)).data == []

    bank = await platform.v1.accounts.external_accounts.create_async(
        account.id,
        params={"external_account": "btok_fr_sandbox"},
    )
    assert bank.object == "bank_account" and bank.currency == "eur" and bank.default_for_currency
    retrieved = await platform.v1.accounts.retrieve_async(account.id)
    assert [b.id for b in given(retrieved.external_accounts).data] == [bank.id]
    assert (await platform.v1.accounts.external_accounts.list_async(account.id)).data[0].id == bank.id

    rejected = await platform.v1.accounts.reject_async(account.id, params={"reason": "fraud"})
    assert not rejected.charges_enabled and given(rejected.requirements).disabled_reason == "rejected.fraud"
    with pytest.raises(stripe.InvalidRequestError):
        await account.client.v1.payment_intents.create_async(
            params={"amount": 900, "currency": "eur", "confirm": True, "payment_method": "pm_card_visa"}
        )


async def test_increment_authorization_then_capture_through_the_charge(
    connected: ConnectedAccount, stripe_sandbox: RunningSandbox
) -> None:
    client = connected.client
    intent = await client.v1.payment_intents.create_async(
        params={
            "amount": 1_000,
            "currency": "eur",
            "capture_method": "manual",
            "confirm": True,
            "payment_method": "pm_card_visa",
        }
    )
    grown = await client.v1.payment_intents.increment_authorization_async(intent.id, params={"amount": 1_500})
    assert (grown.amount, grown.amount_capturable) == (1_500, 1_500)
    with pytest.raises(stripe.InvalidRequestError):
        await client.v1.payment_intents.increment_authorization_async(intent.id, params={"amount": 1_200})
    charge = await client.v1.charges.capture_async(id_of(intent.latest_charge), params={"amount": 1_400})
    assert charge.captured and charge.amount_captured == 1_400
    assert (await client.v1.payment_intents.retrieve_async(intent.id)).status == "succeeded"
    headers = {"Authorization": "Bearer sk_test_sandbox", "Stripe-Account": connected.id}
    async with httpx.AsyncClient(base_url=stripe_sandbox.url, headers=headers) as http:  # not in the SDK any more
        refunded = (await http.post(f"/v1/charges/{charge.id}/refund", data={"amount": "400"})).json()
        assert refunded["object"] == "charge" and refunded["amount_refunded"] == 400
        [refund] = (await http.get(f"/v1/charges/{charge.id}/refunds")).json()["data"]
        updated = await http.post(f"/v1/charges/{charge.id}/refunds/{refund['id']}", data={"metadata[k]": "v"})
        assert updated.json()["metadata"] == {"k": "v"}
    refund = await client.v1.refunds.retrieve_async(refund["id"])
    with pytest.raises(stripe.InvalidRequestError) as info:
        await client.v1.refunds.cancel_async(refund.id)
    assert "status of succeeded" in str(info.value.user_message)


async def test_payout_cancel_and_reverse(connected: ConnectedAccount, stripe_sandbox: RunningSandbox) -> None:
    client = connected.client
    await client.v1.payment_intents.create_async(
        params={"amount": 9_000, "currency": "eur", "confirm": True, "payment_method": "pm_card_visa"}
    )

    async def available() -> int:
        return sum(b.amount for b in (await client.v1.balance.retrieve_async()).available if b.currency == "eur")

    start = await available()
    stripe_sandbox.state.config.payout_auto_pay = False
    try:
        payout = await client.v1.payouts.create_async(params={"amount": 1_000, "currency": "eur"})
    finally:
        stripe_sandbox.state.config.payout_auto_pay = True
    assert await available() == start - 1_000
    canceled = await client.v1.payouts.cancel_async(payout.id)
    assert canceled.status == "canceled" and await available() == start
    paid = await client.v1.payouts.create_async(params={"amount": 2_000, "currency": "eur"})
    await stripe_sandbox.wait_for_deliveries()
    assert (await client.v1.payouts.retrieve_async(paid.id)).status == "paid"
    with pytest.raises(stripe.InvalidRequestError):
        await client.v1.payouts.cancel_async(paid.id)
    reversal = await client.v1.payouts.reverse_async(paid.id)
    assert reversal.original_payout == paid.id and reversal.amount == -2_000
    assert (await client.v1.payouts.retrieve_async(paid.id)).reversed_by == reversal.id
    assert await available() == start


async def test_reversal_update_reader_display_and_payment_method_attach(connected: ConnectedAccount) -> None:
    platform, client = connected.platform, connected.client
    intent = await platform.v1.payment_intents.create_async(
        params={
            "amount": 3_000,
            "currency": "eur",
            "confirm": True,
            "payment_method": "pm_card_visa",
            "transfer_data": {"destination": connected.id},
        }
    )
    transfer_id = id_of((await platform.v1.charges.retrieve_async(id_of(intent.latest_charge))).transfer)
    reversal = await platform.v1.transfers.reversals.create_async(transfer_id, params={"amount": 100})
    updated = await platform.v1.transfers.reversals.update_async(
        transfer_id, reversal.id, params={"metadata": {"why": "dispute"}}
    )
    assert given(updated.metadata).to_dict() == {"why": "dispute"}

    location = await client.v1.terminal.locations.create_async(params={"display_name": "Club", "address": ADDRESS})
    reader = await client.v1.terminal.readers.create_async(
        params={"registration_code": "simulated-wpe", "location": location.id}
    )
    shown = await client.v1.terminal.readers.set_reader_display_async(
        reader.id,
        params={
            "type": "cart",
            "cart": {
                "currency": "eur",
                "line_items": [{"amount": 500, "description": "Match", "quantity": 2}],
                "total": 1_000,
            },
        },
    )
    action = given(shown.action)
    assert action.type == "set_reader_display" and given(given(action.set_reader_display).cart).total == 1_000
    with pytest.raises(stripe.InvalidRequestError) as info:
        await client.v1.terminal.readers.process_setup_intent_async(
            reader.id,
            params={"setup_intent": "seti_missing", "customer_consent_collected": True},  # type: ignore[typeddict-item,typeddict-unknown-key]
        )
    assert info.value.code == "resource_missing"

    pm = await client.v1.payment_methods.create_async(params={"type": "card"})
    attached = await client.v1.payment_methods.attach_async(pm.id, params={"customer": "cus_123"})
    assert attached.customer == "cus_123"
    renamed = await client.v1.payment_methods.update_async(pm.id, params={"billing_details": {"name": "Ada"}})
    assert renamed.billing_details.name == "Ada"
    assert (await client.v1.payment_methods.detach_async(pm.id)).customer is None
