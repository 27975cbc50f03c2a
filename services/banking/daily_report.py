"""The daily report from plain figures: per organisation lines, bank totals, allocation; CSV and Slack. No I/O."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from services.banking.allocation import AllocationRule, AllocationSummary, LegalEntity, allocate


@dataclass(frozen=True, slots=True)
class OrganizationTotals:
    """Sales of one organisation on the day (from Payments)."""

    organization_id: str
    count: int = 0
    gross: int = 0
    fees: int = 0
    refunds: int = 0
    net: int = 0


@dataclass(frozen=True, slots=True)
class DayPayout:
    """A paid payout arriving on the day, with its match (if any)."""

    payout_id: str
    organization_id: str
    amount: int
    match_id: str | None = None


@dataclass(frozen=True, slots=True)
class OrganizationLine:
    organization_id: str
    organization_name: str
    count: int
    gross: int
    fees: int
    refunds: int
    net: int
    payouts: int
    bank_credits: int
    reconciled: bool
    difference: int


@dataclass(frozen=True)
class DailyReport:
    date: str
    currency: str
    timezone: str
    organizations: tuple[OrganizationLine, ...]
    bank_credits: int
    bank_debits: int
    reconciled: bool
    unmatched_payouts: int
    unmatched_credits: int
    allocation: AllocationSummary
    totals: dict[str, int] = field(default_factory=dict)


def build_daily_report(
    *,
    date: str,
    currency: str,
    timezone: str,
    totals: Sequence[OrganizationTotals],
    names: Mapping[str, str],
    payouts: Sequence[DayPayout],
    match_differences: Mapping[str, int],
    bank_credits: int,
    bank_debits: int,
    unmatched_credits: int,
    rules: Sequence[AllocationRule],
    entities: Sequence[LegalEntity],
    baseline_entity: str | None = None,
) -> DailyReport:
    """``match_differences`` is credit - payouts of each match; it counts once, for the
    organisation of the match's first payout."""
    by_org: dict[str, OrganizationTotals] = {t.organization_id: t for t in totals}
    org_payouts: dict[str, list[DayPayout]] = defaultdict(list)
    for payout in payouts:
        org_payouts[payout.organization_id].append(payout)
    counted: set[str] = set()
    lines: list[OrganizationLine] = []
    for organization_id in sorted(set(by_org) | set(org_payouts), key=lambda o: (names.get(o, o), o)):
        sales = by_org.get(organization_id, OrganizationTotals(organization_id))
        mine = sorted(org_payouts.get(organization_id, []), key=lambda p: p.payout_id)
        paid_out = sum(p.amount for p in mine)
        credited = 0
        for payout in mine:
            if payout.match_id is None:
                continue
            credited += payout.amount
            if payout.match_id not in counted:
                counted.add(payout.match_id)
                credited += match_differences.get(payout.match_id, 0)
        lines.append(
            OrganizationLine(
                organization_id=organization_id,
                organization_name=names.get(organization_id, ""),
                count=sales.count,
                gross=sales.gross,
                fees=sales.fees,
                refunds=sales.refunds,
                net=sales.net,
                payouts=paid_out,
                bank_credits=credited,
                reconciled=all(p.match_id is not None for p in mine),
                difference=paid_out - credited,
            )
        )
    unmatched_payouts = sum(1 for p in payouts if p.match_id is None)
    allocation = allocate(
        {t.organization_id: t.net for t in totals if t.organization_id}, rules, entities, baseline_entity
    )
    summed = {name: sum(getattr(line, name) for line in lines) for name in ("gross", "fees", "refunds", "net")}
    summed["payouts"] = sum(p.amount for p in payouts)
    return DailyReport(
        date=date,
        currency=currency,
        timezone=timezone,
        organizations=tuple(lines),
        bank_credits=bank_credits,
        bank_debits=bank_debits,
        reconciled=unmatched_payouts == 0 and unmatched_credits == 0,
        unmatched_payouts=unmatched_payouts,
        unmatched_credits=unmatched_credits,
        allocation=allocation,
        totals=summed,
    )


