"""Daily report (JSON, CSV, Slack) with a send outbox, and the FEC export.

Slack sends go through `report_outbox` (one row per date): the row is written first, then
delivered; a failed delivery stays pending and the background job retries it with backoff,
so a report is never lost and never sent twice for the same date (unless forced).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import asyncpg
import httpx
import orjson
from collect.accounts.v1 import accounts_pb2 as accounts_pb
from collect.payments.v1 import payments_pb2 as payments_pb

from runtime import audit
from runtime.clients import call
from runtime.dates import parse_day
from runtime.errors import Conflict, DomainError, FieldError, InvalidArgument
from runtime.logs import event
from runtime.metrics import job_run
from runtime.pagination import max_limit
from services.banking import fec, repository
from services.banking.allocation import AllocationSummary, allocate
from services.banking.context import REPORT_LOCK, Banking
from services.banking.daily_report import DailyReport, DayPayout, build_daily_report, slack_message, totals_from_books
from services.banking.matching import CreditItem, looks_like_stripe
from services.banking.reconciliation import run_reconciliation
from services.banking.sync import advisory_lock, sync_transactions

log = logging.getLogger("services.banking.reports")

# Book entries asked of Payments per call.
BOOK_PAGE = max_limit(payments_pb.BookPageRequest.DESCRIPTOR)


def report_day(value: str, banking: Banking) -> date:
    """The date asked for; empty means yesterday in the report's time zone."""
    if not value:
        return (datetime.now(banking.settings.zone) - timedelta(days=1)).date()
    day = parse_day(value, "date")
    assert day is not None
    return day


def day_bounds(day: date, banking: Banking) -> tuple[datetime, datetime]:
    zone = banking.settings.zone
    start = datetime(day.year, day.month, day.day, tzinfo=zone)
    end = start + timedelta(days=1)
    # Normalise across DST changes: the next local midnight.
    end = datetime(end.year, end.month, end.day, tzinfo=zone)
    return start.astimezone(UTC), end.astimezone(UTC)


async def book_lines(banking: Banking, organization_id: str, first: date, last: date) -> list[fec.BookLine]:
    """Sales, refunds and disputes' movements of [first, last] from Payments (every organisation when organization_id is empty),
    each on the local day it happened."""
    lines: list[fec.BookLine] = []
    cursor = ""
    while True:
        answer = await call(
            banking.payments.ListBookEntries,
            payments_pb.ListBookEntriesRequest(
                organization_id=organization_id,
                from_date=first.isoformat(),
                to_date=last.isoformat(),
                page=payments_pb.BookPageRequest(limit=BOOK_PAGE, cursor=cursor),
            ),
        )
        lines += [
            fec.BookLine(
                kind=e.kind,
                id=e.id,
                payment_id=e.payment_id,
                organization_id=e.organization_id,
                day=date.fromisoformat(e.date),
                method=e.method,
                charge_model=e.charge_model,
                currency=e.currency,
                amount=e.amount,
                application_fee=e.application_fee,
                dispute_fee=e.dispute_fee,
                transfer_reversed=e.transfer_reversed,
            )
            for e in answer.entries
        ]
        cursor = answer.next_cursor
        if not cursor:
            return lines


