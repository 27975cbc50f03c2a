"""Payments' values and rules, without I/O: fees, statuses, fingerprints, local days."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson
from collect.accounts.v1 import accounts_pb2
from collect.payments.v1 import payments_pb2 as pb

from runtime.contract import enum_names
from runtime.money import fee_leaves_nothing, platform_fee

# The closed sets are the proto's enums (payments.proto), read here once.
METHODS = enum_names(pb.PaymentMethod.DESCRIPTOR)
OFFLINE_METHODS = enum_names(pb.OfflineMethod.DESCRIPTOR)
CAPTURE_METHODS = enum_names(pb.CaptureMethod.DESCRIPTOR)
CHARGE_MODELS = enum_names(accounts_pb2.ChargeModel.DESCRIPTOR)
DEFAULT_TIMEZONE = "Europe/Paris"

# A status only moves up this ladder (an older event never regresses a payment); the last
# rung holds the final states.
_RANK = {
    "pending": 0,
    "requires_payment_method": 1,
    "requires_confirmation": 1,
    "requires_action": 1,
    "processing": 2,
    "requires_capture": 2,
    "succeeded": 3,
    "canceled": 3,
    "failed": 3,
}
FINAL = frozenset({"succeeded", "canceled", "failed"})


@dataclass(frozen=True)
class Settings:
    """Payments' own settings, read from the service environment."""

    min_amount: int = 100
    max_amount: int = 50_000
    rate_limit_per_minute: int = 10
    smtp_host: str | None = None
    smtp_port: int = 25
    receipt_from: str = "receipts@collect.example"
    # How far an offline sale's created_at may lie behind or ahead of the server's clock.
    offline_max_age_days: int = 30
    offline_max_ahead_seconds: int = 300


@dataclass(frozen=True)
class Policy:
    """What Accounts says about an organisation's account and fees."""

    organization_id: str
    stripe_account_id: str
    charge_model: str
    fee_percent_bps: int
    fee_minimum: int
    charges_enabled: bool
    default_currency: str = "eur"
    timezone: str = DEFAULT_TIMEZONE

    @property
    def currencies(self) -> tuple[str, ...]:
        """The currencies the organisation takes (Accounts validates its ISO 4217 default currency)."""
        return (self.default_currency,)


def currency_problem(currency: str, policy: Policy) -> str:
    """Why a payment in `currency` cannot be taken for the organisation ('' when it can)."""
    if currency not in policy.currencies:
        return f"currency must be one of {', '.join(policy.currencies)} (the organisation's currencies)"
    return ""


@dataclass
class Refund:
    id: str
    payment_id: str
    amount: int
    currency: str
    reason: str
    status: str
    stripe_refund_id: str | None
    application_fee_refunded: int
    failure_reason: str | None
    created_at: datetime
    # The refund's own day in the organisation's time zone: the day its figures belong to.
    local_date: date | None = None


@dataclass
class Payment:
    id: str
    organization_id: str
    member_id: str
    amount: int
    currency: str
    method: str
    capture_method: str
    status: str
    charge_model: str
    stripe_account_id: str | None
    application_fee_amount: int
    amount_captured: int
    amount_refunded: int
    application_fee_refunded: int
    stripe_payment_intent_id: str | None
    client_secret: str | None
    description: str
    receipt_email: str
    metadata: dict[str, str]
    decline_code: str | None
    failure_message: str | None
    local_id: str | None
    local_date: date
    created_at: datetime
    updated_at: datetime
    refunds: list[Refund] = field(default_factory=list)
    fee_percent_bps: int = 0
    fee_minimum: int = 0

    @classmethod
    def cash(
        cls,
        payment_id: str,
        policy: Policy,
        member_id: str,
        local_id: str,
        amount: int,
        currency: str,
        created_at: datetime,
        now: datetime,
    ) -> Payment:
        """A cash sale synced from the phone: paid in full, no Stripe object, no platform fee."""
        sale = (payment_id, policy, member_id, local_id, created_at, now)
        return cls._offline(
            *sale,
            amount=amount,
            currency=currency,
            method="cash",
            capture_method="automatic",
            status="succeeded",
            charge_model="none",
            stripe_account_id=None,
            application_fee_amount=0,
            amount_captured=amount,
            stripe_payment_intent_id=None,
        )

    @classmethod
    def from_intent(
        cls,
        payment_id: str,
        policy: Policy,
        member_id: str,
        local_id: str,
        intent: dict[str, Any],
        created_at: datetime,
        now: datetime,
    ) -> Payment:
        """A card sale the phone made offline, as its PaymentIntent (checked to be the organisation's) says."""
        capture = str(intent.get("capture_method") or "automatic")
        sale = (payment_id, policy, member_id, local_id, created_at, now)
        return cls._offline(
            *sale,
            amount=int(intent.get("amount") or 0),
            currency=str(intent.get("currency") or policy.default_currency),
            method="card_present" if "card_present" in (intent.get("payment_method_types") or []) else "card",
            capture_method=capture if capture in CAPTURE_METHODS else "automatic",
            status=intent_status(intent),
            charge_model=policy.charge_model,
            stripe_account_id=policy.stripe_account_id,
            application_fee_amount=int(intent.get("application_fee_amount") or 0),
            amount_captured=int(intent.get("amount_received") or 0),
            stripe_payment_intent_id=str(intent["id"]),
            fee_percent_bps=policy.fee_percent_bps,
            fee_minimum=policy.fee_minimum,
        )

    @classmethod
    def _offline(
        cls,
        payment_id: str,
        policy: Policy,
        member_id: str,
        local_id: str,
        created_at: datetime,
        now: datetime,
        **fields: Any,
    ) -> Payment:
        """What every synced sale shares: the phone's local_id and time, booked on its own local day."""
        return cls(
            id=payment_id,
            organization_id=policy.organization_id,
            member_id=member_id,
            amount_refunded=0,
            application_fee_refunded=0,
            client_secret=None,
            description="",
            receipt_email="",
            metadata={"offline": "true"},
            decline_code=None,
            failure_message=None,
            local_id=local_id,
            local_date=local_day(created_at, policy.timezone),
            created_at=created_at,
            updated_at=now,
            **fields,
        )


