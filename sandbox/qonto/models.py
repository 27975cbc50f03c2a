"""The sandbox's records and their Qonto JSON shapes."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sandbox.qonto.clock import format_time, parse_time

__all__ = [
    "OPERATION_TYPES",
    "SIDES",
    "STATUSES",
    "SandboxError",
    "Transaction",
    "WebhookSubscription",
    "euros",
    "stable_uuid",
]

STATUSES = ("pending", "completed", "declined", "reversed")
SIDES = ("credit", "debit")
# Qonto's documented operation types; the sandbox refuses others to catch typos early.
OPERATION_TYPES = (
    "transfer",
    "card",
    "direct_debit",
    "direct_debit_collection",
    "direct_debit_hold",
    "income",
    "qonto_fee",
    "cheque",
    "recall",
    "swift_income",
    "pagopa_payment",
    "financing_installment",
    "other",
)


class SandboxError(Exception):
    """An API error, rendered as Qonto's ``{"errors": [{"code", "detail", "source"?}]}``."""

    def __init__(self, status: int, code: str, detail: str, parameter: str | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.parameter = parameter

    def body(self) -> dict[str, Any]:
        """The JSON body of the error response."""
        error: dict[str, Any] = {"code": self.code, "detail": self.detail}
        if self.parameter is not None:
            error["source"] = {"parameter": self.parameter}
        return {"errors": [error]}


def stable_uuid(*parts: str) -> str:
    """A UUID derived from ``parts``, so that ids survive restarts without being stored."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "qonto-sandbox:" + ":".join(parts)))


def euros(cents: int | None) -> float | None:
    """Qonto's decimal ``amount`` field; exact for any cent value JSON can carry."""
    if cents is None:
        return None
    return float(Decimal(cents) / 100)


@dataclass
class Transaction:
    """One bank transaction; ``seq`` orders creation and breaks sort ties."""

    id: str
    transaction_id: str
    seq: int
    bank_account_slug: str
    bank_account_id: str
    amount_cents: int
    currency: str
    side: str
    operation_type: str
    local_amount_cents: int
    local_currency: str
    label: str
    reference: str | None
    note: str | None
    status: str
    settled_at: datetime | None
    emitted_at: datetime
    created_at: datetime
    updated_at: datetime
    settled_balance_cents: int | None = None
    vat_amount_cents: int | None = None
    vat_rate: float | None = None
    attachment_ids: list[str] = field(default_factory=list)
    label_ids: list[str] = field(default_factory=list)

    def to_api(self) -> dict[str, Any]:
        """The object ``GET /v2/transactions`` returns."""
        return {
            "id": self.id,
            "transaction_id": self.transaction_id,
            "amount": euros(self.amount_cents),
            "amount_cents": self.amount_cents,
            "settled_balance": euros(self.settled_balance_cents),
            "settled_balance_cents": self.settled_balance_cents,
            "attachment_ids": list(self.attachment_ids),
            "local_amount": euros(self.local_amount_cents),
            "local_amount_cents": self.local_amount_cents,
            "side": self.side,
            "operation_type": self.operation_type,
            "currency": self.currency,
            "local_currency": self.local_currency,
            "label": self.label,
            "clean_counterparty_name": self.label,
            "settled_at": format_time(self.settled_at) if self.settled_at else None,
            "emitted_at": format_time(self.emitted_at),
            "created_at": format_time(self.created_at),
            "updated_at": format_time(self.updated_at),
            "status": self.status,
            "note": self.note,
            "reference": self.reference,
            "vat_amount": euros(self.vat_amount_cents),
            "vat_amount_cents": self.vat_amount_cents,
            "vat_rate": self.vat_rate,
            "initiator_id": None,
            "label_ids": list(self.label_ids),
            "attachment_lost": False,
            "attachment_required": False,
            "card_last_digits": None,
            "category": "other_income" if self.side == "credit" else "other_expense",
            "subject_type": "Transfer" if self.operation_type == "transfer" else "Other",
            "bank_account_id": self.bank_account_id,
            "is_external_transaction": False,
        }

    def to_record(self) -> dict[str, Any]:
        """The form kept in the state file."""
        record = self.__dict__.copy()
        for name in ("settled_at", "emitted_at", "created_at", "updated_at"):
            value = record[name]
            record[name] = format_time(value) if value is not None else None
        return record

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Transaction:
        """Inverse of :meth:`to_record`."""
        values = dict(record)
        for name in ("settled_at", "emitted_at", "created_at", "updated_at"):
            if values.get(name) is not None:
                values[name] = parse_time(values[name])
        return cls(**values)


@dataclass
class WebhookSubscription:
    """Where events go and the secret they are signed with."""

    id: str
    url: str
    secret: str

    def to_api(self, *, with_secret: bool = False) -> dict[str, Any]:
        """The subscription as the sandbox API shows it; the secret only on creation."""
        body: dict[str, Any] = {"id": self.id, "url": self.url, "callback_url": self.url}
        if with_secret:
            body["secret"] = self.secret
        return body
