"""What Payments' actions write to the audit trail (runtime.audit): ids, amounts and statuses only."""

from __future__ import annotations

from typing import Any

from runtime import audit
from runtime.db import Connection
from services.payments.domain import Dispute, Payment, Refund


async def payment_action(conn: Connection, action: str, payment: Payment) -> None:
    """Records `action` on `payment` (by the current caller) in `conn`'s transaction."""
    await audit.record(conn, action, **_payment_fields(payment))


def payment_record(action: str, payment: Payment) -> audit.AuditRecord:
    """The record `payment_action` writes, for a statement that writes it with the payment (a create's)."""
    return audit.current_record(action, **_payment_fields(payment))


def _payment_fields(payment: Payment) -> dict[str, Any]:
    return {
        "targets": {"payment_id": payment.id, "stripe_payment_intent": payment.stripe_payment_intent_id},
        "after": {
            "status": payment.status,
            "amount": payment.amount,
            "amount_captured": payment.amount_captured,
            "currency": payment.currency,
            "method": payment.method,
        },
        "organization_id": payment.organization_id,
    }


async def refund_action(conn: Connection, action: str, payment: Payment, refund: Refund) -> None:
    """Records `action` on `refund` of `payment` in `conn`'s transaction."""
    await audit.record(
        conn,
        action,
        targets={"payment_id": payment.id, "refund_id": refund.id, "stripe_refund": refund.stripe_refund_id},
        after={"status": refund.status, "amount": refund.amount, "currency": refund.currency, "reason": refund.reason},
        organization_id=payment.organization_id,
    )


async def evidence_action(conn: Connection, dispute: Dispute, fields: list[str], submitted: bool) -> None:
    """Records evidence given for `dispute`: which fields and whether it went to the bank, never
    their content (it holds the customer's data)."""
    await audit.record(
        conn,
        "dispute.evidence_submitted" if submitted else "dispute.evidence_staged",
        targets={
            "dispute_id": dispute.id,
            "payment_id": dispute.payment_id,
            "stripe_dispute": dispute.stripe_dispute_id,
        },
        after={"status": dispute.status, "fields": sorted(fields)},
        organization_id=dispute.organization_id,
    )


async def transfer_action(conn: Connection, action: str, dispute: Dispute) -> None:
    """Records a transfer move of a destination charge's dispute (the reversal taken from the
    organisation, or the amount given back once won), made on an event or by the sweeper."""
    returned = action == "dispute.transfer_returned"
    await audit.record(
        conn,
        action,
        targets={
            "dispute_id": dispute.id,
            "payment_id": dispute.payment_id,
            "stripe_dispute": dispute.stripe_dispute_id,
            "stripe_transfer": dispute.stripe_transfer_id,
            "stripe_transfer_reversal": dispute.stripe_transfer_reversal_id,
            **({"stripe_return_transfer": dispute.stripe_return_transfer_id} if returned else {}),
        },
        after={
            "status": dispute.status,
            "amount": dispute.transfer_returned if returned else dispute.transfer_reversed,
            "currency": dispute.currency,
        },
        organization_id=dispute.organization_id,
    )
