"""What Payments tells operators: a counter and a log line (ids only, no personal data) each time
a payment or a refund reaches a status."""

from __future__ import annotations

from runtime import metrics
from runtime.logs import event
from services.payments.domain import Payment, Refund


def payment_reached(payment: Payment, name: str = "") -> None:
    """`payment.<status>` (or `name`, e.g. `payment.created`) for the payment's current status."""
    metrics.payments.add(status=payment.status, method=payment.method)
    event(
        name or f"payment.{payment.status}",
        payment_id=payment.id,
        organization_id=payment.organization_id,
        status=payment.status,
        method=payment.method,
        amount=payment.amount,
        currency=payment.currency,
    )


def refund_reached(refund: Refund, payment: Payment) -> None:
    """`payment.refunded` for a succeeded refund, `refund.<status>` otherwise."""
    metrics.refunds.add(status=refund.status)
    event(
        "payment.refunded" if refund.status == "succeeded" else f"refund.{refund.status}",
        refund_id=refund.id,
        payment_id=payment.id,
        organization_id=payment.organization_id,
        status=refund.status,
        amount=refund.amount,
        currency=refund.currency,
    )
