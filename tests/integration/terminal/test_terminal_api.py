"""Locations, connection tokens and readers through the gateway, against the Stripe sandbox."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.fixtures.organizations import OrgContext, onboarded_organization, organization_body
from tests.fixtures.stack import Stack

ADDRESS = {"line1": "12 avenue Jean Jaurès", "city": "Lyon", "postal_code": "69007", "country": "FR"}


@pytest.fixture(scope="module")
async def org_a(stack: Stack) -> OrgContext:
    return await onboarded_organization(stack)


@pytest.fixture(scope="module")
async def org_b(stack: Stack) -> OrgContext:
    return await onboarded_organization(stack)


async def create_location(stack: Stack, org: OrgContext, name: str = "Caserne centrale") -> dict[str, Any]:
    answer = await stack.http.post(
        "/v1/terminal/locations", json={"display_name": name, "address": ADDRESS}, headers=org.admin_headers
    )
    assert answer.status_code == 201, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def register_reader(stack: Stack, org: OrgContext, location_id: str, label: str = "Stand 1") -> httpx.Response:
    return await stack.http.post(
        "/v1/terminal/readers",
        json={"registration_code": "simulated-wpe", "label": label, "location_id": location_id},
        headers=org.admin_headers,
    )


async def sandbox_fail(stack: Stack, count: int, status: int = 503) -> None:
    url = stack.extras["stripe_sandbox"].url
    async with httpx.AsyncClient() as client:
        (await client.post(f"{url}/_sandbox/fail", json={"fail_next": count, "status": status})).raise_for_status()


async def test_location_token_and_reader_flow(stack: Stack, org_a: OrgContext) -> None:
    location = await create_location(stack, org_a)
    assert location["stripe_location_id"].startswith("tml_")
    assert location["is_default"] is True and location["organization_id"] == org_a.id
    assert location["address"]["postal_code"] == "69007"
    # direct charges: the location lives on the connected account
    on_account = stack.extras["stripe_sandbox"].client(stripe_account=org_a.stripe_account_id)
    at_stripe = await on_account.v1.terminal.locations.retrieve_async(location["stripe_location_id"])
    assert at_stripe.display_name == "Caserne centrale"
    assert at_stripe.metadata["organization_id"] == org_a.id

    listed = await stack.http.get("/v1/terminal/locations", headers=org_a.agent_headers)
    assert listed.status_code == 200
    assert location["id"] in [x["id"] for x in listed.json()["data"]]

    token = await stack.http.post("/v1/terminal/connection-token", json={}, headers=org_a.agent_headers)
    assert token.status_code == 200, token.text
    assert token.json()["secret"].startswith("pst_")
    assert token.json()["location_id"] == location["id"]
    assert token.headers["cache-control"] == "no-store"
    again = await stack.http.post(
        "/v1/terminal/connection-token", json={"location_id": location["id"]}, headers=org_a.agent_headers
    )
    assert again.status_code == 200 and again.json()["secret"] != token.json()["secret"]  # never cached

    reader = await register_reader(stack, org_a, location["id"])
    assert reader.status_code == 201, reader.text
    body = reader.json()
    assert body["stripe_reader_id"].startswith("tmr_")
    assert body["device_type"] == "simulated_wisepos_e" and body["status"] == "online"
    assert body["location_id"] == location["id"] and body["label"] == "Stand 1"
    readers = await stack.http.get("/v1/terminal/readers", headers=org_a.agent_headers)
    assert readers.status_code == 200
    assert body["id"] in [r["id"] for r in readers.json()["data"]]

    # a simulated reader at Stripe takes a tap (the sandbox's test helper)
    found = await on_account.v1.terminal.readers.retrieve_async(body["stripe_reader_id"])
    assert found.location == location["stripe_location_id"]


async def test_roles(stack: Stack, org_a: OrgContext) -> None:
    agent = org_a.agent_headers
    answer = await stack.http.post(
        "/v1/terminal/locations", json={"display_name": "Nope", "address": ADDRESS}, headers=agent
    )
    assert answer.status_code == 403
    answer = await stack.http.post(
        "/v1/terminal/readers",
        json={"registration_code": "simulated-wpe", "label": "x", "location_id": str(uuid.uuid4())},
        headers=agent,
    )
    assert answer.status_code == 403
    assert (await stack.http.get("/v1/terminal/readers")).status_code == 401


async def test_platform_admin_names_the_organisation(stack: Stack, org_a: OrgContext) -> None:
    admin = await stack.admin_headers()
    missing = await stack.http.get("/v1/terminal/locations", headers=admin)
    assert missing.status_code == 400 and missing.json()["code"] == "organization_required"
    named = await stack.http.get(f"/v1/terminal/locations?organization_id={org_a.id}", headers=admin)
    assert named.status_code == 200
    created = await stack.http.post(
        "/v1/terminal/locations",
        json={"display_name": "Forum", "address": ADDRESS, "organization_id": org_a.id},
        headers=admin,
    )
    assert created.status_code == 201, created.text
    assert created.json()["organization_id"] == org_a.id and created.json()["is_default"] is False


async def test_tenant_scoping(stack: Stack, org_a: OrgContext, org_b: OrgContext) -> None:
    location_a = await create_location(stack, org_a, "A")
    reader_a = (await register_reader(stack, org_a, location_a["id"], "A reader")).json()
    await create_location(stack, org_b, "B")

    # B's agent sees nothing of A, and naming A answers 404
    listed = await stack.http.get("/v1/terminal/readers", headers=org_b.agent_headers)
    assert reader_a["id"] not in [r["id"] for r in listed.json()["data"]]
    other = await stack.http.get(f"/v1/terminal/readers?organization_id={org_a.id}", headers=org_b.agent_headers)
    assert other.status_code == 404
    other = await stack.http.get(f"/v1/terminal/locations?organization_id={org_a.id}", headers=org_b.agent_headers)
    assert other.status_code == 404
    token = await stack.http.post(
        "/v1/terminal/connection-token", json={"location_id": location_a["id"]}, headers=org_b.agent_headers
    )
    assert token.status_code == 404 and token.json()["code"] == "location_not_found"
    token = await stack.http.post(
        "/v1/terminal/connection-token",
        json={"organization_id": org_a.id, "location_id": location_a["id"]},
        headers=org_b.agent_headers,
    )
    assert token.status_code == 404
    reader = await register_reader(stack, org_b, location_a["id"])
    assert reader.status_code == 404
    removed = await stack.http.delete(f"/v1/terminal/readers/{reader_a['id']}", headers=org_b.admin_headers)
    assert removed.status_code == 404
    assert (await stack.http.get("/v1/terminal/readers", headers=org_a.agent_headers)).json()["data"]


async def test_remove_a_reader(stack: Stack, org_a: OrgContext) -> None:
    location = await create_location(stack, org_a, "Kiosque")
    reader = (await register_reader(stack, org_a, location["id"], "To remove")).json()
    removed = await stack.http.delete(f"/v1/terminal/readers/{reader['id']}", headers=org_a.admin_headers)
    assert removed.status_code == 204, removed.text
    listed = (await stack.http.get("/v1/terminal/readers?limit=100", headers=org_a.admin_headers)).json()["data"]
    assert reader["id"] not in [r["id"] for r in listed]
    on_account = stack.extras["stripe_sandbox"].client(stripe_account=org_a.stripe_account_id)
    at_stripe = await on_account.v1.terminal.readers.list_async({"location": location["stripe_location_id"]})
    assert at_stripe.data == []
    again = await stack.http.delete(f"/v1/terminal/readers/{reader['id']}", headers=org_a.admin_headers)
    assert again.status_code == 404


async def test_destination_objects_live_on_the_platform(stack: Stack) -> None:
    org = await onboarded_organization(stack, charge_model="destination")
    location = await create_location(stack, org)
    platform = stack.extras["stripe_sandbox"].client()
    at_stripe = await platform.v1.terminal.locations.retrieve_async(location["stripe_location_id"])
    assert at_stripe.metadata["organization_id"] == org.id
    token = await stack.http.post("/v1/terminal/connection-token", json={}, headers=org.agent_headers)
    assert token.status_code == 200 and token.json()["secret"].startswith("pst_")
    reader = await register_reader(stack, org, location["id"])
    assert reader.status_code == 201, reader.text
    assert (await platform.v1.terminal.readers.retrieve_async(reader.json()["stripe_reader_id"])).id


async def test_token_refused_without_location_or_charges(stack: Stack) -> None:
    fresh = await onboarded_organization(stack)
    answer = await stack.http.post("/v1/terminal/connection-token", json={}, headers=fresh.agent_headers)
    assert answer.status_code == 409 and answer.json()["code"] == "location_required"

    pending = await onboarded_organization(stack, onboard=False)
    await create_location(stack, pending)
    answer = await stack.http.post("/v1/terminal/connection-token", json={}, headers=pending.agent_headers)
    assert answer.status_code == 409, answer.text
    assert answer.json()["code"] == "charges_not_enabled"


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"display_name": "", "address": ADDRESS}, {"display_name"}),
        ({"display_name": "X", "address": {**ADDRESS, "postal_code": "690"}}, {"address.postal_code"}),
        ({"display_name": "X", "address": {**ADDRESS, "country": "ZZZ"}}, {"address.country"}),
        ({"display_name": "X", "address": {"line1": "1 rue"}}, {"address.city", "address.postal_code"}),
        ({"display_name": "X"}, {"address"}),
    ],
)
async def test_location_address_is_validated(
    stack: Stack, org_a: OrgContext, body: dict[str, Any], fields: set[str]
) -> None:
    answer = await stack.http.post("/v1/terminal/locations", json=body, headers=org_a.admin_headers)
    assert answer.status_code == 400, answer.text
    assert answer.json()["code"] == "validation_error"
    assert fields <= {e["field"] for e in answer.json()["errors"]}


async def test_stripe_errors_are_clear(stack: Stack, org_a: OrgContext) -> None:
    location = await create_location(stack, org_a, "Stripe errors")
    bad_code = await stack.http.post(
        "/v1/terminal/readers",
        json={"registration_code": "not-a-code", "label": "x", "location_id": location["id"]},
        headers=org_a.admin_headers,
    )
    assert bad_code.status_code == 400 and bad_code.json()["code"] == "invalid_registration_code"

    await sandbox_fail(stack, 3)  # the first try and the SDK's two retries
    down = await stack.http.post("/v1/terminal/connection-token", json={}, headers=org_a.agent_headers)
    assert down.status_code == 503, down.text
    assert down.json()["code"] == "stripe_unavailable"
    assert "Traceback" not in down.text
    after = await stack.http.post("/v1/terminal/connection-token", json={}, headers=org_a.agent_headers)
    assert after.status_code == 200


async def test_stripe_failure_records_no_location(stack: Stack, org_a: OrgContext) -> None:
    await sandbox_fail(stack, 3, 500)
    answer = await stack.http.post(
        "/v1/terminal/locations", json={"display_name": "Never", "address": ADDRESS}, headers=org_a.admin_headers
    )
    assert answer.status_code == 503 and answer.json()["code"] == "stripe_unavailable"
    listed = (await stack.http.get("/v1/terminal/locations?limit=100", headers=org_a.admin_headers)).json()["data"]
    assert "Never" not in [x["display_name"] for x in listed]


async def test_agent_cannot_remove_readers(stack: Stack, org_a: OrgContext) -> None:
    answer = await stack.http.delete(f"/v1/terminal/readers/{uuid.uuid4()}", headers=org_a.agent_headers)
    assert answer.status_code == 403


async def test_check_uses_the_organisation_country_by_default(stack: Stack, org_a: OrgContext) -> None:
    body = {"platform": "ios", "model": "iPhone14,2", "os_version": "17.1"}
    answer = await stack.http.post("/v1/devices/tap-to-pay/check", json=body, headers=org_a.agent_headers)
    assert answer.status_code == 200, answer.text
    assert answer.json()["supported"] is True and "FR" in answer.json()["reason"]
    admin = await stack.admin_headers()
    unnamed = await stack.http.post("/v1/devices/tap-to-pay/check", json=body, headers=admin)
    assert unnamed.status_code == 400 and unnamed.json()["code"] == "organization_required"


async def test_location_needs_a_stripe_account(stack: Stack) -> None:
    admin = await stack.admin_headers()
    created = await stack.http.post("/v1/organizations", json=organization_body(), headers=admin)
    assert created.status_code == 201, created.text
    answer = await stack.http.post(
        "/v1/terminal/locations",
        json={"display_name": "Too early", "address": ADDRESS, "organization_id": created.json()["id"]},
        headers=admin,
    )
    assert answer.status_code == 409 and answer.json()["code"] == "stripe_account_missing"
    unknown = await stack.http.post(
        "/v1/terminal/locations",
        json={"display_name": "Nobody", "address": ADDRESS, "organization_id": str(uuid.uuid4())},
        headers=admin,
    )
    assert unknown.status_code == 404


async def test_lists_are_paged(stack: Stack) -> None:
    org = await onboarded_organization(stack)
    names = [f"Stand {n}" for n in range(3)]
    for name in names:
        await create_location(stack, org, name)
    first = (await stack.http.get("/v1/terminal/locations?limit=2", headers=org.agent_headers)).json()
    assert [x["display_name"] for x in first["data"]] == names[:2] and first["next_cursor"]
    second = await stack.http.get(
        "/v1/terminal/locations", params={"limit": 2, "cursor": first["next_cursor"]}, headers=org.agent_headers
    )
    assert [x["display_name"] for x in second.json()["data"]] == names[2:]
    assert second.json()["next_cursor"] is None
    bad = await stack.http.get("/v1/terminal/readers?cursor=not-a-cursor", headers=org.agent_headers)
    assert bad.status_code == 400
