"""The books as Pennylane ledger entries: references, amounts, bodies, mapping checks, the digest that
tells a change of the books after a push, and the corrections (reversal, revision) (pure)."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.banking import fec
from services.banking.pennylane_books import (
    Unmapped,
    amount_text,
    as_sent,
    cents_of,
    digest,
    held_lines,
    ledger_entry,
    mapping_errors,
    references,
    reversal,
    reversal_reference,
    revision_reference,
)

DAY = date(2026, 11, 20)


def _entry(journal: str, piece: str, amount: int = 1000, label: str = "vente", day: date = DAY) -> fec.Entry:
    legs = (fec.Leg(fec.STRIPE, amount, 0), fec.Leg(fec.SALES, 0, amount))
    return fec.Entry(journal, day, piece, label, "eur", legs)


@pytest.mark.parametrize(
    ("entries", "expected"),
    [
        ([_entry("VE", "pi_1")], ["VE-pi_1"]),
        # Same piece in two journals (a destination sale and its transfer): two references.
        ([_entry("ST", "pi_1"), _entry("VE", "pi_1")], ["ST-pi_1", "VE-pi_1"]),
        # Same journal and piece: numbered by label, whatever the order given.
        ([_entry("VE", "pi_1", label="b"), _entry("VE", "pi_1", label="a")], ["VE-pi_1", "VE-pi_1-2"]),
        ([_entry("VE", "pi_2", day=date(2026, 11, 21)), _entry("VE", "pi_9")], ["VE-pi_9", "VE-pi_2"]),
    ],
)
def test_references(entries: list[fec.Entry], expected: list[str]) -> None:
    assert [reference for reference, _ in references(entries)] == expected
    assert [reference for reference, _ in references(list(reversed(entries)))] == expected


def test_same_label_twice_keeps_the_label_order_deterministic() -> None:
    found = dict(references([_entry("VE", "pi_1", label="a"), _entry("VE", "pi_1", label="b")]))
    assert found["VE-pi_1"].label == "a" and found["VE-pi_1-2"].label == "b"


@pytest.mark.parametrize(("cents", "text"), [(0, "0.00"), (5, "0.05"), (1250, "12.50"), (100000, "1000.00")])
def test_amount_text(cents: int, text: str) -> None:
    assert amount_text(cents) == text


def test_negative_amounts_are_refused() -> None:
    with pytest.raises(ValueError):
        amount_text(-1)


@given(st.integers(min_value=0, max_value=10**12))
def test_amount_text_round_trips(cents: int) -> None:
    units, _, rest = amount_text(cents).partition(".")
    assert int(units) * 100 + int(rest) == cents and len(rest) == 2


def test_ledger_entry_body() -> None:
    entry = fec.Entry(
        "VE",
        DAY,
        "pi_1",
        "encaissement pi_1",
        "eur",
        (
            fec.Leg(fec.STRIPE, 1000, 0),
            fec.Leg(fec.OWED_TO_ORGANIZATIONS, 0, 990, "org_1"),
            fec.Leg(fec.FEES_EARNED, 0, 10),
        ),
    )
    body = ledger_entry(entry, "VE-pi_1", {"VE": 7}, {fec.STRIPE: 1, fec.OWED_TO_ORGANIZATIONS: 2, fec.FEES_EARNED: 3})
    assert body == {
        "date": "2026-11-20",
        "label": "encaissement pi_1",
        "journal_id": 7,
        "currency": "EUR",
        "piece_number": "VE-pi_1",
        "ledger_entry_lines": [
            {"debit": "10.00", "credit": "0.00", "ledger_account_id": 1, "label": "encaissement pi_1"},
            {"debit": "0.00", "credit": "9.90", "ledger_account_id": 2, "label": "encaissement pi_1 org_1"},
            {"debit": "0.00", "credit": "0.10", "ledger_account_id": 3, "label": "encaissement pi_1"},
        ],
    }


@pytest.mark.parametrize(
    ("journals", "accounts", "missing"),
    [({}, {fec.STRIPE: 1, fec.SALES: 2}, "journal for VE"), ({"VE": 1}, {fec.STRIPE: 1}, "account for 706000")],
)
def test_unmapped(journals: dict[str, int], accounts: dict[str, int], missing: str) -> None:
    with pytest.raises(Unmapped, match=missing):
        ledger_entry(_entry("VE", "pi_1"), "VE-pi_1", journals, accounts)


def test_unbalanced_entries_are_never_sent() -> None:
    entry = fec.Entry("VE", DAY, "pi_1", "x", "eur", (fec.Leg(fec.STRIPE, 1000, 0), fec.Leg(fec.SALES, 0, 999)))
    with pytest.raises(ValueError, match="unbalanced"):
        ledger_entry(entry, "VE-pi_1", {"VE": 1}, {fec.STRIPE: 1, fec.SALES: 2})


@pytest.mark.parametrize(
    ("journals", "accounts", "fields"),
    [
        ({"VE": 1}, {fec.SALES: 2}, []),
        ({"XX": 1}, {}, ["journal_ids.XX"]),
        ({}, {"999999": 1}, ["ledger_account_ids.999999"]),
        ({"VE": 1, "XX": 2}, {fec.SALES: 2, "1": 3}, ["journal_ids.XX", "ledger_account_ids.1"]),
    ],
)
def test_mapping_errors(journals: dict[str, int], accounts: dict[str, int], fields: list[str]) -> None:
    assert [error.field for error in mapping_errors(journals, accounts)] == fields


@pytest.mark.parametrize(
    ("changed", "differs"),
    [
        (_entry("VE", "pi_1"), False),
        (_entry("VE", "pi_1", amount=1001), True),
        (_entry("VE", "pi_1", label="vente corrigée"), True),
        (_entry("VE", "pi_1", day=date(2026, 11, 21)), True),
        (_entry("CA", "pi_1"), True),
        (fec.Entry("VE", DAY, "pi_1", "vente", "EUR", _entry("VE", "pi_1").legs), False),  # currency's case
        (fec.Entry("VE", DAY, "pi_1", "vente", "eur", _entry("VE", "pi_1").legs[::-1]), True),
        (fec.Entry("VE", DAY, "other", "vente", "eur", _entry("VE", "pi_1").legs), False),  # the reference says it
    ],
)
def test_the_digest_changes_with_what_the_entry_books(changed: fec.Entry, differs: bool) -> None:
    assert (digest(changed) != digest(_entry("VE", "pi_1"))) is differs
    assert len(digest(changed)) == 64


@pytest.mark.parametrize(
    ("revision", "revised", "reversed_"),
    [(1, "BQ-t1", "BQ-t1.x1"), (2, "BQ-t1.v2", "BQ-t1.x2"), (10, "BQ-t1.v10", "BQ-t1.x10")],
)
def test_correction_references(revision: int, revised: str, reversed_: str) -> None:
    assert revision_reference("BQ-t1", revision) == revised
    assert reversal_reference("BQ-t1", revision) == reversed_


@given(st.integers(min_value=1, max_value=10**9), st.integers(min_value=0, max_value=10**9))
def test_a_reversal_cancels_what_was_sent(amount: int, fee: int) -> None:
    legs = (fec.Leg(fec.STRIPE, amount + fee, 0), fec.Leg(fec.SALES, 0, amount), fec.Leg(fec.PLATFORM_FEES, 0, fee))
    entry = fec.Entry("VE", DAY, "pi_1", "vente", "eur", legs)
    accounts = {fec.STRIPE: 1, fec.SALES: 2, fec.PLATFORM_FEES: 3}
    sent = ledger_entry(entry, "VE-pi_1", {"VE": 9}, accounts)
    undone = reversal(sent, "VE-pi_1.x1")
    assert (undone["piece_number"], undone["date"], undone["journal_id"]) == ("VE-pi_1.x1", "2026-11-20", 9)
    assert undone["label"] == "Annulation vente"
    net: dict[int, int] = {}
    for line in sent["ledger_entry_lines"] + undone["ledger_entry_lines"]:
        cents = round(float(line["debit"]) * 100) - round(float(line["credit"]) * 100)
        net[line["ledger_account_id"]] = net.get(line["ledger_account_id"], 0) + cents
    assert set(net.values()) == {0}
    assert sent["piece_number"] == "VE-pi_1"  # what was sent is left as it was


@pytest.mark.parametrize(
    ("text", "cents"), [("12.50", 1250), ("12.5", 1250), ("12", 1200), ("0.07", 7), ("-7.00", -700)]
)
def test_cents_of_pennylanes_amounts(text: str, cents: int) -> None:
    assert cents_of(text) == cents


@given(st.integers(min_value=0, max_value=10**12))
def test_cents_of_inverts_amount_text(cents: int) -> None:
    assert cents_of(amount_text(cents)) == cents


def test_lines_read_back_compare_with_lines_sent() -> None:
    read: list[dict[str, Any]] = [
        {"debit": "0.0", "credit": "12.5", "ledger_account": {"id": 2, "number": "706000"}, "label": "vente"},
        {"debit": "12.5", "credit": "0.0", "ledger_account": {"id": 1, "number": "467000"}, "label": None},
    ]
    sent: list[dict[str, Any]] = [
        {"debit": "12.50", "credit": "0.00", "ledger_account_id": 1, "label": "vente"},
        {"debit": "0.00", "credit": "12.50", "ledger_account_id": 2, "label": "vente"},
    ]
    assert held_lines(read) == held_lines(sent) == [(1, 1250, 0), (2, 0, 1250)]
    assert as_sent(read)[0] == {"debit": "0.00", "credit": "12.50", "ledger_account_id": 2, "label": "vente"}
    assert held_lines([{**sent[0], "debit": "12.51"}, sent[1]]) != held_lines(read)
