"""The generic JSON ⇄ proto layer against the hand-written code it replaced, in one process.

Writes a payment with two refunds (the generated writer vs the former `payment_json`) and reads a
create-payment body (the generic reader vs the former `Fields` checks), interleaved so that other
load on the machine weighs on both alike. Prints µs per call and the ratio to the hand-written code.
Run: `.venv/bin/python bench/bench_transcoder.py`.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from collect.payments.v1 import payments_pb2 as pb

from gateway.http import Fields, timestamp_json
from gateway.transcoding.codec import Reading, read_object, writer
from runtime.proto import to_timestamp

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "20000"))


def _refund_json(refund: pb.Refund) -> dict[str, Any]:  # the former gateway/routes/payments.py
    return {
        "id": refund.id,
        "payment_id": refund.payment_id,
        "amount": refund.amount,
        "currency": refund.currency,
        "reason": refund.reason or None,
        "status": refund.status,
        "stripe_refund_id": refund.stripe_refund_id or None,
        "application_fee_refunded": refund.application_fee_refunded,
        "failure_reason": refund.failure_reason or None,
        "created_at": timestamp_json(refund.created_at),
    }


def _payment_json(payment: pb.Payment) -> dict[str, Any]:
    return {
        "id": payment.id,
        "organization_id": payment.organization_id,
        "member_id": payment.member_id,
        "status": payment.status,
        "amount": payment.amount,
        "currency": payment.currency,
        "method": payment.method,
        "capture_method": payment.capture_method,
        "charge_model": payment.charge_model,
        "application_fee_amount": payment.application_fee_amount,
        "application_fee_refunded": payment.application_fee_refunded,
        "amount_captured": payment.amount_captured,
        "amount_refunded": payment.amount_refunded,
        "stripe_payment_intent_id": payment.stripe_payment_intent_id or None,
        "description": payment.description or None,
        "receipt_email": payment.receipt_email or None,
        "metadata": dict(payment.metadata),
        "decline_code": payment.decline_code or None,
        "failure_message": payment.failure_message or None,
        "local_id": payment.local_id or None,
        "local_date": payment.local_date,
        "refunds": [_refund_json(r) for r in payment.refunds],
        "created_at": timestamp_json(payment.created_at),
        "updated_at": timestamp_json(payment.updated_at),
    }


def _fields_read(body: dict[str, Any]) -> pb.CreatePaymentRequest:  # the former create_payment checks
    fields = Fields(body)
    message = pb.CreatePaymentRequest(
        amount=fields.integer("amount"),
        currency=fields.text("currency", required=False, pattern=r"[a-z]{3}"),
        method=fields.text("method", required=False, choices=("card_present", "card", "sepa_debit")),
        capture_method=fields.text("capture_method", required=False, choices=("automatic", "manual")),
        description=fields.text("description", required=False, max_len=500),
        receipt_email=fields.text("receipt_email", required=False, max_len=254, pattern=r"[^@\s]+@[^@\s]+\.[^@\s]+"),
        metadata=fields.string_map("metadata"),
        organization_id=fields.text("organization_id", required=False, max_len=100),
    )
    fields.check()
    return message


def _generic_read(body: dict[str, Any]) -> pb.CreatePaymentRequest:
    message = pb.CreatePaymentRequest()
    reading = Reading()
    read_object(pb.CreatePaymentRequest.DESCRIPTOR, body, message, reading)
    assert not reading.errors
    return message


def _timed(pairs: list[tuple[str, Callable[[], object]]]) -> dict[str, float]:
    spent = dict.fromkeys((name for name, _ in pairs), 0.0)
    for _ in range(ROUNDS // 100):
        for name, call in pairs:
            started = time.perf_counter()
            for _ in range(100):
                call()
            spent[name] += time.perf_counter() - started
    return {name: total / ROUNDS * 1e6 for name, total in spent.items()}


def main() -> None:
    from datetime import UTC, datetime

    now = to_timestamp(datetime.now(UTC))
    refund = pb.Refund(id="r", payment_id="p", amount=100, currency="eur", status="succeeded", created_at=now)
    payment = pb.Payment(
        id="p",
        organization_id="o",
        member_id="m",
        status="succeeded",
        amount=2500,
        currency="eur",
        method="card_present",
        capture_method="automatic",
        charge_model="direct",
        metadata={"k": "v"},
        refunds=[refund, refund],
        created_at=now,
        updated_at=now,
        local_date="2026-12-06",
    )
    write = writer(pb.Payment.DESCRIPTOR)
    assert write(payment) == _payment_json(payment)
    body = {
        "amount": 2500,
        "currency": "eur",
        "method": "card",
        "description": "x",
        "metadata": {"k": "v"},
        "receipt_email": "a@example.test",
    }
    assert _generic_read(body) == _fields_read(body)
    results = _timed(
        [
            ("hand-written payment_json", lambda: _payment_json(payment)),
            ("generated writer", lambda: write(payment)),
            ("hand-written Fields read", lambda: _fields_read(body)),
            ("generic reader", lambda: _generic_read(body)),
        ]
    )
    names = list(results)
    print(f"{ROUNDS} calls each, interleaved")
    for base, new in (names[0:2], names[2:4]):
        print(f"{base:28} {results[base]:7.2f} µs")
        print(f"{new:28} {results[new]:7.2f} µs   {results[new] / results[base]:.2f} x hand-written")


if __name__ == "__main__":
    main()
