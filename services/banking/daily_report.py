"""The daily report from plain figures: per organisation lines, bank totals, allocation; CSV and Slack. No I/O."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from services.banking.allocation import AllocationRule, AllocationSummary, LegalEntity, allocate
from services.banking.fec import DISPUTE_KINDS, BookLine, organization_loss


@dataclass(frozen=True, slots=True)
class OrganizationTotals:
    """Sales of one organisation on the day in one currency (from Payments' books)."""

    organization_id: str
    currency: str
    count: int = 0
    gross: int = 0
    fees: int = 0
    refunds: int = 0
    net: int = 0
    disputed_count: int = 0
    disputed: int = 0
    disputes_lost: int = 0


def totals_from_books(lines: Iterable[BookLine]) -> list[OrganizationTotals]:
    """Per organisation and currency, as the stats count: a sale adds one to the count, its amount
    to gross and its platform fee to fees; a refund adds its amount to refunds and takes the fee
    it gave back off fees (both on the day they happened; a refund undone later puts both back on
    the day it failed); net = gross - refunds - fees. Disputes are told apart: the amount withdrawn
    (count and amount) and what the organisation lost on the day (`fec.organization_loss`: its
    share, the reversed transfer under destination charges), as its FEC's 654000; net leaves them out."""
    sums: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0] * 7)
    for line in lines:
        found = sums[(line.organization_id, line.currency)]
        if line.kind == "sale":
            found[0] += 1
            found[1] += line.amount
            found[2] += line.application_fee
        elif line.kind in ("refund", "refund_failed"):
            sign = 1 if line.kind == "refund" else -1
            found[2] -= sign * line.application_fee
            found[3] += sign * line.amount
        elif line.kind == "dispute":
            found[4] += 1
            found[5] += line.amount
        elif line.kind in DISPUTE_KINDS:
            found[6] += organization_loss(line)
        else:
            raise ValueError(f"a book line of unknown kind {line.kind!r}")
    return [
        OrganizationTotals(org, currency, count, gross, fees, refunds, gross - refunds - fees, *disputes)
        for (org, currency), (count, gross, fees, refunds, *disputes) in sorted(sums.items())
    ]


@dataclass(frozen=True, slots=True)
class DayPayout:
    """A paid payout arriving on the day, with its match (if any)."""

    payout_id: str
    organization_id: str
    amount: int
    currency: str
    match_id: str | None = None


@dataclass(frozen=True, slots=True)
class OrganizationLine:
    """One organisation in one currency: every amount of the line is in `currency`."""

    organization_id: str
    organization_name: str
    currency: str
    count: int
    gross: int
    fees: int
    refunds: int
    net: int
    payouts: int
    bank_credits: int
    reconciled: bool
    difference: int
    disputed_count: int = 0
    disputed: int = 0
    disputes_lost: int = 0


@dataclass(frozen=True, slots=True)
class CurrencyTotals:
    currency: str
    count: int = 0
    gross: int = 0
    fees: int = 0
    refunds: int = 0
    net: int = 0
    payouts: int = 0
    bank_credits: int = 0
    bank_debits: int = 0
    disputed_count: int = 0
    disputed: int = 0
    disputes_lost: int = 0


@dataclass(frozen=True)
class DailyReport:
    """`currency` is the report's own (allocation and tax are in it); `by_currency` has one row per
    currency seen on the day. Amounts of different currencies are never added."""

    date: str
    currency: str
    timezone: str
    organizations: tuple[OrganizationLine, ...]
    reconciled: bool
    unmatched_payouts: int
    unmatched_credits: int
    allocation: AllocationSummary
    by_currency: tuple[CurrencyTotals, ...] = ()
    # Book entries tried and not pushed to Pennylane yet, or pushed and not right since (every entity).
    pennylane_unpushed: int = 0
    # The audit trail's chain heads as the report was built (`runtime.audit.AuditAnchor` as text):
    # carried out of the database, they let `verify-audit --anchor` see entries deleted since.
    audit_anchors: tuple[str, ...] = ()

    def totals(self, currency: str | None = None) -> CurrencyTotals:
        wanted = currency or self.currency
        return next((t for t in self.by_currency if t.currency == wanted), CurrencyTotals(wanted))


