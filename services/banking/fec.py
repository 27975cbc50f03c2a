"""French FEC journals (Fichier des Écritures Comptables), one per entity's books. No I/O.

Two kinds of books, each from plain values:

- an **organisation's** (the merchant of record under direct charges, and the one the platform
  transfers to under destination charges): card sales and refunds (VE) and cash sales (CA) on the
  day they were made (a refund Stripe undoes afterwards, reversed on the day it failed), its
  platform fees, the Stripe fees it bears (direct charges), payouts from Stripe to its bank (BQ),
  and disputes (VE): what was taken from it (withdrawn by Stripe under direct charges, the transfer
  reversed under destination charges) into disputed receivables, back when won (given back), a
  loss when lost (under destination charges, only the reversed part: its share);
- the **platform's**: its application fees (and their refunds), for destination charges the
  money collected for the organisation, the transfer to it and its reversal on refunds (VE, ST),
  the Stripe fees it bears, its own payouts and its bank (BQ), and under destination charges the
  disputes Stripe debits it for, the transfer reversed to recover them and given back when won,
  and the loss less the organisation's share.
  An organisation's sales are never the platform's revenue.

Each line is booked on its own day and never changes afterwards (Payments' book moves): a
dispute's transfer reversal and give-back are lines of their own, on the day they were made, and
a reversal made after the loss (`dispute_lost_reversal`) books the organisation's share of it then.

Stripe's dispute fee is one of the Stripe fees (ST) of the balance transaction that withdrew the
dispute, booked with the payout that carries it like every other fee, so never twice.

Every entry has one currency and balances (its debits equal its credits); EcritureNum is
sequential per journal without gaps. Amounts of different currencies are never added: an entry
in another currency than the euro also carries Montantdevise and Idevise.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date

from collect.accounts.v1 import accounts_pb2
from collect.payments.v1 import payments_pb2 as payments_pb

from runtime.contract import enum_names
from runtime.siren import is_siren

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

JOURNALS = {"VE": "Ventes", "CA": "Caisse", "ST": "Stripe", "BQ": "Banque"}
_JOURNAL_ORDER = {code: i for i, code in enumerate(JOURNALS)}
STRIPE, CASH, BANK, TRANSIT, SUSPENSE = "467000", "530000", "512000", "580000", "471000"
OWED_TO_ORGANIZATIONS = "467100"
SALES, REFUNDS, FEES_EARNED, FEES_REFUNDED = "706000", "709000", "706100", "709100"
DISPUTED, DISPUTE_LOSSES = "416000", "654000"
# A dispute's lines (Payments' BookEntryKind): funds withdrawn, the transfer reversed (destination),
# funds reinstated (won), the reversed amount given back, the loss, and a reversal made after the loss.
# Charges made through Stripe (a sale with another model, cash, is never the platform's money).
CHARGE_MODELS = enum_names(accounts_pb2.ChargeModel.DESCRIPTOR)
DISPUTE_KINDS = tuple(kind for kind in enum_names(payments_pb.BookEntryKind.DESCRIPTOR) if kind.startswith("dispute"))
_TAKEN, _GIVEN_BACK, _LOST = ("dispute", "dispute_reversal"), ("dispute_won", "dispute_return"), ("dispute_lost",)
STRIPE_FEES, PLATFORM_FEES = "627000", "622000"
ACCOUNTS = {
    STRIPE: "Stripe - compte de passage",
    OWED_TO_ORGANIZATIONS: "Organisations - fonds encaissés pour leur compte",
    CASH: "Caisse",
    BANK: "Banque",
    TRANSIT: "Virements internes",
    SUSPENSE: "Compte d'attente",
    SALES: "Ventes",
    REFUNDS: "Remboursements clients",
    FEES_EARNED: "Commissions de la plateforme",
    FEES_REFUNDED: "Commissions remboursées",
    STRIPE_FEES: "Frais Stripe",
    PLATFORM_FEES: "Commissions de la plateforme (charge)",
    DISPUTED: "Clients douteux ou litigieux",
    DISPUTE_LOSSES: "Pertes sur créances irrécouvrables",
}


@dataclass(frozen=True, slots=True)
class BookLine:
    """A succeeded sale or refund, or a dispute's movement, as Payments books it (amounts positive,
    minor units; `transfer_reversed` is a destination charge's dispute's part of the transfer)."""

    kind: str  # "sale", "refund", "refund_failed" (a refund undone later) or one of DISPUTE_KINDS
    id: str
    payment_id: str
    organization_id: str
    day: date
    method: str
    charge_model: str
    currency: str
    amount: int
    application_fee: int
    dispute_fee: int = 0
    transfer_reversed: int = 0


@dataclass(frozen=True, slots=True)
class StripeFee:
    """A fee Stripe took on a balance transaction (cents, positive = charged)."""

    id: str
    fee: int
    currency: str
    day: date
    source: str = ""


@dataclass(frozen=True, slots=True)
class PayoutLine:
    """A payout booked paid on `day`, or (`undone`) failed after that, on the day it failed."""

    stripe_payout_id: str
    amount: int
    currency: str
    day: date
    account: str = ""
    undone: bool = False


@dataclass(frozen=True, slots=True)
class BankLine:
    transaction_id: str
    amount: int
    side: str
    currency: str
    day: date
    label: str = ""
    matched: bool = False


@dataclass(frozen=True, slots=True)
class Leg:
    account: str
    debit: int
    credit: int
    aux: str = ""


@dataclass(frozen=True, slots=True)
class Entry:
    journal: str
    day: date
    piece: str
    label: str
    currency: str
    legs: tuple[Leg, ...]
    credits: str = ""  # a refund's: the piece of the sale it gives back (same journal); not a FEC column

    def balanced(self) -> bool:
        return sum(leg.debit for leg in self.legs) == sum(leg.credit for leg in self.legs)


def _entry(
    journal: str, day: date, piece: str, label: str, currency: str, legs: Iterable[Leg], credits: str = ""
) -> Entry | None:
    kept = tuple(leg for leg in legs if leg.debit or leg.credit)
    return Entry(journal, day, piece, label, currency, kept, credits) if kept else None


# ---- an organisation's books -------------------------------------------------------------


def organization_share(line: BookLine) -> int:
    """What a dispute's line takes from (or gives back to, or makes lose) the organisation: all of
    it under direct charges (Stripe debits the organisation), under destination charges only the
    part of the transfer reversed (the platform bore the rest)."""
    return line.amount if line.charge_model == "direct" else line.transfer_reversed


def organization_loss(line: BookLine) -> int:
    """What the organisation lost with this line (its 654000): its share of a lost dispute."""
    return organization_share(line) if line.kind in ("dispute_lost", "dispute_lost_reversal") else 0


# Labels of a dispute's entries: the organisation's (VE) say what happened to it (its part taken,
# given back, lost); the platform's transfer moves (ST) what moved. The same as before the transfer
# moves had lines of their own, so an entry already exported or pushed reads the same.
_DISPUTE_LABELS = {
    "dispute": "litige",
    "dispute_reversal": "litige",
    "dispute_won": "litige gagné",
    "dispute_return": "litige gagné",
    "dispute_lost": "litige perdu",
    "dispute_lost_reversal": "litige perdu",
}
_PLATFORM_TRANSFER_LABELS = {
    "dispute_reversal": "reprise de transfert (litige)",
    "dispute_return": "transfert rendu (litige)",
    "dispute_lost_reversal": "reprise de transfert (litige perdu)",
}


def _mirrored(entry: Entry | None) -> Entry | None:
    """The entry undone: each leg's debit and credit swapped."""
    if entry is None:
        return None
    return Entry(
        entry.journal,
        entry.day,
        entry.piece,
        f"annulation {entry.label}",
        entry.currency,
        tuple(Leg(leg.account, leg.credit, leg.debit, leg.aux) for leg in entry.legs),
    )