async def daily_report(banking: Banking, day: date) -> DailyReport:
    settings = banking.settings
    start, end = day_bounds(day, banking)
    sales = totals_from_books(await book_lines(banking, "", day, day))
    names = await banking.organization_names()
    async with banking.pool.acquire() as conn:
        payout_rows = await repository.day_payouts(conn, start, end)
        bank = await repository.day_bank_totals(conn, start, end)
        open_credits = await repository.open_credits(conn, start, end, rules_only=False)
        rules, entities = await repository.allocation(conn)
        pennylane_unpushed = await repository.pennylane_unpushed_count(conn)
    payouts: list[DayPayout] = []
    differences: dict[str, int] = {}
    for row in payout_rows:
        organization_id = row["organization_id"] or (
            await banking.organization_of(row["stripe_account_id"]) or row["stripe_account_id"] or "platform"
        )
        payouts.append(DayPayout(row["id"], organization_id, row["amount"], row["currency"], row["match_id"]))
        if row["match_id"]:
            differences[row["match_id"]] = row["difference"]
    unmatched_credits = sum(
        1 for r in open_credits if looks_like_stripe_row(r["label"], r["reference"], settings.stripe_labels)
    )
    return build_daily_report(
        date=day.isoformat(),
        currency=settings.report_currency,
        timezone=settings.report_timezone,
        totals=sales,
        names=names,
        payouts=payouts,
        match_differences=differences,
        bank=bank,
        unmatched_credits=unmatched_credits,
        rules=rules,
        entities=entities,
        baseline_entity=settings.baseline_entity,
        pennylane_unpushed=pennylane_unpushed,
        audit_anchors=await audit_anchors(banking),
    )


async def audit_anchors(banking: Banking) -> list[str]:
    """The audit trail's chain heads now, as anchors (Accounts must answer: a report without them
    would leave a rewound chain undetected, so it waits for the next try instead)."""
    answer = await call(banking.accounts.ListAuditHeads, accounts_pb.ListAuditHeadsRequest())
    return [str(audit.AuditAnchor.of_head(h.chain, h.sequence, h.hash)) for h in answer.heads]


def looks_like_stripe_row(label: str | None, reference: str | None, labels: tuple[str, ...]) -> bool:
    return looks_like_stripe(CreditItem("", 0, "", date.min, label or "", reference or ""), labels)


async def allocation_report(banking: Banking, from_day: date, to_day: date) -> tuple[int, AllocationSummary]:
    """(net revenue, allocation) of every organisation over [from, to], in the report's currency."""
    if from_day > to_day:
        raise InvalidArgument("from must not be after to", "validation_error", [FieldError("from", "after to")])
    if (to_day - from_day).days > 366:
        raise InvalidArgument("the range is at most a year", "validation_error", [FieldError("to", "at most a year")])
    sales = totals_from_books(await book_lines(banking, "", from_day, to_day))
    async with banking.pool.acquire() as conn:
        rules, entities = await repository.allocation(conn)
    currency = banking.settings.report_currency
    net = {t.organization_id: t.net for t in sales if t.organization_id and t.currency == currency}
    return sum(net.values()), allocate(net, rules, entities, banking.settings.baseline_entity)


# ---- Slack outbox ------------------------------------------------------------------------


@dataclass
class SendOutcome:
    sent: bool = False
    already_sent: bool = False
    pending: bool = False
    last_error: str = ""


async def send_daily_report(banking: Banking, day: date, *, force: bool = False) -> SendOutcome:
    """Records the day's message in the outbox (once per date) and tries to deliver it now."""
    if not banking.settings.slack_webhook_url:
        raise InvalidArgument("no Slack webhook is configured (SLACK_WEBHOOK_URL)", "slack_not_configured")
    async with banking.pool.acquire() as conn:
        existing = await repository.outbox_row(conn, day)
    if existing is not None and existing["status"] == "sent" and not force:
        return SendOutcome(already_sent=True)
    if existing is None or force:
        message = slack_message(await daily_report(banking, day))
        async with banking.pool.acquire() as conn:
            await repository.outbox_put(conn, day, message, force=force)
    return await deliver(banking, day, forced=force)


