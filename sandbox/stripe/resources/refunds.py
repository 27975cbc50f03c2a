"""Refunds of captured charges, optionally reversing the transfer and refunding the application fee."""

from __future__ import annotations

import time
from typing import Any

from ..context import Ctx
from ..ids import new_id
from ..money import refund_application_fee, reverse_transfer
from ..state import SandboxState
from ..store import StripeObject, created_filter, paginate
from ..wire import StripeError, apply_metadata, get_bool, get_int, get_str, invalid
from .payment_methods import REFUND_FAILS_LAST4

_REASONS = {"duplicate", "fraudulent", "requested_by_customer"}


def _charge_for(ctx: Ctx) -> StripeObject:
    store = ctx.state.store
    charge_id = get_str(ctx.params, "charge")
    intent_id = get_str(ctx.params, "payment_intent")
    if charge_id:
        return store.get(ctx.account, charge_id, "charge")
    if not intent_id:
        raise invalid(
            "One of `charge` or `payment_intent` is required.", param="payment_intent", code="parameter_missing"
        )
    intent = store.get(ctx.account, intent_id, "payment_intent")
    if intent["status"] != "succeeded" or not intent["latest_charge"]:
        raise StripeError(
            400,
            f"This PaymentIntent ({intent_id}) does not have a successful charge to refund.",
            param="payment_intent",
            code="charge_not_refundable" if intent["status"] != "requires_capture" else "charge_not_captured",
        )
    return store.objects[intent["latest_charge"]]


def create_refund(ctx: Ctx) -> StripeObject:
    return refund(ctx, _charge_for(ctx))


