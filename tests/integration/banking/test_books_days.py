"""A payout in the books through the real parts: booked on the day Banking recorded it paid, and a
failure after that undone on its own day, so the day it was booked on reads the same afterwards."""

from __future__ import annotations

from datetime import date, timedelta

from tests.fixtures.fec import account_totals, checked_fec
from tests.fixtures.organizations import onboarded_organization
from tests.fixtures.stack import Stack
from tests.integration.banking.conftest import fail_payout, pay_out, sell, today


async def test_a_payout_failing_after_it_was_booked_paid_is_undone_on_the_day_it_failed(bank_stack: Stack) -> None:
    stack = bank_stack
    org = await onboarded_organization(stack)
    named = await stack.http.patch(
        f"/v1/organizations/{org.id}", headers=await stack.admin_headers(), json={"siren": "732829320"}
    )
    assert named.status_code == 200, named.text
    await sell(stack, org, [3000])
    payout = await pay_out(stack, org)
    pool = stack.deps["banking"].pool
    # As if Banking had recorded it paid yesterday: the day its books were exported.
    await pool.execute(
        "UPDATE payouts SET paid_booked_at = paid_booked_at - interval '1 day' WHERE stripe_payout_id = $1",
        payout["id"],
    )
    day = date.fromisoformat(today())
    yesterday = day - timedelta(days=1)

    async def books(on: date) -> str:
        answer = await stack.http.get(
            f"/v1/organizations/{org.id}/exports/fec",
            params={"from": on.isoformat(), "to": on.isoformat()},
            headers=org.admin_headers,
        )
        assert answer.status_code == 200, answer.text
        checked_fec(answer.text)
        return answer.text

    exported = await books(yesterday)
    paid = [c for c in checked_fec(exported)[0] if c[8] == payout["id"]]
    assert [(c[0], c[4]) for c in paid] == [("BQ", "512000"), ("BQ", "467000")]
    await fail_payout(stack, org, payout["id"])

    assert await books(yesterday) == exported  # the day exported reads the same
    undone = [c for c in checked_fec(await books(day))[0] if c[8] == payout["id"]]
    assert {c[0] for c in undone} == {"BQ"}  # the money back at Stripe, out of the bank
    assert (account_totals(undone, "512000"), account_totals(undone, "467000")) == (
        (0, payout["amount"]),
        (payout["amount"], 0),
    )
    assert account_totals(paid + undone, "512000") == (payout["amount"], payout["amount"])  # nothing left in the bank