def _organization_dispute_entry(line: BookLine) -> Entry | None:
    share = organization_share(line)
    if line.kind in _TAKEN:  # into disputed receivables
        legs = [Leg(DISPUTED, share, 0), Leg(STRIPE, 0, share)]
    elif line.kind in _GIVEN_BACK:
        legs = [Leg(STRIPE, share, 0), Leg(DISPUTED, 0, share)]
    elif line.kind in _LOST:  # the receivable written off
        legs = [Leg(DISPUTE_LOSSES, share, 0), Leg(DISPUTED, 0, share)]
    else:  # taken after the loss: lost at once
        legs = [Leg(DISPUTE_LOSSES, share, 0), Leg(STRIPE, 0, share)]
    label = f"{_DISPUTE_LABELS[line.kind]} {line.payment_id}"
    return _entry("VE", line.day, line.id, label, line.currency, legs)


def _organization_entry(line: BookLine) -> Entry | None:
    fee = line.application_fee
    if line.kind in DISPUTE_KINDS:
        return _organization_dispute_entry(line)
    if line.kind == "refund_failed":
        return _mirrored(_organization_entry(replace(line, kind="refund")))
    if line.method == "cash":
        money = CASH
        journal = "CA"
    else:
        money = STRIPE
        journal = "VE"
    if line.kind == "sale":
        legs = [Leg(money, line.amount, 0), Leg(SALES, 0, line.amount)]
        legs += [Leg(PLATFORM_FEES, fee, 0), Leg(STRIPE, 0, fee)]
        return _entry(journal, line.day, line.payment_id, f"vente {line.payment_id}", line.currency, legs)
    legs = [Leg(REFUNDS, line.amount, 0), Leg(money, 0, line.amount)]
    legs += [Leg(STRIPE, fee, 0), Leg(PLATFORM_FEES, 0, fee)]
    label = f"remboursement {line.payment_id}"
    return _entry(journal, line.day, line.id, label, line.currency, legs, credits=line.payment_id)


