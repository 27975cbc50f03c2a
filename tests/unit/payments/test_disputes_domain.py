"""The dispute rules of Payments' domain, table-driven: the status ladder, the money a dispute
says moved, what a destination charge's dispute takes back, and which evidence Stripe takes."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from collect.payments.v1 import payments_pb2 as pb

from runtime.proto import EnumNames
from services.banking.fec import DISPUTE_KINDS
from services.payments.domain import (
    BOOK_MOVES,
    DISPUTE_EVIDENCE_FIELDS,
    DISPUTE_STATUSES,
    BookMove,
    Dispute,
    advance_dispute,
    dispute_may_move,
    dispute_money,
    evidence_problems,
    move_figures,
    transfer_to_reverse,
)


def test_the_statuses_are_the_protos() -> None:
    assert sorted(DISPUTE_STATUSES) == sorted(EnumNames(pb.DisputeStatus).names)


@pytest.mark.parametrize(
    ("current", "new", "moves"),
    [
        ("needs_response", "under_review", True),
        ("needs_response", "won", True),
        ("needs_response", "lost", True),
        ("warning_needs_response", "needs_response", True),  # an inquiry becomes a dispute
        ("needs_response", "warning_needs_response", True),  # same rung: as Stripe reports it
        ("under_review", "won", True),
        ("under_review", "needs_response", False),  # an older event
        ("won", "lost", False),  # closed stays closed
        ("lost", "under_review", False),
        ("charge_refunded", "won", False),
        ("warning_closed", "needs_response", False),
        ("needs_response", "needs_response", False),
        ("needs_response", "something_new", False),  # not a status we know
        ("", "needs_response", True),
    ],
)
def test_a_dispute_only_moves_forward(current: str, new: str, moves: bool) -> None:
    assert dispute_may_move(current, new) is moves


def _dispute(status: str = "needs_response", withdrawn: int = 0) -> Dispute:
    return Dispute(
        id="d",
        stripe_dispute_id="dp_1",
        payment_id="p",
        organization_id="o",
        member_id="m",
        charge_model="destination",
        amount=6000,
        currency="eur",
        reason="fraudulent",
        status=status,
        evidence_due_by=None,
        local_date=date(2026, 12, 6),
        created_at=datetime(2026, 12, 6, tzinfo=UTC),
        withdrawn=withdrawn,
    )


def test_advance_dispute_is_the_one_writer() -> None:
    dispute = _dispute()
    assert advance_dispute(dispute, "under_review") and dispute.status == "under_review"
    assert not advance_dispute(dispute, "needs_response") and dispute.status == "under_review"


@pytest.mark.parametrize(
    ("transactions", "expected"),
    [
        ([], (0, 0, None, 0, None)),
        ([{"amount": -6000, "fee": 1500, "created": 10}], (6000, 1500, 10, 0, None)),
        (
            [{"amount": -6000, "fee": 1500, "created": 10}, {"amount": 6000, "fee": 0, "created": 20}],
            (6000, 1500, 10, 6000, 20),
        ),
        (["txn_unexpanded"], (0, 0, None, 0, None)),
    ],
)
def test_the_money_a_dispute_says_moved(transactions: list[Any], expected: tuple[Any, ...]) -> None:
    assert dispute_money({"balance_transactions": transactions}) == expected


@pytest.mark.parametrize(
    ("withdrawn", "transfer", "expected"),
    [
        (6000, {"amount": 5400, "amount_reversed": 0}, 5400),  # the whole transfer (the fee is the platform's)
        (3000, {"amount": 5400, "amount_reversed": 0}, 3000),  # a partial dispute
        (6000, {"amount": 5400, "amount_reversed": 5000}, 400),  # refunds reversed part of it
        (6000, {"amount": 5400, "amount_reversed": 5400}, 0),
        (0, {"amount": 5400, "amount_reversed": 0}, 0),  # nothing withdrawn yet
    ],
)
def test_what_a_destination_dispute_takes_back(withdrawn: int, transfer: dict[str, int], expected: int) -> None:
    assert transfer_to_reverse(_dispute(withdrawn=withdrawn), transfer) == expected


@pytest.mark.parametrize(
    ("evidence", "fields"),
    [
        ({"uncategorized_text": "winning_evidence", "product_description": "A calendar"}, []),
        ({}, []),
        ({"favourite_colour": "blue"}, ["evidence.favourite_colour"]),
        ({name: "x" * 20_000 for name in DISPUTE_EVIDENCE_FIELDS[:7]} | {"receipt": "x" * 10_000}, []),
        ({name: "x" * 20_000 for name in DISPUTE_EVIDENCE_FIELDS[:7]} | {"receipt": "x" * 10_001}, ["evidence"]),
    ],
)
def test_which_evidence_stripe_takes(evidence: dict[str, str], fields: list[str]) -> None:
    assert [field for field, _ in evidence_problems(evidence)] == fields


def test_the_books_moves_are_the_ones_banking_books() -> None:
    assert set(BOOK_MOVES) == {"refund", "refund_failed", *DISPUTE_KINDS}
    with pytest.raises(ValueError, match="not a move of the books"):
        BookMove("sale", "p", 1_000)  # a sale is its payment, never a move


@pytest.mark.parametrize(
    ("move", "model", "figures"),
    [
        (BookMove("refund", "r", 2_000, application_fee=200), "direct", {"refunded": 2_000, "fees": -200}),
        (BookMove("refund_failed", "r", 2_000, application_fee=200), "direct", {"refunded": -2_000, "fees": 200}),
        # A lost dispute: all the organisation's under direct charges...
        (BookMove("dispute_lost", "d", 6_000), "direct", {"disputes_lost": 6_000}),
        # ... only the part of the transfer reversed under destination charges (before the loss, or after it).
        (BookMove("dispute_lost", "d", 6_000, transfer_reversed=5_400), "destination", {"disputes_lost": 5_400}),
        (BookMove("dispute_lost", "d", 6_000), "destination", {}),
        (
            BookMove("dispute_lost_reversal", "d", 3_400, transfer_reversed=3_400),
            "destination",
            {"disputes_lost": 3_400},
        ),
        # Withdrawals count where the dispute was opened; transfers move no figure.
        (BookMove("dispute", "d", 6_000, dispute_fee=1_500), "direct", {}),
        (BookMove("dispute_reversal", "d", 5_400, transfer_reversed=5_400), "destination", {}),
        (BookMove("dispute_won", "d", 6_000), "destination", {}),
        (BookMove("dispute_return", "d", 5_400, transfer_reversed=5_400), "destination", {}),
    ],
)
def test_what_a_book_move_adds_to_its_days_figures(move: BookMove, model: str, figures: dict[str, int]) -> None:
    assert move_figures(move, model) == figures
