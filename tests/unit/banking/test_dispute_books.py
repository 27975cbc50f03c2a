"""Disputes in the books and the daily report (pure): each charge model's dispute, won or lost,
balances in both FECs, leaves nothing in disputed receivables once closed, and the report counts
disputes apart from refunds."""

from __future__ import annotations

from datetime import date

import pytest

from services.banking.daily_report import OrganizationTotals, build_daily_report, slack_message, totals_from_books
from services.banking.fec import BookLine, Entry, organization_entries, platform_entries, render
from tests.fixtures.fec import account_totals, checked_fec, fec_rows

DAY = date(2026, 12, 6)
AMOUNT, REVERSED = 6_000, 5_400  # a destination charge with a 600 platform fee: its transfer was 5,400


def _line(kind: str, model: str, amount: int = AMOUNT, reversed_: int = 0) -> BookLine:
    return BookLine(kind, "dp", "p1", "org-a", DAY, "card", model, "eur", amount, 0, 1500, reversed_)


def _dispute(model: str, outcome: str) -> list[BookLine]:
    reversed_ = REVERSED if model == "destination" else 0
    return [_line("dispute", model, reversed_=reversed_), _line(outcome, model, reversed_=reversed_)]


def _accounts(entries: list[Entry]) -> dict[str, int]:
    """Debits less credits per account of the rendered, checked file."""
    content, _ = render(entries)
    checked_fec(content)
    rows = fec_rows(content)
    found = {}
    for account in {cells[4] for cells in rows}:
        debits, credits = account_totals(rows, account)
        found[account] = debits - credits
    return found


@pytest.mark.parametrize(
    ("model", "outcome", "organization", "platform"),
    [
        # Direct charges: Stripe took the organisation's money; the platform is not involved.
        ("direct", "dispute_won", {"467000": 0, "416000": 0}, {}),
        ("direct", "dispute_lost", {"467000": -AMOUNT, "416000": 0, "654000": AMOUNT}, {}),
        # Destination charges: the platform was debited and took the transfer back from the organisation.
        (
            "destination",
            "dispute_won",
            {"467000": 0, "416000": 0},
            {"467000": 0, "416000": 0, "467100": 0},
        ),
        (
            "destination",
            "dispute_lost",
            {"467000": -REVERSED, "416000": 0, "654000": REVERSED},
            {"467000": -AMOUNT + REVERSED, "416000": 0, "467100": 0, "654000": AMOUNT - REVERSED},
        ),
    ],
)
def test_a_closed_dispute_balances_and_leaves_no_receivable(
    model: str, outcome: str, organization: dict[str, int], platform: dict[str, int]
) -> None:
    lines = _dispute(model, outcome)
    # Stripe's dispute fee is booked with the payout's Stripe fees (ST), not here: never twice.
    assert _accounts(organization_entries(lines, [], [])) == organization
    assert _accounts(platform_entries(lines, [], [], [])) == platform


def test_the_report_counts_disputes_apart_from_refunds() -> None:
    lines = [
        BookLine("sale", "p1", "p1", "org-a", DAY, "card", "direct", "eur", 10_000, 0),
        _line("dispute", "direct"),
        _line("dispute_won", "direct"),
        BookLine("dispute_lost", "dp2", "p2", "org-a", DAY, "card", "direct", "eur", 2_000, 0),
    ]
    [totals] = totals_from_books(lines)
    assert totals == OrganizationTotals("org-a", "eur", 1, 10_000, 0, 0, 10_000, 1, AMOUNT, 2_000)
    report = build_daily_report(
        date=str(DAY),
        currency="eur",
        timezone="Europe/Paris",
        totals=[totals],
        names={"org-a": "Pompiers"},
        payouts=[],
        match_differences={},
        bank={},
        unmatched_credits=0,
        rules=[],
        entities=[],
    )
    assert (report.totals().disputed_count, report.totals().disputed, report.totals().disputes_lost) == (
        1,
        6_000,
        2_000,
    )
    message = slack_message(report)
    assert "disputes 60.00 EUR (lost 20.00 EUR)" in message["text"]
    assert "disputes 1 (60.00 EUR), lost 20.00 EUR" in message["blocks"][2]["text"]["text"]
