"""The books through the real parts (Payments, Banking's FECs and daily report, the Stripe sandbox):
what a lost destination charge's dispute costs the organisation (the part of the transfer reversed,
capped by what was left of it), and a day already rendered that never changes when a move is made
later (the give-back the sweeper retries, a refund Stripe fails afterwards): the later day carries it."""

from __future__ import annotations

import contextlib
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import grpc
import httpx
from collect.payments.v1 import payments_pb2, payments_pb2_grpc
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from services.payments import disputes
from tests.fixtures.fec import cents, checked_fec
from tests.fixtures.organizations import OrgContext, onboarded_organization
from tests.fixtures.polling import eventually
from tests.fixtures.stack import Stack
from tests.integration.payments.conftest import (
    confirm,
    create_payment,
    days_later,
    deliver,
    deliver_shuffled,
    key,
    listed_dispute,
    refused_by_stripe,
    settle,
    stripe_dispute,
    stripe_events,
    submit_evidence,
)

SIREN = "732829320"


def _today() -> date:
    return datetime.now(ZoneInfo("Europe/Paris")).date()  # the organisations' and the report's zone


async def _organization(stack: Stack) -> OrgContext:
    """A destination-charge organisation keeping a 10 % fee (its transfers are 90 % of a sale), named for its FEC."""
    org = await onboarded_organization(stack, charge_model="destination", fee_percent_bps=1000)
    named = await stack.http.patch(
        f"/v1/organizations/{org.id}", headers=await stack.admin_headers(), json={"siren": SIREN}
    )
    assert named.status_code == 200, named.text
    return org


async def _disputed(stack: Stack, org: OrgContext, amount: int, reversed_before: int = 0) -> dict[str, Any]:
    """A destination charge paid with the dispute card; `reversed_before` of its transfer reversed
    (by hand, at Stripe) before Payments hears of the dispute; its events applied."""
    payment = await create_payment(stack, org.agent_headers, amount=amount, method="card")
    await confirm(stack, payment, None, pm="pm_card_createDispute")
    client = stack.extras["stripe_sandbox"].client()
    if reversed_before:
        charges = await client.v1.charges.list_async(params={"payment_intent": payment["stripe_payment_intent_id"]})
        transfer = charges.data[0].transfer
        assert isinstance(transfer, str)
        await client.v1.transfers.reversals.create_async(transfer, params={"amount": reversed_before})
    done = await settle(stack, org, payment, None)
    await stripe_dispute(stack, done, None, "needs_response")
    await deliver_shuffled(stack, done, None, seed=21)
    return done


async def _lose(stack: Stack, org: OrgContext, payment: dict[str, Any]) -> dict[str, Any]:
    await submit_evidence(stack, org, await listed_dispute(stack, org.admin_headers, payment["id"]), "losing_evidence")
    await stripe_dispute(stack, payment, None, "lost")
    await deliver_shuffled(stack, payment, None, seed=22)
    return await listed_dispute(stack, org.admin_headers, payment["id"])


async def _fec(stack: Stack, path: str, headers: dict[str, str], day: date) -> str:
    answer = await stack.http.get(path, params={"from": day.isoformat(), "to": day.isoformat()}, headers=headers)
    assert answer.status_code == 200, answer.text
    checked_fec(answer.text)  # every entry and the file balance, numbered without gaps
    return answer.text


def _rows(content: str, pieces: set[str]) -> list[list[str]]:
    return [cells for cells in checked_fec(content)[0] if cells[8] in pieces]


def _by_account(rows: list[list[str]]) -> dict[str, int]:
    """Debits less credits per account."""
    found: dict[str, int] = {}
    for cells in rows:
        found[cells[4]] = found.get(cells[4], 0) + cents(cells[11]) - cents(cells[12])
    return found


async def _report_line(stack: Stack, org: OrgContext, day: date) -> dict[str, Any]:
    answer = await stack.http.get(
        "/v1/reports/daily", params={"date": day.isoformat()}, headers=await stack.admin_headers()
    )
    assert answer.status_code == 200, answer.text
    lines = [line for line in answer.json()["organizations"] if line["organization_id"] == org.id]
    return lines[0] if lines else {}


