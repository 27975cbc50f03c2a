"""Refunds: full or partial, several per payment, never above what is left (also when concurrent).

Phase 1 reserves the amount (a `pending` refund) under the payment's row lock; phase 2 calls
Stripe with a key derived from the refund id and records the result with the key's answer.
`charge.refunded` keeps the local state right for refunds made elsewhere (Stripe's dashboard).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from runtime.auth import Caller
from runtime.db import Connection
from runtime.errors import Conflict, DomainError, FieldError, InvalidArgument, NotFound, Unavailable
from services.payments import repository as repo
from services.payments.context import Context
from services.payments.creating import ensure_same_request, take_rate, validate_key
from services.payments.domain import (
    REFUND_REASONS,
    Payment,
    Refund,
    decode_refund,
    encode_refund,
    fee_refund_share,
    fingerprint,
)
from services.payments.stripe_calls import StripePayments

OPERATION = "create_refund"


async def create_refund(
    ctx: Context, caller: Caller, organization_id: str, payment_id: str, key: str, amount: int, reason: str
) -> tuple[Refund, bool]:
    validate_key(key)
    if reason and reason not in REFUND_REASONS:
        raise InvalidArgument(
            "the refund is invalid",
            "validation_error",
            [FieldError("reason", f"must be one of {', '.join(REFUND_REASONS)}")],
        )
    if amount < 0:
        raise InvalidArgument("the refund is invalid", "validation_error", [FieldError("amount", "must be positive")])
    print_ = fingerprint(OPERATION, {"payment_id": payment_id, "amount": amount, "reason": reason})
    member_id = caller.member_id
    async with ctx.pool.acquire() as conn, conn.transaction():
        if await repo.claim_key(conn, organization_id, member_id, key, OPERATION, print_):
            await take_rate(ctx, conn, member_id, 1)  # a new refund counts in the member's rate (not a replay)
            payment = await repo.get_payment(conn, payment_id, for_update=True)
            if payment is None or payment.organization_id != organization_id:
                raise NotFound("payment not found", "payment_not_found")
            if payment.status != "succeeded":
                raise Conflict(f"the payment cannot be refunded while {payment.status}", "payment_not_refundable")
            left = (
                payment.amount_captured - payment.amount_refunded - await repo.pending_refunds_total(conn, payment.id)
            )
            wanted = amount or left
            if left <= 0 or wanted > left:
                raise Conflict(
                    f"the refund ({wanted}) is more than what is left to refund ({max(left, 0)})",
                    "refund_exceeds_remaining",
                )
            refund = _new_refund(payment, wanted, reason)
            await repo.insert_refund(conn, refund)
            await repo.set_key_target(conn, organization_id, member_id, key, refund_id=refund.id)
    return await _complete(ctx, organization_id, member_id, key, print_)


async def _complete(ctx: Context, organization_id: str, member_id: str, key: str, print_: str) -> tuple[Refund, bool]:
    refused: DomainError | None = None
    async with ctx.pool.acquire() as conn, conn.transaction():
        row = await repo.lock_key(conn, organization_id, member_id, key)
        if row is None:
            raise Unavailable("the refund could not be recorded, retry with the same key", "idempotency_retry")
        ensure_same_request(row["fingerprint"], row["operation"], print_, OPERATION)
        if row["response"] is not None:
            return decode_refund(bytes(row["response"])), True
        refund = await repo.get_refund(conn, str(row["refund_id"]))
        assert refund is not None
        payment = await repo.get_payment(conn, refund.payment_id, for_update=True)
        assert payment is not None
        refund = await repo.get_refund(conn, refund.id, for_update=True)
        assert refund is not None
        if refund.status == "pending":
            if payment.method == "cash":
                await _succeed(conn, payment, refund, None)
            else:
                try:
                    created = await ctx.stripe.create_refund(payment, refund)
                except (Unavailable, Conflict):
                    raise
                except DomainError as error:
                    refused = error
                    refund.status = "failed"
                    refund.failure_reason = error.message[:500]
                    await repo.save_refund(conn, refund)
                    await repo.delete_key(conn, organization_id, member_id, key)
                else:
                    ctx.faults.hit("after_stripe_refund")
                    if created.get("status") == "failed":
                        refund.status = "failed"
                        refund.failure_reason = str(created.get("failure_reason") or "failed")
                        await repo.save_refund(conn, refund)
                    else:
                        await _succeed(conn, payment, refund, str(created["id"]))
        if refused is None:
            await repo.store_response(conn, organization_id, member_id, key, encode_refund(refund))
    if refused is not None:
        raise refused
    return refund, False


async def _succeed(conn: Connection, payment: Payment, refund: Refund, stripe_refund_id: str | None) -> None:
    """Marks the (locked) refund succeeded and moves the payment's and the day's figures."""
    fee_back = fee_refund_share(
        refund.amount,
        payment.amount_captured,
        payment.application_fee_amount,
        payment.application_fee_refunded,
        payment.amount_refunded,
    )
    refund.status = "succeeded"
    refund.stripe_refund_id = stripe_refund_id
    refund.application_fee_refunded = fee_back
    payment.amount_refunded += refund.amount
    payment.application_fee_refunded += fee_back
    await repo.save_refund(conn, refund)
    await repo.save_payment(conn, payment)
    await repo.add_to_day(conn, payment, refunded=refund.amount, fees=-fee_back)


async def sync_from_charge(conn: Connection, stripe: StripePayments, payment: Payment, charge: dict[str, Any]) -> bool:
    """Applies `charge.refunded` to the (locked) payment: records refunds made outside the API.

    Newer API versions send the charge without its refund list: the refunds are then read from
    Stripe as they are now, so that a refund that has failed since is not counted.
    """
    if payment.status != "succeeded":
        return False
    changed = False
    refunds = charge.get("refunds")
    listed = (refunds or {}).get("data") if isinstance(refunds, dict) else None
    if listed is None and charge.get("id"):
        listed = await stripe.refunds_of_charge(payment, str(charge["id"]))
    for item in sorted(listed or [], key=lambda r: r.get("created") or 0):
        stripe_id = str(item.get("id") or "")
        if not stripe_id or item.get("status") not in ("succeeded", "pending", None):
            continue
        if await repo.refund_by_stripe_id(conn, stripe_id) is not None:
            continue
        ours = str((item.get("metadata") or {}).get("platform_refund_id") or "")
        refund = await repo.get_refund(conn, ours, for_update=True) if ours else None
        if refund is not None and refund.payment_id == payment.id:
            if refund.status != "pending":
                continue
        else:
            refund = _new_refund(payment, int(item.get("amount") or 0), str(item.get("reason") or ""))
            if refund.amount <= 0 or refund.amount > payment.amount_captured - payment.amount_refunded:
                continue
            await repo.insert_refund(conn, refund)
        await _succeed(conn, payment, refund, stripe_id)
        changed = True
    return changed


# Stripe's events about one refund (`charge.refund.updated` is the one the platform subscribes to).
REFUND_EVENTS = frozenset({"charge.refund.updated", "refund.updated", "refund.failed"})
_UNDONE = ("failed", "canceled")


async def apply_refund_update(conn: Connection, obj: dict[str, Any]) -> bool:
    """A refund that Stripe failed or canceled after accepting it: the customer was never paid
    back, so the payment's refunded amount, its fee share and the day's figures are put back.

    A refund still pending here is only marked failed; one already failed changes nothing.
    """
    status = str(obj.get("status") or "")
    stripe_id = str(obj.get("id") or "")
    if status not in _UNDONE or not stripe_id:
        return False
    found = await repo.refund_by_stripe_id(conn, stripe_id)
    if found is None:
        ours = str((obj.get("metadata") or {}).get("platform_refund_id") or "")
        found = await repo.get_refund(conn, ours) if ours else None
    if found is None:
        return False
    payment = await repo.get_payment(conn, found.payment_id, for_update=True)  # payment, then refund
    refund = await repo.get_refund(conn, found.id, for_update=True)
    if payment is None or refund is None or refund.status not in ("pending", "succeeded"):
        return False
    was_succeeded = refund.status == "succeeded"
    refund.status = "failed"
    refund.stripe_refund_id = refund.stripe_refund_id or stripe_id
    refund.failure_reason = str(obj.get("failure_reason") or status)[:500]
    if was_succeeded:
        payment.amount_refunded -= refund.amount
        payment.application_fee_refunded -= refund.application_fee_refunded
        await repo.save_payment(conn, payment)
        await repo.add_to_day(conn, payment, refunded=-refund.amount, fees=refund.application_fee_refunded)
    await repo.save_refund(conn, refund)
    return True


def _new_refund(payment: Payment, amount: int, reason: str) -> Refund:
    """A pending refund: asked through the API, or found at Stripe (made in its dashboard)."""
    return Refund(
        id=str(uuid.uuid4()),
        payment_id=payment.id,
        amount=amount,
        currency=payment.currency,
        reason=reason,
        status="pending",
        stripe_refund_id=None,
        application_fee_refunded=0,
        failure_reason=None,
        created_at=datetime.now(UTC),
    )
