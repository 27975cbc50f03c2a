"""Disputes as Stripe's test mode has them: the dispute test card, evidence, outcomes, and the money
withdrawn from (and reinstated to) the account that owns the charge."""

from __future__ import annotations

from typing import Any

import pytest
import stripe

from sandbox.stripe.testing import ConnectedAccount, RunningSandbox
from tests.fixtures.polling import eventually
from tests.fixtures.stripe_types import id_of

DISPUTE_FEE = 1500


async def _dispute_of(client: stripe.StripeClient, charge_id: str, status: str = "needs_response") -> Any:
    async def found() -> Any:
        page = await client.v1.disputes.list_async(params={"charge": charge_id})
        return page.data[0] if page.data and page.data[0].status == status else None

    return await eventually(found, f"a {status} dispute on {charge_id}")


async def _event_types(client: stripe.StripeClient, dispute_id: str) -> list[str]:
    page = await client.v1.events.list_async(params={"type": "charge.dispute.*", "limit": 100})
    return [e.type for e in reversed(page.data) if e.data.object["id"] == dispute_id]


async def _available(client: stripe.StripeClient) -> int:
    balance = await client.v1.balance.retrieve_async()
    return sum(b.amount for b in balance.available if b.currency == "eur")


async def test_a_direct_charge_dispute_debits_the_connected_account_and_a_win_reinstates_it(
    connected: ConnectedAccount,
) -> None:
    client = connected.client
    intent = await client.v1.payment_intents.create_async(
        params={"amount": 4_000, "currency": "eur", "confirm": True, "payment_method": "pm_card_createDispute"}
    )
    assert intent.status == "succeeded"
    before_platform = await _available(connected.platform)
    dispute = await _dispute_of(client, id_of(intent.latest_charge))
    assert (dispute.amount, dispute.currency, dispute.reason) == (4_000, "eur", "fraudulent")
    assert dispute.payment_intent == intent.id and dispute.evidence_details.submission_count == 0
    [withdrawal] = dispute.balance_transactions
    assert (withdrawal.amount, withdrawal.fee, withdrawal.net) == (-4_000, DISPUTE_FEE, -4_000 - DISPUTE_FEE)
    assert withdrawal.type == "adjustment" and withdrawal.reporting_category == "dispute"
    txn = await client.v1.balance_transactions.retrieve_async(withdrawal.id)  # on the connected account
    assert txn.source == dispute.id
    charge = await client.v1.charges.retrieve_async(id_of(intent.latest_charge))
    assert charge.disputed
    with pytest.raises(stripe.InvalidRequestError) as refused:
        await client.v1.refunds.create_async(params={"payment_intent": intent.id})
    assert refused.value.code == "charge_disputed"

    staged = await client.v1.disputes.update_async(
        dispute.id, params={"evidence": {"uncategorized_text": "winning_evidence"}, "submit": False}
    )
    assert staged.status == "needs_response" and staged.evidence.uncategorized_text == "winning_evidence"
    submitted = await client.v1.disputes.update_async(
        dispute.id, params={"evidence": {"product_description": "A club membership"}}
    )
    assert submitted.status == "under_review" and submitted.evidence_details.submission_count == 1
    won = await _dispute_of(client, id_of(intent.latest_charge), "won")
    assert [t.amount for t in won.balance_transactions] == [-4_000, 4_000]
    assert won.balance_transactions[1].reporting_category == "dispute_reversal"
    assert await _event_types(client, dispute.id) == [
        "charge.dispute.created",
        "charge.dispute.funds_withdrawn",
        "charge.dispute.updated",
        "charge.dispute.updated",
        "charge.dispute.closed",
        "charge.dispute.funds_reinstated",
    ]
    # Nothing moved on the platform.
    assert await _available(connected.platform) == before_platform
    with pytest.raises(stripe.InvalidRequestError):
        await client.v1.disputes.close_async(dispute.id)


async def test_a_destination_charge_dispute_debits_the_platform_and_losing_evidence_loses(
    stripe_sandbox: RunningSandbox, connected: ConnectedAccount
) -> None:
    platform = connected.platform
    intent = await platform.v1.payment_intents.create_async(
        params={
            "amount": 6_000,
            "currency": "eur",
            "confirm": True,
            "payment_method": "pm_card_createDispute",
            "transfer_data": {"destination": connected.id},
            "application_fee_amount": 500,
        }
    )
    connected_before = await _available(connected.client)
    dispute = await _dispute_of(platform, id_of(intent.latest_charge))
    [withdrawal] = dispute.balance_transactions
    assert (await platform.v1.balance_transactions.retrieve_async(withdrawal.id)).net == -6_000 - DISPUTE_FEE
    assert (await connected.client.v1.disputes.list_async()).data == []
    await platform.v1.disputes.update_async(dispute.id, params={"evidence": {"uncategorized_text": "losing_evidence"}})
    lost = await _dispute_of(platform, id_of(intent.latest_charge), "lost")
    assert [t.amount for t in lost.balance_transactions] == [-6_000]
    assert await _event_types(platform, dispute.id) == [
        "charge.dispute.created",
        "charge.dispute.funds_withdrawn",
        "charge.dispute.updated",
        "charge.dispute.closed",
    ]
    # The connected account keeps its transfer until the platform reverses it.
    assert await _available(connected.client) == connected_before


async def test_closing_accepts_the_dispute_and_a_card_present_dispute(connected: ConnectedAccount) -> None:
    client = connected.client
    location = await client.v1.terminal.locations.create_async(
        params={"display_name": "Club", "address": {"line1": "1 rue", "city": "Paris", "country": "FR"}}
    )
    reader = await client.v1.terminal.readers.create_async(
        params={"registration_code": "simulated-wpe", "location": location.id}
    )
    intent = await client.v1.payment_intents.create_async(
        params={"amount": 2_500, "currency": "eur", "payment_method_types": ["card_present"]}  # type: ignore[typeddict-unknown-key]
    )
    await client.v1.terminal.readers.process_payment_intent_async(reader.id, params={"payment_intent": intent.id})
    await client.v1.test_helpers.terminal.readers.present_payment_method_async(
        reader.id, params={"card_present": {"number": "4000000000000259"}}
    )
    charge_id = id_of((await client.v1.payment_intents.retrieve_async(intent.id)).latest_charge)
    dispute = await _dispute_of(client, charge_id)
    closed = await client.v1.disputes.close_async(dispute.id)
    assert closed.status == "lost"
    assert (await client.v1.disputes.retrieve_async(dispute.id)).status == "lost"
    with pytest.raises(stripe.InvalidRequestError):
        await client.v1.disputes.update_async(dispute.id, params={"evidence": {"uncategorized_text": "late"}})
