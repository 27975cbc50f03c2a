"""Disputes in the books through the stack: a direct charge's dispute won and a destination charge's
lost, in the daily report (apart from refunds), both organisations' FECs and the platform's."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from services.banking import repository
from tests.fixtures.fec import account_totals, cents, checked_fec
from tests.fixtures.organizations import OrgContext, onboarded_organization
from tests.fixtures.stack import Stack
from tests.integration.banking.conftest import pay_out, today
from tests.integration.payments.conftest import (
    deliver_shuffled,
    disputed_payment,
    listed_dispute,
    stripe_account_for,
    stripe_dispute,
    submit_evidence,
)


async def _closed_dispute(stack: Stack, org: OrgContext, model: str, amount: int, text: str) -> dict[str, Any]:
    """A payment disputed, answered with `text` (Stripe's test evidence), closed, its events applied."""
    payment = await disputed_payment(stack, org, model, amount)
    account = stripe_account_for(org, model)
    await deliver_shuffled(stack, payment, account, seed=1)
    await submit_evidence(stack, org, await listed_dispute(stack, org.admin_headers, payment["id"]), text)
    await stripe_dispute(stack, payment, account, "won" if text == "winning_evidence" else "lost")
    await deliver_shuffled(stack, payment, account, seed=2)
    return await listed_dispute(stack, org.admin_headers, payment["id"])


def _by_account(rows: list[list[str]], piece: str) -> dict[str, int]:
    """Debits less credits per account of the entries of one piece (a dispute's id)."""
    found: dict[str, int] = {}
    for cells in rows:
        if cells[8] == piece:
            found[cells[4]] = found.get(cells[4], 0) + cents(cells[11]) - cents(cells[12])
    return found


async def _fec(stack: Stack, path: str, headers: dict[str, str]) -> list[list[str]]:
    day = today()
    answer = await stack.http.get(path, params={"from": day, "to": day}, headers=headers)
    assert answer.status_code == 200, answer.text
    return checked_fec(answer.text)[0]  # balanced, numbered without gaps


async def test_disputes_in_the_report_and_both_fecs(bank_stack: Stack) -> None:
    stack = bank_stack
    admin = await stack.admin_headers()
    direct = await onboarded_organization(stack)
    destination = await onboarded_organization(stack, charge_model="destination", fee_percent_bps=1000)
    for org in (direct, destination):
        named = await stack.http.patch(f"/v1/organizations/{org.id}", headers=admin, json={"siren": "732829320"})
        assert named.status_code == 200, named.text
    won = await _closed_dispute(stack, direct, "direct", 4_000, "winning_evidence")
    lost = await _closed_dispute(stack, destination, "destination", 6_000, "losing_evidence")
    assert lost["transfer_reversed"] == 5_400

    report = (await stack.http.get("/v1/reports/daily", params={"date": today()}, headers=admin)).json()
    lines = {line["organization_id"]: line for line in report["organizations"]}
    assert [lines[direct.id][k] for k in ("refunds", "disputed_count", "disputed", "disputes_lost")] == [0, 1, 4_000, 0]
    # What the destination organisation lost: the transfer reversed (the platform bore its 600 fee's part).
    assert [lines[destination.id][k] for k in ("disputed_count", "disputed", "disputes_lost")] == [1, 6_000, 5_400]
    csv_report = await stack.http.get("/v1/reports/daily", params={"date": today(), "format": "csv"}, headers=admin)
    assert "disputes_lost" in csv_report.text.splitlines()[0]

    # The direct organisation's books: taken by Stripe into disputed receivables, back when won.
    await pay_out(stack, direct)  # its whole balance: the dispute's fee comes with the payout's Stripe fees
    books = await _fec(stack, f"/v1/organizations/{direct.id}/exports/fec", direct.admin_headers)
    assert _by_account(books, won["id"]) == {"416000": 0, "467000": 0}
    dispute_fee = [c for c in books if c[4] == "627000" and won["stripe_dispute_id"] in c[10]]
    assert [(cents(c[11]), c[0]) for c in dispute_fee] == [(1_500, "ST")]
    assert account_totals(books, "467000")[0] == account_totals(books, "467000")[1]  # all paid out: back to zero
    # The destination organisation bears the reversed transfer, lost.
    books = await _fec(stack, f"/v1/organizations/{destination.id}/exports/fec", destination.admin_headers)
    assert _by_account(books, lost["id"]) == {"416000": 0, "467000": -5_400, "654000": 5_400}
    # The platform was debited the whole amount, took 5,400 back from the organisation, lost the rest.
    books = await _fec(stack, "/v1/banking/exports/fec", admin)
    assert _by_account(books, lost["id"]) == {"416000": 0, "467000": -600, "467100": 0, "654000": 600}
    assert _by_account(books, won["id"]) == {}  # a direct charge's dispute is not the platform's


async def test_stripe_fees_are_booked_on_the_day_their_payout_brought_them(bank_stack: Stack) -> None:
    """Stripe's fees (the dispute's among them) reach the books with the paid payout that carries
    them, days after Stripe took them: they are booked on the day Banking stored them, so the days
    before (maybe exported already) do not change, nor does storing the payout again."""
    stack = bank_stack
    org = await onboarded_organization(stack)
    named = await stack.http.patch(
        f"/v1/organizations/{org.id}", headers=await stack.admin_headers(), json={"siren": "732829320"}
    )
    assert named.status_code == 200, named.text
    won = await _closed_dispute(stack, org, "direct", 4_000, "winning_evidence")
    path, day = f"/v1/organizations/{org.id}/exports/fec", date.fromisoformat(today())
    earlier = day - timedelta(days=3)

    async def books(on: date) -> list[list[str]]:
        answer = await stack.http.get(
            path, params={"from": on.isoformat(), "to": on.isoformat()}, headers=org.admin_headers
        )
        assert answer.status_code == 200, answer.text
        return checked_fec(answer.text)[0]

    before_payout = await books(earlier)
    await pay_out(stack, org)
    pool = stack.deps["banking"].pool
    payout_id = await pool.fetchval("SELECT id FROM payouts WHERE stripe_account_id = $1", org.stripe_account_id)
    # As if Stripe had taken the fees three days before the payout that carries them was paid.
    await pool.execute(
        "UPDATE payout_balance_transactions SET created = created - interval '3 days' WHERE payout_id = $1", payout_id
    )
    assert await books(earlier) == before_payout  # the earlier day is as it was
    stored = await books(day)
    dispute_fee = [c for c in stored if c[4] == "627000" and won["stripe_dispute_id"] in c[10]]
    assert [(cents(c[11]), c[0], c[3]) for c in dispute_fee] == [(1_500, "ST", day.strftime("%Y%m%d"))]
    async with pool.acquire() as conn:  # the payout stored again (a newer event about it): nothing moves
        rows = await conn.fetch(
            """SELECT stripe_balance_transaction_id AS id, type, source, amount, fee, net, currency, created
                 FROM payout_balance_transactions WHERE payout_id = $1""",
            payout_id,
        )
        await repository.replace_balance_transactions(conn, str(payout_id), [dict(r) for r in rows])
    assert await books(day) == stored