async def deliver(banking: Banking, day: date, *, forced: bool = False) -> SendOutcome:
    """Delivers the pending outbox row of `day` (row-locked, so two replicas never both send it);
    `forced`: a resend asked for, recorded as such on the audit trail."""
    url = banking.settings.slack_webhook_url
    async with banking.pool.acquire() as conn, conn.transaction():
        row = await repository.lock_outbox_row(conn, day)
        if row is None:
            current = await repository.outbox_row(conn, day)
            sent = current is not None and current["status"] == "sent"
            return SendOutcome(already_sent=sent, pending=not sent and current is not None)
        if not url:
            return SendOutcome(pending=True, last_error="no Slack webhook configured")
        message = row["message"]
        body = message if isinstance(message, str | bytes) else orjson.dumps(message)
        error = await _post(banking, url, body)
        if error is None:
            await repository.outbox_sent(conn, day)
            await audit.record(
                conn,
                "daily_report.sent",
                targets={"report_date": day.isoformat()},
                after={"forced": forced, "attempts": row["attempts"] + 1},
            )
            event("report.sent", report_date=day.isoformat())
            return SendOutcome(sent=True)
        retry_in = min(3600.0, banking.settings.report_retry_base_seconds * 2 ** min(row["attempts"], 10))
        await repository.outbox_failed(conn, day, error, retry_in)
        log.warning("daily report not delivered, retrying", extra={"report_date": day.isoformat(), "error": error})
        return SendOutcome(pending=True, last_error=error)


async def _post(banking: Banking, url: str, body: str | bytes) -> str | None:
    """None when Slack took it; otherwise what went wrong (never the URL: it is a secret)."""
    try:
        response = await banking.http.post(
            url,
            content=body,
            headers={"Content-Type": "application/json"},
            timeout=banking.settings.slack_timeout_seconds,
        )
    except httpx.HTTPError as error:
        return f"Slack unreachable: {type(error).__name__}"
    if response.status_code >= 300:
        return f"Slack answered {response.status_code}"
    return None


# ---- background job ----------------------------------------------------------------------


async def run_jobs_once(banking: Banking, now: datetime | None = None) -> None:
    """One pass: the periodic Qonto pull (when due), yesterday's report once it is time, due retries."""
    settings = banking.settings
    moment = (now or datetime.now(UTC)).astimezone(settings.zone)
    if settings.report_enabled and settings.slack_webhook_url and moment.time() >= settings.report_time:
        day = moment.date() - timedelta(days=1)
        async with banking.pool.acquire() as conn:
            exists = await repository.outbox_row(conn, day)
        if exists is None:
            async with advisory_lock(banking.pool, REPORT_LOCK, wait=False) as locked:
                if locked is not None:
                    try:
                        await send_daily_report(banking, day)
                    except DomainError as error:
                        log.warning("daily report not built yet: %s", error)
    if settings.slack_webhook_url:
        async with banking.pool.acquire() as conn:
            due = await repository.due_outbox_dates(conn)
        for day in due:
            await deliver(banking, day)


async def run_jobs(banking: Banking) -> None:
    """Background loop of the service (every replica runs it; advisory locks elect one per job)."""
    settings = banking.settings
    last_sync = datetime.now(UTC)
    while True:
        await asyncio.sleep(settings.job_interval_seconds)
        try:
            now = datetime.now(UTC)
            interval = settings.sync_interval_seconds
            if interval > 0 and (now - last_sync).total_seconds() >= interval:
                last_sync = now
                with job_run("bank_sync") as run:
                    synced = await sync_transactions(banking, wait=False)
                    if synced is None:
                        run.skip()  # another replica is pulling the bank
                if synced is not None:
                    with job_run("reconciliation"):
                        await run_reconciliation(banking.pool, settings.match_rules)
            with job_run("daily_report"):
                await run_jobs_once(banking, now)
        except asyncio.CancelledError:
            raise
        except Exception as error:  # the loop must survive any one failure
            log.warning("banking job failed: %s", error)


# ---- FEC ---------------------------------------------------------------------------------


