"""Payments' values and rules, without I/O: fees, statuses, fingerprints, local days."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson
from collect.accounts.v1 import accounts_pb2
from collect.payments.v1 import payments_pb2 as pb

from runtime.contract import enum_names
from runtime.defaults import DEFAULT_CURRENCY, DEFAULT_TIMEZONE
from runtime.money import fee_leaves_nothing, platform_fee

# The closed sets are the proto's enums (payments.proto), read here once.
METHODS = enum_names(pb.PaymentMethod.DESCRIPTOR)
OFFLINE_METHODS = enum_names(pb.OfflineMethod.DESCRIPTOR)
CAPTURE_METHODS = enum_names(pb.CaptureMethod.DESCRIPTOR)
CHARGE_MODELS = enum_names(accounts_pb2.ChargeModel.DESCRIPTOR)

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
    default_currency: str = DEFAULT_CURRENCY
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


def take_intent(payment: Payment, intent: dict[str, Any]) -> bool:
    """Moves `payment` to its PaymentIntent's state, forward only: the intent's id, a decline
    while it can still be paid, the status (a success brings the amount received and the fee);
    True when anything changed."""
    new = intent_status(intent)
    error = intent.get("last_payment_error") or None
    changed = False
    if payment.stripe_payment_intent_id is None and intent.get("id"):
        payment.stripe_payment_intent_id = str(intent["id"])
        changed = True
    if error and new == "requires_payment_method" and payment.status not in FINAL:
        decline = error.get("decline_code") or error.get("code")
        if decline != payment.decline_code:
            payment.decline_code = decline
            payment.failure_message = error.get("message")
            changed = True
    if advance(payment, new):
        changed = True
        if new == "succeeded":
            payment.amount_captured = int(intent.get("amount_received") or payment.amount)
            fee = intent.get("application_fee_amount")
            payment.application_fee_amount = int(fee) if fee is not None else payment.application_fee_amount
    return changed


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


# ---- disputes ------------------------------------------------------------------------------

# Stripe's dispute statuses (the proto's DisputeStatus, checked by the unit tests) on a ladder: a
# dispute is opened, answered (evidence submitted, under review), then closed; an older event
# never moves it back, and a closed one stays closed.
_DISPUTE_RANK = {
    "warning_needs_response": 0,
    "needs_response": 0,
    "warning_under_review": 1,
    "under_review": 1,
    "won": 2,
    "lost": 2,
    "warning_closed": 2,
    "charge_refunded": 2,
}
DISPUTE_STATUSES = tuple(_DISPUTE_RANK)
DISPUTE_CLOSED = frozenset({"won", "lost", "warning_closed", "charge_refunded"})
DISPUTE_OPEN = frozenset({"warning_needs_response", "needs_response"})
# The evidence Stripe takes (`evidence[...]` of POST /v1/disputes/{id}), all text or file ids.
DISPUTE_EVIDENCE_FIELDS = (
    "access_activity_log",
    "billing_address",
    "cancellation_policy",
    "cancellation_policy_disclosure",
    "cancellation_rebuttal",
    "customer_communication",
    "customer_email_address",
    "customer_name",
    "customer_purchase_ip",
    "customer_signature",
    "duplicate_charge_documentation",
    "duplicate_charge_explanation",
    "duplicate_charge_id",
    "product_description",
    "receipt",
    "refund_policy",
    "refund_policy_disclosure",
    "refund_refusal_explanation",
    "service_date",
    "service_documentation",
    "shipping_address",
    "shipping_carrier",
    "shipping_date",
    "shipping_documentation",
    "shipping_tracking_number",
    "uncategorized_file",
    "uncategorized_text",
)
EVIDENCE_MAX_CHARS = 150_000  # Stripe's limit over all the text evidence


def dispute_may_move(current: str, new: str) -> bool:
    """Whether a dispute re-read at Stripe may take status `new`: forward only (same rank allowed
    while open: a warning becomes a dispute), a closed dispute stays as it closed."""
    if new not in _DISPUTE_RANK or current == new:
        return False
    if current in DISPUTE_CLOSED:
        return False
    return _DISPUTE_RANK[new] >= _DISPUTE_RANK.get(current, 0)


@dataclass
class Dispute:
    id: str
    stripe_dispute_id: str
    payment_id: str
    organization_id: str
    member_id: str
    charge_model: str
    amount: int
    currency: str
    reason: str
    status: str
    evidence_due_by: datetime | None
    local_date: date
    created_at: datetime
    evidence_submissions: int = 0
    withdrawn: int = 0
    dispute_fee: int = 0
    withdrawn_at: datetime | None = None
    reinstated: int = 0
    reinstated_at: datetime | None = None
    closed_at: datetime | None = None
    stripe_transfer_id: str | None = None
    transfer_reversed: int = 0
    stripe_transfer_reversal_id: str | None = None
    transfer_returned: int = 0
    stripe_return_transfer_id: str | None = None
    transfer_refused_at: datetime | None = None


def advance_dispute(dispute: Dispute, new: str) -> bool:
    """The one place a dispute's status changes; True when it moved."""
    if not dispute_may_move(dispute.status, new):
        return False
    dispute.status = new
    return True


