"""The sales journal as Pennylane customer invoices, for an organisation that chooses them. No I/O.

A sale's FEC entry (VE card, CA cash) books the money received against sales (706000) and the
platform's fee; a refund's books refunds (709000) against the money given back. Pushed as invoices,
each such entry becomes two documents whose sum is the entry itself:

- a finalized customer invoice (a credit note for a refund: negative amounts) to the organisation's
  one anonymous walk-in customer, carrying the entry's sales / refunds legs; Pennylane books it in
  its sales journal: the customer's account (411…) against 706000 / 709000;
- a ledger entry (the entry's own journal and reference) with every other leg unchanged and the
  sales / refunds legs moved onto the customer's account: the customer settled by the money received.

The customer's account nets to zero, so Pennylane's ledger still equals the FEC. Entries without a
sales or refunds leg (fees, payouts, disputes, bank) are never invoiced. The books carry no VAT
(no 4457 account), so neither do the invoices (`exempt`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from services.banking import fec
from services.banking.pennylane_books import Unmapped, amount_text

# The journals of the sales journal of the books, and the accounts an invoice books.
INVOICED_JOURNALS = ("VE", "CA")
INVOICED_ACCOUNTS = (fec.SALES, fec.REFUNDS)
# Key of the walk-in customer's own ledger account in the ids a settlement is built with: not an
# account of the books (mapping_errors refuses it in settings), Pennylane gives each customer its own.
CUSTOMER_ACCOUNT = "411"
VAT_RATE = "exempt"
UNIT = "piece"

# The walk-in customer: found by its external reference (unique per Pennylane company), created once.
WALK_IN_REFERENCE = "collect-walk-in"
WALK_IN_NAME = "Ventes comptoir"


def invoiced(entry: fec.Entry) -> bool:
    """Whether this entry of the books is a sale or a refund of the sales journal (an invoice's matter)."""
    return entry.journal in INVOICED_JOURNALS and any(leg.account in INVOICED_ACCOUNTS for leg in entry.legs)


def credited_reference(entry: fec.Entry) -> str | None:
    """A refund's: the reference of the sale it gives back (its invoice's, in the same journal), which its
    credit note is linked to; None for anything else."""
    if not entry.credits or not invoiced(entry):
        return None
    return f"{entry.journal}-{entry.credits}"


def signed_text(cents: int) -> str:
    """Pennylane's decimal string of a signed amount in minor units: -700 → "-7.00"."""
    return ("-" if cents < 0 else "") + amount_text(abs(cents))


def customer_invoice(
    entry: fec.Entry, reference: str, customer_id: int, account_ids: Mapping[str, int]
) -> dict[str, Any]:
    """The body of `POST /customer_invoices` for an invoiced entry: one line per sales or refunds leg
    (credit positive, debit negative: a refund makes a credit note), finalized, paid on the day."""
    lines = []
    for leg in entry.legs:
        if leg.account not in INVOICED_ACCOUNTS:
            continue
        account_id = account_ids.get(leg.account)
        if not account_id:
            raise Unmapped(f"no Pennylane ledger account for {leg.account}")
        lines.append(
            {
                "label": entry.label,
                "quantity": 1,
                "unit": UNIT,
                "raw_currency_unit_price": signed_text(leg.credit - leg.debit),
                "vat_rate": VAT_RATE,
                "ledger_account_id": account_id,
            }
        )
    if not lines:
        raise ValueError(f"{reference} has no sales or refunds leg to invoice")
    day = entry.day.isoformat()
    return {
        "date": day,
        "deadline": day,  # paid at the counter
        "customer_id": customer_id,
        "currency": entry.currency.upper(),
        "draft": False,  # only a finalized invoice is booked
        "label": entry.label,
        "external_reference": reference,
        "invoice_lines": lines,
    }


def settlement(entry: fec.Entry) -> fec.Entry:
    """The entry less what its invoice books: sales / refunds legs moved onto the customer's account."""
    return replace(
        entry,
        legs=tuple(
            replace(leg, account=CUSTOMER_ACCOUNT) if leg.account in INVOICED_ACCOUNTS else leg for leg in entry.legs
        ),
    )


def walk_in_customer(name: str, address: Mapping[str, str]) -> dict[str, Any]:
    """The body of `POST /company_customers` for the anonymous buyers of an entity: no personal data,
    the place of sale (the organisation's address) as its billing address."""
    return {
        "name": name,
        "external_reference": WALK_IN_REFERENCE,
        "payment_conditions": "upon_receipt",
        "billing_address": {
            "address": address.get("address", ""),
            "postal_code": address.get("postal_code", ""),
            "city": address.get("city", ""),
            "country_alpha2": address.get("country_alpha2", "") or "FR",
        },
    }
