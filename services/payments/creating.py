"""Creating a payment, idempotent end to end (atomic phases).

1. record the idempotency key and the payment (`pending`) in one statement;
2. call Stripe with a key derived from the payment id, then record the result, the key's answer
   and the audit record in one statement, if nothing else recorded them meanwhile (`_first_attempt`);
   a retry, a concurrent duplicate and anything more to record go through `_complete`, under the
   key's and the payment's row locks.
A request that died in phase 2 leaves the payment `pending`; a retry with the same key
completes it with the same PaymentIntent (Stripe replays its first answer), never a second one.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from runtime.auth import Caller
from runtime.db import Connection
from runtime.errors import Conflict, DomainError, FieldError, InvalidArgument, RateLimited, Unavailable
from services.payments import auditing, lifecycle
from services.payments import repository as repo
from services.payments.context import Context
from services.payments.domain import (
    CHARGE_MODELS,
    Payment,
    Settings,
    application_fee,
    currency_problem,
    decode_payment,
    fee_problem,
    fingerprint,
    local_day,
    take_intent,
)
from services.payments.telemetry import payment_reached

OPERATION = "create_payment"
EVENT = "payment.created"  # its audit record and telemetry


@dataclass(frozen=True)
class CreateRequest:
    amount: int
    currency: str = ""
    method: str = ""
    capture_method: str = ""
    description: str = ""
    receipt_email: str = ""
    metadata: dict[str, str] = field(default_factory=dict)


def validate_key(key: str) -> str:
    if not key or len(key) > 255:
        raise InvalidArgument(
            "the Idempotency-Key header is required (up to 255 characters)",
            "idempotency_key_required",
            [FieldError("Idempotency-Key", "required, up to 255 characters")],
        )
    return key


def ensure_same_request(recorded_print: str, recorded_operation: str, print_: str, operation: str) -> None:
    """A key comes back only with the request it was first used with (409 otherwise)."""
    if recorded_print != print_ or recorded_operation != operation:
        raise Conflict("this Idempotency-Key was used with another request", "idempotency_key_reused")


def validate(request: CreateRequest, settings: Settings) -> None:
    """The rules that depend on settings and reserved names; the currency, method, capture method
    and e-mail forms are the proto's (checked by the runtime before the servicer runs)."""
    problems: list[FieldError] = []
    if not settings.min_amount <= request.amount <= settings.max_amount:
        problems.append(FieldError("amount", f"must be between {settings.min_amount} and {settings.max_amount}"))
    reserved = {"organization_id", "member_id", "platform_payment_id"} & request.metadata.keys()
    if reserved:
        problems.append(FieldError("metadata", f"uses reserved keys: {', '.join(sorted(reserved))}"))
    if problems:
        code = "amount_out_of_range" if problems[0].field == "amount" and len(problems) == 1 else "validation_error"
        raise InvalidArgument("the payment is invalid", code, problems)


async def create_payment(
    ctx: Context, caller: Caller, organization_id: str, key: str, request: CreateRequest
) -> tuple[Payment, bool]:
    """The payment (with its client secret) and whether this answers a replayed key."""
    validate_key(key)
    validate(request, ctx.settings)
    print_ = fingerprint(OPERATION, {"organization_id": organization_id, **request.__dict__})
    member_id = caller.member_id
    try:
        payment = await _new_payment(ctx, organization_id, member_id, request)
    except Conflict:
        if await _known(ctx, organization_id, member_id, key):
            return await _complete(ctx, organization_id, member_id, key, print_)  # a replay answers as before
        raise
    limit = ctx.settings.rate_limit_per_minute
    async with ctx.pool.acquire() as conn:
        claimed, used, since = await repo.claim_key_and_insert_payment(conn, key, OPERATION, print_, payment, limit)
        if claimed and 0 < limit < used:
            await repo.delete_key(conn, organization_id, member_id, key)
            raise rate_limited(limit, since)
    if not claimed:  # the same key, claimed by a request in flight a moment ago
        return await _complete(ctx, organization_id, member_id, key, print_)
    return await _first_attempt(ctx, payment, repo.KeyAnswer(organization_id, member_id, key), print_)


def rate_limited(limit: int, since: datetime | None) -> RateLimited:
    """The answer past the member's rate: `limit` per minute, counted from the window's start."""
    elapsed = (datetime.now(UTC) - since).total_seconds() if since else 0.0
    return RateLimited(
        f"at most {limit} payments per minute per member",
        retry_after=max(1, math.ceil(60 - elapsed)),
        code="rate_limited",
    )


async def take_rate(ctx: Context, conn: Connection, member_id: str, units: int) -> None:
    """Counts `units` (refunds, offline sales) in the member's payment rate; RateLimited past it."""
    limit = ctx.settings.rate_limit_per_minute
    if limit <= 0:
        return
    used, since = await repo.take_rate(conn, member_id, min(units, limit))
    if used > limit:
        raise rate_limited(limit, since)


async def _known(ctx: Context, organization_id: str, member_id: str, key: str) -> bool:
    async with ctx.pool.acquire() as conn:
        return await repo.key_exists(conn, organization_id, member_id, key)


