"""Customers and customer invoices of a sandbox company, validated like Pennylane's API v2.

- `POST /company_customers`: `name` and `billing_address` (`address`, `postal_code`, `city`,
  `country_alpha2`) required; `external_reference` unique per company (422 when taken); each customer
  gets its own ledger account (411…), answered as `ledger_account: {"id"}`.
- `POST /customer_invoices`: `date`, `deadline`, `customer_id`, `draft` (boolean) and `invoice_lines`
  (`label`, `quantity`, `unit`, `vat_rate`, `raw_currency_unit_price` a signed decimal string,
  `ledger_account_id`?) required; `currency` (EUR), `label`, `external_reference` optional. Negative
  amounts make a credit note. A finalized invoice gets a number and is booked in the company's sales
  journal (the customer's account against each line's account and the VAT); a draft is not booked.
  Like Pennylane, nothing refuses a second invoice with the same `external_reference`: a client that
  retries looks its invoice up first (`external_reference` filter). `credited_invoice_id` is refused
  (400): Pennylane removed it in June 2025 (it never linked anything), a credit note is linked with
- `POST /customer_invoices/{id}/link_credit_note` `{"credit_note_id"}`: the invoice and the credit note
  of this company (404 otherwise), both finalized, the invoice not a credit note, the credit note one,
  same customer and currency, not linked yet (422), and the invoice's credit notes never more than its
  amount (422). The credit note then answers `credited_invoice: {"id", "url"}`; the answer is the invoice.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from sandbox.pennylane.state import ApiError, Company, SandboxState, amount_text, invalid, now

__all__ = ["VAT_RATES", "create_customer", "create_invoice", "link_credit_note"]

_SIGNED = re.compile(r"^-?\d{1,13}(\.\d{1,2})?$")
# Pennylane's French rates (basis points); `exempt` books no VAT.
VAT_RATES = {"exempt": 0, "FR_09": 90, "FR_21": 210, "FR_55": 550, "FR_100": 1000, "FR_200": 2000}
_PAYMENT_CONDITIONS = ("upon_receipt", "custom", "7_days", "15_days", "30_days", "45_days", "60_days")
VAT_ACCOUNT, SALES_ACCOUNT = "445710", "706000"


def _text(fields: dict[str, Any], name: str, *, most: int = 255, required: bool = True) -> str | None:
    value = fields.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > most:
        raise invalid(name, f"is required (a string of at most {most} characters)")
    return value


def _day(fields: dict[str, Any], name: str) -> date:
    raw = fields.get(name)
    try:
        return date.fromisoformat(raw) if isinstance(raw, str) else date.min
    except ValueError:
        pass
    raise invalid(name, "must be a date (YYYY-MM-DD)")


def _signed_cents(value: Any, name: str) -> int:
    if not isinstance(value, str) or not _SIGNED.match(value):
        raise invalid(name, "must be a decimal amount with at most 2 decimals")
    negative = value.startswith("-")
    units, _, rest = value.lstrip("-").partition(".")
    cents = int(units) * 100 + int((rest + "00")[:2])
    return -cents if negative else cents


def _signed_text(cents: int) -> str:
    return ("-" if cents < 0 else "") + amount_text(abs(cents))


def create_customer(state: SandboxState, company: Company, fields: dict[str, Any]) -> dict[str, Any]:
    name = _text(fields, "name", most=1000)
    address = fields.get("billing_address")
    if not isinstance(address, dict):
        raise invalid("billing_address", "is required")
    for part in ("address", "postal_code", "city"):
        _text(address, part, most=1000)
    country = address.get("country_alpha2")
    if not isinstance(country, str) or not re.fullmatch(r"[A-Z]{2}", country):
        raise invalid("billing_address.country_alpha2", "must be an ISO 3166-1 alpha-2 code")
    reference = _text(fields, "external_reference", required=False)
    if reference is not None and any(c["external_reference"] == reference for c in company.customers.values()):
        raise invalid("external_reference", "has already been taken")
    conditions = fields.get("payment_conditions", "30_days")
    if conditions not in _PAYMENT_CONDITIONS:
        raise invalid("payment_conditions", f"must be one of {', '.join(_PAYMENT_CONDITIONS)}")
    customer_id = state.next_id()
    number = f"411{customer_id:06d}"
    account = state.create_account(company, {"number": number, "label": name}, persist=False)
    customer = {
        "id": customer_id,
        "name": name,
        "customer_type": "company",
        "billing_address": {k: address[k] for k in ("address", "postal_code", "city", "country_alpha2")},
        "payment_conditions": conditions,
        "emails": [e for e in fields.get("emails") or [] if isinstance(e, str)],
        "external_reference": reference or f"sandbox-customer-{customer_id}",
        "ledger_account": {"id": account["id"]},
        "created_at": now(),
        "updated_at": now(),
    }
    company.customers[customer_id] = customer
    state.save()
    return customer


def _lines(company: Company, lines: Any) -> list[tuple[str, int, int, int]]:
    """(label, amount before tax, tax, ledger account id) of each line, amounts signed in cents."""
    if not isinstance(lines, list) or not lines:
        raise invalid("invoice_lines", "is required")
    found = []
    for i, line in enumerate(lines):
        where = f"invoice_lines[{i}]"
        if not isinstance(line, dict):
            raise invalid(where, "must be an object")
        label = _text(line, "label", most=1000)
        quantity = line.get("quantity")
        if isinstance(quantity, bool) or not isinstance(quantity, int | float) or quantity <= 0:
            raise invalid(f"{where}.quantity", "must be a positive number")
        _text(line, "unit")
        rate = line.get("vat_rate")
        if rate not in VAT_RATES:
            raise invalid(f"{where}.vat_rate", f"must be one of {', '.join(VAT_RATES)}")
        price = _signed_cents(line.get("raw_currency_unit_price"), f"{where}.raw_currency_unit_price")
        account_id = line.get("ledger_account_id", company.account_id(SALES_ACCOUNT))
        if not isinstance(account_id, int) or account_id not in company.accounts:
            raise ApiError(404, "not_found", "Ledger account not found", f"{where}.ledger_account_id", "not found")
        before_tax = round(price * quantity)
        found.append((label or "", before_tax, round(before_tax * VAT_RATES[rate] / 10_000), account_id))
    return found


def create_invoice(state: SandboxState, company: Company, fields: dict[str, Any]) -> dict[str, Any]:
    """Validates like Pennylane, stores the invoice and, finalized, books it in the sales journal."""
    day, deadline = _day(fields, "date"), _day(fields, "deadline")
    customer = company.customers.get(fields.get("customer_id"))  # type: ignore[arg-type]
    if customer is None:
        raise ApiError(404, "not_found", "Customer not found", "customer_id", "not found")
    draft = fields.get("draft")
    if not isinstance(draft, bool):
        raise invalid("draft", "must be a boolean")
    currency = fields.get("currency", "EUR")
    if not isinstance(currency, str) or not re.fullmatch(r"[A-Z]{3}", currency):
        raise invalid("currency", "must be an ISO 4217 code")
    reference = _text(fields, "external_reference", required=False)
    label = _text(fields, "label", required=False)
    if "credited_invoice_id" in fields:
        issue = "is no longer accepted: link the credit note with POST /customer_invoices/{id}/link_credit_note"
        raise ApiError(400, "bad_request", f"credited_invoice_id {issue}", "credited_invoice_id", issue)
    lines = _lines(company, fields.get("invoice_lines"))
    before_tax, tax = sum(line[1] for line in lines), sum(line[2] for line in lines)
    if before_tax + tax == 0:
        raise invalid("invoice_lines", "the invoice's amount must not be zero")
    credit_note = before_tax + tax < 0
    invoice_id = state.next_id()
    number = None
    ledger_entry = None
    if not draft:
        finalized = sum(1 for i in company.invoices.values() if not i["draft"]) + 1
        number = f"{'AV' if credit_note else 'F'}-{day.year}-{finalized:05d}"
        ledger_entry = {"id": _book(state, company, customer, number, day, currency, label or number, lines)["id"]}
    url = f"https://app.pennylane.com/api/external/v2/customer_invoices/{invoice_id}"
    invoice = {
        "id": invoice_id,
        "label": label or f"Facture {customer['name']}",
        "invoice_number": number,
        "currency": currency,
        "amount": _signed_text(before_tax + tax),
        "currency_amount": _signed_text(before_tax + tax),
        "currency_amount_before_tax": _signed_text(before_tax),
        "currency_tax": _signed_text(tax),
        "tax": _signed_text(tax),
        "date": day.isoformat(),
        "deadline": deadline.isoformat(),
        "draft": draft,
        "status": "draft" if draft else "credit_note" if credit_note else "upcoming",
        "paid": False,
        "customer": {
            "id": customer["id"],
            "url": f"https://app.pennylane.com/api/external/v2/customers/{customer['id']}",
        },
        "external_reference": reference or f"sandbox-invoice-{invoice_id}",
        "credited_invoice": None,
        "ledger_entry": ledger_entry,
        "invoice_lines": {"url": f"{url}/invoice_lines"},
        "created_at": now(),
        "updated_at": now(),
    }
    company.invoices[invoice_id] = invoice
    state.save()
    return invoice


def _cents_of(text: str) -> int:
    return _signed_cents(text, "amount")


def link_credit_note(state: SandboxState, company: Company, invoice_id: int, fields: dict[str, Any]) -> dict[str, Any]:
    """Links a credit note to the invoice it credits, checked like Pennylane; answers the invoice."""
    invoice = company.invoices.get(invoice_id)
    if invoice is None:
        raise ApiError(404, "not_found", "Customer invoice not found")
    note_id = fields.get("credit_note_id")
    if isinstance(note_id, bool) or not isinstance(note_id, int):
        raise invalid("credit_note_id", "is required (an integer)")
    note = company.invoices.get(note_id)
    if note is None:
        raise ApiError(404, "not_found", "Credit note not found", "credit_note_id", "not found")
    if invoice["draft"] or invoice["status"] == "credit_note":
        raise ApiError(422, "unprocessable_entity", "only a finalized invoice can be credited")
    if note["draft"] or note["status"] != "credit_note":
        raise invalid("credit_note_id", "is not a finalized credit note")
    if note["customer"]["id"] != invoice["customer"]["id"] or note["currency"] != invoice["currency"]:
        raise invalid("credit_note_id", "must be of the invoice's customer and currency")
    if note["credited_invoice"] is not None:
        raise invalid("credit_note_id", "is already linked to an invoice")
    credited = sum(
        -_cents_of(other["amount"])
        for other in company.invoices.values()
        if (other["credited_invoice"] or {}).get("id") == invoice_id
    )
    if credited - _cents_of(note["amount"]) > _cents_of(invoice["amount"]):
        raise invalid("credit_note_id", "the invoice's credit notes would exceed its amount")
    url = f"https://app.pennylane.com/api/external/v2/customer_invoices/{invoice_id}"
    note["credited_invoice"] = {"id": invoice_id, "url": url}
    note["updated_at"] = invoice["updated_at"] = now()
    state.save()
    return invoice


def _book(
    state: SandboxState,
    company: Company,
    customer: dict[str, Any],
    number: str,
    day: date,
    currency: str,
    label: str,
    lines: list[tuple[str, int, int, int]],
) -> dict[str, Any]:
    """The invoice's entry in the company's sales journal: the customer against sales and VAT."""
    journal_id = next(j["id"] for j in company.journals.values() if j["type"] == "sale")

    def side(account_id: int, cents: int, text: str) -> dict[str, Any]:
        debit, credit = (cents, 0) if cents > 0 else (0, -cents)
        return {
            "debit": amount_text(debit),
            "credit": amount_text(credit),
            "ledger_account_id": account_id,
            "label": text,
        }

    total = sum(before + tax for _, before, tax, _ in lines)
    entry_lines = [side(customer["ledger_account"]["id"], total, label)]
    entry_lines += [side(account_id, -before, text) for text, before, _, account_id in lines if before]
    tax = sum(line[2] for line in lines)
    if tax:
        entry_lines.append(side(company.account_id(VAT_ACCOUNT), -tax, label))
    body = {
        "date": day.isoformat(),
        "label": label,
        "journal_id": journal_id,
        "currency": currency,
        "piece_number": number,
        "ledger_entry_lines": entry_lines,
    }
    return state.create_entry(company, body)