def build_daily_report(
    *,
    date: str,
    currency: str,
    timezone: str,
    totals: Sequence[OrganizationTotals],
    names: Mapping[str, str],
    payouts: Sequence[DayPayout],
    match_differences: Mapping[str, int],
    bank: Mapping[str, tuple[int, int]],
    unmatched_credits: int,
    rules: Sequence[AllocationRule],
    entities: Sequence[LegalEntity],
    baseline_entity: str | None = None,
    pennylane_unpushed: int = 0,
    audit_anchors: Sequence[str] = (),
) -> DailyReport:
    """``bank`` is (credits, debits) per currency. ``match_differences`` is credit - payouts of each
    match; it counts once, for the organisation of the match's first payout."""
    by_key: dict[tuple[str, str], OrganizationTotals] = {(t.organization_id, t.currency): t for t in totals}
    org_payouts: dict[tuple[str, str], list[DayPayout]] = defaultdict(list)
    for payout in payouts:
        org_payouts[(payout.organization_id, payout.currency)].append(payout)
    counted: set[str] = set()
    lines: list[OrganizationLine] = []
    for key in sorted(set(by_key) | set(org_payouts), key=lambda k: (names.get(k[0], k[0]), k[0], k[1])):
        organization_id, line_currency = key
        sales = by_key.get(key, OrganizationTotals(organization_id, line_currency))
        mine = sorted(org_payouts.get(key, []), key=lambda p: p.payout_id)
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
                currency=line_currency,
                count=sales.count,
                gross=sales.gross,
                fees=sales.fees,
                refunds=sales.refunds,
                net=sales.net,
                payouts=paid_out,
                bank_credits=credited,
                reconciled=all(p.match_id is not None for p in mine),
                difference=paid_out - credited,
                disputed_count=sales.disputed_count,
                disputed=sales.disputed,
                disputes_lost=sales.disputes_lost,
            )
        )
    unmatched_payouts = sum(1 for p in payouts if p.match_id is None)
    allocation = allocate(
        {t.organization_id: t.net for t in totals if t.organization_id and t.currency == currency},
        rules,
        entities,
        baseline_entity,
    )
    currencies = sorted({line.currency for line in lines} | set(bank) | {currency})
    by_currency = tuple(
        CurrencyTotals(
            currency=c,
            count=sum(line.count for line in lines if line.currency == c),
            gross=sum(line.gross for line in lines if line.currency == c),
            fees=sum(line.fees for line in lines if line.currency == c),
            refunds=sum(line.refunds for line in lines if line.currency == c),
            net=sum(line.net for line in lines if line.currency == c),
            payouts=sum(p.amount for p in payouts if p.currency == c),
            bank_credits=bank.get(c, (0, 0))[0],
            bank_debits=bank.get(c, (0, 0))[1],
            disputed_count=sum(line.disputed_count for line in lines if line.currency == c),
            disputed=sum(line.disputed for line in lines if line.currency == c),
            disputes_lost=sum(line.disputes_lost for line in lines if line.currency == c),
        )
        for c in currencies
    )
    return DailyReport(
        date=date,
        currency=currency,
        timezone=timezone,
        organizations=tuple(lines),
        reconciled=unmatched_payouts == 0 and unmatched_credits == 0,
        unmatched_payouts=unmatched_payouts,
        unmatched_credits=unmatched_credits,
        allocation=allocation,
        by_currency=by_currency,
        pennylane_unpushed=pennylane_unpushed,
        audit_anchors=tuple(audit_anchors),
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
    "disputed_count",
    "disputed",
    "disputes_lost",
    "currency",
)