def dispute_money(stripe_dispute: dict[str, Any]) -> tuple[int, int, int | None, int, int | None]:
    """What Stripe's dispute says moved: (withdrawn, fee, when, reinstated, when), from its balance
    transactions (a negative one withdraws the amount and the fee, a positive one reinstates)."""
    withdrawn = fee = reinstated = 0
    withdrawn_at: int | None = None
    reinstated_at: int | None = None
    for txn in stripe_dispute.get("balance_transactions") or []:
        if not isinstance(txn, dict):
            continue
        amount = int(txn.get("amount") or 0)
        if amount < 0:
            withdrawn += -amount
            fee += int(txn.get("fee") or 0)
            withdrawn_at = withdrawn_at or int(txn.get("created") or 0) or None
        elif amount > 0:
            reinstated += amount
            reinstated_at = reinstated_at or int(txn.get("created") or 0) or None
    return withdrawn, fee, withdrawn_at, reinstated, reinstated_at


def transfer_to_reverse(dispute: Dispute, transfer: dict[str, Any]) -> int:
    """Under a destination charge, what to take back from the organisation once the funds are
    withdrawn: the disputed amount, at most what is left of the charge's transfer (a refund may
    have reversed part of it already)."""
    left = int(transfer.get("amount") or 0) - int(transfer.get("amount_reversed") or 0)
    return max(0, min(dispute.withdrawn, left))


def evidence_problems(evidence: Mapping[str, str]) -> list[tuple[str, str]]:
    """(field, message) for each evidence entry Stripe would refuse; empty when it can be sent.
    Each value's own bound is the proto's (SubmitDisputeEvidenceRequest.evidence); this is the
    rest: which fields Stripe takes and their total length."""
    problems: list[tuple[str, str]] = []
    total = 0
    for name, value in evidence.items():
        if name not in DISPUTE_EVIDENCE_FIELDS:
            problems.append((f"evidence.{name}", "is not evidence Stripe takes"))
        else:
            total += len(value)
    if total > EVIDENCE_MAX_CHARS:
        problems.append(("evidence", f"at most {EVIDENCE_MAX_CHARS} characters in all"))
    return problems


# ---- the books' moves ----------------------------------------------------------------------

# What a refund or a dispute puts in the books after its sale, each once, on the day it is recorded
# (books.book): the proto's BookEntryKind less the sale (a refund made, or undone by Stripe
# afterwards; a dispute's funds withdrawn, its transfer reversal made before the loss or after it,
# the funds reinstated, the reversed amount given back, the loss).
BOOK_MOVES = tuple(kind for kind in enum_names(pb.BookEntryKind.DESCRIPTOR) if kind != "sale")


@dataclass(frozen=True)
class BookMove:
    """One move of the books (amounts positive, minor units, in the payment's currency).

    `transfer_reversed`: destination charges, the part of the charge's transfer the move takes
    from the organisation or gives back to it; on `dispute_lost`, the part taken before the loss
    (the organisation's share of it; the rest comes with a later `dispute_lost_reversal`)."""

    kind: str
    source_id: str
    amount: int
    application_fee: int = 0
    dispute_fee: int = 0
    transfer_reversed: int = 0

    def __post_init__(self) -> None:
        if self.kind not in BOOK_MOVES:
            raise ValueError(f"not a move of the books: {self.kind!r}")


def organization_loss(move: BookMove, charge_model: str) -> int:
    """What the organisation loses with this move: all of a lost dispute under direct charges
    (Stripe debited it); under destination charges only the part of the transfer reversed (the
    platform bore the rest), counted when the loss is booked and for a reversal made after it."""
    if move.kind not in ("dispute_lost", "dispute_lost_reversal"):
        return 0
    return move.amount if charge_model == "direct" else move.transfer_reversed


def move_figures(move: BookMove, charge_model: str) -> dict[str, int]:
    """What the move adds to its day's figures (`daily_totals`), as the daily report counts its
    book entry: a refund's amount and the fee it gave back (taken back when Stripe undoes it) and
    what the organisation lost. Withdrawals count where opened (`disputes._record`), not here."""
    if move.kind == "refund":
        return {"refunded": move.amount, "fees": -move.application_fee}
    if move.kind == "refund_failed":
        return {"refunded": -move.amount, "fees": move.application_fee}
    lost = organization_loss(move, charge_model)
    return {"disputes_lost": lost} if lost else {}
