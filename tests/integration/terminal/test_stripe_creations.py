"""A location or reader request retried after Stripe acted (its answer lost) creates one object at
Stripe, not one per attempt: the creation is recorded first and Stripe's idempotency key comes
from the record."""

from __future__ import annotations

import httpx

from tests.fixtures.organizations import OrgContext, onboarded_organization
from tests.fixtures.stack import Stack

ADDRESS = {"line1": "3 quai Saint-Vincent", "city": "Lyon", "postal_code": "69001", "country": "FR"}


async def _lose_answers(stack: Stack, count: int) -> None:
    """The next `count` Stripe requests are carried out, then answered 500 (the answer lost)."""
    url = stack.extras["stripe_sandbox"].url
    async with httpx.AsyncClient() as client:
        armed = await client.post(f"{url}/_sandbox/fail", json={"fail_next": count, "status": 500, "after": True})
        armed.raise_for_status()


async def _disarm(stack: Stack) -> None:
    url = stack.extras["stripe_sandbox"].url
    async with httpx.AsyncClient() as client:
        (await client.post(f"{url}/_sandbox/fail", json={"fail_next": 0})).raise_for_status()


async def _retried_until_created(
    stack: Stack, org: OrgContext, path: str, body: dict[str, object]
) -> dict[str, object]:
    await _lose_answers(stack, 3)  # the first attempt and the SDK's own retries
    failed = await stack.http.post(path, json=body, headers=org.admin_headers)
    await _disarm(stack)
    assert failed.status_code in (502, 503), failed.text
    retried = await stack.http.post(path, json=body, headers=org.admin_headers)
    assert retried.status_code == 201, retried.text
    created: dict[str, object] = retried.json()
    return created


async def test_a_location_retried_after_a_lost_answer_exists_once_at_stripe(stack: Stack) -> None:
    org = await onboarded_organization(stack)
    location = await _retried_until_created(
        stack, org, "/v1/terminal/locations", {"display_name": "Stand du marché", "address": ADDRESS}
    )
    on_account = stack.extras["stripe_sandbox"].client(stripe_account=org.stripe_account_id)
    at_stripe = await on_account.v1.terminal.locations.list_async({"limit": 100})
    assert [x.id for x in at_stripe.data if x.display_name == "Stand du marché"] == [location["stripe_location_id"]]
    listed = await stack.http.get("/v1/terminal/locations", headers=org.admin_headers)
    assert [x["id"] for x in listed.json()["data"]] == [location["id"]]
    # Once stored, the same request again is a new location (the record was settled).
    again = await stack.http.post(
        "/v1/terminal/locations",
        json={"display_name": "Stand du marché", "address": ADDRESS},
        headers=org.admin_headers,
    )
    assert again.status_code == 201 and again.json()["stripe_location_id"] != location["stripe_location_id"]


async def test_a_reader_retried_after_a_lost_answer_exists_once_at_stripe(stack: Stack) -> None:
    org = await onboarded_organization(stack)
    made = await stack.http.post(
        "/v1/terminal/locations", json={"display_name": "Buvette", "address": ADDRESS}, headers=org.admin_headers
    )
    assert made.status_code == 201, made.text
    body = {"registration_code": "simulated-wpe", "label": "Caisse 1", "location_id": made.json()["id"]}
    reader = await _retried_until_created(stack, org, "/v1/terminal/readers", body)
    on_account = stack.extras["stripe_sandbox"].client(stripe_account=org.stripe_account_id)
    at_stripe = await on_account.v1.terminal.readers.list_async({"limit": 100})
    assert [x.id for x in at_stripe.data if x.label == "Caisse 1"] == [reader["stripe_reader_id"]]
