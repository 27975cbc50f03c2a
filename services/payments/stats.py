"""Per-day sales figures from the rollup kept with every state change (fast whatever the row count)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from runtime.dates import parse_day_or_instant
from runtime.errors import FieldError, InvalidArgument
from services.payments import repository as repo
from services.payments.context import Context
from services.payments.domain import local_day

MAX_DAYS = 366


@dataclass(frozen=True)
class DayTotals:
    date: str
    currency: str
    count: int
    gross: int
    fees: int
    refunded: int
    disputed_count: int = 0
    disputed: int = 0
    disputes_lost: int = 0

    @property
    def net(self) -> int:
        return self.gross - self.refunded - self.fees


def _day_of(bound: date | datetime | None, timezone: str, *, until: bool) -> date | None:
    """A bound given as an instant picks the local day it falls in (`to`, being exclusive: the day
    of the last moment before it); a day is itself."""
    if not isinstance(bound, datetime):
        return bound
    return local_day(bound - timedelta(microseconds=1) if until else bound, timezone)


def date_range(first: str, last: str, timezone: str) -> tuple[date, date]:
    """The inclusive range of days asked for, in `timezone`; the last 30 days by default."""
    start = _day_of(parse_day_or_instant(first, "from"), timezone, until=False)
    end = _day_of(parse_day_or_instant(last, "to"), timezone, until=True)
    end = end or local_day(datetime.now(UTC), timezone)
    start = start or end - timedelta(days=29)
    if start > end or (end - start).days >= MAX_DAYS:
        raise InvalidArgument(
            "the date range is invalid",
            "invalid_date_range",
            [FieldError("from", f"must be on or before 'to', at most {MAX_DAYS} days")],
        )
    return start, end


async def daily(
    ctx: Context, organization_id: str, member_id: str, first: str, last: str
) -> tuple[list[DayTotals], DayTotals, list[DayTotals]]:
    """The days (one row per day and currency), the totals in the organisation's default currency,
    and the totals of each currency seen: amounts of different currencies are never added."""
    policy = await ctx.policies.get(organization_id)
    start, end = date_range(first, last, policy.timezone)
    async with ctx.pool.acquire() as conn:
        rows = await repo.daily_totals(conn, organization_id, member_id, start, end)
    days = [_day(r) for r in rows]
    by_currency = [
        _sum(currency, [d for d in days if d.currency == currency]) for currency in sorted({d.currency for d in days})
    ]
    main = next((t for t in by_currency if t.currency == policy.default_currency), None)
    return days, main or _sum(policy.default_currency, []), by_currency


def _sum(currency: str, days: list[DayTotals]) -> DayTotals:
    return DayTotals(
        "",
        currency,
        sum(d.count for d in days),
        sum(d.gross for d in days),
        sum(d.fees for d in days),
        sum(d.refunded for d in days),
        sum(d.disputed_count for d in days),
        sum(d.disputed for d in days),
        sum(d.disputes_lost for d in days),
    )


async def by_organization(ctx: Context, organization_id: str, first: str, last: str) -> list[tuple[str, DayTotals]]:
    start, end = date_range(first, last, "UTC")
    async with ctx.pool.acquire() as conn:
        rows = await repo.totals_by_organization(conn, organization_id, start, end)
    return [(r["organization_id"], _day(r)) for r in rows]


def _day(row: Any) -> DayTotals:
    return DayTotals(
        row["day"].isoformat(),
        row["currency"],
        row["count"],
        row["gross"],
        row["fees"],
        row["refunded"],
        row["disputed_count"],
        row["disputed"],
        row["disputes_lost"],
    )
