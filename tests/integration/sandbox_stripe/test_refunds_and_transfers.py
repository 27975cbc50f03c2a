"""Refunds (partial, over-refund, transfer reversal, application fee refund), transfers and fees."""

from __future__ import annotations

import asyncio

import pytest
import stripe

from sandbox.stripe.testing import ConnectedAccount
from tests.fixtures.stripe_types import given, id_of


async def _paid(client: stripe.StripeClient, **extra: object) -> stripe.PaymentIntent:
    params = {"amount": 10_000, "currency": "eur", "confirm": True, "payment_method": "pm_card_visa", **extra}
    return await client.v1.payment_intents.create_async(params=params)  # type: ignore[arg-type]


async def test_partial_refunds_and_over_refund(connected: ConnectedAccount) -> None:
    client = connected.client
    intent = await _paid(client)
    first = await client.v1.refunds.create_async(
        params={"payment_intent": intent.id, "amount": 3_000, "reason": "requested_by_customer"}
    )
    assert first.id.startswith("re_") and first.status == "succeeded" and first.amount == 3_000
    assert first.charge == intent.latest_charge and first.reason == "requested_by_customer"
    with pytest.raises(stripe.InvalidRequestError) as too_much:
        await client.v1.refunds.create_async(params={"charge": id_of(intent.latest_charge), "amount": 7_001})
    assert too_much.value.code == "amount_too_large" and too_much.value.param == "amount"
    rest = await client.v1.refunds.create_async(params={"charge": id_of(intent.latest_charge)})
    assert rest.amount == 7_000
    charge = await client.v1.charges.retrieve_async(id_of(intent.latest_charge))
    assert charge.amount_refunded == 10_000 and charge.refunded
    assert [r.id for r in given(charge.refunds).data] == [rest.id, first.id]
    with pytest.raises(stripe.InvalidRequestError) as again:
        await client.v1.refunds.create_async(params={"payment_intent": intent.id})
    assert again.value.code == "charge_already_refunded"
    refund_txn = await client.v1.balance_transactions.retrieve_async(id_of(first.balance_transaction))
    assert refund_txn.type == "refund" and refund_txn.amount == -3_000
    listed = await client.v1.refunds.list_async(params={"payment_intent": intent.id})
    assert {r.id for r in listed.data} == {first.id, rest.id}
    types = [e.type for e in (await client.v1.events.list_async(params={"limit": 100})).data]
    assert types.count("charge.refunded") == 2 and types.count("refund.created") == 2


async def test_refund_reverses_transfer_pro_rata_and_refunds_fee(connected: ConnectedAccount) -> None:
    platform = connected.platform
    intent = await _paid(platform, application_fee_amount=1_000, transfer_data={"destination": connected.id})
    charge = await platform.v1.charges.retrieve_async(id_of(intent.latest_charge))
    refund = await platform.v1.refunds.create_async(
        params={
            "payment_intent": intent.id,
            "amount": 5_000,
            "reverse_transfer": True,
            "refund_application_fee": True,
        }
    )
    reversal_id = id_of(refund.transfer_reversal)
    assert reversal_id.startswith("trr_")
    transfer = await platform.v1.transfers.retrieve_async(id_of(charge.transfer))
    assert transfer.amount == 9_000 and transfer.amount_reversed == 4_500 and not transfer.reversed
    assert transfer.reversals.data[0].id == reversal_id
    fee = await platform.v1.application_fees.retrieve_async(id_of(charge.application_fee))
    assert fee.amount_refunded == 500 and not fee.refunded
    destination_refunds = await connected.client.v1.balance_transactions.list_async(params={"type": "payment_refund"})
    assert [t.amount for t in destination_refunds.data] == [-4_500]


async def test_transfers_and_reversals(connected: ConnectedAccount) -> None:
    platform = connected.platform
    await _paid(platform, amount=20_000)
    transfer = await platform.v1.transfers.create_async(
        params={"amount": 2_500, "currency": "eur", "destination": connected.id, "metadata": {"why": "test"}}
    )
    assert transfer.id.startswith("tr_") and transfer.destination == connected.id and transfer.amount_reversed == 0
    reversal = await platform.v1.transfers.reversals.create_async(transfer.id, params={"amount": 1_000})
    assert reversal.transfer == transfer.id and reversal.amount == 1_000
    reversals = await platform.v1.transfers.reversals.list_async(transfer.id)
    assert [r.id for r in reversals.data] == [reversal.id]
    again = await platform.v1.transfers.retrieve_async(transfer.id)
    assert again.amount_reversed == 1_000
    listed = await platform.v1.transfers.list_async(params={"destination": connected.id})
    assert transfer.id in [t.id for t in listed.data]
    with pytest.raises(stripe.InvalidRequestError) as info:
        await platform.v1.transfers.create_async(
            params={"amount": 10**12, "currency": "eur", "destination": connected.id}
        )
    assert info.value.code == "balance_insufficient"


async def test_application_fee_refunds(connected: ConnectedAccount) -> None:
    intent = await _paid(connected.client, application_fee_amount=600)
    charge = await connected.client.v1.charges.retrieve_async(id_of(intent.latest_charge))
    platform = connected.platform
    refund = await platform.v1.application_fees.refunds.create_async(
        id_of(charge.application_fee), params={"amount": 200}
    )
    assert refund.id.startswith("fr_") and refund.fee == charge.application_fee and refund.amount == 200
    rest = await platform.v1.application_fees.refunds.create_async(id_of(charge.application_fee))
    assert rest.amount == 400
    fee = await platform.v1.application_fees.retrieve_async(id_of(charge.application_fee))
    assert fee.refunded and fee.amount_refunded == 600
    listed = await platform.v1.application_fees.refunds.list_async(id_of(charge.application_fee))
    assert [r.id for r in listed.data] == [rest.id, refund.id]
    with pytest.raises(stripe.InvalidRequestError):
        await platform.v1.application_fees.refunds.create_async(id_of(charge.application_fee), params={"amount": 1})


async def test_a_refund_to_the_failing_test_card_fails_later_and_the_money_comes_back(
    connected: ConnectedAccount,
) -> None:
    client = connected.client
    intent = await _paid(client, payment_method="pm_card_refundFail")
    refund = await client.v1.refunds.create_async(params={"payment_intent": intent.id, "amount": 2_500})
    assert refund.status == "succeeded"
    for _ in range(100):
        refund = await client.v1.refunds.retrieve_async(refund.id)
        if refund.status == "failed":
            break
        await asyncio.sleep(0.02)
    assert refund.status == "failed" and refund.failure_reason == "expired_or_canceled_card"
    back = await client.v1.balance_transactions.retrieve_async(id_of(refund.failure_balance_transaction))
    assert back.type == "refund_failure" and back.amount == 2_500
    charge = await client.v1.charges.retrieve_async(id_of(intent.latest_charge))
    assert charge.amount_refunded == 0 and not charge.refunded
    types = [e.type for e in (await client.v1.events.list_async(params={"limit": 100})).data]
    assert {"charge.refund.updated", "refund.updated", "refund.failed"} <= set(types)
