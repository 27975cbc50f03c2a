"""Disputes in the books and the daily report (pure): each charge model's dispute, won or lost,
balances in both FECs, leaves nothing in disputed receivables once closed, and the report counts
disputes apart from refunds."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.banking.daily_report import OrganizationTotals, build_daily_report, slack_message, totals_from_books
from services.banking.fec import BookLine, Entry, organization_entries, platform_entries, render
from services.payments.domain import BookMove, move_figures
from tests.fixtures.fec import account_totals, checked_fec, fec_rows

DAY = date(2026, 12, 6)
AMOUNT, REVERSED = 6_000, 5_400  # a destination charge with a 600 platform fee: its transfer was 5,400


def _line(kind: str, model: str, amount: int = AMOUNT, reversed_: int = 0, day: date = DAY) -> BookLine:
    return BookLine(kind, "dp", "p1", "org-a", day, "card", model, "eur", amount, 0, 1500, reversed_)


def _moves(model: str, *kinds: str, reversed_: int = REVERSED) -> list[BookLine]:
    """A dispute's lines as Payments books them: a reversal's and a give-back's amount is the part of
    the transfer moved; a loss carries the part reversed before it."""
    lines, taken = [], 0
    for kind in kinds:
        if kind in ("dispute_reversal", "dispute_return", "dispute_lost_reversal"):
            lines.append(_line(kind, model, reversed_, reversed_))
            taken += reversed_ if kind == "dispute_reversal" else 0
        elif kind == "dispute_lost":
            lines.append(_line(kind, model, AMOUNT, taken))
        else:
            lines.append(_line(kind, model))
    return lines


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


LOST_BY_ORG = {"467000": -REVERSED, "416000": 0, "654000": REVERSED}
LOST_BY_PLATFORM = {"467000": -AMOUNT + REVERSED, "416000": 0, "467100": 0, "654000": AMOUNT - REVERSED}


@pytest.mark.parametrize(
    ("model", "kinds", "organization", "platform"),
    [
        # Direct charges: Stripe took the organisation's money; the platform is not involved.
        ("direct", ("dispute", "dispute_won"), {"467000": 0, "416000": 0}, {}),
        ("direct", ("dispute", "dispute_lost"), {"467000": -AMOUNT, "416000": 0, "654000": AMOUNT}, {}),
        # Destination charges: the platform was debited and took the transfer back from the
        # organisation (reversal), gave it back when won.
        (
            "destination",
            ("dispute", "dispute_reversal", "dispute_won", "dispute_return"),
            {"467000": 0, "416000": 0},
            {"467000": 0, "416000": 0, "467100": 0},
        ),
        # Won, the give-back still due (the sweeper makes it on a later day): the platform owes it.
        (
            "destination",
            ("dispute", "dispute_reversal", "dispute_won"),
            {"467000": -REVERSED, "416000": REVERSED},
            {"467000": REVERSED, "416000": 0, "467100": -REVERSED},
        ),
        # Lost: the organisation bears the reversed part, the platform the rest; the same whether
        # the reversal was made before the loss or (refused, retried) after it.
        ("destination", ("dispute", "dispute_reversal", "dispute_lost"), LOST_BY_ORG, LOST_BY_PLATFORM),
        (
            "destination",
            ("dispute", "dispute_lost", "dispute_lost_reversal"),
            {"467000": -REVERSED, "654000": REVERSED},
            {"467000": -AMOUNT + REVERSED, "416000": 0, "654000": AMOUNT - REVERSED},
        ),
        # Lost and never reversed (nothing left of the transfer): all the platform's.
        ("destination", ("dispute", "dispute_lost"), {}, {"467000": -AMOUNT, "416000": 0, "654000": AMOUNT}),
    ],
)
def test_a_dispute_balances_in_both_books_and_leaves_no_receivable_once_settled(
    model: str, kinds: tuple[str, ...], organization: dict[str, int], platform: dict[str, int]
) -> None:
    lines = _moves(model, *kinds)
    # Stripe's dispute fee is booked with the payout's Stripe fees (ST), not here: never twice.
    assert _accounts(organization_entries(lines, [], [])) == organization
    assert _accounts(platform_entries(lines, [], [], [])) == platform
    # The report's disputes_lost is what the organisation's books write off.
    lost = sum(t.disputes_lost for t in totals_from_books(lines))
    assert lost == organization.get("654000", 0)


@settings(max_examples=200, deadline=None)
@given(
    amount=st.integers(1, 10**7),
    fee_share=st.floats(0, 1),
    left_share=st.floats(0, 1),
    reversed_after_loss=st.booleans(),
    gap=st.integers(0, 40),
)
def test_a_lost_destination_dispute_splits_the_loss_by_what_was_reversed_in_any_order(
    amount: int, fee_share: float, left_share: float, reversed_after_loss: bool, gap: int
) -> None:
    """Whatever the transfer left to reverse (a fee kept, part reversed earlier) and whenever the
    reversal comes, each day's entries balance, the organisation's 654000 and the report's
    disputes_lost are the reversed part, the platform's 654000 the rest, and Payments counts it alike."""
    transfer = amount - int(amount * fee_share)
    taken = int(transfer * left_share)
    later = date.fromordinal(DAY.toordinal() + gap)
    lines = [BookLine("dispute", "dp", "p1", "org-a", DAY, "card", "destination", "eur", amount, 0)]
    if reversed_after_loss:
        lines.append(BookLine("dispute_lost", "dp", "p1", "org-a", DAY, "card", "destination", "eur", amount, 0))
        moved = "dispute_lost_reversal"
    else:
        lines.append(
            BookLine("dispute_reversal", "dp", "p1", "org-a", DAY, "card", "destination", "eur", taken, 0, 0, taken)
        )
        moved = "dispute_lost"
    amount_moved = taken if moved == "dispute_lost_reversal" else amount
    lines.append(BookLine(moved, "dp", "p1", "org-a", later, "card", "destination", "eur", amount_moved, 0, 0, taken))
    lines = [line for line in lines if line.amount or line.transfer_reversed]
    organization = _accounts(organization_entries(lines, [], []))
    platform = _accounts(platform_entries(lines, [], [], []))
    assert organization.get("654000", 0) == taken
    assert platform.get("654000", 0) == amount - taken
    assert platform.get("416000", 0) == organization.get("416000", 0) == 0
    assert sum(t.disputes_lost for t in totals_from_books(lines)) == taken
    payments_lost = sum(
        move_figures(
            BookMove(line.kind, line.id, line.amount, transfer_reversed=line.transfer_reversed), "destination"
        ).get("disputes_lost", 0)
        for line in lines
    )
    assert payments_lost == taken
    for day in {line.day for line in lines}:  # each day's books balance on their own
        _accounts(platform_entries([line for line in lines if line.day == day], [], [], []))


def test_a_refund_undone_later_is_reversed_on_its_own_day_in_both_books() -> None:
    later = date(2026, 12, 9)
    refund = BookLine("refund", "r1", "p1", "org-a", DAY, "card", "destination", "eur", 2_000, 200)
    failed = replace(refund, kind="refund_failed", day=later)
    assert _accounts(organization_entries([refund, failed], [], [])) == {
        "709000": 0,
        "467000": 0,
        "622000": 0,
    }
    assert _accounts(platform_entries([refund, failed], [], [], [])) == {
        "467000": 0,
        "467100": 0,
        "709100": 0,
    }
    before, after = totals_from_books([refund]), totals_from_books([failed])
    assert (before[0].refunds, before[0].fees, after[0].refunds, after[0].fees) == (2_000, -200, -2_000, 200)
    assert [e.day for e in organization_entries([failed], [], [])] == [later]


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
