"""The console's Disputes view in Chromium: an org admin sees the dispute with its due date and
answers it with evidence; another organisation's admin does not see it."""

from __future__ import annotations

from playwright.async_api import expect

from tests.fixtures.organizations import onboarded_organization
from tests.integration.console.test_console import WAIT, Console, console  # noqa: F401 - the fixture
from tests.integration.payments.conftest import deliver_shuffled, disputed_payment


async def test_an_org_admin_answers_a_dispute_with_evidence(console: Console) -> None:  # noqa: F811
    stack, page = console.stack, console.page
    org = await onboarded_organization(stack)
    other = await onboarded_organization(stack)
    payment = await disputed_payment(stack, org, "direct", 4_200)
    await deliver_shuffled(stack, payment, org.stripe_account_id, seed=1)

    await console.sign_in(other.admin_email, other.password)
    await page.get_by_role("link", name="Litiges").click()
    await expect(page.locator("#disputes")).to_contain_text("Aucune donnée", timeout=WAIT)
    await page.locator("#sign-out").click()

    await console.sign_in(org.admin_email, org.password)
    await page.get_by_role("link", name="Litiges").click()
    row = page.locator("#disputes tbody tr").first
    await expect(row).to_contain_text("42,00", timeout=WAIT)
    await expect(row).to_contain_text("needs_response")
    await console.shot("disputes")
    await row.get_by_role("button", name="Répondre").click()
    form = page.locator("#evidence-form")
    await form.get_by_label("Description du produit").fill("Calendrier 2027")
    await form.get_by_label("Autres éléments").fill("winning_evidence")
    await form.locator("#send-evidence").click()
    await expect(page.locator("#disputes tbody tr").first).to_contain_text("under_review", timeout=WAIT)
    listed = await stack.http.get("/v1/disputes", headers=org.admin_headers)
    assert [(d["payment_id"], d["evidence_submissions"]) for d in listed.json()["data"]] == [(payment["id"], 1)]
