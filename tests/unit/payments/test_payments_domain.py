"""Pure rules of Payments: fees, fee refunds, status moves, local days, fingerprints, snapshots."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from services.payments.domain import (
    Payment,
    Refund,
    application_fee,
    decode_payment,
    encode_payment,
    fee_refund_share,
    fingerprint,
    local_day,
    may_move,
    stripe_payment_intent_params,
    take_intent,
)


@pytest.mark.parametrize(
    ("amount", "bps", "minimum", "fee"),
    [
        (1000, 0, 0, 0),
        (1000, 150, 0, 15),
        (1000, 150, 20, 20),
        (1001, 125, 0, 13),  # 12.5125 rounds to 13
        (1000, 125, 0, 13),  # 12.5 rounds half up
        (100, 0, 500, 100),  # never above the amount
        (50_000, 10_000, 0, 50_000),
    ],
)
def test_application_fee(amount: int, bps: int, minimum: int, fee: int) -> None:
    assert application_fee(amount, bps, minimum) == fee


def test_fee_refund_share_is_pro_rata_and_the_last_refund_takes_the_rest() -> None:
    assert fee_refund_share(200, 1000, 20, 0, 0) == 4
    assert fee_refund_share(333, 1000, 10, 0, 0) == 3
    assert fee_refund_share(667, 1000, 10, 3, 333) == 7  # the rest
    assert fee_refund_share(500, 1000, 0, 0, 0) == 0


@pytest.mark.parametrize(
    ("current", "new", "allowed"),
    [
        ("pending", "requires_payment_method", True),
        ("requires_payment_method", "succeeded", True),
        ("requires_capture", "requires_payment_method", False),
        ("succeeded", "requires_capture", False),
        ("succeeded", "canceled", False),
        ("canceled", "succeeded", False),
        ("requires_payment_method", "requires_payment_method", True),
        ("processing", "requires_capture", True),
    ],
)
def test_status_only_moves_forward(current: str, new: str, allowed: bool) -> None:
    assert may_move(current, new) is allowed


def test_local_day_in_the_organisation_time_zone() -> None:
    moment = datetime(2026, 1, 1, 23, 30, tzinfo=UTC)
    assert local_day(moment, "Europe/Paris") == date(2026, 1, 2)
    assert local_day(moment, "America/New_York") == date(2026, 1, 1)
    assert local_day(moment, "Not/AZone") == date(2026, 1, 2)


def test_fingerprint_is_canonical() -> None:
    assert fingerprint("create", {"a": 1, "b": {"x": "1", "y": "2"}}) == fingerprint(
        "create", {"b": {"y": "2", "x": "1"}, "a": 1}
    )
    assert fingerprint("create", {"a": 1}) != fingerprint("create", {"a": 2})
    assert fingerprint("create", {"a": 1}) != fingerprint("refund", {"a": 1})


def _payment(**overrides: object) -> Payment:
    now = datetime(2026, 5, 1, 12, tzinfo=UTC)
    values: dict[str, object] = dict(
        id="5b0e0c3e-8f0e-4a57-9b8e-3f3a1c2d4e5f",
        organization_id="org",
        member_id="member",
        amount=1000,
        currency="eur",
        method="card_present",
        capture_method="automatic",
        status="pending",
        charge_model="direct",
        stripe_account_id="acct_1",
        application_fee_amount=20,
        amount_captured=0,
        amount_refunded=0,
        application_fee_refunded=0,
        stripe_payment_intent_id=None,
        client_secret=None,
        description="",
        receipt_email="",
        metadata={"k": "v"},
        decline_code=None,
        failure_message=None,
        local_id=None,
        local_date=now.date(),
        created_at=now,
        updated_at=now,
    )
    values.update(overrides)
    return Payment(**values)  # type: ignore[arg-type]


_DECLINED = {"decline_code": "insufficient_funds", "message": "Your card has insufficient funds."}


@pytest.mark.parametrize(
    ("before", "intent", "changed", "after"),
    [
        # A new intent: its id, and the status it starts in.
        (
            {},
            {"id": "pi_1", "status": "requires_payment_method"},
            True,
            {"stripe_payment_intent_id": "pi_1", "status": "requires_payment_method"},
        ),
        # The same intent told again: nothing moves.
        (
            {"stripe_payment_intent_id": "pi_1", "status": "requires_payment_method"},
            {"id": "pi_1", "status": "requires_payment_method"},
            False,
            {"status": "requires_payment_method"},
        ),
        # A success brings what was received and the fee Stripe took.
        (
            {"stripe_payment_intent_id": "pi_1", "status": "processing"},
            {"id": "pi_1", "status": "succeeded", "amount_received": 900, "application_fee_amount": 18},
            True,
            {"status": "succeeded", "amount_captured": 900, "application_fee_amount": 18},
        ),
        # An older answer (the create's) after the payment succeeded: never back.
        (
            {"stripe_payment_intent_id": "pi_1", "status": "succeeded", "amount_captured": 1000},
            {"id": "pi_1", "status": "requires_payment_method"},
            False,
            {"status": "succeeded", "amount_captured": 1000},
        ),
        # A declined attempt: the payment can still be paid, the decline is kept.
        (
            {"stripe_payment_intent_id": "pi_1", "status": "requires_payment_method"},
            {"id": "pi_1", "status": "requires_payment_method", "last_payment_error": _DECLINED},
            True,
            {"decline_code": "insufficient_funds", "failure_message": "Your card has insufficient funds."},
        ),
        # A decline told after the payment failed for good changes nothing.
        (
            {"stripe_payment_intent_id": "pi_1", "status": "failed"},
            {"id": "pi_1", "status": "requires_payment_method", "last_payment_error": _DECLINED},
            False,
            {"status": "failed", "decline_code": None},
        ),
    ],
)
def test_take_intent_moves_the_payment_forward_only(
    before: dict[str, object], intent: dict[str, object], changed: bool, after: dict[str, object]
) -> None:
    payment = _payment(**before)
    assert take_intent(payment, intent) is changed
    assert {name: getattr(payment, name) for name in after} == after


def test_intent_params_follow_the_charge_model() -> None:
    direct = stripe_payment_intent_params(_payment())
    assert direct["application_fee_amount"] == 20 and "transfer_data" not in direct
    assert direct["metadata"] == {
        "k": "v",
        "organization_id": "org",
        "member_id": "member",
        "platform_payment_id": "5b0e0c3e-8f0e-4a57-9b8e-3f3a1c2d4e5f",
    }
    destination = stripe_payment_intent_params(_payment(charge_model="destination"))
    assert destination["on_behalf_of"] == "acct_1"
    assert destination["transfer_data"] == {"destination": "acct_1"}
    assert "application_fee_amount" not in stripe_payment_intent_params(_payment(application_fee_amount=0))


def test_snapshot_round_trip() -> None:
    payment = _payment()
    payment.refunds = [
        Refund("r", payment.id, 100, "eur", "", "succeeded", "re_1", 2, None, datetime(2026, 5, 2, tzinfo=UTC))
    ]
    assert decode_payment(encode_payment(payment)) == payment
