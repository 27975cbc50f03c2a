"""A member disabled or given another role loses the tokens issued before, at once (not at expiry)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import asyncpg
import httpx

from gateway.app import create_app
from runtime.asgi_server import serve_asgi
from tests.fixtures.organizations import OrgContext, onboarded_organization
from tests.fixtures.stack import Stack


async def _until_refused(http: httpx.AsyncClient, headers: dict[str, str], seconds: float = 2.0) -> list[int]:
    """GET /v1/payments with `headers` until it answers 401 (the change reaches the gateway in ms)."""
    answers: list[int] = []
    for _ in range(int(seconds / 0.05)):
        answer = await http.get("/v1/payments", headers=headers)
        answers.append(answer.status_code)
        if answer.status_code == 401:
            assert answer.json()["code"] == "token_revoked"
            break
        await asyncio.sleep(0.05)
    return answers


async def _issued_a_second_ago(stack: Stack) -> OrgContext:
    return await onboarded_organization(stack, onboard=False)  # token times are microseconds: no wait needed


async def test_a_disabled_member_is_refused_at_once(stack: Stack) -> None:
    org = await _issued_a_second_ago(stack)
    assert (await stack.http.get("/v1/payments", headers=org.agent_headers)).status_code == 200
    changed = await stack.http.patch(
        f"/v1/organizations/{org.id}/members/{org.agent_id}", headers=org.admin_headers, json={"disabled": True}
    )
    assert changed.status_code == 200, changed.text
    answers = await _until_refused(stack.http, org.agent_headers)
    assert answers[-1] == 401 and answers.count(200) <= 1, answers
    refused = await stack.http.post("/v1/payments", headers={**org.agent_headers, "Idempotency-Key": "k1"}, json={})
    assert refused.status_code == 401
    # The admin's own token is untouched.
    assert (await stack.http.get("/v1/payments", headers=org.admin_headers)).status_code == 200


async def test_a_new_role_needs_a_new_token(stack: Stack) -> None:
    witness = await onboarded_organization(stack, onboard=False)
    org = await _issued_a_second_ago(stack)
    changed = await stack.http.patch(
        f"/v1/organizations/{org.id}/members/{org.agent_id}", headers=org.admin_headers, json={"role": "org_admin"}
    )
    assert changed.status_code == 200, changed.text
    answers = await _until_refused(stack.http, org.agent_headers)
    assert answers[-1] == 401, answers
    fresh = await stack.login(org.agent_email, org.password)
    me = await stack.http.get("/v1/me", headers=fresh)
    assert me.status_code == 200 and me.json()["role"] == "org_admin"
    # Renaming is not an access change: tokens stay valid (the admin's is older than a second, so a
    # revocation would refuse it). The watch is one ordered stream: once a later change to another
    # member is heard, the rename was heard before it.
    renamed = await stack.http.patch(
        f"/v1/organizations/{org.id}/members/{org.admin_id}", headers=fresh, json={"name": "Renamed"}
    )
    assert renamed.status_code == 200, renamed.text
    disabled = await stack.http.patch(
        f"/v1/organizations/{witness.id}/members/{witness.agent_id}",
        headers=witness.admin_headers,
        json={"disabled": True},
    )
    assert disabled.status_code == 200, disabled.text
    assert (await _until_refused(stack.http, witness.agent_headers))[-1] == 401
    assert (await stack.http.get("/v1/payments", headers=org.admin_headers)).status_code == 200
    assert (await stack.http.get("/v1/payments", headers=fresh)).status_code == 200


async def test_a_gateway_started_later_hears_of_earlier_changes(stack: Stack) -> None:
    org = await _issued_a_second_ago(stack)
    changed = await stack.http.patch(
        f"/v1/organizations/{org.id}/members/{org.agent_id}", headers=org.admin_headers, json={"disabled": True}
    )
    assert changed.status_code == 200
    async with (
        serve_asgi(create_app(stack.gateway_settings())) as url,
        httpx.AsyncClient(base_url=url, timeout=30) as http,
    ):
        answers = await _until_refused(http, org.agent_headers)
    assert answers[-1] == 401 and answers.count(200) <= 1, answers


async def test_a_token_from_the_same_second_as_the_change_is_refused_if_issued_before_it(stack: Stack) -> None:
    org = await onboarded_organization(stack, onboard=False)
    changed = await stack.http.patch(
        f"/v1/organizations/{org.id}/members/{org.agent_id}", headers=org.admin_headers, json={"role": "org_admin"}
    )
    assert changed.status_code == 200, changed.text
    conn = await asyncpg.connect(stack.database.urls["accounts"])
    try:
        at = await conn.fetchval("SELECT access_changed_at FROM accounts.members WHERE id = $1", org.agent_id)
    finally:
        await conn.close()
    # Tokens a microsecond either side of the change (the same second unless the change fell on a
    # whole second, when "before" is the previous second and refused all the more).
    before = stack.signer.issue(org.agent_id, org.id, "agent", now=(at - timedelta(microseconds=1)).timestamp())
    after = stack.signer.issue(org.agent_id, org.id, "org_admin", now=(at + timedelta(microseconds=1)).timestamp())
    answers = await _until_refused(stack.http, {"Authorization": f"Bearer {before}"})
    assert answers[-1] == 401, answers
    assert (await stack.http.get("/v1/payments", headers={"Authorization": f"Bearer {after}"})).status_code == 200