async def _stats(stack: Stack, org: OrgContext, day: date) -> dict[str, Any]:
    answer = await stack.http.get(
        f"/v1/organizations/{org.id}/stats",
        params={"from": day.isoformat(), "to": day.isoformat()},
        headers=org.admin_headers,
    )
    assert answer.status_code == 200, answer.text
    totals: dict[str, Any] = answer.json()["totals"]
    return totals


async def _books(stack: Stack, org: OrgContext, day: date) -> list[payments_pb2.BookEntry]:
    """Payments' book entries of the organisation's day, as Banking reads them."""
    async with grpc.aio.insecure_channel(stack.target("payments")) as channel:
        answer = await payments_pb2_grpc.PaymentsServiceStub(channel).ListBookEntries(
            payments_pb2.ListBookEntriesRequest(
                organization_id=org.id, from_date=day.isoformat(), to_date=day.isoformat()
            ),
            metadata=(("authorization", f"Bearer {stack.signer.service_token('tests')}"),),
        )
    return list(answer.entries)


async def test_a_lost_destination_dispute_costs_the_organisation_the_transfer_reversed(stack: Stack) -> None:
    """Capped (the platform's fee was never transferred) and partial (part of the transfer was
    reversed already): the organisation loses what was taken back, the platform the rest; the stats,
    the report and both FECs say so."""
    day = _today()
    admin = await stack.admin_headers()
    for reversed_before, taken in ((0, 5_400), (2_000, 3_400)):
        org = await _organization(stack)
        lost = await _lose(stack, org, await _disputed(stack, org, 6_000, reversed_before))
        assert (lost["status"], lost["transfer_reversed"]) == ("lost", taken)
        stats = await _stats(stack, org, day)
        assert (stats["disputed_count"], stats["disputed"], stats["disputes_lost"]) == (1, 6_000, taken)
        line = await _report_line(stack, org, day)
        assert (line["disputed_count"], line["disputed"], line["disputes_lost"]) == (1, 6_000, taken)
        books = await _fec(stack, f"/v1/organizations/{org.id}/exports/fec", org.admin_headers, day)
        mine = _by_account(_rows(books, {lost["id"]}))
        assert mine == {"416000": 0, "467000": -taken, "654000": taken}
        platform = _by_account(_rows(await _fec(stack, "/v1/banking/exports/fec", admin, day), {lost["id"]}))
        assert platform == {"416000": 0, "467000": -(6_000 - taken), "467100": 0, "654000": 6_000 - taken}


