"""Organisations, members and Connect onboarding through the gateway, against the Stripe sandbox."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx

from tests.fixtures.organizations import (
    MEMBER_PASSWORD,
    REFRESH_URL,
    RETURN_URL,
    onboarded_organization,
    organization_body,
)
from tests.fixtures.stack import Stack


async def test_onboarding_through_the_gateway(stack: Stack) -> None:
    admin = await stack.admin_headers()
    http = stack.http
    created = await http.post("/v1/organizations", headers=admin, json=organization_body(fee_percent_bps=120))
    assert created.status_code == 201, created.text
    org = created.json()
    assert org["charge_model"] == "direct" and org["fee_percent_bps"] == 120 and org["fee_minimum"] == 0
    assert org["stripe_account_id"] is None and org["charges_enabled"] is False

    account = (await http.post(f"/v1/organizations/{org['id']}/stripe-account", headers=admin, json={})).json()
    assert account["stripe_account_id"].startswith("acct_")
    assert account["type"] == "express" and account["charges_enabled"] is False
    assert account["requirements"]["currently_due"]

    again = await http.post(f"/v1/organizations/{org['id']}/stripe-account", headers=admin, json={"type": "custom"})
    assert again.status_code == 200 and again.json()["stripe_account_id"] == account["stripe_account_id"]

    link = await http.post(
        f"/v1/organizations/{org['id']}/onboarding-link",
        headers=admin,
        json={"return_url": RETURN_URL, "refresh_url": REFRESH_URL},
    )
    assert link.status_code == 200, link.text
    assert link.json()["expires_at"]
    async with httpx.AsyncClient() as browser:
        visit = await browser.get(link.json()["url"], follow_redirects=False)
    assert visit.status_code in (302, 303) and visit.headers["location"] == RETURN_URL

    stored = (await http.get(f"/v1/organizations/{org['id']}/stripe-account", headers=admin)).json()
    refreshed = await http.get(f"/v1/organizations/{org['id']}/stripe-account?refresh=true", headers=admin)
    assert refreshed.status_code == 200, refreshed.text
    assert refreshed.json()["charges_enabled"] is True and refreshed.json()["payouts_enabled"] is True
    assert refreshed.json()["requirements_due"] == []
    assert stored["stripe_account_id"] == refreshed.json()["stripe_account_id"]

    shown = (await http.get(f"/v1/organizations/{org['id']}", headers=admin)).json()
    assert shown["charges_enabled"] is True and shown["details_submitted"] is True
    assert shown["stripe_account_id"] == account["stripe_account_id"]


async def test_onboarded_organization_fixture_and_me(stack: Stack) -> None:
    org = await onboarded_organization(stack, charge_model="destination", fee_percent_bps=150, fee_minimum=30)
    assert org.stripe_account_id and org.organization["charges_enabled"] is True
    me = (await stack.http.get("/v1/me", headers=org.agent_headers)).json()
    assert me["role"] == "agent" and me["id"] == org.agent_id
    assert me["organization"]["id"] == org.id
    assert me["organization"]["charge_model"] == "destination"
    assert me["organization"]["fee_percent_bps"] == 150 and me["organization"]["fee_minimum"] == 30
    own = await stack.http.get(f"/v1/organizations/{org.id}/stripe-account", headers=org.agent_headers)
    assert own.status_code == 200 and own.json()["charges_enabled"] is True
    members = await stack.http.get(f"/v1/organizations/{org.id}/members", headers=org.admin_headers)
    assert members.status_code == 200
    assert {m["email"] for m in members.json()["data"]} == {org.admin_email, org.agent_email}


async def test_roles_and_isolation(stack: Stack) -> None:
    a = await onboarded_organization(stack, onboard=False)
    b = await onboarded_organization(stack, onboard=False)
    http = stack.http
    new_member = {"email": f"x-{uuid.uuid4().hex[:8]}@example.test", "name": "X", "role": "agent"}
    new_member["password"] = MEMBER_PASSWORD

    agent_creates = await http.post(f"/v1/organizations/{a.id}/members", headers=a.agent_headers, json=new_member)
    assert agent_creates.status_code == 403 and agent_creates.json()["code"] == "forbidden"
    assert (await http.get(f"/v1/organizations/{a.id}/members", headers=a.agent_headers)).status_code == 403
    assert (await http.post("/v1/organizations", headers=a.admin_headers, json=organization_body())).status_code == 403

    for method, path, body in [
        ("POST", f"/v1/organizations/{b.id}/members", new_member),
        ("GET", f"/v1/organizations/{b.id}/members", None),
        ("GET", f"/v1/organizations/{b.id}", None),
        ("GET", f"/v1/organizations/{b.id}/stripe-account", None),
        ("POST", f"/v1/organizations/{b.id}/stripe-account", {}),
        ("POST", f"/v1/organizations/{b.id}/onboarding-link", {"return_url": RETURN_URL, "refresh_url": REFRESH_URL}),
    ]:
        answer = await http.request(method, path, headers=a.admin_headers, json=body)
        assert answer.status_code == 404, (method, path, answer.text)
        assert b.id not in answer.text

    created = await http.post(f"/v1/organizations/{a.id}/members", headers=a.admin_headers, json=new_member)
    assert created.status_code == 201, created.text
    assert created.json()["organization_id"] == a.id and created.json()["role"] == "agent"

    admin = await stack.admin_headers()
    unknown = str(uuid.uuid4())
    assert (await http.get(f"/v1/organizations/{unknown}", headers=admin)).status_code == 404
    assert (await http.post(f"/v1/organizations/{unknown}/members", headers=admin, json=new_member)).status_code == 404


async def test_duplicate_member_email_is_409(stack: Stack) -> None:
    org = await onboarded_organization(stack, onboard=False)
    body = {"email": org.agent_email.upper(), "name": "Twin", "role": "agent", "password": MEMBER_PASSWORD}
    answer = await stack.http.post(f"/v1/organizations/{org.id}/members", headers=org.admin_headers, json=body)
    assert answer.status_code == 409 and answer.json()["code"] == "email_taken"


async def test_invalid_organisation_input_is_400(stack: Stack) -> None:
    admin = await stack.admin_headers()
    cases: list[tuple[dict[str, Any], str]] = [
        ({"country": "XX"}, "country"),
        ({"country": "France"}, "country"),
        ({"business_type": "charity"}, "business_type"),
        ({"email": "not-an-email"}, "email"),
        ({"charge_model": "indirect"}, "charge_model"),
        ({"fee_percent_bps": -1}, "fee_percent_bps"),
        ({"address": {"line1": "1 rue", "city": "Lyon"}}, "address.postal_code"),
    ]
    for overrides, field in cases:
        answer = await stack.http.post("/v1/organizations", headers=admin, json=organization_body(**overrides))
        assert answer.status_code == 400, (overrides, answer.text)
        problem = answer.json()
        assert problem["code"] == "validation_error"
        assert field in {e["field"] for e in problem["errors"]}, (overrides, problem)


async def test_concurrent_account_creation_makes_one_account(stack: Stack) -> None:
    admin = await stack.admin_headers()
    org = (await stack.http.post("/v1/organizations", headers=admin, json=organization_body())).json()
    answers = await asyncio.gather(
        *(stack.http.post(f"/v1/organizations/{org['id']}/stripe-account", headers=admin, json={}) for _ in range(6))
    )
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    assert len({a.json()["stripe_account_id"] for a in answers}) == 1
    sandbox = stack.extras["stripe_sandbox"]
    created = [
        a
        for a in sandbox.state.store.newest_first(sandbox.state.platform_id, "account")
        if a.get("metadata", {}).get("organization_id") == org["id"]
    ]
    assert len(created) == 1


async def test_stripe_unavailable_is_503_and_writes_nothing(stack: Stack) -> None:
    admin = await stack.admin_headers()
    org = (await stack.http.post("/v1/organizations", headers=admin, json=organization_body())).json()
    sandbox = stack.extras["stripe_sandbox"]
    async with httpx.AsyncClient(base_url=sandbox.url) as ops:
        # More failures than the SDK will try (1 + 2 retries), in case a background call takes one; reset after.
        await ops.post("/_sandbox/fail", json={"fail_next": 10, "status": 503})
        try:
            answer = await stack.http.post(f"/v1/organizations/{org['id']}/stripe-account", headers=admin, json={})
        finally:
            await ops.post("/_sandbox/fail", json={"fail_next": 0, "status": 503})
    assert answer.status_code == 503, answer.text
    assert answer.json()["code"] == "stripe_unavailable"
    shown = (await stack.http.get(f"/v1/organizations/{org['id']}", headers=admin)).json()
    assert shown["stripe_account_id"] is None
    row = await stack.deps["accounts"].pool.fetchrow(
        "SELECT stripe_account_id, stripe_state_at FROM organizations WHERE id = $1", uuid.UUID(org["id"])
    )
    assert row is not None and row["stripe_account_id"] is None and row["stripe_state_at"] is None
    retried = await stack.http.post(f"/v1/organizations/{org['id']}/stripe-account", headers=admin, json={})
    assert retried.status_code == 200 and retried.json()["stripe_account_id"].startswith("acct_")


async def test_org_admin_manages_members(stack: Stack) -> None:
    org = await onboarded_organization(stack, onboard=False)
    other = await onboarded_organization(stack, onboard=False)
    http = stack.http
    agent_path = f"/v1/organizations/{org.id}/members/{org.agent_id}"

    assert (await http.get(agent_path, headers=org.agent_headers)).json()["id"] == org.agent_id
    admin_path = f"/v1/organizations/{org.id}/members/{org.admin_id}"
    assert (await http.get(admin_path, headers=org.agent_headers)).status_code == 404
    assert (await http.patch(agent_path, headers=org.agent_headers, json={"name": "Me"})).status_code == 403
    foreign = f"/v1/organizations/{other.id}/members/{other.agent_id}"
    assert (await http.patch(foreign, headers=org.admin_headers, json={"disabled": True})).status_code == 404
    mixed = f"/v1/organizations/{org.id}/members/{other.agent_id}"
    assert (await http.get(mixed, headers=org.admin_headers)).status_code == 404

    renamed = await http.patch(agent_path, headers=org.admin_headers, json={"name": "Field agent", "role": "org_admin"})
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["name"] == "Field agent" and renamed.json()["role"] == "org_admin"
    demoted = await http.patch(agent_path, headers=org.admin_headers, json={"role": "agent"})
    assert demoted.json()["role"] == "agent"

    disabled = await http.patch(agent_path, headers=org.admin_headers, json={"disabled": True})
    assert disabled.status_code == 200 and disabled.json()["disabled"] is True
    login = await http.post("/v1/auth/token", json={"email": org.agent_email, "password": org.password})
    assert login.status_code == 401
    # Refused either way: its token revoked (issued in an earlier second than the change, see
    # test_revocations.py) or, from the change's own second, the member found disabled.
    me = await http.get("/v1/me", headers=org.agent_headers)
    assert (me.status_code, me.json()["code"]) in ((401, "token_revoked"), (404, "member_not_found")), me.text
    enabled = await http.patch(agent_path, headers=org.admin_headers, json={"disabled": False})
    assert enabled.json()["disabled"] is False
    assert (
        await http.post("/v1/auth/token", json={"email": org.agent_email, "password": org.password})
    ).status_code == 200

    self_disable = await http.patch(admin_path, headers=org.admin_headers, json={"disabled": True})
    assert self_disable.status_code == 409 and self_disable.json()["code"] == "cannot_change_self"
    bad = await http.patch(agent_path, headers=org.admin_headers, json={"role": "platform_admin", "disabled": "yes"})
    assert bad.status_code == 400 and {e["field"] for e in bad.json()["errors"]} == {"role", "disabled"}


async def test_refresh_while_stripe_is_down_keeps_the_stored_status(stack: Stack) -> None:
    org = await onboarded_organization(stack)
    path = f"/v1/organizations/{org.id}/stripe-account"
    sandbox = stack.extras["stripe_sandbox"]
    async with httpx.AsyncClient(base_url=sandbox.url) as ops:
        await ops.post("/_sandbox/fail", json={"fail_next": 10, "status": 503})
        try:
            answer = await stack.http.get(f"{path}?refresh=true", headers=org.admin_headers)
        finally:
            await ops.post("/_sandbox/fail", json={"fail_next": 0, "status": 503})
    assert answer.status_code == 503 and answer.json()["code"] == "stripe_unavailable"
    assert answer.headers["content-type"] == "application/problem+json"
    stored = await stack.http.get(path, headers=org.admin_headers)
    assert stored.status_code == 200 and stored.json()["charges_enabled"] is True
