"""A Connect event reaches the organisation of its connected account, and only that one."""

from __future__ import annotations

import httpx

from tests.fixtures.organizations import onboarded_organization
from tests.integration.webhooks.conftest import WebhookPlatform


async def test_account_updated_is_applied_to_the_accounts_organisation(platform: WebhookPlatform) -> None:
    stack = platform.stack
    target = await onboarded_organization(stack, onboard=False)
    bystander = await onboarded_organization(stack, onboard=False)
    assert target.stripe_account_id and bystander.stripe_account_id
    admin = await stack.admin_headers()
    before = (await stack.http.get(f"/v1/organizations/{target.id}", headers=admin)).json()
    assert before["charges_enabled"] is False

    async with httpx.AsyncClient() as http:
        onboarded = await http.post(f"{platform.stripe.url}/_sandbox/accounts/{target.stripe_account_id}/onboard")
        assert onboarded.status_code == 200
    await platform.stripe.wait_for_deliveries(30)

    rows = await platform.pool("accounts").fetch(
        "SELECT status FROM inbox_events WHERE account = $1 AND type = 'account.updated'", target.stripe_account_id
    )
    assert rows and {r["status"] for r in rows} <= {"applied", "ignored"} and "applied" in {r["status"] for r in rows}
    after = (await stack.http.get(f"/v1/organizations/{target.id}", headers=admin)).json()
    assert after["charges_enabled"] is True and after["payouts_enabled"] is True
    untouched = (await stack.http.get(f"/v1/organizations/{bystander.id}", headers=admin)).json()
    assert untouched["charges_enabled"] is False


async def test_members_cannot_use_the_inbox_operations(platform: WebhookPlatform) -> None:
    org = await onboarded_organization(platform.stack, onboard=False)
    http = platform.stack.http
    assert (await http.get("/v1/ops/events", headers=org.admin_headers)).status_code == 403
    assert (await http.post("/v1/ops/events/replay", json={}, headers=org.agent_headers)).status_code == 403
