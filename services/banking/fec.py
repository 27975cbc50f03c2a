"""French FEC journal (Fichier des Écritures Comptables) from payouts, their balance transactions and the bank. No I/O.

Journals: VE (sales, refunds and Stripe fees, from the balance transactions each payout
carries), ST (payouts leaving Stripe for the bank), BQ (bank lines). Every entry
(EcritureNum) balances: its debits equal its credits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

COLUMNS = (
    "JournalCode",
    "JournalLib",
    "EcritureNum",
    "EcritureDate",
    "CompteNum",
    "CompteLib",
    "CompAuxNum",
    "CompAuxLib",
    "PieceRef",
    "PieceDate",
    "EcritureLib",
    "Debit",
    "Credit",
    "EcritureLet",
    "DateLet",
    "ValidDate",
    "Montantdevise",
    "Idevise",
)

JOURNALS = {"VE": "Ventes", "ST": "Stripe", "BQ": "Banque"}
ACCOUNTS = {
    "467000": "Stripe - compte de passage",
    "512000": "Banque",
    "580000": "Virements internes",
    "471000": "Compte d'attente",
    "627000": "Frais Stripe",
    "658000": "Charges diverses",
    "706000": "Prestations de services",
    "709000": "Remboursements clients",
    "758000": "Produits divers",
}
SALES_TYPES = ("charge", "payment", "application_fee")
REFUND_TYPES = ("refund", "payment_refund", "application_fee_refund")


@dataclass(frozen=True, slots=True)
class BalanceLine:
    """One balance transaction carried by a payout (amount and fee in cents, signed as Stripe does)."""

    id: str
    type: str
    amount: int
    fee: int
    currency: str
    created: datetime
    account: str = ""
    source: str = ""


@dataclass(frozen=True, slots=True)
class PayoutLine:
    stripe_payout_id: str
    amount: int
    currency: str
    day: datetime
    account: str = ""


@dataclass(frozen=True, slots=True)
class BankLine:
    transaction_id: str
    amount: int
    side: str
    currency: str
    day: datetime
    label: str = ""
    matched: bool = False


@dataclass(frozen=True, slots=True)
class _Leg:
    account: str
    debit: int
    credit: int
    aux: str = ""


@dataclass(frozen=True, slots=True)
class _Entry:
    journal: str
    day: datetime
    piece: str
    label: str
    currency: str
    legs: tuple[_Leg, ...]


def _sales(line: BalanceLine) -> _Entry | None:
    legs: list[_Leg] = []
    aux = line.account
    if line.type in SALES_TYPES:
        if line.amount >= 0:
            legs += [_Leg("467000", line.amount, 0, aux), _Leg("706000", 0, line.amount)]
        else:
            legs += [_Leg("706000", -line.amount, 0), _Leg("467000", 0, -line.amount, aux)]
    elif line.type in REFUND_TYPES:
        if line.amount <= 0:
            legs += [_Leg("709000", -line.amount, 0), _Leg("467000", 0, -line.amount, aux)]
        else:
            legs += [_Leg("467000", line.amount, 0, aux), _Leg("709000", 0, line.amount)]
    elif line.type in ("payout", "payout_failure"):
        return None  # booked from the payout itself (journal ST)
    elif line.amount >= 0:
        legs += [_Leg("467000", line.amount, 0, aux), _Leg("758000", 0, line.amount)]
    else:
        legs += [_Leg("658000", -line.amount, 0), _Leg("467000", 0, -line.amount, aux)]
    if line.fee > 0:
        legs += [_Leg("627000", line.fee, 0), _Leg("467000", 0, line.fee, aux)]
    elif line.fee < 0:
        legs += [_Leg("467000", -line.fee, 0, aux), _Leg("627000", 0, -line.fee)]
    legs = [leg for leg in legs if leg.debit or leg.credit]
    if not legs:
        return None
    return _Entry(
        "VE", line.created, line.source or line.id, f"{line.type} {line.source or line.id}", line.currency, tuple(legs)
    )


def _payout(line: PayoutLine) -> _Entry:
    legs = (_Leg("580000", line.amount, 0), _Leg("467000", 0, line.amount, line.account))
    return _Entry("ST", line.day, line.stripe_payout_id, f"payout {line.stripe_payout_id}", line.currency, legs)


def _bank(line: BankLine) -> _Entry:
    other = "580000" if line.matched else "471000"
    if line.side == "credit":
        legs = (_Leg("512000", line.amount, 0), _Leg(other, 0, line.amount))
    else:
        legs = (_Leg("471000", line.amount, 0), _Leg("512000", 0, line.amount))
    label = (line.label or line.side)[:100]
    return _Entry("BQ", line.day, line.transaction_id, label, line.currency, legs)


def amount_text(cents: int) -> str:
    units, rest = divmod(abs(cents), 100)
    return f"{'-' if cents < 0 else ''}{units},{rest:02d}"


def _clean(text: str) -> str:
    return text.replace("\t", " ").replace("\n", " ").replace("\r", " ").replace("|", " ")


def build_fec(
    balance_lines: Sequence[BalanceLine],
    payouts: Sequence[PayoutLine],
    bank_lines: Sequence[BankLine],
    *,
    separator: str = "\t",
) -> tuple[str, int]:
    """The FEC text (header + one line per leg) and the number of entries."""
    entries = [e for e in (_sales(line) for line in balance_lines) if e is not None]
    entries += [_payout(p) for p in payouts]
    entries += [_bank(b) for b in bank_lines]
    order = {"VE": 0, "ST": 1, "BQ": 2}
    entries.sort(key=lambda e: (e.day, order[e.journal], e.piece))
    rows = [separator.join(COLUMNS)]
    counters: dict[str, int] = {}
    for entry in entries:
        counters[entry.journal] = counters.get(entry.journal, 0) + 1
        number = f"{entry.journal}{counters[entry.journal]:06d}"
        day = entry.day.strftime("%Y%m%d")
        foreign = entry.currency.upper() != "EUR"
        for leg in entry.legs:
            amount = leg.debit or leg.credit
            rows.append(
                separator.join(
                    _clean(str(v))
                    for v in (
                        entry.journal,
                        JOURNALS[entry.journal],
                        number,
                        day,
                        leg.account,
                        ACCOUNTS[leg.account],
                        leg.aux,
                        leg.aux,
                        entry.piece,
                        day,
                        entry.label,
                        amount_text(leg.debit),
                        amount_text(leg.credit),
                        "",
                        "",
                        day,
                        amount_text(amount) if foreign else "",
                        entry.currency.upper() if foreign else "",
                    )
                )
            )
    return "\n".join(rows) + "\n", len(entries)