async def test_a_day_rendered_never_changes_when_a_move_is_made_later(stack: Stack) -> None:
    """A won dispute whose give-back Stripe refused, retried by the sweeper the next day, and a refund
    Stripe fails the next day: the first day's books, report and figures read the same afterwards;
    the next day carries each move, and over both days the books settle."""
    day, next_day = _today(), _today() + timedelta(days=1)
    admin = await stack.admin_headers()
    org = await _organization(stack)
    payment = await _disputed(stack, org, 6_000)
    await submit_evidence(stack, org, await listed_dispute(stack, org.admin_headers, payment["id"]), "winning_evidence")
    await stripe_dispute(stack, payment, None, "won")
    with refused_by_stripe(stack, "create_transfer"):
        await deliver_shuffled(stack, payment, None, seed=23)
    won = await listed_dispute(stack, org.admin_headers, payment["id"])
    assert (won["status"], won["reinstated"], won["transfer_reversed"], won["transfer_returned"]) == (
        "won",
        6_000,
        5_400,
        0,
    )
    # A refund made today that Stripe fails afterwards (its test card ending 5126).
    refunded = await create_payment(stack, org.agent_headers, amount=1_000, method="card")
    await confirm(stack, refunded, None, pm="pm_card_refundFail")
    await settle(stack, org, refunded, None)
    made = await stack.http.post(
        f"/v1/payments/{refunded['id']}/refunds", headers={**org.admin_headers, **key()}, json={"amount": 400}
    )
    assert made.status_code == 201 and made.json()["status"] == "succeeded", made.text
    refund = made.json()

    async def rendered() -> tuple[Any, ...]:
        platform = _rows(
            await _fec(stack, "/v1/banking/exports/fec", admin, day), {won["id"], refund["id"], refunded["id"]}
        )
        return (
            await _fec(stack, f"/v1/organizations/{org.id}/exports/fec", org.admin_headers, day),
            platform,
            await _books(stack, org, day),
            await _report_line(stack, org, day),
            await _stats(stack, org, day),
        )

    before = await rendered()
    assert before[3]["refunds"] == 400 and before[4]["refunded"] == 400
    # Days pass: the platform has funds again, the sweeper gives the amount back, Stripe fails the refund.
    await _fund_platform(stack)
    client = stack.extras["stripe_sandbox"].client()

    async def failed_at_stripe() -> bool:
        found = await client.v1.refunds.retrieve_async(refund["stripe_refund_id"])
        return found.status == "failed"

    await eventually(failed_at_stripe, "the refund failed at Stripe")
    with days_later(stack, 1):
        await disputes.sweep_transfers(stack.deps["payments"].extras["context"], older_than_seconds=0)
        await deliver(stack, await stripe_events(stack, refunded["stripe_payment_intent_id"], None))
    assert (await listed_dispute(stack, org.admin_headers, payment["id"]))["transfer_returned"] == 5_400
    assert [
        r["status"]
        for r in (await stack.http.get(f"/v1/payments/{refunded['id']}", headers=org.admin_headers)).json()["refunds"]
    ] == ["failed"]

    assert await rendered() == before  # the day already rendered reads the same
    kinds = {(e.kind, e.id, e.amount, e.transfer_reversed) for e in await _books(stack, org, next_day)}
    assert kinds == {("dispute_return", won["id"], 5_400, 5_400), ("refund_failed", refund["id"], 400, 0)}
    later = await _fec(stack, f"/v1/organizations/{org.id}/exports/fec", org.admin_headers, next_day)
    platform_later = await _fec(stack, "/v1/banking/exports/fec", admin, next_day)
    # Over both days the dispute leaves nothing behind, in the organisation's books and the platform's.
    both = checked_fec(before[0])[0] + checked_fec(later)[0]
    assert _by_account([c for c in both if c[8] == won["id"]]) == {"416000": 0, "467000": 0}
    platform_both = before[1] + _rows(platform_later, {won["id"]})
    assert _by_account([c for c in platform_both if c[8] == won["id"]]) == {"416000": 0, "467000": 0, "467100": 0}
    # The refund undone: its sales-journal entry reversed on the next day, nothing left over both.
    assert _by_account([c for c in both if c[8] == refund["id"]]) == {"709000": 0, "467000": 0, "622000": 0}
    # The next day's report and figures carry the undone refund, as its books.
    line = await _report_line(stack, org, next_day)
    stats = await _stats(stack, org, next_day)
    assert (line["refunds"], line["disputes_lost"], stats["refunded"], stats["disputes_lost"]) == (-400, 0, -400, 0)


