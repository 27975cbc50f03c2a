"""Balances with Stripe fees, payouts (refused beyond the balance, in_transit then paid), Qonto credit."""

from __future__ import annotations

import httpx
import pytest
import stripe

from sandbox.stripe.testing import RunningSandbox, run_sandbox
from tests.fixtures.stripe_types import id_of


async def test_balance_reflects_fees(stripe_sandbox: RunningSandbox) -> None:
    account = await stripe_sandbox.create_connected_account()
    for amount in (1_000, 2_500):
        await account.client.v1.payment_intents.create_async(
            params={"amount": amount, "currency": "eur", "confirm": True, "payment_method": "pm_card_visa"}
        )
    fees = [1_000 * 140 // 10_000 + 25, 2_500 * 140 // 10_000 + 25]
    balance = await account.client.v1.balance.retrieve_async()
    assert [(b.amount, b.currency) for b in balance.available] == [(3_500 - sum(fees), "eur")]
    assert balance.pending[0].amount == 0
    txns = await account.client.v1.balance_transactions.list_async()
    assert [t.fee for t in txns.data] == list(reversed(fees))
    assert all(t.status == "available" and t.fee_details[0].type == "stripe_fee" for t in txns.data)


async def test_payouts(stripe_sandbox: RunningSandbox) -> None:
    account = await stripe_sandbox.create_connected_account()
    client = account.client
    intent = await client.v1.payment_intents.create_async(
        params={"amount": 10_000, "currency": "eur", "confirm": True, "payment_method": "pm_card_visa"}
    )
    available = (await client.v1.balance.retrieve_async()).available[0].amount
    with pytest.raises(stripe.InvalidRequestError) as info:
        await client.v1.payouts.create_async(params={"amount": available + 1, "currency": "eur"})
    assert info.value.code == "balance_insufficient"
    payout = await client.v1.payouts.create_async(
        params={"amount": available, "currency": "eur", "statement_descriptor": "CLUB PAYOUT"}
    )
    assert payout.id.startswith("po_") and payout.status == "in_transit" and payout.arrival_date >= payout.created
    await stripe_sandbox.wait_for_deliveries()
    paid = await client.v1.payouts.retrieve_async(payout.id)
    assert paid.status == "paid" and paid.statement_descriptor == "CLUB PAYOUT"
    assert (await client.v1.balance.retrieve_async()).available[0].amount == 0
    in_payout = await client.v1.balance_transactions.list_async(params={"payout": payout.id})
    assert {t.type for t in in_payout.data} == {"charge", "payout"}
    charge = await client.v1.charges.retrieve_async(id_of(intent.latest_charge))
    assert charge.balance_transaction in {t.id for t in in_payout.data}
    types = [e.type for e in (await client.v1.events.list_async(params={"type": "payout.*"})).data]
    assert types == ["payout.paid", "payout.created"]


async def test_manual_pay_fail_and_qonto_credit(receiver_url_and_requests: tuple[str, list[dict[str, object]]]) -> None:
    url, credits = receiver_url_and_requests
    async with run_sandbox(payout_auto_pay=False, qonto_credit_url=url, qonto_credit_auth="login:secret") as sandbox:
        account = await sandbox.create_connected_account()
        client = account.client
        await client.v1.payment_intents.create_async(
            params={"amount": 5_000, "currency": "eur", "confirm": True, "payment_method": "pm_card_visa"}
        )
        first = await client.v1.payouts.create_async(params={"amount": 1_000, "currency": "eur"})
        second = await client.v1.payouts.create_async(
            params={"amount": 2_000, "currency": "eur", "statement_descriptor": "REF-2"}
        )
        await sandbox.wait_for_deliveries()
        assert (await client.v1.payouts.retrieve_async(first.id)).status == "in_transit"
        async with httpx.AsyncClient(base_url=sandbox.url) as http:
            assert (await http.post(f"/_sandbox/payouts/{second.id}/pay")).json()["status"] == "paid"
            failed = (await http.post(f"/_sandbox/payouts/{first.id}/fail")).json()
        assert failed["status"] == "failed" and failed["failure_code"] == "account_closed"
        await sandbox.wait_for_deliveries()
        balance = await client.v1.balance.retrieve_async()
        assert balance.available[0].amount == 5_000 - (5_000 * 140 // 10_000 + 25) - 2_000
        assert len(credits) == 1
        credit = credits[0]
        assert credit["amount_cents"] == 2_000 and credit["reference"] == "REF-2" and credit["side"] == "credit"
        assert credit["currency"] == "EUR" and credit["status"] == "completed" and credit["_auth"] == "login:secret"


async def test_funds_can_be_pending(stripe_sandbox: RunningSandbox) -> None:
    async with run_sandbox(available_immediately=False) as sandbox:
        account = await sandbox.create_connected_account()
        await account.client.v1.payment_intents.create_async(
            params={"amount": 1_000, "currency": "eur", "confirm": True, "payment_method": "pm_card_visa"}
        )
        balance = await account.client.v1.balance.retrieve_async()
        assert balance.available[0].amount == 0 and balance.pending[0].amount == 1_000 - 39
        with pytest.raises(stripe.InvalidRequestError):
            await account.client.v1.payouts.create_async(params={"amount": 100, "currency": "eur"})
        async with httpx.AsyncClient(base_url=sandbox.url) as http:
            await http.post("/_sandbox/balance/release", json={})
        assert (await account.client.v1.balance.retrieve_async()).available[0].amount == 961


async def test_paid_payout_credits_the_qonto_sandbox() -> None:
    from sandbox.qonto.testing import run_qonto_sandbox

    async with run_qonto_sandbox() as qonto:
        credit_url = f"{qonto.url}/_sandbox/transactions"
        auth = f"{qonto.login}:{qonto.secret_key}"
        async with run_sandbox(qonto_credit_url=credit_url, qonto_credit_auth=auth) as sandbox:
            account = await sandbox.create_connected_account()
            await account.client.v1.payment_intents.create_async(
                params={"amount": 4_000, "currency": "eur", "confirm": True, "payment_method": "pm_card_visa"}
            )
            payout = await account.client.v1.payouts.create_async(
                params={"amount": 3_000, "currency": "eur", "statement_descriptor": "COLLECT-PO-1"}
            )
            await sandbox.wait_for_deliveries()
        credits = [t for t in qonto.state.transactions.values() if t.reference == "COLLECT-PO-1"]
        assert len(credits) == 1
        assert credits[0].amount_cents == payout.amount and credits[0].side == "credit"
        assert credits[0].label == "STRIPE PAYMENTS UK LTD" and credits[0].status == "completed"
