"""What sales, refunds and disputes put in an organisation's books, for Banking's FEC and daily report.

A sale counts on its payment's local day, as the stats do. Everything after it is a move booked
once (`book`), on the organisation's local day it is recorded, and never changed: a refund on the
day it succeeded (and, undone by Stripe afterwards, a `refund_failed` on that later day), a
dispute's withdrawal, its transfer reversal (destination charges; `dispute_lost_reversal` when
made after the loss), its reinstatement when won, the reversed amount given back, and its loss.
So a day already reported, downloaded or pushed to Pennylane reads the same afterwards: a move made
later (a transfer the sweeper retries days after) lands on its own day, not on the earlier one.
The day's figures (`daily_totals`) move in the same transaction, so they agree with the books.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

from collect.payments.v1 import payments_pb2 as pb

from runtime.db import Connection
from runtime.pagination import decode_cursor, encode_cursor, page_limit
from services.payments import repository as repo
from services.payments.context import Context
from services.payments.domain import BookMove, Payment, local_day, move_figures
from services.payments.stats import date_range


@dataclass(frozen=True)
class BookEntry:
    kind: str  # "sale", "refund", "dispute", "dispute_won" or "dispute_lost"
    id: str
    payment_id: str
    organization_id: str
    date: date
    method: str
    charge_model: str
    currency: str
    amount: int
    application_fee: int
    stripe_account_id: str
    stripe_payment_intent_id: str
    dispute_fee: int = 0
    transfer_reversed: int = 0


async def book(conn: Connection, ctx: Context, payment: Payment, move: BookMove) -> bool:
    """Books `move` of the (locked) payment once, on today's local day (`ctx.clock`), with its figures
    in that day's rollup; False (and nothing moved) when that move was booked already."""
    if not (move.amount or move.transfer_reversed):
        return False  # nothing moved: no entry
    at = ctx.clock()
    day = local_day(at, (await ctx.policies.get(payment.organization_id)).timezone)
    if not await repo.insert_book_move(conn, payment, move, at, day):
        return False
    figures = move_figures(move, payment.charge_model)
    if figures:
        await repo.add_to_day(
            conn,
            payment,
            refunded=figures.get("refunded", 0),
            fees=figures.get("fees", 0),
            disputes_lost=figures.get("disputes_lost", 0),
            day=day,
        )
    return True


def _limit(limit: int) -> int:
    # Entries per page: payments.proto's BookPageRequest declares the bound and default.
    return page_limit(limit, pb.BookPageRequest.DESCRIPTOR)


def _after(cursor: str) -> tuple[date, str, str] | None:
    found = decode_cursor(cursor, uuid_id=False)
    if found is None:
        return None
    kind, _, entry_id = found[1].partition("_")
    return found[0].date(), kind, entry_id


async def entries(
    ctx: Context, organization_id: str, first: str, last: str, limit: int, cursor: str
) -> tuple[list[BookEntry], str]:
    """One page of the entries of [first, last] (each organisation's local days), and the next cursor."""
    start, end = date_range(first, last, "UTC")
    size = _limit(limit)
    after = _after(cursor)
    async with ctx.pool.acquire() as conn:
        if organization_id:
            organizations = [organization_id]
        else:
            organizations = await repo.book_organizations(conn, start, end)
    if not organizations:
        return [], ""
    zones = [(await ctx.policies.get(o)).timezone for o in organizations]
    async with ctx.pool.acquire() as conn:
        rows = await repo.book_entries(conn, organizations, zones, start, end, after, size + 1)
    found = [
        BookEntry(
            kind=r["kind"],
            id=r["id"],
            payment_id=r["payment_id"],
            organization_id=r["organization_id"],
            date=r["day"],
            method=r["method"],
            charge_model=r["charge_model"],
            currency=r["currency"],
            amount=r["amount"],
            application_fee=r["application_fee"],
            stripe_account_id=r["stripe_account_id"],
            stripe_payment_intent_id=r["stripe_payment_intent_id"],
            dispute_fee=r["dispute_fee"],
            transfer_reversed=r["transfer_reversed"],
        )
        for r in rows
    ]
    page = found[:size]
    if len(found) <= size:
        return page, ""
    last_entry = page[-1]
    moment = datetime(last_entry.date.year, last_entry.date.month, last_entry.date.day, tzinfo=UTC)
    return page, encode_cursor(moment, f"{last_entry.kind}_{last_entry.id}")
