"""The console through the real stack in Chromium: sign in, onboard, live sales feed, refund, isolation
between organisations, a reconciled payout, the daily report and its downloads. Each page's screenshot
is taken (into docs/console/ with CONSOLE_SCREENSHOTS=docs/console)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from playwright.async_api import Browser, BrowserContext, Page, expect

from tests.fixtures.organizations import OrgContext, onboarded_organization
from tests.fixtures.stack import ADMIN_EMAIL, ADMIN_PASSWORD, Stack
from tests.integration.banking.conftest import eventually, pay_out, sell, today
from tests.integration.console.conftest import SHOTS

WAIT = 15_000  # ms: what the page waits for at most (the feed polls every 3 s)


class Console:
    def __init__(self, stack: Stack, context: BrowserContext, page: Page) -> None:
        self.stack, self.context, self.page = stack, context, page

    @property
    def url(self) -> str:
        return self.stack.gateway_url + "/console"

    async def sign_in(self, email: str, password: str) -> None:
        await self.page.goto(self.url)
        await self.page.get_by_label("E-mail").fill(email)
        await self.page.get_by_label("Mot de passe").fill(password)
        await self.page.get_by_role("button", name="Se connecter").click()
        await expect(self.page.locator("#sign-out")).to_be_visible(timeout=WAIT)

    async def shot(self, name: str) -> None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        await self.page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


@pytest.fixture
async def console(browser: Browser, bank_stack: Stack) -> AsyncIterator[Console]:
    context = await browser.new_context(viewport={"width": 1100, "height": 800}, locale="fr-FR", accept_downloads=True)
    page = await context.new_page()
    try:
        yield Console(bank_stack, context, page)
    finally:
        await context.close()


@pytest.fixture(scope="module")
async def org_a(bank_stack: Stack) -> OrgContext:
    return await onboarded_organization(bank_stack, fee_percent_bps=100)


async def _payments(stack: Stack, org: OrgContext) -> list[dict[str, Any]]:
    answer = await stack.http.get("/v1/payments", headers=org.admin_headers)
    assert answer.status_code == 200, answer.text
    data: list[dict[str, Any]] = answer.json()["data"]
    return data


async def test_sign_in_session_cookie_csrf_and_sign_out(console: Console) -> None:
    page = console.page
    await page.goto(console.url)
    await page.get_by_label("E-mail").fill(ADMIN_EMAIL)
    await page.get_by_label("Mot de passe").fill("not-the-password")
    await page.get_by_role("button", name="Se connecter").click()
    await expect(page.locator(".form-error")).not_to_be_empty(timeout=WAIT)
    await console.shot("login")

    await console.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD)
    await expect(page.get_by_role("heading", name="Vue d'ensemble")).to_be_visible(timeout=WAIT)
    [cookie] = [c for c in await console.context.cookies() if c["name"] == "collect_console"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert await page.evaluate("document.cookie") == ""  # the page's script cannot read it

    # The cookie stands for the bearer on reads; a write without the CSRF token is refused.
    read = await page.evaluate("fetch('/v1/me').then(r => r.status)")
    write = await page.evaluate(
        "fetch('/v1/organizations', {method: 'POST', headers: {'content-type': 'application/json'}, body: '{}'})"
        ".then(async r => [r.status, (await r.json()).code])"
    )
    assert (read, write) == (200, [403, "csrf_failed"])

    await page.locator("#sign-out").click()
    await expect(page.get_by_role("button", name="Se connecter")).to_be_visible(timeout=WAIT)
    assert await page.evaluate("fetch('/v1/me').then(r => r.status)") == 401

    # Signing in is JSON from the console's own origin: a form or another site cannot sign a browser in.
    credentials = {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
    foreign = await console.stack.http.post(
        "/console/session", json=credentials, headers={"Origin": "https://elsewhere.test"}
    )
    form = await console.stack.http.post("/console/session", data=credentials)
    assert (foreign.status_code, form.status_code) == (403, 415)


async def test_onboarding_an_organisation(console: Console) -> None:
    page = console.page
    await console.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD)
    await page.get_by_role("link", name="Organisations").click()
    tag = uuid.uuid4().hex[:8]
    form = page.locator("#create-org")
    await form.get_by_label("Nom").fill(f"Amicale {tag}")
    await form.get_by_label("E-mail").fill(f"amicale-{tag}@example.test")
    await form.get_by_label("Adresse").fill("1 rue de la Caserne")
    await form.get_by_label("Ville").fill("Lyon")
    await form.get_by_label("Code postal").fill("69001")
    await console.shot("organizations")
    await form.get_by_role("button", name="Créer").click()
    await expect(page.get_by_role("heading", name=f"Amicale {tag}")).to_be_visible(timeout=WAIT)

    await page.locator("#create-account").click()
    await page.locator("#new-onboarding-link").click()
    await page.locator("#open-onboarding").click()  # the sandbox's onboarding returns to the console
    await page.wait_for_url("**/console/organizations/*?onboarding=done", timeout=WAIT)
    await expect(page.locator("#onboarding .badge.ok").first).to_be_visible(timeout=WAIT)
    await expect(page.locator("#requirements")).to_have_text("—")
    await console.shot("organization")


async def test_a_sale_appears_in_the_feed_without_reload_then_a_refund(console: Console, org_a: OrgContext) -> None:
    stack, page = console.stack, console.page
    await console.sign_in(org_a.admin_email, org_a.password)
    await page.get_by_role("link", name="Ventes").first.click()
    await expect(page.locator("#feed")).to_be_visible(timeout=WAIT)
    await page.evaluate("window.sameDocument = true")

    await sell(stack, org_a, [2500])
    [payment] = [p for p in await _payments(stack, org_a) if p["amount"] == 2500]
    row = page.locator(f'#feed tr[data-payment="{payment["id"]}"]')
    await expect(row).to_contain_text("25,00", timeout=WAIT)
    assert await page.evaluate("window.sameDocument") is True  # no reload
    # The ranking follows with the feed's next refresh of the stats.
    await expect(page.locator("#ranking")).to_contain_text("Agent", timeout=WAIT)
    await expect(page.locator("#ranking svg rect")).to_have_count(1, timeout=WAIT)
    await console.shot("sales")
    await page.set_viewport_size({"width": 375, "height": 800})
    await console.shot("sales-phone")
    await page.set_viewport_size({"width": 1100, "height": 800})

    await row.get_by_role("link").click()
    await page.locator("#refund-form").get_by_label("Montant", exact=False).fill("5,00")
    await page.locator("#refund").click()
    await expect(page.locator("#confirm-refund")).to_contain_text("5,00")
    await page.locator("#confirm-refund-yes").click()
    await expect(page.locator("#refunds tbody")).to_contain_text("5,00", timeout=WAIT)
    await console.shot("payment")
    refunded = (await stack.http.get(f"/v1/payments/{payment['id']}", headers=org_a.admin_headers)).json()
    assert refunded["amount_refunded"] == 500 and len(refunded["refunds"]) == 1


async def test_an_agent_of_one_organisation_cannot_see_another_by_url(console: Console, org_a: OrgContext) -> None:
    stack, page = console.stack, console.page
    org_b = await onboarded_organization(stack)
    await sell(stack, org_b, [1200])
    [secret] = await _payments(stack, org_b)
    await console.sign_in(org_a.agent_email, org_a.password)
    await expect(page.locator("#feed")).to_be_visible(timeout=WAIT)  # agents land on their own sales

    for path in (f"/organizations/{org_b.id}/sales", f"/organizations/{org_b.id}/payments/{secret['id']}"):
        await page.goto(console.url + path)
        await expect(page.locator("#problem")).to_have_text("Introuvable (ou pas à vous).", timeout=WAIT)
        assert org_b.organization["name"] not in await page.content()
    await page.goto(console.url + "/banking")
    await expect(page.get_by_role("heading", name="Votre rôle ne permet pas d'afficher cette page.")).to_be_visible()


async def test_banking_shows_a_reconciled_payout_and_the_daily_report_downloads(
    console: Console, org_a: OrgContext
) -> None:
    stack, page = console.stack, console.page
    admin = await stack.admin_headers()
    payout = await pay_out(stack, org_a)

    async def credited() -> bool:
        answer = await stack.http.get("/v1/banking/transactions", params={"limit": "100"}, headers=admin)
        return any(t["reference"] == payout["id"] for t in answer.json()["data"])

    await eventually(credited, "the bank credit of the payout")
    await console.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD)
    await page.get_by_role("link", name="Banque").click()
    await page.get_by_role("button", name="Lancer le rapprochement").click()
    row = page.locator(f'#payouts tr[data-payout="{payout["id"]}"]')
    await expect(row.locator(".badge.ok")).to_have_text("rapproché", timeout=WAIT)
    await expect(page.locator("#daily-report")).to_contain_text(org_a.organization["name"], timeout=WAIT)

    # The allocation rules editor shows the API's validation at the field.
    await page.locator("#add-rule").click()
    await page.locator("#save-rules").click()
    invalid = page.locator('#allocation-rules [aria-invalid="true"]')
    await expect(invalid).to_have_count(1, timeout=WAIT)
    assert (await invalid.get_attribute("data-field") or "").endswith("].share_bps")
    await expect(page.locator("#allocation-rules .field-error", has_text="is required")).to_have_count(1)
    await console.shot("banking")

    async with page.expect_download() as csv_download:
        await page.locator("#download-csv").click()
    csv_text = (await (await csv_download.value).path()).read_text()
    assert org_a.id in csv_text
    async with page.expect_download() as fec_download:
        await page.locator("#download-fec").click()
    fec = await fec_download.value
    assert fec.suggested_filename.endswith(".txt") or "FEC" in fec.suggested_filename
    assert (await fec.path()).read_text().startswith("JournalCode\tJournalLib")

    await page.locator("#send-slack").click()
    await eventually(lambda: _sent(stack), "the report in Slack", attempts=200)

    await page.get_by_role("link", name="Vue d'ensemble").click()
    await expect(page.locator("#per-org")).to_contain_text(org_a.organization["name"], timeout=WAIT)
    await console.shot("overview")
    await page.get_by_role("link", name="Opérations").click()
    await expect(page.locator("#events")).to_be_visible(timeout=WAIT)
    await console.shot("operations")
    await page.goto(f"{console.url}/organizations/{org_a.id}/terminal")
    await expect(page.locator("#locations")).to_be_visible(timeout=WAIT)
    await console.shot("terminal")
    await page.locator("#top").get_by_role("button", name="English").click()
    await expect(page.get_by_role("link", name="Banking")).to_be_visible()
    assert today()


async def _sent(stack: Stack) -> bool:
    return any(today() in message.get("text", "") for message in stack.extras["slack"].received)
