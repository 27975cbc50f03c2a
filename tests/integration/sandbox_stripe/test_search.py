"""Stripe's search query language over charges and PaymentIntents."""

from __future__ import annotations

import time

import pytest
import stripe

from sandbox.stripe.testing import RunningSandbox


async def test_search_charges_and_payment_intents(stripe_sandbox: RunningSandbox) -> None:
    account = await stripe_sandbox.create_connected_account()
    client = account.client
    started = int(time.time()) - 1
    made = []
    for amount, card, order in ((900, "pm_card_visa", "A-1"), (2_500, "pm_card_mastercard", "B-2")):
        made.append(
            await client.v1.payment_intents.create_async(
                params={
                    "amount": amount,
                    "currency": "eur",
                    "confirm": True,
                    "payment_method": card,
                    "metadata": {"order": order},
                }
            )
        )
    with pytest.raises(stripe.CardError):
        await client.v1.payment_intents.create_async(
            params={"amount": 700, "currency": "eur", "confirm": True, "payment_method": "pm_card_chargeDeclined"}
        )
    small, large = made

    async def charges(query: str) -> list[int]:
        return [c.amount for c in (await client.v1.charges.search_async(params={"query": query})).data]

    async def intents(query: str) -> list[str]:
        return [p.id for p in (await client.v1.payment_intents.search_async(params={"query": query})).data]

    assert await charges("status:'succeeded'") == [2_500, 900]
    assert await charges("status:'failed'") == [700]
    assert await charges("amount>1000") == [2_500]
    assert await charges("amount>=900 AND amount<=900") == [900]
    assert await charges("metadata['order']:'A-1'") == [900]
    assert await charges("payment_method_details.card.brand:'mastercard' OR amount<800") == [700, 2_500]
    assert await charges(f"created>{started} AND -status:'failed'") == [2_500, 900]
    assert await charges("payment_method_details.card.last4:'4242'") == [900]
    assert await intents('status:\'succeeded\' AND metadata["order"]:"B-2"') == [large.id]
    [declined] = await intents("status:'requires_payment_method'")
    assert declined not in (small.id, large.id)

    page = await client.v1.charges.search_async(params={"query": "currency:'eur'", "limit": 2})
    assert page["object"] == "search_result" and page.has_more and page["url"] == "/v1/charges/search"
    rest = await client.v1.charges.search_async(params={"query": "currency:'eur'", "limit": 2, "page": page.next_page})
    assert [c.amount for c in rest.data] == [900] and not rest.has_more and rest.next_page is None

    for query in ("bogus:'x'", "amount>'abc'", "status:'a' AND amount>1 OR amount<2", "status", "status~'ab'"):
        with pytest.raises(stripe.InvalidRequestError) as info:
            await client.v1.charges.search_async(params={"query": query})
        assert info.value.param == "query"
