"""The sales journal as customer invoices and their settlements (pure): which entries are invoiced,
the invoice bodies, and that an invoice plus its settlement is the FEC entry."""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.banking import fec
from services.banking.pennylane_books import Unmapped, ledger_entry
from services.banking.pennylane_invoices import (
    CUSTOMER_ACCOUNT,
    credited_reference,
    customer_invoice,
    invoiced,
    settlement,
    signed_text,
    walk_in_customer,
)

DAY = date(2026, 11, 20)
IDS = {number: 100 + i for i, number in enumerate(fec.ACCOUNTS)}
JOURNALS = {code: 10 + i for i, code in enumerate(fec.JOURNALS)}


def _line(kind: str, method: str = "card_present", amount: int = 1000, fee: int = 10) -> fec.BookLine:
    piece = "re_1" if kind == "refund" else "pi_1"
    return fec.BookLine(kind, piece, "pi_1", "org_1", DAY, method, "direct", "eur", amount, fee)


def _only(lines: list[fec.BookLine]) -> fec.Entry:
    (entry,) = fec.organization_entries(lines, [], [])
    return entry


SALE = _only([_line("sale")])
CASH = _only([_line("sale", method="cash", fee=0)])
REFUND = _only([_line("refund", amount=700, fee=7)])
PAYOUT = fec.organization_entries([], [], [fec.PayoutLine("po_1", 5000, "eur", DAY)])[0]
STRIPE_FEE = fec.organization_entries([], [fec.StripeFee("txn_1", 30, "eur", DAY)], [])[0]
# A dispute (what the disputes work books in VE): receivables, never sales.
DISPUTE = fec.Entry("VE", DAY, "du_1", "litige pi_1", "eur", (fec.Leg("416000", 1000, 0), fec.Leg(fec.STRIPE, 0, 1000)))


@pytest.mark.parametrize(
    ("entry", "expected"),
    [(SALE, True), (CASH, True), (REFUND, True), (PAYOUT, False), (STRIPE_FEE, False), (DISPUTE, False)],
)
def test_only_sales_and_refunds_of_the_sales_journal_are_invoiced(entry: fec.Entry, expected: bool) -> None:
    assert invoiced(entry) is expected


@pytest.mark.parametrize(
    ("entry", "price", "account"),
    [
        (SALE, "10.00", fec.SALES),
        (CASH, "10.00", fec.SALES),
        (REFUND, "-7.00", fec.REFUNDS),  # a credit note: negative amounts
    ],
)
def test_invoice_body(entry: fec.Entry, price: str, account: str) -> None:
    body = customer_invoice(entry, "VE-pi_1", 42, IDS)
    assert body == {
        "date": "2026-11-20",
        "deadline": "2026-11-20",
        "customer_id": 42,
        "currency": "EUR",
        "draft": False,
        "label": entry.label,
        "external_reference": "VE-pi_1",
        "invoice_lines": [
            {
                "label": entry.label,
                "quantity": 1,
                "unit": "piece",
                "raw_currency_unit_price": price,
                "vat_rate": "exempt",
                "ledger_account_id": IDS[account],
            }
        ],
    }


def test_an_unmapped_sales_account_is_reported_and_a_fee_entry_is_not_an_invoice() -> None:
    with pytest.raises(Unmapped, match="706000"):
        customer_invoice(SALE, "VE-pi_1", 42, {k: v for k, v in IDS.items() if k != fec.SALES})
    with pytest.raises(ValueError):
        customer_invoice(PAYOUT, "BQ-po_1", 42, IDS)