def refund(ctx: Ctx, charge: StripeObject) -> StripeObject:
    """Refund (part of) a captured charge with the request's `amount`, `reason`, `metadata`,
    `reverse_transfer` and `refund_application_fee`."""
    state = ctx.state
    if not charge["captured"] or charge["status"] != "succeeded":
        raise StripeError(400, f"Charge {charge['id']} has not been captured.", code="charge_not_refundable")
    if charge["disputed"]:
        raise StripeError(
            400, f"Charge {charge['id']} has been charged back; cannot issue a refund.", code="charge_disputed"
        )
    remaining = charge["amount_captured"] - charge["amount_refunded"]
    if remaining <= 0:
        raise StripeError(400, f"Charge {charge['id']} has already been refunded.", code="charge_already_refunded")
    amount = get_int(ctx.params, "amount", minimum=1)
    if amount is None:
        amount = remaining
    if amount > remaining:
        raise StripeError(
            400,
            f"Refund amount ({amount}) is greater than unrefunded amount on charge ({remaining})",
            param="amount",
            code="amount_too_large",
        )
    reason = get_str(ctx.params, "reason")
    if reason is not None and reason not in _REASONS:
        raise invalid(f"Invalid reason: {reason}", param="reason")
    reverse = get_bool(ctx.params, "reverse_transfer")
    refund_fee = get_bool(ctx.params, "refund_application_fee")
    transfer = state.store.objects.get(charge["transfer"]) if charge.get("transfer") else None
    if reverse and transfer is None:
        raise invalid("This charge has no transfer to reverse.", param="reverse_transfer")
    refund_id = new_id("re")
    txn = state.ledger.record(ctx.account, -amount, charge["currency"], "refund", refund_id)
    refund: StripeObject = {
        "id": refund_id,
        "object": "refund",
        "amount": amount,
        "balance_transaction": txn["id"],
        "charge": charge["id"],
        "created": int(time.time()),
        "currency": charge["currency"],
        "customer": None,
        "customer_account": None,
        "destination_details": {
            "type": charge["payment_method_details"]["type"],
            charge["payment_method_details"]["type"]: {},
        },
        "metadata": {},
        "payment_intent": charge["payment_intent"],
        "payment_method": charge["payment_method"],
        "reason": reason,
        "receipt_number": None,
        "source_transfer_reversal": None,
        "status": "succeeded",
        "transfer_reversal": None,
    }
    apply_metadata(refund, ctx.params)
    captured = charge["amount_captured"]
    final = amount == remaining
    if reverse and transfer is not None:
        left = transfer["amount"] - transfer["amount_reversed"]
        # Pro rata of the refund; the last refund takes whatever is left, so rounding never strands cents.
        share = left if final else min(left, amount * transfer["amount"] // captured)
        if share > 0:
            reversal = reverse_transfer(ctx, transfer, share, source_refund=refund_id)
            refund["transfer_reversal"] = reversal["id"]
    fee = state.store.objects.get(charge["application_fee"]) if charge.get("application_fee") else None
    if refund_fee and fee is not None:
        left = fee["amount"] - fee["amount_refunded"]
        share = left if final else min(left, amount * fee["amount"] // captured)
        if share > 0:
            refund_application_fee(ctx, fee, share)
    state.store.add(ctx.account, refund)
    previous = {"amount_refunded": charge["amount_refunded"], "refunded": charge["refunded"]}
    charge["amount_refunded"] += amount
    charge["refunded"] = charge["amount_refunded"] >= captured
    charge["refunds"]["data"].insert(0, refund)
    ctx.emit("refund.created", refund)
    ctx.emit("charge.refunded", charge, previous)
    details = charge["payment_method_details"]
    if (details.get(details["type"]) or {}).get("last4") == REFUND_FAILS_LAST4:
        account = ctx.account
        state.later(state.config.refund_failure_delay_seconds, lambda: fail_refund(state, account, refund_id))
    return refund


def fail_refund(state: SandboxState, account: str, refund_id: str) -> None:
    """The bank refused the refund (card closed): the money comes back to the balance."""
    refund = state.store.objects.get(refund_id)
    if refund is None or refund["status"] != "succeeded":
        return
    charge = state.store.objects[refund["charge"]]
    txn = state.ledger.record(account, refund["amount"], refund["currency"], "refund_failure", refund_id)
    refund.update(status="failed", failure_reason="expired_or_canceled_card", failure_balance_transaction=txn["id"])
    previous = {"amount_refunded": charge["amount_refunded"], "refunded": charge["refunded"]}
    charge["amount_refunded"] -= refund["amount"]
    charge["refunded"] = False
    state.emit(account, "charge.refund.updated", refund, {"status": "succeeded"})
    state.emit(account, "refund.updated", refund, {"status": "succeeded"})
    state.emit(account, "refund.failed", refund)
    state.emit(account, "charge.updated", charge, previous)


def cancel_refund(ctx: Ctx, refund_id: str) -> StripeObject:
    """Only a refund waiting for an action can be canceled; the sandbox's refunds never wait."""
    refund = retrieve_refund(ctx, refund_id)
    if refund["status"] != "requires_action":
        raise StripeError(
            400,
            f"Refund {refund_id} cannot be canceled because it has a status of {refund['status']}. "
            "Only refunds with a status of requires_action can be canceled.",
        )
    refund["status"] = "canceled"
    ctx.emit("refund.updated", refund, {"status": "requires_action"})
    return refund


def retrieve_refund(ctx: Ctx, refund_id: str) -> StripeObject:
    return ctx.state.store.get(ctx.account, refund_id, "refund")


def update_refund(ctx: Ctx, refund_id: str) -> StripeObject:
    refund = retrieve_refund(ctx, refund_id)
    previous: dict[str, Any] = {"metadata": refund["metadata"]}
    apply_metadata(refund, ctx.params)
    ctx.emit("refund.updated", refund, previous)
    return refund


def list_refunds(ctx: Ctx) -> StripeObject:
    charge = ctx.params.get("charge")
    intent = ctx.params.get("payment_intent")
    created = created_filter(ctx.params)

    def keep(refund: StripeObject) -> bool:
        return (
            (not charge or refund["charge"] == charge)
            and (not intent or refund["payment_intent"] == intent)
            and (created is None or created(refund))
        )

    return paginate(ctx.state.store.newest_first(ctx.account, "refund"), ctx.params, "/v1/refunds", keep)


ROUTES = [
    ("POST", "/v1/refunds", create_refund),
    ("GET", "/v1/refunds", list_refunds),
    ("GET", "/v1/refunds/{}", retrieve_refund),
    ("POST", "/v1/refunds/{}", update_refund),
    ("POST", "/v1/refunds/{}/cancel", cancel_refund),
]