def _fec_range(banking: Banking, from_day: date, to_day: date) -> tuple[datetime, datetime]:
    if from_day > to_day:
        raise InvalidArgument("from must not be after to", "validation_error", [FieldError("from", "after to")])
    if (to_day - from_day).days > 366:
        raise InvalidArgument("the range is at most a year", "validation_error", [FieldError("to", "at most a year")])
    start, _ = day_bounds(from_day, banking)
    _, end = day_bounds(to_day, banking)
    return start, end


def _fees(banking: Banking, rows: list[asyncpg.Record]) -> list[fec.StripeFee]:
    zone = banking.settings.zone
    return [
        fec.StripeFee(r["id"], r["fee"], r["currency"], r["recorded_at"].astimezone(zone).date(), r["source"] or "")
        for r in rows
    ]


def _payouts(banking: Banking, rows: list[asyncpg.Record]) -> list[fec.PayoutLine]:
    zone = banking.settings.zone
    return [
        fec.PayoutLine(
            r["stripe_payout_id"],
            r["amount"],
            r["currency"],
            r["day"].astimezone(zone).date(),
            r["stripe_account_id"],
            undone=r["undone"],
        )
        for r in rows
    ]


async def platform_books(banking: Banking, from_day: date, to_day: date) -> list[fec.Entry]:
    """The platform's entries for [from, to] in the report's time zone (its FEC, its Pennylane push)."""
    start, end = _fec_range(banking, from_day, to_day)
    lines = await book_lines(banking, "", from_day, to_day)
    zone = banking.settings.zone
    async with banking.pool.acquire() as conn:
        fees = await repository.fec_stripe_fees(conn, start, end, "")
        payouts = await repository.fec_payouts(conn, start, end, "")
        bank = await repository.fec_bank_lines(conn, start, end)
    return fec.platform_entries(
        lines,
        _fees(banking, fees),
        _payouts(banking, payouts),
        [
            fec.BankLine(
                r["transaction_id"],
                r["amount_cents"],
                r["side"],
                r["currency"],
                r["day"].astimezone(zone).date(),
                r["label"] or "",
                r["matched"],
            )
            for r in bank
        ],
    )


async def export_fec(banking: Banking, from_day: date, to_day: date) -> tuple[str, str, int]:
    """The platform's books for [from, to] in the report's time zone: (content, filename, entries)."""
    content, count = fec.render(await platform_books(banking, from_day, to_day))
    return content, fec.file_name(banking.settings.fec_siren, to_day), count


async def organization_books(
    banking: Banking, organization_id: str, stripe_account_id: str, from_day: date, to_day: date
) -> list[fec.Entry]:
    """One organisation's entries for [from, to] (its FEC, its Pennylane push): sales and refunds on the
    organisation's local days, Stripe's fees and payouts of its connected account on the report time zone's."""
    start, end = _fec_range(banking, from_day, to_day)
    lines = await book_lines(banking, organization_id, from_day, to_day)
    fees: list[asyncpg.Record] = []
    payouts: list[asyncpg.Record] = []
    if stripe_account_id:
        async with banking.pool.acquire() as conn:
            fees = await repository.fec_stripe_fees(conn, start, end, stripe_account_id)
            payouts = await repository.fec_payouts(conn, start, end, stripe_account_id)
    return fec.organization_entries(lines, _fees(banking, fees), _payouts(banking, payouts))


async def export_organization_fec(
    banking: Banking, organization_id: str, from_day: date, to_day: date
) -> tuple[str, str, int]:
    """One organisation's books for [from, to]: (content, filename, entries)."""
    _fec_range(banking, from_day, to_day)
    found = await call(
        banking.accounts.GetOrganization, accounts_pb.GetOrganizationRequest(organization_id=organization_id)
    )
    organization = found.organization
    if not organization.siren:
        raise Conflict("the organisation has no SIREN yet: set it to export its FEC", "siren_required")
    entries = await organization_books(banking, organization_id, organization.stripe_account_id, from_day, to_day)
    content, count = fec.render(entries)
    return content, fec.file_name(organization.siren, to_day), count
