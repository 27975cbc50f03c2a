"""A payment's life after creation: capture, cancel, and Stripe's `payment_intent.*` / `charge.*` events."""

from __future__ import annotations

from typing import Any

from runtime.auth import Caller, organization_scope
from runtime.db import Connection
from runtime.errors import Conflict, FieldError, InvalidArgument, NotFound
from runtime.inbox import APPLIED, IGNORED, InboundEvent
from services.payments import auditing, disputes, refunding
from services.payments import repository as repo
from services.payments.context import Context
from services.payments.domain import (
    FINAL,
    Payment,
    application_fee,
    fee_problem,
    stripe_account_option,
    take_intent,
)
from services.payments.telemetry import payment_reached


async def record_success(conn: Connection, ctx: Context | None, payment: Payment) -> None:
    """What a payment's success adds, in the transaction that records it: the day's totals, its receipt."""
    await repo.add_to_day(conn, payment, count=1, gross=payment.amount_captured, fees=payment.application_fee_amount)
    payment_reached(payment)
    if payment.receipt_email and await repo.queue_receipt(conn, payment.id, payment.receipt_email) and ctx:
        ctx.receipts_due.set()


async def apply_intent(
    conn: Connection,
    ctx: Context | None,
    payment: Payment,
    intent: dict[str, Any],
    answering: repo.KeyAnswer | None = None,
    event: str = "",
) -> bool:
    """Moves the (locked) payment to the PaymentIntent's state, forward only; True when it changed
    (and was saved: with `answering`, together with that idempotency key's answer). `event` names
    the status reached in telemetry (default `payment.<status>`)."""
    before = payment.status
    if not take_intent(payment, intent):
        return False
    await repo.save_payment(conn, payment, answering)
    if payment.status == "succeeded" != before:
        await record_success(conn, ctx, payment)
    elif payment.status != before:
        payment_reached(payment, event)
    return True


async def payment_scope(ctx: Context, caller: Caller, requested: str, payment_id: str) -> str:
    """The organisation a call on one payment acts on: the caller's (members), the one named, or
    for a platform admin naming none, the payment's own (its id is enough)."""
    if caller.is_platform and not requested:
        async with ctx.pool.acquire() as conn:
            payment = await repo.get_payment(conn, payment_id)
        if payment is None:
            raise NotFound("payment not found", "payment_not_found")
        return payment.organization_id
    return organization_scope(caller, requested)


async def load(ctx: Context, organization_id: str, payment_id: str) -> Payment:
    async with ctx.pool.acquire() as conn:
        payment = await repo.get_payment(conn, payment_id)
        if payment is None or payment.organization_id != organization_id:
            raise NotFound("payment not found", "payment_not_found")
        payment.refunds = (await repo.refunds_of(conn, [payment.id])).get(payment.id, [])
    return payment


async def capture(ctx: Context, organization_id: str, payment_id: str, amount_to_capture: int) -> Payment:
    """Captures an authorised payment (all of it, or `amount_to_capture`); the fee follows the captured amount."""
    payment = await load(ctx, organization_id, payment_id)
    if payment.status not in FINAL and payment.status != "requires_capture" and payment.stripe_payment_intent_id:
        # Stripe's events may not have arrived yet: when in doubt, re-read the intent.
        intent = await ctx.stripe.retrieve_intent(payment.stripe_payment_intent_id, stripe_account_option(payment))
        payment = await _record_intent(ctx, payment.id, intent)
    if payment.status == "succeeded" and payment.capture_method == "manual":
        return payment  # captured already: a retried capture answers the same
    if payment.status != "requires_capture" or not payment.stripe_payment_intent_id:
        raise Conflict(f"the payment cannot be captured while {payment.status}", "payment_not_capturable")
    amount = amount_to_capture or payment.amount
    if not 0 < amount <= payment.amount:
        raise InvalidArgument(
            "amount_to_capture must be within the authorised amount",
            "invalid_capture_amount",
            [FieldError("amount_to_capture", f"must be 1..{payment.amount}")],
        )
    if problem := fee_problem(amount, payment.fee_percent_bps, payment.fee_minimum):
        raise InvalidArgument(
            "amount_to_capture is too small for the fee",
            "fee_exceeds_amount",
            [FieldError("amount_to_capture", problem)],
        )
    fee = min(payment.application_fee_amount, application_fee(amount, payment.fee_percent_bps, payment.fee_minimum))
    intent = await ctx.stripe.capture(payment, amount, fee)
    return await _record_intent(ctx, payment.id, intent, "payment.captured")


