"""The console's audit trail view in Chromium: an org_admin sees its organisation's actions, filters
them and pages through them; an agent is not shown the page."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, Page, expect

from tests.fixtures.organizations import OrgContext, onboarded_organization
from tests.fixtures.stack import Stack
from tests.integration.console.conftest import SHOTS

WAIT = 15_000  # ms


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context(viewport={"width": 1100, "height": 800}, locale="fr-FR")
    try:
        yield await context.new_page()
    finally:
        await context.close()


async def _sign_in(page: Page, stack: Stack, email: str, password: str) -> None:
    await page.goto(stack.gateway_url + "/console")
    await page.get_by_label("E-mail").fill(email)
    await page.get_by_label("Mot de passe").fill(password)
    await page.get_by_role("button", name="Se connecter").click()
    await expect(page.locator("#sign-out")).to_be_visible(timeout=WAIT)


async def test_an_org_admin_filters_and_pages_its_audit_trail(page: Page, bank_stack: Stack) -> None:
    org: OrgContext = await onboarded_organization(bank_stack)
    for fee in (10, 20, 30):  # more member changes than a page holds below
        answer = await bank_stack.http.patch(
            f"/v1/organizations/{org.id}/members/{org.agent_id}",
            headers=org.admin_headers,
            json={"name": f"Agent {fee}"},
        )
        assert answer.status_code == 200, answer.text
    await _sign_in(page, bank_stack, org.admin_email, org.password)
    await page.get_by_role("link", name="Journal d'audit").click()
    await expect(page.get_by_role("heading", name="Journal d'audit")).to_be_visible(timeout=WAIT)
    rows = page.locator("#audit tbody tr[data-entry]")
    await expect(rows.first).to_be_visible(timeout=WAIT)
    assert "organization.created" in await page.locator("#audit").inner_text()
    SHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SHOTS / "audit.png"), full_page=True)

    await page.locator("#audit-filters").get_by_label("Action").fill("member.updated")
    await page.locator("#audit-filters").get_by_role("button", name="Filtrer").click()
    await page.wait_for_url("**/console/audit?action=member.updated", timeout=WAIT)
    await expect(rows).to_have_count(3, timeout=WAIT)
    actions = await page.locator("#audit tbody td code").all_inner_texts()
    assert set(actions) == {"member.updated"}
    assert org.agent_email not in await page.locator("#audit").inner_text()  # no personal data shown

    # Pages: the view follows the cursor in its address (here one made for pages of two).
    cursor = await page.evaluate(
        "fetch('/v1/audit?action=member.updated&limit=2').then(r => r.json()).then(b => b.next_cursor)"
    )
    assert cursor
    await page.goto(bank_stack.gateway_url + f"/console/audit?action=member.updated&cursor={cursor}")
    await expect(rows).to_have_count(1, timeout=WAIT)
    await page.locator("#audit-first").click()
    await expect(rows).to_have_count(3, timeout=WAIT)


async def test_an_agent_is_not_shown_the_audit_trail(page: Page, bank_stack: Stack) -> None:
    org = await onboarded_organization(bank_stack, onboard=False)
    await _sign_in(page, bank_stack, org.agent_email, org.password)
    assert await page.get_by_role("link", name="Journal d'audit").count() == 0
    await page.goto(bank_stack.gateway_url + "/console/audit")
    await expect(page.get_by_role("heading", name="Votre rôle ne permet pas d'afficher cette page.")).to_be_visible(
        timeout=WAIT
    )