_ORG_COLUMNS = (
    "organization_id",
    "organization_name",
    "count",
    "gross",
    "fees",
    "refunds",
    "net",
    "payouts",
    "bank_credits",
    "reconciled",
    "difference",
)


def report_csv(report: DailyReport) -> str:
    """Organisations (with a TOTAL row), then a blank line and the allocation per entity."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["date", *_ORG_COLUMNS])
    for line in report.organizations:
        writer.writerow([report.date, *(_cell(getattr(line, c)) for c in _ORG_COLUMNS)])
    total_difference = sum(line.difference for line in report.organizations)
    writer.writerow(
        [
            report.date,
            "TOTAL",
            "",
            sum(line.count for line in report.organizations),
            report.totals.get("gross", 0),
            report.totals.get("fees", 0),
            report.totals.get("refunds", 0),
            report.totals.get("net", 0),
            report.totals.get("payouts", 0),
            report.bank_credits,
            _cell(report.reconciled),
            total_difference,
        ]
    )
    writer.writerow([])
    writer.writerow(["date", "entity", "revenue", "tax_rate_bps", "estimated_tax"])
    for entity in report.allocation.entities:
        writer.writerow([report.date, entity.entity, entity.revenue, entity.tax_rate_bps, entity.estimated_tax])
    writer.writerow(
        [
            report.date,
            f"BASELINE ({report.allocation.baseline_entity})",
            report.totals.get("net", 0),
            "",
            report.allocation.baseline_estimated_tax,
        ]
    )
    return out.getvalue()


def _cell(value: object) -> object:
    return str(value).lower() if isinstance(value, bool) else value


def money(cents: int, currency: str) -> str:
    sign = "-" if cents < 0 else ""
    units, rest = divmod(abs(cents), 100)
    return f"{sign}{units:,}.{rest:02d} {currency.upper()}"


def slack_message(report: DailyReport) -> dict[str, Any]:
    """Slack incoming-webhook JSON: a plain `text` fallback and mrkdwn blocks."""
    cur = report.currency
    status = (
        "reconciled"
        if report.reconciled
        else (
            f"NOT reconciled ({report.unmatched_payouts} unmatched payouts, {report.unmatched_credits} unmatched credits)"
        )
    )
    head = (
        f"Daily report {report.date}: net {money(report.totals.get('net', 0), cur)}, "
        f"bank credits {money(report.bank_credits, cur)}, {status}"
    )
    org_lines = [
        f"• *{line.organization_name or line.organization_id}*: gross {money(line.gross, cur)}, "
        f"fees {money(line.fees, cur)}, refunds {money(line.refunds, cur)}, net {money(line.net, cur)}; "
        f"payouts {money(line.payouts, cur)}, bank {money(line.bank_credits, cur)}"
        f"{'' if line.reconciled else ' ⚠ unreconciled'}"
        for line in report.organizations
    ] or ["No sales and no payouts."]
    entity_lines = [
        f"• {e.entity}: {money(e.revenue, cur)} → tax ≈ {money(e.estimated_tax, cur)} ({e.tax_rate_bps / 100:.2f} %)"
        for e in report.allocation.entities
    ]
    entity_lines.append(
        f"Tax difference against everything in {report.allocation.baseline_entity or 'one entity'}: "
        f"{money(report.allocation.tax_difference, cur)}"
    )
    blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": f"Daily report {report.date}"}},
        {"type": "section", "text": {"type": "mrkdwn", "text": head}},
        {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(org_lines)[:2900]}},
        {"type": "section", "text": {"type": "mrkdwn", "text": "*Allocation*\n" + "\n".join(entity_lines)[:2800]}},
    ]
    return {"text": head, "blocks": blocks}