async def cancel(ctx: Context, organization_id: str, payment_id: str) -> Payment:
    payment = await load(ctx, organization_id, payment_id)
    if payment.status == "canceled":
        return payment
    if payment.status in FINAL or not payment.stripe_payment_intent_id:
        raise Conflict(f"the payment cannot be canceled while {payment.status}", "payment_not_cancelable")
    intent = await ctx.stripe.cancel(payment)
    return await _record_intent(ctx, payment.id, intent, "payment.canceled")


async def _record_intent(ctx: Context, payment_id: str, intent: dict[str, Any], action: str = "") -> Payment:
    async with ctx.pool.acquire() as conn, conn.transaction():
        payment = await repo.get_payment(conn, payment_id, for_update=True)
        assert payment is not None
        await apply_intent(conn, ctx, payment, intent)
        if action:  # the caller's capture or cancel (a re-read records nothing)
            await auditing.payment_action(conn, action, payment)
        payment.refunds = (await repo.refunds_of(conn, [payment.id])).get(payment.id, [])
    return payment


# Events that tell Payments nothing it does not know from its own calls.
_NOTHING_NEW = frozenset({"payment_intent.created", "charge.updated", "charge.pending"})


def event_handler(ctx: Context) -> Any:
    """The inbox handler for `payment_intent.*`, `charge.*` (disputes: `disputes.apply_event`) and refund events.

    Stripe sends events in any order: a charge or refund event about a payment not yet known as
    final first re-reads its PaymentIntent, and refund events re-read the charge's refunds, so
    every money event ends applied once whatever came before it.
    """

    async def handle(conn: Connection, event: InboundEvent) -> str:
        if event.type in _NOTHING_NEW:
            return IGNORED  # and no lock: it arrives while the create still holds the payment
        obj = event.data_object
        if event.type.startswith(disputes.EVENT_PREFIX):
            return await disputes.apply_event(conn, ctx, event)
        if event.type.startswith("payment_intent."):
            payment = await _payment_for(conn, str(obj.get("id") or ""), obj.get("metadata") or {})
            if payment is None:
                return IGNORED
            return APPLIED if await apply_intent(conn, ctx, payment, obj) else IGNORED
        if event.type in refunding.REFUND_EVENTS:
            intent_id, charge_id = str(obj.get("payment_intent") or ""), str(obj.get("charge") or "")
        elif event.type.startswith("charge."):
            intent_id, charge_id = str(obj.get("payment_intent") or ""), str(obj.get("id") or "")
        else:
            return IGNORED
        payment = await _payment_for(conn, intent_id, obj.get("metadata") or {})
        if payment is None:
            return IGNORED
        changed = False
        intent_id = intent_id or payment.stripe_payment_intent_id or ""
        if payment.status not in FINAL and intent_id:
            intent = await ctx.stripe.retrieve_intent(intent_id, stripe_account_option(payment))
            changed = await apply_intent(conn, ctx, payment, intent)
        if event.type == "charge.failed" and payment.status not in FINAL:
            outcome = obj.get("outcome") or {}
            payment.decline_code = outcome.get("reason") or obj.get("failure_code")
            payment.failure_message = obj.get("failure_message")
            await repo.save_payment(conn, payment)
            changed = True
        if event.type == "charge.refunded" or event.type in refunding.REFUND_EVENTS:
            changed = await refunding.sync_from_charge(conn, ctx, payment, charge_id) or changed
        return APPLIED if changed else IGNORED

    return handle


async def _payment_for(conn: Connection, intent_id: str, metadata: dict[str, Any]) -> Payment | None:
    """The payment of an intent, locked; by the platform id in metadata when the intent id is not recorded yet."""
    if intent_id:
        payment = await repo.get_payment_by_intent(conn, intent_id, for_update=True)
        if payment is not None:
            return payment
    platform_id = str(metadata.get("platform_payment_id") or "")
    if platform_id:
        payment = await repo.get_payment(conn, platform_id, for_update=True)
        if payment is not None and payment.stripe_payment_intent_id in (None, intent_id):
            return payment
    return None