async def _new_payment(ctx: Context, organization_id: str, member_id: str, request: CreateRequest) -> Payment:
    """The payment to record, from the request and the organisation's current policy."""
    policy = await ctx.policies.get(organization_id)
    if not policy.stripe_account_id or not policy.charges_enabled:
        raise Conflict(
            "the organisation's Stripe account cannot take charges yet (onboarding incomplete)",
            "charges_not_enabled",
        )
    if policy.charge_model not in CHARGE_MODELS:
        raise Conflict(f"unknown charge model {policy.charge_model!r}", "invalid_charge_model")
    currency = request.currency or policy.default_currency
    if problem := currency_problem(currency, policy):
        raise InvalidArgument("the payment is invalid", "currency_not_accepted", [FieldError("currency", problem)])
    if problem := fee_problem(request.amount, policy.fee_percent_bps, policy.fee_minimum):
        raise InvalidArgument("the payment is invalid", "fee_exceeds_amount", [FieldError("amount", problem)])
    now = datetime.now(UTC)
    return Payment(
        id=str(uuid.uuid4()),
        organization_id=organization_id,
        member_id=member_id,
        amount=request.amount,
        currency=currency,
        method=request.method or "card_present",
        capture_method=request.capture_method or "automatic",
        status="pending",
        charge_model=policy.charge_model,
        stripe_account_id=policy.stripe_account_id,
        application_fee_amount=application_fee(request.amount, policy.fee_percent_bps, policy.fee_minimum),
        amount_captured=0,
        amount_refunded=0,
        application_fee_refunded=0,
        stripe_payment_intent_id=None,
        client_secret=None,
        description=request.description,
        receipt_email=request.receipt_email,
        metadata=dict(request.metadata),
        decline_code=None,
        failure_message=None,
        local_id=None,
        local_date=local_day(now, policy.timezone),
        created_at=now,
        updated_at=now,
        fee_percent_bps=policy.fee_percent_bps,
        fee_minimum=policy.fee_minimum,
    )


async def _first_attempt(
    ctx: Context, payment: Payment, answering: repo.KeyAnswer, print_: str
) -> tuple[Payment, bool]:
    """Phase 2 of the request that claimed the key, holding no connection during Stripe's call:
    then the payment, the key's answer and the audit record are written by one statement, if
    nothing moved the payment since phase 1 (an event, a retry that got there first) and the
    intent needs nothing more recorded (a success's totals). Otherwise `_complete` does it under
    the rows' locks, with the intent already in hand."""
    try:
        intent = await ctx.stripe.create_intent(payment)
    except (Unavailable, Conflict):
        raise  # outcome unknown or Stripe busy: the retry completes this same payment
    except DomainError as error:
        return await _complete(ctx, answering.organization_id, answering.member_id, answering.key, print_, error)
    payment.client_secret = payment.client_secret or intent.get("client_secret")
    take_intent(payment, intent)
    if payment.status != "succeeded":
        async with ctx.pool.acquire() as conn:
            recorded = await repo.record_created(conn, payment, answering, auditing.payment_record(EVENT, payment))
        if recorded:
            payment_reached(payment, EVENT)
            return payment, False
    return await _complete(ctx, answering.organization_id, answering.member_id, answering.key, print_, intent)


async def _complete(
    ctx: Context,
    organization_id: str,
    member_id: str,
    key: str,
    print_: str,
    outcome: dict[str, Any] | DomainError | None = None,
) -> tuple[Payment, bool]:
    """Phase 2 under the key's and the payment's row locks: a retry, a request that found its key
    claimed, and whatever `_first_attempt` could not record alone. Concurrent duplicates wait here,
    then get the answer. `outcome` is Stripe's answer to this payment's create when already asked
    (the intent, or the error it refused it with); else Stripe is asked (with the same key)."""
    refused: DomainError | None = None
    async with ctx.pool.acquire() as conn, conn.transaction():
        found = await repo.lock_key_and_payment(conn, organization_id, member_id, key)
        if found is None:
            raise Unavailable("the payment could not be recorded, retry with the same key", "idempotency_retry")
        key_print, operation, response, payment = found
        ensure_same_request(key_print, operation, print_, OPERATION)
        if response is not None:
            return decode_payment(response), True
        if payment is None:
            raise Unavailable("the payment could not be recorded, retry with the same key", "idempotency_retry")
        try:
            if isinstance(outcome, DomainError):
                raise outcome
            intent = outcome if outcome is not None else await ctx.stripe.create_intent(payment)
        except (Unavailable, Conflict):
            raise  # outcome unknown or Stripe busy: the retry completes this same payment
        except DomainError as error:
            # Stripe refused the request: nothing was created; the key may be used again.
            refused = error
            await repo.delete_key(conn, organization_id, member_id, key)
            await repo.delete_payment(conn, payment.id)
        else:
            payment.client_secret = payment.client_secret or intent.get("client_secret")
            # The one status writer saves the payment and the key's answer in one statement.
            answering = repo.KeyAnswer(organization_id, member_id, key)
            if not await lifecycle.apply_intent(conn, ctx, payment, intent, answering, EVENT):
                await repo.save_payment(conn, payment, answering)
            await auditing.payment_action(conn, EVENT, payment)
    if refused is not None:
        raise refused
    return payment, False
