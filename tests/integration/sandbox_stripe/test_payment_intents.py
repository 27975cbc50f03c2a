"""PaymentIntents and charges: confirm outcomes by test card, manual capture, cancel, destination charges."""

from __future__ import annotations

import pytest
import stripe

from sandbox.stripe.testing import ConnectedAccount, RunningSandbox
from tests.fixtures.stripe_types import as_object, given, id_of


async def test_create_then_confirm_succeeds(connected: ConnectedAccount) -> None:
    client = connected.client
    intent = await client.v1.payment_intents.create_async(
        params={"amount": 2000, "currency": "eur", "payment_method_types": ["card"], "metadata": {"order": "42"}}  # type: ignore[typeddict-unknown-key]
    )
    assert intent.status == "requires_payment_method" and intent.id.startswith("pi_")
    assert given(intent.client_secret).startswith(f"{intent.id}_secret_") and intent.livemode is False
    assert isinstance(intent.created, int)
    confirmed = await client.v1.payment_intents.confirm_async(intent.id, params={"payment_method": "pm_card_visa"})
    assert confirmed.status == "succeeded" and confirmed.amount_received == 2000
    charge = await client.v1.charges.retrieve_async(id_of(confirmed.latest_charge))
    assert charge.id.startswith("ch_") and charge.paid and charge.captured and charge.amount_captured == 2000
    assert charge.payment_intent == intent.id and id_of(charge.balance_transaction).startswith("txn_")
    details = given(charge.payment_method_details)
    assert details.type == "card" and given(details.card).last4 == "4242"
    expanded = await client.v1.payment_intents.retrieve_async(
        intent.id, params={"expand": ["latest_charge", "latest_charge.balance_transaction"]}
    )
    assert as_object(expanded.latest_charge).id == charge.id
    assert as_object(as_object(expanded.latest_charge).balance_transaction).fee == 2000 * 140 // 10_000 + 25
    with pytest.raises(stripe.InvalidRequestError) as info:
        await client.v1.payment_intents.confirm_async(intent.id, params={"payment_method": "pm_card_visa"})
    assert info.value.code == "payment_intent_unexpected_state"


@pytest.mark.parametrize(
    ("payment_method", "decline_code"),
    [
        ("pm_card_chargeDeclined", "generic_decline"),
        ("pm_card_visa_chargeDeclinedInsufficientFunds", "insufficient_funds"),
    ],
)
async def test_declines(connected: ConnectedAccount, payment_method: str, decline_code: str) -> None:
    client = connected.client
    with pytest.raises(stripe.CardError) as info:
        await client.v1.payment_intents.create_async(
            params={"amount": 1000, "currency": "eur", "confirm": True, "payment_method": payment_method}
        )
    error = info.value
    assert error.http_status == 402 and error.code == "card_declined"
    assert error.error is not None and error.error.decline_code == decline_code
    assert isinstance(error.json_body, dict)
    intent_id = error.json_body["error"]["payment_intent"]["id"]
    intent = await client.v1.payment_intents.retrieve_async(intent_id)
    assert intent.status == "requires_payment_method"
    assert given(intent.last_payment_error).decline_code == decline_code
    charge = await client.v1.charges.retrieve_async(id_of(intent.latest_charge))
    assert charge.status == "failed" and not charge.paid and charge.failure_code == "card_declined"
    types = [e.type for e in (await client.v1.events.list_async(params={"limit": 100})).data]
    assert "payment_intent.payment_failed" in types and "charge.failed" in types
    retried = await client.v1.payment_intents.confirm_async(intent_id, params={"payment_method": "pm_card_visa"})
    assert retried.status == "succeeded" and retried.last_payment_error is None


async def test_manual_capture_partial_and_cancel(connected: ConnectedAccount) -> None:
    client = connected.client
    intent = await client.v1.payment_intents.create_async(
        params={  # type: ignore[typeddict-unknown-key]
            "amount": 5000,
            "currency": "eur",
            "payment_method_types": ["card_present"],
            "capture_method": "manual",
            "confirm": True,
            "payment_method": "pm_card_present",
        }
    )
    assert intent.status == "requires_capture" and intent.amount_capturable == 5000
    with pytest.raises(stripe.InvalidRequestError):
        await client.v1.payment_intents.capture_async(intent.id, params={"amount_to_capture": 6000})
    captured = await client.v1.payment_intents.capture_async(intent.id, params={"amount_to_capture": 3000})
    assert captured.status == "succeeded" and captured.amount_received == 3000
    charge = await client.v1.charges.retrieve_async(id_of(captured.latest_charge))
    assert (
        charge.captured
        and charge.amount_captured == 3000
        and given(charge.payment_method_details).type == "card_present"
    )
    events = [e.type for e in (await client.v1.events.list_async(params={"limit": 100})).data]
    assert {"payment_intent.amount_capturable_updated", "charge.captured", "payment_intent.succeeded"} <= set(events)

    to_cancel = await client.v1.payment_intents.create_async(params={"amount": 700, "currency": "eur"})
    canceled = await client.v1.payment_intents.cancel_async(
        to_cancel.id, params={"cancellation_reason": "requested_by_customer"}
    )
    assert canceled.status == "canceled" and canceled.cancellation_reason == "requested_by_customer"
    with pytest.raises(stripe.InvalidRequestError):
        await client.v1.payment_intents.cancel_async(captured.id)