def report_csv(report: DailyReport) -> str:
    """Organisations (one row per currency, then a TOTAL row per currency), then a blank line and
    the allocation per entity (in the report's currency)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["date", *_ORG_COLUMNS])
    for line in report.organizations:
        writer.writerow([report.date, *(_cell(getattr(line, c)) for c in _ORG_COLUMNS)])
    for totals in report.by_currency:
        mine = [line for line in report.organizations if line.currency == totals.currency]
        writer.writerow(
            [
                report.date,
                "TOTAL",
                "",
                totals.count,
                totals.gross,
                totals.fees,
                totals.refunds,
                totals.net,
                totals.payouts,
                totals.bank_credits,
                _cell(all(line.reconciled for line in mine)),
                sum(line.difference for line in mine),
                totals.disputed_count,
                totals.disputed,
                totals.disputes_lost,
                totals.currency,
            ]
        )
    writer.writerow([])
    writer.writerow(["date", "entity", "revenue", "tax_rate_bps", "estimated_tax", "currency"])
    for entity in report.allocation.entities:
        writer.writerow(
            [report.date, entity.entity, entity.revenue, entity.tax_rate_bps, entity.estimated_tax, report.currency]
        )
    writer.writerow(
        [
            report.date,
            f"BASELINE ({report.allocation.baseline_entity})",
            report.totals().net,
            "",
            report.allocation.baseline_estimated_tax,
            report.currency,
        ]
    )
    return out.getvalue()


def _cell(value: object) -> object:
    return str(value).lower() if isinstance(value, bool) else value


def money(cents: int, currency: str) -> str:
    sign = "-" if cents < 0 else ""
    units, rest = divmod(abs(cents), 100)
    return f"{sign}{units:,}.{rest:02d} {currency.upper()}"


def _amounts(report: DailyReport, name: str) -> str:
    """One amount per currency of the day (the report's currency first), never a sum across them."""
    rows = sorted(report.by_currency, key=lambda t: (t.currency != report.currency, t.currency))
    shown = [money(getattr(t, name), t.currency) for t in rows if getattr(t, name) or t.currency == report.currency]
    return " + ".join(shown) or money(0, report.currency)


def _disputes(line: OrganizationLine) -> str:
    if not (line.disputed_count or line.disputes_lost):
        return ""
    lost = f", lost {money(line.disputes_lost, line.currency)}" if line.disputes_lost else ""
    return f"; disputes {line.disputed_count} ({money(line.disputed, line.currency)}){lost}"


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
    disputes = ""
    if any(t.disputed_count or t.disputes_lost for t in report.by_currency):
        disputes = f"disputes {_amounts(report, 'disputed')} (lost {_amounts(report, 'disputes_lost')}), "
    head = (
        f"Daily report {report.date}: net {_amounts(report, 'net')}, "
        f"bank credits {_amounts(report, 'bank_credits')}, {disputes}{status}"
    )
    org_lines = [
        f"• *{line.organization_name or line.organization_id}*: gross {money(line.gross, line.currency)}, "
        f"fees {money(line.fees, line.currency)}, refunds {money(line.refunds, line.currency)}, "
        f"net {money(line.net, line.currency)}; "
        f"payouts {money(line.payouts, line.currency)}, bank {money(line.bank_credits, line.currency)}"
        f"{_disputes(line)}{'' if line.reconciled else ' ⚠ unreconciled'}"
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
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": f"Daily report {report.date}"}},
        {"type": "section", "text": {"type": "mrkdwn", "text": head}},
        {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(org_lines)[:2900]}},
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": f"*Allocation ({cur.upper()})*\n" + "\n".join(entity_lines)[:2800]},
        },
    ]
    if report.pennylane_unpushed:
        warning = f"⚠ Pennylane: {report.pennylane_unpushed} book entries not pushed or out of date (GetPennylaneSettings says why)"
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": warning}]})
    blocks += _anchor_blocks(report.audit_anchors, SLACK_MAX_BLOCKS - len(blocks))
    return {"text": head, "blocks": blocks}


# Slack takes at most 50 blocks per message and 3,000 characters per text.
SLACK_MAX_BLOCKS = 50
_BLOCK_TEXT = 2900
_ANCHORS_TITLE = "Audit chain heads (`verify-audit --anchor`):"


def _anchor_blocks(anchors: Sequence[str], room: int) -> list[dict[str, Any]]:
    """The audit chain heads as context blocks, as many as fit in `room` blocks (all of them are in
    the report's JSON; the last block says how many did not fit)."""
    if not anchors or room <= 0:
        return []
    groups: list[list[str]] = [[]]
    size = len(_ANCHORS_TITLE)
    for anchor in anchors:
        item = f" `{anchor}`"
        if size + len(item) > _BLOCK_TEXT:
            groups.append([])
            size = 0
        groups[-1].append(item)
        size += len(item)
    texts = ["".join(group) for group in groups]
    texts[0] = _ANCHORS_TITLE + texts[0]
    if len(texts) > room:
        left = len(anchors) - sum(len(group) for group in groups[: room - 1])
        texts = [*texts[: room - 1], f"… and {left} more chain heads in the report's JSON"]
    return [{"type": "context", "elements": [{"type": "mrkdwn", "text": text}]} for text in texts]
