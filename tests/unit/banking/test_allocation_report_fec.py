"""Allocation, the daily report builder and the FEC journal (pure)."""

from __future__ import annotations

import csv
import io
import random
import uuid
from dataclasses import replace
from datetime import date

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runtime.errors import InvalidArgument
from services.banking.allocation import AllocationRule, LegalEntity, allocate, estimated_tax, split, validate_allocation
from services.banking.daily_report import (
    DayPayout,
    OrganizationTotals,
    build_daily_report,
    report_csv,
    slack_message,
    totals_from_books,
)
from services.banking.fec import (
    DISPUTE_KINDS,
    BankLine,
    BookLine,
    PayoutLine,
    StripeFee,
    file_name,
    organization_entries,
    platform_entries,
    render,
)
from tests.fixtures.fec import account_totals, checked_fec, fec_rows

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
        totals=[
            OrganizationTotals("org-a", "eur", 3, 3000, 90, 100, 2810),
            OrganizationTotals("org-b", "eur", 1, 500, 10, 0, 490),
        ],
        names={"org-a": "Pompiers A", "org-b": "Pompiers B"},
        payouts=[
            DayPayout("p1", "org-a", 2000, "eur", "m1"),
            DayPayout("p2", "org-a", 810, "eur", "m1"),
            DayPayout("p3", "org-b", 490, "eur", None),
        ],
        match_differences={"m1": -1},
        bank={"eur": (2809, 0)},
        unmatched_credits=0,
        rules=[AllocationRule("", "holding", 10_000)],
        entities=ENTITIES,
    )
    a, b = report.organizations
    assert (a.payouts, a.bank_credits, a.difference, a.reconciled) == (2810, 2809, 1, True)
    assert (b.payouts, b.bank_credits, b.reconciled) == (490, 0, False)
    assert report.reconciled is False and report.unmatched_payouts == 1
    assert report.totals().net == 3300
    rows = list(csv.reader(io.StringIO(report_csv(report))))
    assert rows[0][:3] == ["date", "organization_id", "organization_name"] and rows[0][-1] == "currency"
    assert rows[3][1] == "TOTAL" and rows[3][7] == "3300" and rows[3][-1] == "eur"
    message = slack_message(report)
    assert "NOT reconciled" in message["text"] and message["blocks"]
    assert "Pennylane" not in str(message)
    behind = slack_message(replace(report, pennylane_unpushed=3))
    assert "Pennylane: 3 book entries not pushed" in str(behind["blocks"][-1])


def test_the_daily_report_never_adds_two_currencies() -> None:
    report = build_daily_report(
        date="2026-11-20",
        currency="eur",
        timezone="Europe/Paris",
        totals=[
            OrganizationTotals("org-a", "eur", 1, 1000, 10, 0, 990),
            OrganizationTotals("org-a", "usd", 2, 700, 7, 100, 593),
            OrganizationTotals("org-b", "gbp", 1, 5000, 0, 0, 5000),
        ],
        names={"org-a": "A", "org-b": "B"},
        payouts=[DayPayout("p1", "org-a", 990, "eur", None), DayPayout("p2", "org-a", 593, "usd", None)],
        match_differences={},
        bank={"eur": (990, 0), "usd": (593, 40)},
        unmatched_credits=0,
        rules=[AllocationRule("", "holding", 10_000)],
        entities=ENTITIES,
    )
    lines = {(line.organization_id, line.currency): line for line in report.organizations}
    assert set(lines) == {("org-a", "eur"), ("org-a", "usd"), ("org-b", "gbp")}
    assert lines[("org-a", "usd")].payouts == 593 and lines[("org-a", "eur")].payouts == 990
    by_currency = {t.currency: t for t in report.by_currency}
    assert (by_currency["eur"].gross, by_currency["usd"].gross, by_currency["gbp"].gross) == (1000, 700, 5000)
    assert (by_currency["usd"].bank_credits, by_currency["usd"].bank_debits) == (593, 40)
    assert report.totals().net == 990  # the report's own currency only
    assert sum(e.revenue for e in report.allocation.entities) == 990  # allocation in eur only
    totals = [row for row in csv.reader(io.StringIO(report_csv(report))) if row[1:2] == ["TOTAL"]]
    assert {row[-1]: row[4] for row in totals} == {"eur": "1000", "gbp": "5000", "usd": "700"}
    text = slack_message(report)["text"]
    assert "9.90 EUR" in text and "5.93 USD" in text and "50.00 GBP" in text
    assert "67.00" not in text and "59.83" not in text  # no sum across currencies


def test_totals_from_books_count_refunds_on_their_day() -> None:
    day = date(2026, 11, 20)
    lines = [
        BookLine("sale", "p1", "p1", "org-a", day, "card_present", "direct", "eur", 1000, 30),
        BookLine("refund", "r1", "p0", "org-a", day, "card_present", "direct", "eur", 400, 12),
        BookLine("sale", "p2", "p2", "org-a", day, "cash", "none", "usd", 500, 0),
    ]
    totals = {(t.organization_id, t.currency): t for t in totals_from_books(lines)}
    assert totals[("org-a", "eur")] == OrganizationTotals("org-a", "eur", 1, 1000, 18, 400, 582)
    assert totals[("org-a", "usd")] == OrganizationTotals("org-a", "usd", 1, 500, 0, 0, 500)


DAY = date(2026, 11, 20)


def _plausible(line: BookLine) -> BookLine:
    """Cash has no charge model nor fee; a destination dispute takes back at most the disputed amount."""
    if line.method == "cash":
        line = replace(line, charge_model="none", application_fee=0)
    return replace(line, transfer_reversed=min(line.transfer_reversed, line.amount))