@pytest.mark.parametrize(
    ("entry", "legs"),
    [
        # The money received settles the customer; the platform's fee stays as it is.
        (
            SALE,
            [
                (fec.STRIPE, 1000, 0),
                (CUSTOMER_ACCOUNT, 0, 1000),
                (fec.PLATFORM_FEES, 10, 0),
                (fec.STRIPE, 0, 10),
            ],
        ),
        (CASH, [(fec.CASH, 1000, 0), (CUSTOMER_ACCOUNT, 0, 1000)]),
        (
            REFUND,
            [
                (CUSTOMER_ACCOUNT, 700, 0),
                (fec.STRIPE, 0, 700),
                (fec.STRIPE, 7, 0),
                (fec.PLATFORM_FEES, 0, 7),
            ],
        ),
    ],
)
def test_settlement(entry: fec.Entry, legs: list[tuple[str, int, int]]) -> None:
    found = settlement(entry)
    assert [(leg.account, leg.debit, leg.credit) for leg in found.legs] == legs
    assert found.balanced() and (found.journal, found.piece, found.day) == (entry.journal, entry.piece, entry.day)
    body = ledger_entry(found, "VE-pi_1", JOURNALS, {**IDS, CUSTOMER_ACCOUNT: 999})
    assert body["piece_number"] == "VE-pi_1" and body["journal_id"] == JOURNALS[entry.journal]


def _booked_by_pennylane(body: dict[str, Any]) -> dict[str, int]:
    """What Pennylane books for a finalized invoice (no VAT): the customer against each line's account,
    as signed cents per account (debit positive)."""
    ids = {v: k for k, v in IDS.items()}
    booked: dict[str, int] = defaultdict(int)
    for line in body["invoice_lines"]:
        price = line["raw_currency_unit_price"]
        units, _, rest = price.lstrip("-").partition(".")
        cents = (int(units) * 100 + int(rest)) * (-1 if price.startswith("-") else 1)
        booked[CUSTOMER_ACCOUNT] += cents
        booked[ids[line["ledger_account_id"]]] -= cents
    return booked


def _signed(legs: tuple[fec.Leg, ...], into: dict[str, int] | None = None) -> dict[str, int]:
    found: dict[str, int] = defaultdict(int, into or {})
    for leg in legs:
        found[leg.account] += leg.debit - leg.credit
    return found


def _nonzero(amounts: dict[str, int]) -> dict[str, int]:
    return {account: cents for account, cents in amounts.items() if cents}


@given(
    kind=st.sampled_from(["sale", "refund"]),
    method=st.sampled_from(["card_present", "cash"]),
    amount=st.integers(min_value=1, max_value=10**9),
    fee_bps=st.integers(min_value=0, max_value=10_000),
)
def test_an_invoice_and_its_settlement_are_the_fec_entry(kind: str, method: str, amount: int, fee_bps: int) -> None:
    entry = _only([_line(kind, method=method, amount=amount, fee=amount * fee_bps // 10_000)])
    total = _signed(settlement(entry).legs, _booked_by_pennylane(customer_invoice(entry, "ref", 1, IDS)))
    assert _nonzero(total) == _nonzero(_signed(entry.legs))
    assert total[CUSTOMER_ACCOUNT] == 0  # the walk-in customer is settled


@pytest.mark.parametrize(("cents", "text"), [(0, "0.00"), (1250, "12.50"), (-700, "-7.00"), (-5, "-0.05")])
def test_signed_text(cents: int, text: str) -> None:
    assert signed_text(cents) == text


def test_the_walk_in_customer_carries_no_buyer_data() -> None:
    body = walk_in_customer(
        "Ventes comptoir", {"address": "1 rue de la Caserne", "postal_code": "75001", "city": "Paris"}
    )
    assert body["name"] == "Ventes comptoir" and "emails" not in body
    assert body["billing_address"] == {
        "address": "1 rue de la Caserne",
        "postal_code": "75001",
        "city": "Paris",
        "country_alpha2": "FR",
    }


@pytest.mark.parametrize(
    ("entry", "credited"),
    [
        (REFUND, "VE-pi_1"),
        (_only([_line("refund", method="cash", amount=300, fee=0)]), "CA-pi_1"),
        (SALE, None),
        (CASH, None),
        (PAYOUT, None),
        (DISPUTE, None),
    ],
)
def test_a_refund_credits_the_invoice_of_its_sale(entry: fec.Entry, credited: str | None) -> None:
    assert credited_reference(entry) == credited