def organization_entries(
    lines: Sequence[BookLine], stripe_fees: Sequence[StripeFee], payouts: Sequence[PayoutLine]
) -> list[Entry]:
    """Sales and refunds (VE card, CA cash), Stripe's fees (ST), payouts to the bank (BQ)."""
    entries = [e for e in (_organization_entry(line) for line in lines) if e is not None]
    return entries + _fee_and_payout_entries(stripe_fees, payouts, journal="BQ", destination=BANK)


def _fee_and_payout_entries(
    stripe_fees: Sequence[StripeFee], payouts: Sequence[PayoutLine], *, journal: str, destination: str
) -> list[Entry]:
    """Stripe's fees (ST) and the payouts leaving Stripe for `destination` (in `journal`)."""
    found: list[Entry | None] = []
    for fee in stripe_fees:
        amount = abs(fee.fee)
        legs = [Leg(STRIPE_FEES, amount, 0), Leg(STRIPE, 0, amount)]
        if fee.fee < 0:  # fees given back
            legs = [Leg(STRIPE, amount, 0), Leg(STRIPE_FEES, 0, amount)]
        found.append(_entry("ST", fee.day, fee.id, f"frais Stripe {fee.source or fee.id}", fee.currency, legs))
    for payout in payouts:
        legs = [Leg(destination, payout.amount, 0), Leg(STRIPE, 0, payout.amount)]
        label = f"virement {payout.stripe_payout_id}"
        entry = _entry(journal, payout.day, payout.stripe_payout_id, label, payout.currency, legs)
        found.append(_mirrored(entry) if payout.undone else entry)  # failed: the money came back to Stripe
    return [e for e in found if e is not None]


# ---- the platform's books ----------------------------------------------------------------


def _platform_entries(line: BookLine) -> list[Entry]:
    """Application fees earned (both models); for destination charges the money collected for the
    organisation, the transfer to it, and on a refund the transfer's reversal."""
    if line.charge_model not in CHARGE_MODELS:
        return []  # cash: never the platform's money
    fee, org = line.application_fee, line.organization_id
    if line.kind in DISPUTE_KINDS:
        return _platform_dispute_entries(line)
    if line.kind == "refund_failed":
        undone = (_mirrored(e) for e in _platform_entries(replace(line, kind="refund")))
        return [e for e in undone if e is not None]
    found: list[Entry | None] = []
    if line.charge_model == "direct":
        if line.kind == "sale":
            legs = [Leg(STRIPE, fee, 0), Leg(FEES_EARNED, 0, fee)]
            found.append(_entry("VE", line.day, line.payment_id, f"commission {line.payment_id}", line.currency, legs))
        else:
            legs = [Leg(FEES_REFUNDED, fee, 0), Leg(STRIPE, 0, fee)]
            found.append(
                _entry("VE", line.day, line.id, f"commission remboursée {line.payment_id}", line.currency, legs)
            )
        return [e for e in found if e is not None]
    passed_on = line.amount - fee
    if line.kind == "sale":
        collected = [
            Leg(STRIPE, line.amount, 0),
            Leg(OWED_TO_ORGANIZATIONS, 0, passed_on, org),
            Leg(FEES_EARNED, 0, fee),
        ]
        transfer = [Leg(OWED_TO_ORGANIZATIONS, passed_on, 0, org), Leg(STRIPE, 0, passed_on)]
        found.append(
            _entry("VE", line.day, line.payment_id, f"encaissement {line.payment_id}", line.currency, collected)
        )
        found.append(_entry("ST", line.day, line.payment_id, f"transfert {line.payment_id}", line.currency, transfer))
    else:
        refunded = [
            Leg(OWED_TO_ORGANIZATIONS, passed_on, 0, org),
            Leg(FEES_REFUNDED, fee, 0),
            Leg(STRIPE, 0, line.amount),
        ]
        reversal = [Leg(STRIPE, passed_on, 0), Leg(OWED_TO_ORGANIZATIONS, 0, passed_on, org)]
        found.append(_entry("VE", line.day, line.id, f"remboursement {line.payment_id}", line.currency, refunded))
        found.append(
            _entry("ST", line.day, line.id, f"reprise de transfert {line.payment_id}", line.currency, reversal)
        )
    return [e for e in found if e is not None]


