"""Allocation, the daily report builder and the FEC journal (pure)."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from datetime import UTC, datetime

import pytest

from runtime.errors import InvalidArgument
from services.banking.allocation import AllocationRule, LegalEntity, allocate, estimated_tax, split, validate_allocation
from services.banking.daily_report import DayPayout, OrganizationTotals, build_daily_report, report_csv, slack_message
from services.banking.fec import COLUMNS, BalanceLine, BankLine, PayoutLine, build_fec

ENTITIES = [LegalEntity("holding", 2500), LegalEntity("asso", 0)]


def test_split_is_exact_and_deterministic() -> None:
    assert split(100, [("a", 3333), ("b", 3333), ("c", 3334)]) == {"a": 33, "b": 33, "c": 34}
    assert sum(split(10_001, [("a", 5000), ("b", 5000)]).values()) == 10_001
    assert split(-101, [("a", 5000), ("b", 5000)]) == {"a": -51, "b": -50}


def test_estimated_tax_rounds_half_away_from_zero() -> None:
    assert estimated_tax(2, 2500) == 1  # 0.5 → 1
    assert estimated_tax(-2, 2500) == -1
    assert estimated_tax(10_000, 2000) == 2000


@pytest.mark.parametrize(
    ("rules", "entities", "field"),
    [
        ([AllocationRule("", "holding", 6000)], ENTITIES, "rules"),
        ([AllocationRule("", "nope", 10_000)], ENTITIES, "rules[0].entity"),
        ([AllocationRule("", "holding", 0), AllocationRule("", "asso", 10_000)], ENTITIES, "rules[0].share_bps"),
        ([AllocationRule("", "holding", 10_000)], [LegalEntity("holding", 10_001)], "entities[0].tax_rate_bps"),
        ([AllocationRule("", "holding", 10_000)], [], "entities"),
        (
            [AllocationRule("", "holding", 10_000)],
            [LegalEntity("holding", 0), LegalEntity("holding", 1)],
            "entities[1].entity",
        ),
    ],
)
def test_invalid_allocations_are_refused(rules: list[AllocationRule], entities: list[LegalEntity], field: str) -> None:
    with pytest.raises(InvalidArgument) as raised:
        validate_allocation(rules, entities)
    assert raised.value.code == "invalid_allocation_rules"
    assert field in [f.field for f in raised.value.fields]


def test_allocation_uses_org_rules_then_defaults_then_baseline() -> None:
    rules = [
        AllocationRule("", "holding", 10_000),
        AllocationRule("org-b", "holding", 2000),
        AllocationRule("org-b", "asso", 8000),
    ]
    validate_allocation(rules, ENTITIES)
    summary = allocate({"org-a": 10_000, "org-b": 10_000}, rules, ENTITIES)
    revenue = {e.entity: e.revenue for e in summary.entities}
    assert revenue == {"holding": 12_000, "asso": 8_000}
    assert summary.estimated_tax_total == 3000
    assert summary.baseline_entity == "holding" and summary.baseline_estimated_tax == 5000
    assert summary.tax_difference == -2000
    assert allocate({"org-a": 500}, [], ENTITIES).entities[0].revenue == 500


def test_daily_report_lines_reconciliation_and_csv() -> None:
    report = build_daily_report(
        date="2026-11-20",
        currency="eur",
        timezone="Europe/Paris",
        totals=[OrganizationTotals("org-a", 3, 3000, 90, 100, 2810), OrganizationTotals("org-b", 1, 500, 10, 0, 490)],
        names={"org-a": "Pompiers A", "org-b": "Pompiers B"},
        payouts=[
            DayPayout("p1", "org-a", 2000, "m1"),
            DayPayout("p2", "org-a", 810, "m1"),
            DayPayout("p3", "org-b", 490, None),
        ],
        match_differences={"m1": -1},
        bank_credits=2809,
        bank_debits=0,
        unmatched_credits=0,
        rules=[AllocationRule("", "holding", 10_000)],
        entities=ENTITIES,
    )
    a, b = report.organizations
    assert (a.payouts, a.bank_credits, a.difference, a.reconciled) == (2810, 2809, 1, True)
    assert (b.payouts, b.bank_credits, b.reconciled) == (490, 0, False)
    assert report.reconciled is False and report.unmatched_payouts == 1
    assert report.totals["net"] == 3300
    rows = list(csv.reader(io.StringIO(report_csv(report))))
    assert rows[0][:3] == ["date", "organization_id", "organization_name"]
    assert rows[3][1] == "TOTAL" and rows[3][7] == "3300"
    message = slack_message(report)
    assert "NOT reconciled" in message["text"] and message["blocks"]


def _balanced(content: str) -> dict[str, tuple[int, int]]:
    lines = content.rstrip("\n").split("\n")
    assert lines[0].split("\t") == list(COLUMNS)
    sums: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for line in lines[1:]:
        cells = line.split("\t")
        assert len(cells) == 18
        debit, credit = (int(cells[i].replace(",", "")) for i in (11, 12))
        sums[cells[2]][0] += debit
        sums[cells[2]][1] += credit
    return {num: (d, c) for num, (d, c) in sums.items()}


def test_fec_entries_balance() -> None:
    day = datetime(2026, 11, 20, 10, tzinfo=UTC)
    content, entries = build_fec(
        [
            BalanceLine("txn_1", "charge", 1000, 39, "eur", day, "acct_1", "ch_1"),
            BalanceLine("txn_2", "refund", -300, 0, "eur", day, "acct_1", "re_1"),
            BalanceLine("txn_3", "payout", -661, 0, "eur", day, "acct_1", "po_1"),
            BalanceLine("txn_4", "adjustment", -5, -2, "eur", day, "acct_1"),
        ],
        [PayoutLine("po_1", 661, "eur", day, "acct_1")],
        [BankLine("q-1", 661, "credit", "eur", day, "STRIPE", True), BankLine("q-2", 120, "debit", "eur", day, "rent")],
    )
    assert entries == 6
    sums = _balanced(content)
    assert len(sums) == 6
    assert all(d == c and d > 0 for d, c in sums.values())
    assert "\t10,00\t" in content and "20261120" in content
