"""Refunds: full or partial, several per payment, never above what is left (also when concurrent).

Phase 1 reserves the amount (a `pending` refund) under the payment's row lock; phase 2 calls
Stripe with a key derived from the refund id and records the result with the key's answer.
`charge.refunded` keeps the local state right for refunds made elsewhere (Stripe's dashboard).
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import Any

from runtime.auth import Caller
from runtime.db import Connection
from runtime.errors import Conflict, DomainError, NotFound, Unavailable
from services.payments import auditing, books, creating
from services.payments import repository as repo
from services.payments.context import Context
from services.payments.creating import take_rate
from services.payments.domain import (
    BookMove,
    Payment,
    Refund,
    decode_refund,
    encode_refund,
    fee_refund_share,
    fingerprint,
    local_day,
)
from services.payments.telemetry import refund_reached

OPERATION = "create_refund"
log = logging.getLogger("payments.refunds")


async def create_refund(
    ctx: Context, caller: Caller, organization_id: str, payment_id: str, key: str, amount: int, reason: str
) -> tuple[Refund, bool]:
    # The reason's closed set and the amount's bound are the proto's (checked by the runtime).
    creating.validate_key(key)
    print_ = fingerprint(OPERATION, {"payment_id": payment_id, "amount": amount, "reason": reason})
    member_id = caller.member_id
    timezone = (await ctx.policies.get(organization_id)).timezone
    async with ctx.pool.acquire() as conn, conn.transaction():
        if await repo.claim_key(conn, organization_id, member_id, key, OPERATION, print_):
            await take_rate(ctx, conn, member_id, 1)  # a new refund counts in the member's rate (not a replay)
            payment = await repo.get_payment(conn, payment_id, for_update=True)
            if payment is None or payment.organization_id != organization_id:
                raise NotFound("payment not found", "payment_not_found")
            if payment.status != "succeeded":
                raise Conflict(f"the payment cannot be refunded while {payment.status}", "payment_not_refundable")
            if await repo.has_dispute(conn, payment.id):  # Stripe refuses it: the bank decides now
                raise Conflict("the payment is disputed: it cannot be refunded", "payment_disputed")
            left = (
                payment.amount_captured - payment.amount_refunded - await repo.pending_refunds_total(conn, payment.id)
            )
            wanted = amount or left
            if left <= 0 or wanted > left:
                raise Conflict(
                    f"the refund ({wanted}) is more than what is left to refund ({max(left, 0)})",
                    "refund_exceeds_remaining",
                )
            refund = _new_refund(payment, wanted, reason, timezone, datetime.now(UTC))
            await repo.insert_refund(conn, refund)
            await repo.set_key_target(conn, organization_id, member_id, key, refund_id=refund.id)
    return await _complete(ctx, organization_id, member_id, key, print_)


async def _complete(ctx: Context, organization_id: str, member_id: str, key: str, print_: str) -> tuple[Refund, bool]:
    refused: DomainError | None = None
    async with ctx.pool.acquire() as conn, conn.transaction():
        row = await repo.lock_key(conn, organization_id, member_id, key)
        if row is None:
            raise Unavailable("the refund could not be recorded, retry with the same key", "idempotency_retry")
        creating.ensure_same_request(row["fingerprint"], row["operation"], print_, OPERATION)
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
                await _succeed(conn, ctx, payment, refund, None)
            else:
                try:
                    created = await ctx.stripe.create_refund(payment, refund)
                except (Unavailable, Conflict):
                    raise
                except DomainError as error:
                    refused = error
                    if error.code == "stripe_amount_too_large":
                        # Refunded elsewhere (the dashboard) meanwhile, its event not here yet: what
                        # is left is less than this platform knows, the same answer as when it knows.
                        refused = Conflict(
                            f"the refund is more than what is left to refund at Stripe: {error.message}",
                            "refund_exceeds_remaining",
                        )
                    refund.status = "failed"
                    refund.failure_reason = error.message[:500]
                    await repo.save_refund(conn, refund)
                    await repo.delete_key(conn, organization_id, member_id, key)
                else:
                    if created.get("status") == "failed":
                        refund.status = "failed"
                        refund.failure_reason = str(created.get("failure_reason") or "failed")
                        await repo.save_refund(conn, refund)
                    else:
                        await _succeed(conn, ctx, payment, refund, str(created["id"]))
        if refused is None:
            await repo.store_response(conn, organization_id, member_id, key, encode_refund(refund))
            await auditing.refund_action(conn, "refund.created", payment, refund)
    if refused is not None:
        raise refused
    return refund, False


async def _succeed(
    conn: Connection, ctx: Context, payment: Payment, refund: Refund, stripe_refund_id: str | None
) -> None:
    """Marks the (locked) refund succeeded, moves the payment's figures and books it (with the
    figures of the day it succeeded)."""
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
    await books.book(conn, ctx, payment, BookMove("refund", refund.id, refund.amount, application_fee=fee_back))
    refund_reached(refund, payment)


async def sync_from_charge(conn: Connection, ctx: Context, payment: Payment, charge_id: str) -> bool:
    """Makes the (locked, succeeded) payment's refunds what Stripe has for the charge now.

    Every `charge.refunded` and refund event leads here, whatever its payload says: Stripe's
    events come in any order and a payload may be older than the refund's fate, so the refunds are
    read as they are now. A refund made elsewhere (the dashboard) is recorded, ours still pending is
    completed, and one Stripe failed or canceled since is put back; each is applied once.
    """
    if payment.status != "succeeded" or not charge_id:
        return False
    changed = False
    listed = await ctx.stripe.refunds_of_charge(payment, charge_id)
    for item in sorted(listed, key=lambda r: (r.get("created") or 0, str(r.get("id") or ""))):
        stripe_id = str(item.get("id") or "")
        status = str(item.get("status") or "")
        if not stripe_id:
            continue
        refund = await _known_refund(conn, payment, stripe_id, item)
        if status in _UNDONE:
            if refund is not None and refund.status in ("pending", "succeeded"):
                await _undo(conn, ctx, payment, refund, stripe_id, str(item.get("failure_reason") or status))
                changed = True
            continue
        if status not in ("succeeded", "pending"):
            continue
        if refund is None:
            amount = int(item.get("amount") or 0)
            if amount <= 0 or amount > payment.amount_captured - payment.amount_refunded:
                continue
            timezone = (await ctx.policies.get(payment.organization_id)).timezone
            created = datetime.fromtimestamp(int(item.get("created") or 0), UTC) if item.get("created") else None
            refund = _new_refund(payment, amount, str(item.get("reason") or ""), timezone, created or datetime.now(UTC))
            await repo.insert_refund(conn, refund)
        elif refund.status != "pending":
            continue
        await _succeed(conn, ctx, payment, refund, stripe_id)
        changed = True
    return changed


async def _known_refund(conn: Connection, payment: Payment, stripe_id: str, item: dict[str, Any]) -> Refund | None:
    """Our record of a Stripe refund (by its id, or by ours in its metadata), locked."""
    found = await repo.refund_by_stripe_id(conn, stripe_id)
    if found is None:
        ours = str((item.get("metadata") or {}).get("platform_refund_id") or "")
        found = await repo.get_refund(conn, ours) if ours else None
    if found is None or found.payment_id != payment.id:
        return None
    return await repo.get_refund(conn, found.id, for_update=True)


# Stripe's events about one refund (`charge.refund.updated` is the one the platform subscribes to).
REFUND_EVENTS = frozenset({"charge.refund.updated", "refund.updated", "refund.failed"})
_UNDONE = ("failed", "canceled")


async def _undo(conn: Connection, ctx: Context, payment: Payment, refund: Refund, stripe_id: str, reason: str) -> None:
    """A refund that Stripe failed or canceled: the customer was never paid back, so the payment's
    refunded amount and its fee share are put back, and a refund already booked is undone in the
    books on the day it failed (`refund_failed`): the day it was booked on never changes."""
    was_succeeded = refund.status == "succeeded"
    refund.status = "failed"
    refund.stripe_refund_id = refund.stripe_refund_id or stripe_id
    refund.failure_reason = reason[:500]
    if was_succeeded:
        payment.amount_refunded -= refund.amount
        payment.application_fee_refunded -= refund.application_fee_refunded
        await repo.save_payment(conn, payment)
        undone = BookMove("refund_failed", refund.id, refund.amount, application_fee=refund.application_fee_refunded)
        await books.book(conn, ctx, payment, undone)
    await repo.save_refund(conn, refund)
    refund_reached(refund, payment)


def _new_refund(payment: Payment, amount: int, reason: str, timezone: str, created_at: datetime) -> Refund:
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
        created_at=created_at,
        local_date=local_day(created_at, timezone),
    )


async def sweep_refunds(ctx: Context, older_than_seconds: float, limit: int = 50) -> int:
    """Refunds whose outcome is unknown (the Stripe call timed out, or the process died after it)
    keep their amount reserved: re-reads each at Stripe and completes it (succeeded there), fails it
    (failed there) or releases it (never created: nothing was refunded). Returns how many it settled.

    `older_than_seconds` must exceed the longest a refund request can still be under way at Stripe.
    """
    settled = 0
    async with ctx.pool.acquire() as conn, conn.transaction():
        if not await repo.lock_refund_sweep(conn):
            return 0  # another replica is sweeping
        for payment_id, refund_id in await repo.stale_pending_refunds(conn, older_than_seconds, limit):
            payment = await repo.get_payment(conn, payment_id)
            refund = await repo.get_refund(conn, refund_id, for_update=True)
            if payment is None or refund is None or refund.status != "pending":
                continue
            if payment.method == "cash":
                await _succeed(conn, ctx, payment, refund, None)  # nothing outside to ask: it was decided here
                settled += 1
                continue
            try:
                listed = await ctx.stripe.refunds_of_intent(payment)
            except DomainError as error:
                log.warning("refund sweep: %s unreadable at Stripe: %s", refund.id, error.message)
                continue
            mine = [r for r in listed if (r.get("metadata") or {}).get("platform_refund_id") == refund.id]
            if not mine:
                refund.status = "failed"
                refund.failure_reason = "not created at Stripe (the request's outcome was unknown): released"
                await repo.save_refund(conn, refund)
            elif str(mine[0].get("status")) in _UNDONE:
                await _undo(
                    conn, ctx, payment, refund, str(mine[0]["id"]), str(mine[0].get("failure_reason") or "failed")
                )
            else:
                await _succeed(conn, ctx, payment, refund, str(mine[0]["id"]))
            settled += 1
    return settled