def _platform_dispute_entries(line: BookLine) -> list[Entry]:
    """Destination charges only (under direct charges Stripe debits the organisation): the platform
    is debited into disputed receivables (VE) and reverses the transfer to the organisation (ST),
    credited back when won and gives the reversed amount back (ST); a lost dispute is written off
    less the organisation's share (the reversed part), a reversal made after the loss recovering
    that share from the loss."""
    if line.charge_model != "destination":
        return []
    org, amount, share = line.organization_id, line.amount, line.transfer_reversed
    journal = "VE"
    if line.kind == "dispute":
        legs = [Leg(DISPUTED, amount, 0), Leg(STRIPE, 0, amount)]
    elif line.kind == "dispute_won":
        legs = [Leg(STRIPE, amount, 0), Leg(DISPUTED, 0, amount)]
    elif line.kind == "dispute_lost":
        legs = [
            Leg(OWED_TO_ORGANIZATIONS, share, 0, org),
            Leg(DISPUTE_LOSSES, amount - share, 0),
            Leg(DISPUTED, 0, amount),
        ]
    elif line.kind == "dispute_reversal":
        journal, legs = "ST", [Leg(STRIPE, share, 0), Leg(OWED_TO_ORGANIZATIONS, 0, share, org)]
    elif line.kind == "dispute_return":
        journal, legs = "ST", [Leg(OWED_TO_ORGANIZATIONS, share, 0, org), Leg(STRIPE, 0, share)]
    else:  # dispute_lost_reversal
        journal, legs = "ST", [Leg(STRIPE, share, 0), Leg(DISPUTE_LOSSES, 0, share)]
    label = _PLATFORM_TRANSFER_LABELS.get(line.kind) or _DISPUTE_LABELS[line.kind]
    found = _entry(journal, line.day, line.id, f"{label} {line.payment_id}", line.currency, legs)
    return [found] if found is not None else []


def platform_entries(
    lines: Sequence[BookLine],
    stripe_fees: Sequence[StripeFee],
    payouts: Sequence[PayoutLine],
    bank_lines: Sequence[BankLine],
) -> list[Entry]:
    """`stripe_fees` and `payouts` are the platform account's own; `bank_lines` its bank's."""
    entries = [e for line in lines for e in _platform_entries(line)]
    entries += _fee_and_payout_entries(stripe_fees, payouts, journal="ST", destination=TRANSIT)
    for line in bank_lines:
        other = TRANSIT if line.matched else SUSPENSE
        if line.side == "credit":
            legs = [Leg(BANK, line.amount, 0), Leg(other, 0, line.amount)]
        else:
            legs = [Leg(SUSPENSE, line.amount, 0), Leg(BANK, 0, line.amount)]
        found = _entry("BQ", line.day, line.transaction_id, (line.label or line.side)[:100], line.currency, legs)
        if found is not None:
            entries.append(found)
    return entries


# ---- the file ----------------------------------------------------------------------------


def amount_text(cents: int) -> str:
    units, rest = divmod(abs(cents), 100)
    return f"{'-' if cents < 0 else ''}{units},{rest:02d}"


def _clean(text: str) -> str:
    return text.replace("\t", " ").replace("\n", " ").replace("\r", " ").replace("|", " ")


def file_name(siren: str, closing: date) -> str:
    """`<SIREN>FEC<AAAAMMJJ>.txt`, the closing date being the last day exported."""
    if not is_siren(siren):
        raise ValueError("a FEC file is named by a 9-digit SIREN")
    return f"{siren}FEC{closing.strftime('%Y%m%d')}.txt"


def render(entries: Sequence[Entry], *, separator: str = "\t") -> tuple[str, int]:
    """The FEC text (header + one line per leg) and the number of entries, numbered per journal."""
    ordered = sorted(entries, key=lambda e: (e.day, _JOURNAL_ORDER[e.journal], e.piece, e.label))
    rows = [separator.join(COLUMNS)]
    counters: dict[str, int] = {}
    for entry in ordered:
        if not entry.balanced():
            raise ValueError(f"unbalanced FEC entry {entry.piece}")
        counters[entry.journal] = counters.get(entry.journal, 0) + 1
        number = f"{entry.journal}{counters[entry.journal]:06d}"
        day = entry.day.strftime("%Y%m%d")
        foreign = entry.currency.upper() != "EUR"
        for leg in entry.legs:
            amount = leg.debit or leg.credit
            cells = (
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
            rows.append(separator.join(_clean(str(v)) for v in cells))
    return "\n".join(rows) + "\n", len(ordered)