async def test_payment_method_types(connected: ConnectedAccount) -> None:
    client = connected.client
    sepa = await client.v1.payment_intents.create_async(
        params={  # type: ignore[typeddict-unknown-key]
            "amount": 1200,
            "currency": "eur",
            "payment_method_types": ["sepa_debit"],
            "confirm": True,
            "payment_method": "pm_sepa_debit",
        }
    )
    assert sepa.status == "succeeded"
    with pytest.raises(stripe.InvalidRequestError):
        await client.v1.payment_intents.create_async(
            params={  # type: ignore[typeddict-unknown-key]
                "amount": 1200,
                "currency": "eur",
                "payment_method_types": ["card_present"],
                "confirm": True,
                "payment_method": "pm_card_visa",
            }
        )
    updated = await client.v1.payment_intents.update_async(sepa.id, params={"metadata": {"k": "v"}})
    assert updated.metadata.to_dict() == {"k": "v"}


async def test_destination_charge_transfers_and_collects_fee(
    stripe_sandbox: RunningSandbox, connected: ConnectedAccount
) -> None:
    platform = connected.platform
    intent = await platform.v1.payment_intents.create_async(
        params={
            "amount": 10_000,
            "currency": "eur",
            "confirm": True,
            "payment_method": "pm_card_visa",
            "application_fee_amount": 500,
            "on_behalf_of": connected.id,
            "transfer_data": {"destination": connected.id},
        }
    )
    assert intent.status == "succeeded" and intent.on_behalf_of == connected.id
    charge = await platform.v1.charges.retrieve_async(id_of(intent.latest_charge), params={"expand": ["transfer"]})
    transfer = as_object(charge.transfer)
    assert transfer.destination == connected.id and transfer.amount == 9_500
    fee = await platform.v1.application_fees.retrieve_async(id_of(charge.application_fee))
    assert fee.amount == 500 and fee.account == connected.id and fee.charge == charge.id
    payment = await connected.client.v1.balance_transactions.list_async(params={"type": "payment"})
    assert [t.amount for t in payment.data] == [9_500]


async def test_direct_charge_application_fee(connected: ConnectedAccount) -> None:
    intent = await connected.client.v1.payment_intents.create_async(
        params={
            "amount": 4_000,
            "currency": "eur",
            "confirm": True,
            "payment_method": "pm_card_visa",
            "application_fee_amount": 200,
        }
    )
    charge = await connected.client.v1.charges.retrieve_async(
        id_of(intent.latest_charge), params={"expand": ["balance_transaction"]}
    )
    txn = as_object(charge.balance_transaction)
    stripe_fee = 4_000 * 140 // 10_000 + 25
    assert txn.fee == stripe_fee + 200 and txn.net == 4_000 - stripe_fee - 200
    assert {d.type for d in txn.fee_details} == {"stripe_fee", "application_fee"}
    fee = await connected.platform.v1.application_fees.retrieve_async(id_of(charge.application_fee))
    assert fee.amount == 200 and id_of(fee.balance_transaction).startswith("txn_")
    fees = await connected.platform.v1.application_fees.list_async(params={"charge": charge.id})
    assert [f.id for f in fees.data] == [fee.id]


async def test_cancel_releases_an_authorisation(connected: ConnectedAccount) -> None:
    client = connected.client
    intent = await client.v1.payment_intents.create_async(
        params={
            "amount": 800,
            "currency": "eur",
            "capture_method": "manual",
            "confirm": True,
            "payment_method": "pm_card_visa",
        }
    )
    canceled = await client.v1.payment_intents.cancel_async(intent.id)
    assert canceled.status == "canceled" and canceled.amount_capturable == 0
    charge = await client.v1.charges.retrieve_async(id_of(intent.latest_charge))
    assert charge.refunded and not charge.captured
    with pytest.raises(stripe.InvalidRequestError):
        await client.v1.refunds.create_async(params={"charge": charge.id})


async def test_confirm_without_payment_method_creates_nothing(connected: ConnectedAccount) -> None:
    before = await connected.client.v1.payment_intents.list_async(params={"limit": 100})
    with pytest.raises(stripe.InvalidRequestError) as info:
        await connected.client.v1.payment_intents.create_async(
            params={"amount": 100, "currency": "eur", "confirm": True}
        )
    assert info.value.code == "payment_intent_unexpected_state" and info.value.param == "payment_method"
    after = await connected.client.v1.payment_intents.list_async(params={"limit": 100})
    assert [p.id for p in after.data] == [p.id for p in before.data]