def _on_a_card(line: BookLine) -> bool:
    """A dispute is on a card payment."""
    return line.kind not in DISPUTE_KINDS or line.method != "cash"


# Named functions, not lambdas: Hypothesis describes a lambda by parsing its source with `ast`,
# which CPython 3.11.7 can fail with "AST constructor recursion depth mismatch" (gh-106905).
# That holds for Hypothesis' own lambdas too: st.uuids() maps its generator through one, so the
# ids come from the same shared generator through a named function instead.


def _uuid_text(generator: random.Random) -> str:
    return str(uuid.UUID(int=generator.getrandbits(128)))


_ids = st.shared(st.randoms(use_true_random=True), key="test-allocation-report-fec.ids").map(_uuid_text)
_lines = (
    st.builds(
        BookLine,
        kind=st.sampled_from(["sale", "refund", *DISPUTE_KINDS]),
        id=_ids,
        payment_id=_ids,
        organization_id=st.sampled_from(["org-a", "org-b"]),
        day=st.dates(min_value=DAY, max_value=date(2026, 11, 25)),
        method=st.sampled_from(["card_present", "card", "cash"]),
        charge_model=st.sampled_from(["direct", "destination"]),
        currency=st.sampled_from(["eur", "usd"]),
        amount=st.integers(min_value=1, max_value=1_000_000),
        application_fee=st.integers(min_value=0, max_value=1_000),
        transfer_reversed=st.integers(min_value=0, max_value=1_000_000),
    )
    .filter(_on_a_card)
    .map(_plausible)
)
_fees = st.builds(StripeFee, id=_ids, fee=st.integers(-500, 500), currency=st.just("eur"), day=st.just(DAY))
_payouts = st.builds(
    PayoutLine,
    stripe_payout_id=_ids,
    amount=st.integers(1, 10**7),
    currency=st.just("eur"),
    day=st.just(DAY),
)


# No deadline: the machine may be busy; the property, not the speed, is under test.
@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_lines, max_size=30), st.lists(_fees, max_size=5), st.lists(_payouts, max_size=5))
def test_every_fec_entry_balances_and_numbers_are_gapless(
    lines: list[BookLine], fees: list[StripeFee], payouts: list[PayoutLine]
) -> None:
    bank = [BankLine("q-1", 661, "credit", "eur", DAY, "STRIPE", True), BankLine("q-2", 120, "debit", "eur", DAY)]
    for entries in (organization_entries(lines, fees, payouts), platform_entries(lines, fees, payouts, bank)):
        content, count = render(entries)
        _, sums = checked_fec(content)
        assert len(sums) == count
    # The organisation's sales (706) and refunds (709) are exactly what Payments booked, per currency.
    rows = fec_rows(render(organization_entries(lines, fees, payouts))[0])
    for currency in ("eur", "usd"):
        mine = [line for line in lines if line.currency == currency]
        assert account_totals(rows, "706000", currency.upper())[1] == sum(x.amount for x in mine if x.kind == "sale")
        assert account_totals(rows, "709000", currency.upper())[0] == sum(x.amount for x in mine if x.kind == "refund")
    # The platform never books an organisation's sale as its revenue.
    assert "706000" not in {cells[4] for cells in fec_rows(render(platform_entries(lines, fees, payouts, bank))[0])}


def test_cash_sales_go_to_the_cash_journal_and_the_file_is_named_by_the_siren() -> None:
    lines = [
        BookLine("sale", "p1", "p1", "org-a", DAY, "cash", "none", "eur", 1500, 0),
        BookLine("sale", "p2", "p2", "org-a", DAY, "card_present", "direct", "eur", 1000, 30),
    ]
    content, count = render(organization_entries(lines, [], []))
    rows = fec_rows(content)
    assert count == 2
    assert {(c[0], c[4]) for c in rows if c[8] == "p1"} == {("CA", "530000"), ("CA", "706000")}
    assert {c[3] for c in rows} == {"20261120"} and "\t15,00\t" in content
    assert file_name("123456789", date(2026, 12, 31)) == "123456789FEC20261231.txt"
    with pytest.raises(ValueError):
        file_name("12345678", DAY)


@pytest.mark.parametrize("chains", [1, 40, 5_000])
def test_the_slack_message_carries_the_audit_anchors_within_slacks_limits(chains: int) -> None:
    anchors = [f"{i:08d}-0000-4000-8000-000000000000:{i + 1}:{i:016x}" for i in range(chains)]
    report = build_daily_report(
        date="2026-11-20",
        currency="eur",
        timezone="Europe/Paris",
        totals=[],
        names={},
        payouts=[],
        match_differences={},
        bank={},
        unmatched_credits=0,
        rules=[],
        entities=ENTITIES,
        audit_anchors=anchors,
    )
    assert report.audit_anchors == tuple(anchors)
    blocks = slack_message(report)["blocks"]
    texts = [b["elements"][0]["text"] for b in blocks if b["type"] == "context"]
    assert len(blocks) <= 50 and all(len(t) <= 3000 for t in texts)
    shown = [a for a in anchors if f"`{a}`" in "".join(texts)]
    if len(shown) == chains:
        assert "more chain heads" not in texts[-1]
    else:  # what did not fit is counted, and is in the report's JSON
        assert len(blocks) == 50 and texts[-1] == f"… and {chains - len(shown)} more chain heads in the report's JSON"
        assert shown == anchors[: len(shown)]
