"""Whose books: each organisation's FEC and the platform's, each balanced and agreeing with the daily
report; refunds on the day they happen; totals per currency, never added across currencies."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import grpc
import httpx
from collect.payments.v1 import payments_pb2, payments_pb2_grpc

from tests.fixtures.fec import account_totals, cents, checked_fec
from tests.fixtures.organizations import OrgContext, onboarded_organization, organization_body
from tests.fixtures.stack import Stack
from tests.integration.banking.conftest import deliver, pay_out, sell, today

PARIS = ZoneInfo("Europe/Paris")


def _ok(answer: httpx.Response, status: int = 200) -> Any:
    assert answer.status_code == status, f"{answer.request.method} {answer.request.url}: {answer.text}"
    return answer.json() if answer.headers.get("content-type", "").startswith("application/json") else answer


def _check_fec(content: str) -> list[list[str]]:
    return checked_fec(content)[0]


async def _offline(stack: Stack, org: OrgContext, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    answer = _ok(
        await stack.http.post("/v1/payments/offline-batch", headers=org.agent_headers, json={"transactions": items})
    )
    results: list[dict[str, Any]] = answer["results"]
    assert all(r["status"] == "created" for r in results), results
    return results


def _cash(amount: int, at: datetime | None = None) -> dict[str, Any]:
    moment = at or datetime.now(UTC)
    return {"local_id": uuid.uuid4().hex, "amount": amount, "method": "cash", "created_at": moment.isoformat()}


async def _card_payments(stack: Stack, org: OrgContext) -> list[dict[str, Any]]:
    listed = _ok(await stack.http.get("/v1/payments", params={"limit": "100"}, headers=org.admin_headers))
    return [p for p in listed["data"] if p["method"] != "cash"]


async def _refund(stack: Stack, org: OrgContext, payment_id: str, amount: int) -> dict[str, Any]:
    refund: dict[str, Any] = _ok(
        await stack.http.post(
            f"/v1/payments/{payment_id}/refunds",
            headers={**org.admin_headers, "Idempotency-Key": uuid.uuid4().hex},
            json={"amount": amount},
        ),
        201,
    )
    assert refund["status"] == "succeeded", refund
    return refund


async def _report(stack: Stack, admin: dict[str, str], day: str) -> dict[str, Any]:
    report: dict[str, Any] = _ok(await stack.http.get("/v1/reports/daily", params={"date": day}, headers=admin))
    return report


def _line(report: dict[str, Any], org: OrgContext, currency: str = "eur") -> dict[str, Any]:
    found = [o for o in report["organizations"] if o["organization_id"] == org.id and o["currency"] == currency]
    assert len(found) == 1, report["organizations"]
    line: dict[str, Any] = found[0]
    return line


async def _set_siren(stack: Stack, org: OrgContext, siren: str) -> None:
    admin = await stack.admin_headers()
    updated = _ok(await stack.http.patch(f"/v1/organizations/{org.id}", headers=admin, json={"siren": siren}))
    assert updated["siren"] == siren


async def test_an_organisations_fec_is_its_own_books_and_agrees_with_the_report(bank_stack: Stack) -> None:
    stack = bank_stack
    admin = await stack.admin_headers()
    org = await onboarded_organization(stack, fee_percent_bps=100)
    await sell(stack, org, [1000, 2500])
    await _offline(stack, org, [_cash(700)])
    [big] = [p for p in await _card_payments(stack, org) if p["amount"] == 2500]
    await _refund(stack, org, big["id"], 400)
    payout = await pay_out(stack, org)
    await _set_siren(stack, org, "732829320")
    day = today()

    answer = await stack.http.get(
        f"/v1/organizations/{org.id}/exports/fec", params={"from": day, "to": day}, headers=org.admin_headers
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain")
    assert f'filename="732829320FEC{day.replace("-", "")}.txt"' in answer.headers["content-disposition"]
    rows = _check_fec(answer.text)
    assert {c[3] for c in rows} == {day.replace("-", "")}
    journals = {c[0] for c in rows}
    assert {"VE", "CA", "BQ"} <= journals
    assert account_totals(rows, "530000") == (700, 0)  # the cash sale, in the cash journal
    assert all(c[0] == "CA" for c in rows if c[4] == "530000")
    assert payout["id"] in answer.text and account_totals(rows, "512000") == (payout["amount"], 0)
    # Stripe's fees came with the payout's balance transactions; the whole balance was paid out,
    # so the Stripe passage account comes back to zero.
    assert account_totals(rows, "627000")[0] > 0 and all(c[0] == "ST" for c in rows if c[4] == "627000")
    stripe_debits, stripe_credits = account_totals(rows, "467000")
    assert stripe_debits == stripe_credits, (stripe_debits, stripe_credits)

    line = _line(await _report(stack, admin, day), org)
    debit, credit = account_totals(rows, "706000")
    assert credit - debit == line["gross"] == 1000 + 2500 + 700
    assert account_totals(rows, "709000")[0] == line["refunds"] == 400
    debit, credit = account_totals(rows, "622000")
    assert debit - credit == line["fees"] and line["fees"] > 0
    stats = _ok(
        await stack.http.get(
            f"/v1/organizations/{org.id}/stats", params={"from": day, "to": day}, headers=org.admin_headers
        )
    )
    assert (stats["totals"]["gross"], stats["totals"]["fees"]) == (line["gross"], line["fees"])

    # The platform's books: its commission, never the organisation's sales.
    platform = await stack.http.get("/v1/banking/exports/fec", params={"from": day, "to": day}, headers=admin)
    assert platform.status_code == 200, platform.text
    assert 'filename="000000000FEC' in platform.headers["content-disposition"]
    platform_rows = _check_fec(platform.text)
    assert "706000" not in {c[4] for c in platform_rows}
    report = await _report(stack, admin, day)
    earned, refunded = account_totals(platform_rows, "706100")[1], account_totals(platform_rows, "709100")[0]
    assert earned - refunded == report["totals"]["fees"]
    assert payout["id"] not in platform.text  # the organisation's payout went to its bank, not the platform's


async def test_a_refund_counts_on_the_day_it_happens_and_a_reported_day_stays(bank_stack: Stack) -> None:
    stack = bank_stack
    admin = await stack.admin_headers()
    org = await onboarded_organization(stack)
    assert org.stripe_account_id
    client = stack.extras["stripe_sandbox"].client()
    intent = await client.v1.payment_intents.create_async(
        params={"amount": 1500, "currency": "eur", "payment_method_types": ["card_present"]},
        options={"stripe_account": org.stripe_account_id},
    )
    await client.v1.payment_intents.confirm_async(
        intent.id, params={"payment_method": "pm_card_present"}, options={"stripe_account": org.stripe_account_id}
    )
    sale_day = date.fromisoformat(today()) - timedelta(days=1)
    sold_at = datetime.combine(sale_day, time(12), PARIS)
    [sold] = await _offline(
        stack, org, [{**_cash(1500, sold_at), "method": "card", "stripe_payment_intent_id": intent.id}]
    )
    before = _line(await _report(stack, admin, sale_day.isoformat()), org)
    assert (before["count"], before["gross"], before["refunds"]) == (1, 1500, 0)

    refund = await _refund(stack, org, sold["payment_id"], 500)
    refund_day = datetime.fromisoformat(refund["created_at"].replace("Z", "+00:00")).astimezone(PARIS).date()
    assert refund_day > sale_day
    after = _line(await _report(stack, admin, sale_day.isoformat()), org)
    assert after == before  # an already-reported day does not change
    on_the_day = _line(await _report(stack, admin, refund_day.isoformat()), org)
    assert (on_the_day["count"], on_the_day["gross"], on_the_day["refunds"]) == (0, 0, 500)
    assert on_the_day["net"] == -500

    await _set_siren(stack, org, "552100554")
    books = await stack.http.get(
        f"/v1/organizations/{org.id}/exports/fec",
        params={"from": sale_day.isoformat(), "to": refund_day.isoformat()},
        headers=org.admin_headers,
    )
    rows = _check_fec(books.text)
    assert {c[3] for c in rows if c[4] == "709000"} == {refund_day.strftime("%Y%m%d")}
    assert {c[3] for c in rows if c[4] == "706000"} == {sale_day.strftime("%Y%m%d")}


async def test_amounts_of_different_currencies_are_never_added(bank_stack: Stack) -> None:
    stack = bank_stack
    admin = await stack.admin_headers()
    dollars = await onboarded_organization(stack, default_currency="usd")
    euros = await onboarded_organization(stack)
    await _offline(stack, dollars, [_cash(1234)])
    await _offline(stack, euros, [_cash(1000)])
    day = today()
    report = await _report(stack, admin, day)
    assert _line(report, dollars, "usd")["gross"] == 1234
    assert _line(report, euros, "eur")["gross"] == 1000
    totals = {t["currency"]: t for t in report["totals_by_currency"]}
    assert totals["usd"]["gross"] == 1234  # the only dollars of the day
    assert totals["eur"]["gross"] == report["totals"]["gross"] and report["currency"] == "eur"
    assert all(o["organization_id"] != dollars.id for o in report["organizations"] if o["currency"] == "eur")

    as_csv = _ok(await stack.http.get("/v1/reports/daily", params={"date": day, "format": "csv"}, headers=admin))
    rows = list(csv.reader(io.StringIO(as_csv.text)))
    header = rows[0]
    total_rows = {r[header.index("currency")]: r for r in rows if r[1:2] == ["TOTAL"]}
    assert total_rows["usd"][header.index("gross")] == "1234"

    sent = _ok(await stack.http.post("/v1/reports/daily/send", headers=admin, json={"date": day, "force": True}))
    assert sent["sent"] is True
    text = stack.extras["slack"].received[-1]["text"]
    assert "12.34 USD" in text and " EUR" in text

    await _set_siren(stack, dollars, "443061841")
    books = _ok(
        await stack.http.get(
            f"/v1/organizations/{dollars.id}/exports/fec",
            params={"from": day, "to": day},
            headers=dollars.admin_headers,
        )
    )
    rows_fec = _check_fec(books.text)
    assert {c[17] for c in rows_fec} == {"USD"} and account_totals(rows_fec, "706000", "USD") == (0, 1234)


async def test_only_the_organisations_admins_and_platform_admins_get_its_books(bank_stack: Stack) -> None:
    stack = bank_stack
    admin = await stack.admin_headers()
    mine = await onboarded_organization(stack)
    other = await onboarded_organization(stack)
    day = {"from": today(), "to": today()}
    path = f"/v1/organizations/{mine.id}/exports/fec"

    missing = await stack.http.get(path, params=day, headers=mine.admin_headers)
    assert missing.status_code == 409 and missing.json()["code"] == "siren_required"
    bad = await stack.http.patch(f"/v1/organizations/{mine.id}", headers=admin, json={"siren": "12345"})
    assert bad.status_code == 400 and "siren" in {f["field"] for f in bad.json()["errors"]}, bad.text
    await _set_siren(stack, mine, "732829320")
    created = await stack.http.post("/v1/organizations", headers=admin, json=organization_body(siren="73282932O"))
    assert created.status_code == 400 and "siren" in {f["field"] for f in created.json()["errors"]}, created.text
    named = _ok(
        await stack.http.post("/v1/organizations", headers=admin, json=organization_body(siren="552100554")), 201
    )
    assert named["siren"] == "552100554"

    assert (await stack.http.get(path, params=day, headers=mine.admin_headers)).status_code == 200
    as_platform = await stack.http.get(path, params=day, headers=admin)
    assert as_platform.status_code == 200, as_platform.text
    foreign = await stack.http.get(path, params=day, headers=other.admin_headers)
    assert foreign.status_code == 404, foreign.text
    assert (await stack.http.get(path, params=day, headers=mine.agent_headers)).status_code == 403
    assert (await stack.http.get(path, params=day)).status_code == 401
    no_range = await stack.http.get(path, params={"from": today()}, headers=mine.admin_headers)
    assert no_range.status_code == 400


async def test_the_platform_books_a_destination_charge_as_collected_transferred_and_reversed(bank_stack: Stack) -> None:
    stack = bank_stack
    admin = await stack.admin_headers()
    org = await onboarded_organization(stack, charge_model="destination", fee_percent_bps=200)
    client = stack.extras["stripe_sandbox"].client()
    created = _ok(
        await stack.http.post(
            "/v1/payments",
            headers={**org.agent_headers, "Idempotency-Key": uuid.uuid4().hex},
            json={"amount": 5000},
        ),
        201,
    )
    intent_id = created["stripe_payment_intent_id"]
    await client.v1.payment_intents.confirm_async(intent_id, params={"payment_method": "pm_card_present"})
    listed = await client.v1.events.list_async(params={"limit": 100})
    every = [e.to_dict() for e in listed.data]
    events = sorted(
        (e for e in every if intent_id in (e["data"]["object"].get("id"), e["data"]["object"].get("payment_intent"))),
        key=lambda e: (e["created"], e["id"]),
    )
    await deliver(stack, "payments", events)
    paid = _ok(await stack.http.get(f"/v1/payments/{created['id']}", headers=org.admin_headers))
    assert paid["status"] == "succeeded" and paid["application_fee_amount"] == 100, paid
    await _refund(stack, org, created["id"], 1000)
    day = today()

    platform = await stack.http.get("/v1/banking/exports/fec", params={"from": day, "to": day}, headers=admin)
    rows = _check_fec(platform.text)
    mine = [c for c in rows if c[6] == org.id]
    assert {c[4] for c in mine} == {"467100"}  # what is collected for the organisation, by organisation
    owed_debits = sum(cents(c[11]) for c in mine)
    owed_credits = sum(cents(c[12]) for c in mine)
    assert owed_debits == owed_credits == (5000 - 100) + (1000 - 20)  # transferred, then reversed
    assert {c[0] for c in rows if created["id"] in c[8]} == {"VE", "ST"}
    report = await _report(stack, admin, day)
    earned, refunded = account_totals(rows, "706100")[1], account_totals(rows, "709100")[0]
    assert earned - refunded == report["totals"]["fees"]
    line = _line(report, org)
    assert (line["gross"], line["refunds"], line["fees"]) == (5000, 1000, 80)

    await _set_siren(stack, org, "732829320")
    books = await stack.http.get(
        f"/v1/organizations/{org.id}/exports/fec", params={"from": day, "to": day}, headers=org.admin_headers
    )
    own = _check_fec(books.text)
    assert account_totals(own, "706000") == (0, 5000) and account_totals(own, "709000") == (1000, 0)
    assert account_totals(own, "622000") == (100, 20)


async def test_book_entries_come_in_pages_that_add_up_to_one(bank_stack: Stack) -> None:
    stack = bank_stack
    org = await onboarded_organization(stack)
    await _offline(stack, org, [_cash(100 + i) for i in range(5)])
    channel = grpc.aio.insecure_channel(stack.target("payments"))
    try:
        stub = payments_pb2_grpc.PaymentsServiceStub(channel)
        metadata = (("authorization", org.admin_headers["Authorization"]),)

        async def page(limit: int, cursor: str) -> payments_pb2.ListBookEntriesResponse:
            request = payments_pb2.ListBookEntriesRequest(
                organization_id=org.id,
                from_date=today(),
                to_date=today(),
                page=payments_pb2.BookPageRequest(limit=limit, cursor=cursor),
            )
            answer: payments_pb2.ListBookEntriesResponse = await stub.ListBookEntries(request, metadata=metadata)
            return answer

        whole = await page(1000, "")
        assert len(whole.entries) == 5 and not whole.next_cursor
        paged, cursor = [], ""
        while True:
            answer = await page(2, cursor)
            paged += list(answer.entries)
            cursor = answer.next_cursor
            if not cursor:
                break
        assert [e.id for e in paged] == [e.id for e in whole.entries]
        assert {e.kind for e in paged} == {"sale"} and sum(e.amount for e in paged) == 510
    finally:
        await channel.close(None)
