"""Connected accounts: creation, hosted onboarding through an account link, login links."""

from __future__ import annotations

import httpx
import pytest
import stripe

from sandbox.stripe.testing import RunningSandbox
from tests.fixtures.stripe_types import given


async def test_account_link_onboarding_enables_the_account(stripe_sandbox: RunningSandbox) -> None:
    client = stripe_sandbox.client()
    account = await client.v1.accounts.create_async(
        params={
            "type": "express",
            "country": "FR",
            "email": "club@example.com",
            "capabilities": {"card_payments": {"requested": True}, "transfers": {"requested": True}},
            "metadata": {"organization": "org_1"},
        }
    )
    assert account.id.startswith("acct_") and account.type == "express"
    assert not account.charges_enabled and not account.payouts_enabled and not account.details_submitted
    assert "external_account" in given(given(account.requirements).currently_due)
    assert given(account.capabilities).card_payments == "inactive"
    assert given(account.metadata).to_dict() == {"organization": "org_1"}

    link = await client.v1.account_links.create_async(
        params={
            "account": account.id,
            "refresh_url": "https://platform.test/refresh",
            "return_url": "https://platform.test/return",
            "type": "account_onboarding",
        }
    )
    assert link.object == "account_link" and link.expires_at > link.created
    assert link.url.startswith(f"{stripe_sandbox.url}/_sandbox/onboarding/")
    async with httpx.AsyncClient() as http:
        visit = await http.get(link.url)
        assert visit.status_code == 302 and visit.headers["location"] == "https://platform.test/return"
        again = await http.get(link.url)
        assert again.headers["location"] == "https://platform.test/refresh"

    enabled = await client.v1.accounts.retrieve_async(account.id)
    assert enabled.charges_enabled and enabled.payouts_enabled and enabled.details_submitted
    requirements = given(enabled.requirements)
    assert requirements.currently_due == [] and requirements.disabled_reason is None
    capabilities = given(enabled.capabilities)
    assert capabilities.card_payments == "active" and capabilities.transfers == "active"

    events = await stripe_sandbox.client(stripe_account=account.id).v1.events.list_async(
        params={"type": "account.updated"}
    )
    assert len(events.data) == 1
    event = events.data[0]
    assert event.account == account.id and event.data.object.charges_enabled is True
    assert given(event.data.previous_attributes).charges_enabled is False


async def test_account_retrieve_update_list_and_login_link(stripe_sandbox: RunningSandbox) -> None:
    connected = await stripe_sandbox.create_connected_account()
    own = await connected.client.v1.accounts.retrieve_current_async()
    assert own.id == connected.id
    updated = await connected.platform.v1.accounts.update_async(connected.id, params={"metadata": {"k": "v"}})
    assert given(updated.metadata).to_dict() == {"k": "v"}
    listed = [
        a.id async for a in (await connected.platform.v1.accounts.list_async(params={"limit": 100})).auto_paging_iter()
    ]
    assert connected.id in listed
    login = await connected.platform.v1.accounts.login_links.create_async(connected.id)
    assert login.object == "login_link" and login.url.startswith(stripe_sandbox.url)
    custom = await connected.platform.v1.accounts.create_async(params={"type": "custom", "country": "FR"})
    with pytest.raises(stripe.InvalidRequestError):
        await connected.platform.v1.accounts.login_links.create_async(custom.id)
    with pytest.raises(stripe.InvalidRequestError) as info:
        await connected.platform.v1.account_links.create_async(
            params={
                "account": "acct_missing",
                "refresh_url": "https://r",
                "return_url": "https://r",
                "type": "account_onboarding",
            }
        )
    assert info.value.http_status == 404
    removed = await connected.platform.v1.accounts.delete_async(custom.id)
    assert removed.deleted is True


async def test_charges_need_an_onboarded_account(stripe_sandbox: RunningSandbox) -> None:
    fresh = await stripe_sandbox.create_connected_account(onboarded=False)
    with pytest.raises(stripe.InvalidRequestError):
        await fresh.client.v1.payment_intents.create_async(
            params={"amount": 100, "currency": "eur", "confirm": True, "payment_method": "pm_card_visa"}
        )
    with pytest.raises(stripe.InvalidRequestError) as info:
        await fresh.platform.v1.payment_intents.create_async(
            params={"amount": 100, "currency": "eur", "transfer_data": {"destination": fresh.id}}
        )
    assert info.value.code == "insufficient_capabilities_for_transfer"