def application_fee(amount: int, percent_bps: int, minimum: int) -> int:
    """max(minimum, round(amount * percent)), never above the amount (half up, in integers)."""
    return max(0, min(amount, platform_fee(amount, percent_bps, minimum)))


def fee_problem(amount: int, percent_bps: int, minimum: int) -> str:
    """Why the organisation cannot take `amount` under its fee policy ('' when it can)."""
    if fee_leaves_nothing(amount, percent_bps, minimum):
        fee = platform_fee(amount, percent_bps, minimum)
        return f"the platform fee ({fee}) would take the whole amount: the amount must be higher"
    return ""


def fee_refund_share(refund_amount: int, captured: int, fee: int, fee_refunded: int, refunded_before: int) -> int:
    """The part of the application fee a refund gives back: pro rata, the rest on the last refund."""
    if captured <= 0 or fee <= 0:
        return 0
    left = fee - fee_refunded
    if refunded_before + refund_amount >= captured:
        return left
    return max(0, min(left, refund_amount * fee // captured))


def status_rank(status: str) -> int:
    return _RANK.get(status, 0)


def may_move(current: str, new: str) -> bool:
    """Whether an event may set `new`: forward only, and a final state stays final.

    Same-rank moves are allowed below the final rung (a retried card after a decline, or
    processing ⇄ requires_capture as Stripe reports them).
    """
    if current in FINAL:
        return False
    return status_rank(new) >= status_rank(current)


def advance(payment: Payment, new: str) -> bool:
    """The one place a payment's status changes (every writer goes through it): forward only,
    a final state stays final; True when the status moved."""
    if payment.status == new or not may_move(payment.status, new):
        return False
    payment.status = new
    return True


def local_day(moment: datetime, timezone: str) -> date:
    return moment.astimezone(zone(timezone)).date()


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name or DEFAULT_TIMEZONE)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(DEFAULT_TIMEZONE)


def fingerprint(operation: str, request: dict[str, Any]) -> str:
    """Hash of the canonical request: the same key with another body must be refused."""
    canonical = orjson.dumps({"operation": operation, **request}, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()


def stripe_payment_intent_params(payment: Payment) -> dict[str, Any]:
    """The PaymentIntent to create, deterministic from the stored payment (retries send the same body)."""
    params: dict[str, Any] = {
        "amount": payment.amount,
        "currency": payment.currency,
        "payment_method_types": [payment.method],
        "capture_method": payment.capture_method,
        "metadata": {
            **payment.metadata,
            "organization_id": payment.organization_id,
            "member_id": payment.member_id,
            "platform_payment_id": payment.id,
        },
    }
    if payment.application_fee_amount:
        params["application_fee_amount"] = payment.application_fee_amount
    if payment.description:
        params["description"] = payment.description
    if payment.receipt_email:
        params["receipt_email"] = payment.receipt_email
    if payment.charge_model == "destination":
        params["on_behalf_of"] = payment.stripe_account_id
        params["transfer_data"] = {"destination": payment.stripe_account_id}
    return params


def stripe_account_option(payment: Payment) -> str | None:
    """Direct charges live on the connected account; destination charges on the platform."""
    return payment.stripe_account_id if payment.charge_model == "direct" else None


def intent_status(intent: dict[str, Any]) -> str:
    """Our status for a Stripe PaymentIntent."""
    status = str(intent.get("status") or "pending")
    return status if status in _RANK else "pending"


def encode_payment(payment: Payment) -> bytes:
    """A snapshot of the payment as answered, kept with its idempotency key (orjson serialises
    dataclasses itself, without `asdict`'s deep copy)."""
    return orjson.dumps(payment)


def decode_payment(raw: bytes) -> Payment:
    data = orjson.loads(raw)
    data["local_date"] = date.fromisoformat(data["local_date"])
    data["created_at"] = datetime.fromisoformat(data["created_at"])
    data["updated_at"] = datetime.fromisoformat(data["updated_at"])
    refunds = [decode_refund_dict(r) for r in data.pop("refunds", [])]
    return Payment(**data, refunds=refunds)


def encode_refund(refund: Refund) -> bytes:
    return orjson.dumps(refund)


def decode_refund(raw: bytes) -> Refund:
    return decode_refund_dict(orjson.loads(raw))


def decode_refund_dict(data: dict[str, Any]) -> Refund:
    data = dict(data)
    data["created_at"] = datetime.fromisoformat(data["created_at"])
    if data.get("local_date"):
        data["local_date"] = date.fromisoformat(data["local_date"])
    return Refund(**data)