async def _fund_platform(stack: Stack) -> None:
    """The platform's balance can give amounts back (a sale of its own, its funds made available)."""
    client = stack.extras["stripe_sandbox"].client()
    await client.v1.payment_intents.create_async(
        params={"amount": 20_000, "currency": "eur", "confirm": True, "payment_method": "pm_card_visa"}
    )
    sandbox = stack.extras["stripe_sandbox"]
    async with httpx.AsyncClient() as http:
        released = await http.post(
            f"{sandbox.url}/_sandbox/balance/release", json={"account": sandbox.state.platform_id}
        )
        assert released.status_code == 200


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    reversed_before=st.sampled_from([0, 2_000]),
    reversal_refused=st.booleans(),
    swept_before_outcome=st.booleans(),
    outcome=st.sampled_from(["won", "lost"]),
    give_back_refused=st.booleans(),
    seed=st.integers(0, 1_000),
)
# Always: the reversal made only after the loss, and a give-back made days after the win.
@example(
    reversed_before=0,
    reversal_refused=True,
    swept_before_outcome=False,
    outcome="lost",
    give_back_refused=False,
    seed=1,
)
@example(
    reversed_before=2_000,
    reversal_refused=False,
    swept_before_outcome=False,
    outcome="won",
    give_back_refused=True,
    seed=2,
)
async def test_a_destination_dispute_in_any_order_books_each_day_once_and_settles(
    stack: Stack,
    reversed_before: int,
    reversal_refused: bool,
    swept_before_outcome: bool,
    outcome: str,
    give_back_refused: bool,
    seed: int,
) -> None:
    """One move a day, in the order drawn: the events (a reversal Stripe may refuse), the sweeper
    (maybe before the outcome), the outcome (a give-back Stripe may refuse), the sweeper again. Each
    day's books, report line and figures are what they were when the day was done; in the end the
    organisation's 654000, its figures and its report lines say what it lost (the part reversed, when
    lost), both books balance and the disputed receivables are settled."""
    ctx = stack.deps["payments"].extras["context"]
    admin = await stack.admin_headers()
    org = await _organization(stack)
    today = _today()
    days = [today + timedelta(days=n) for n in range(4)]
    snapshots: dict[date, tuple[Any, ...]] = {}

    async def day_books(day: date, dispute_id: str) -> tuple[Any, ...]:
        platform = _rows(await _fec(stack, "/v1/banking/exports/fec", admin, day), {dispute_id})
        return (
            await _fec(stack, f"/v1/organizations/{org.id}/exports/fec", org.admin_headers, day),
            platform,
            await _report_line(stack, org, day),
            await _stats(stack, org, day),
        )

    refusing = refused_by_stripe(stack, "reverse_transfer") if reversal_refused else contextlib.nullcontext()
    with refusing:
        payment = await _disputed(stack, org, 6_000, reversed_before)
    dispute = await listed_dispute(stack, org.admin_headers, payment["id"])
    snapshots[days[0]] = await day_books(days[0], dispute["id"])
    with days_later(stack, 1):
        if swept_before_outcome:
            await disputes.sweep_transfers(ctx, older_than_seconds=0)
    snapshots[days[1]] = await day_books(days[1], dispute["id"])
    await _fund_platform(stack)
    evidence = "winning_evidence" if outcome == "won" else "losing_evidence"
    await submit_evidence(stack, org, dispute, evidence)
    await stripe_dispute(stack, payment, None, outcome)
    refusing = refused_by_stripe(stack, "create_transfer") if give_back_refused else contextlib.nullcontext()
    with days_later(stack, 2), refusing:
        await deliver_shuffled(stack, payment, None, seed=seed)
    snapshots[days[2]] = await day_books(days[2], dispute["id"])
    with days_later(stack, 3):
        await disputes.sweep_transfers(ctx, older_than_seconds=0)
    snapshots[days[3]] = await day_books(days[3], dispute["id"])

    for day in days:  # no day changed after it was done
        assert await day_books(day, dispute["id"]) == snapshots[day], day
    settled = await listed_dispute(stack, org.admin_headers, payment["id"])
    assert settled["status"] == outcome
    taken = settled["transfer_reversed"]
    assert taken in (0, 6_000 * 9 // 10 - reversed_before)
    lost = taken if outcome == "lost" else 0
    organization = [c for day in days for c in checked_fec(snapshots[day][0])[0] if c[8] == dispute["id"]]
    platform = [c for day in days for c in snapshots[day][1]]
    assert _by_account(organization).get("654000", 0) == lost
    assert _by_account(organization).get("416000", 0) == 0
    assert sum(snapshots[day][2].get("disputes_lost", 0) for day in days) == lost
    assert sum(snapshots[day][3]["disputes_lost"] for day in days) == lost
    by_account = _by_account(platform)
    assert (by_account.get("416000", 0), by_account.get("467100", 0)) == (0, 0)
    assert by_account.get("654000", 0) == (6_000 - taken if outcome == "lost" else 0)
    if outcome == "won":
        assert settled["transfer_returned"] == taken
