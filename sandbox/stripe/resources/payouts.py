"""Payouts to the account's bank: `in_transit` at creation, `paid` after the configured delay."""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import Any

from ..context import Ctx
from ..currencies import checked_currency
from ..ids import new_id
from ..state import SandboxState
from ..store import StripeObject, created_filter, paginate
from ..wire import StripeError, apply_metadata, get_int, get_str, invalid

logger = logging.getLogger("sandbox.stripe.payouts")


def create(ctx: Ctx) -> StripeObject:
    state = ctx.state
    account = state.account(ctx.account)
    assert account is not None
    amount = get_int(ctx.params, "amount", required=True, minimum=1)
    assert amount is not None
    currency = checked_currency(get_str(ctx.params, "currency") or account["default_currency"])
    if not account["payouts_enabled"]:
        raise invalid("Payouts are not enabled for this account.", code="payouts_not_allowed")
    method = get_str(ctx.params, "method") or "standard"
    if method not in ("standard", "instant"):
        raise invalid(f"Invalid method: {method}", param="method")
    available = state.ledger.available(ctx.account, currency)
    if amount > available:
        raise StripeError(
            400,
            f"You have insufficient funds in your Stripe account for this payout "
            f"(available: {available} {currency}, requested: {amount}).",
            code="balance_insufficient",
        )
    payout_id = new_id("po")
    now = int(time.time())
    descriptor = get_str(ctx.params, "statement_descriptor")
    payout: StripeObject = {
        "id": payout_id,
        "object": "payout",
        "amount": amount,
        "application_fee": None,
        "application_fee_amount": None,
        "arrival_date": now,
        "automatic": False,
        "balance_transaction": None,
        "created": now,
        "currency": currency,
        "description": get_str(ctx.params, "description") or "STRIPE PAYOUT",
        "destination": f"ba_{ctx.account[5:]}",
        "failure_balance_transaction": None,
        "failure_code": None,
        "failure_message": None,
        "livemode": False,
        "metadata": {},
        "method": method,
        "original_payout": None,
        "payout_method": None,
        "reconciliation_status": "not_applicable",
        "reversed_by": None,
        "source_type": get_str(ctx.params, "source_type") or "card",
        "statement_descriptor": descriptor,
        "status": "in_transit",
        "trace_id": {"status": "pending", "value": None},
        "type": "bank_account",
    }
    apply_metadata(payout, ctx.params)
    swept = state.ledger.sweep_into_payout(ctx.account, payout_id, currency)
    txn = state.ledger.record(ctx.account, -amount, currency, "payout", payout_id, sweepable=False)
    state.ledger.payout_txns[payout_id] = [*swept, txn["id"]]
    state.ledger.txn_payout[txn["id"]] = payout_id
    payout["balance_transaction"] = txn["id"]
    state.store.add(ctx.account, payout)
    ctx.emit("payout.created", payout)
    if state.config.payout_auto_pay:
        owner = ctx.account
        state.later(state.config.payout_delay_seconds, lambda: pay(state, owner, payout_id))
    return payout


def pay(state: SandboxState, account: str, payout_id: str) -> StripeObject | None:
    """Mark an in-transit payout paid, emit `payout.paid`, and credit the Qonto sandbox if configured."""
    payout = state.store.objects.get(payout_id)
    if payout is None or payout["status"] != "in_transit":
        return payout
    payout["status"] = "paid"
    payout["reconciliation_status"] = "completed"
    payout["trace_id"] = {"status": "supported", "value": f"SBX{payout_id[3:15].upper()}"}
    state.emit(account, "payout.paid", payout, {"status": "in_transit"})
    url = state.config.qonto_credit_url
    if url:
        body: dict[str, Any] = {
            "amount_cents": payout["amount"],
            "currency": payout["currency"].upper(),
            "side": "credit",
            "operation_type": "transfer",
            "label": "STRIPE PAYMENTS UK LTD",
            "reference": payout["statement_descriptor"] or payout_id,
            "settled_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
            "status": "completed",
        }
        headers = {"Authorization": state.config.qonto_credit_auth} if state.config.qonto_credit_auth else {}
        state.webhooks.run_background(lambda: _credit_qonto(state, url, body, headers))
    return payout


async def _credit_qonto(state: SandboxState, url: str, body: dict[str, Any], headers: dict[str, str]) -> None:
    import asyncio

    import httpx

    client = state.webhooks.client
    if client is None:
        return
    for attempt in range(5):
        try:
            response = await client.post(url, json=body, headers=headers)
            if response.status_code < 300:
                return
            logger.warning("qonto credit answered %s", response.status_code)
        except httpx.HTTPError as exc:
            logger.warning("qonto credit failed: %s", exc)
        await asyncio.sleep(state.config.webhook_retry_base_seconds * 2**attempt)


def fail(state: SandboxState, account: str, payout_id: str, code: str = "account_closed") -> StripeObject:
    """Fail a payout: funds return to the balance and `payout.failed` fires."""
    payout = state.store.objects[payout_id]
    if payout["status"] in ("failed", "canceled"):
        return payout
    previous = {"status": payout["status"]}
    txn = state.ledger.record(account, payout["amount"], payout["currency"], "payout_failure", payout_id)
    payout["status"] = "failed"
    payout["failure_code"] = code
    payout["failure_message"] = "The bank account has been closed."
    payout["failure_balance_transaction"] = txn["id"]
    state.emit(account, "payout.failed", payout, previous)
    return payout


def cancel(ctx: Ctx, payout_id: str) -> StripeObject:
    """A payout not yet paid is canceled: its funds come back to the balance (`payout.canceled`)."""
    payout = retrieve(ctx, payout_id)
    if payout["status"] not in ("pending", "in_transit"):
        raise invalid(
            f"Payouts can only be canceled while they are pending; this payout has a status of {payout['status']}."
        )
    previous = {"status": payout["status"]}
    txn = ctx.state.ledger.record(
        ctx.account, payout["amount"], payout["currency"], "payout_cancel", payout_id, sweepable=False
    )
    payout["status"] = "canceled"
    payout["failure_balance_transaction"] = txn["id"]
    ctx.emit("payout.canceled", payout, previous)
    return payout


def reverse(ctx: Ctx, payout_id: str) -> StripeObject:
    """A paid payout debited back from the bank account: a new payout, `original_payout` set,
    funds back in the balance."""
    payout = retrieve(ctx, payout_id)
    if payout["status"] != "paid" or payout["reversed_by"]:
        raise invalid(
            f"This payout cannot be reversed (status {payout['status']}"
            f"{', already reversed' if payout['reversed_by'] else ''}).",
        )
    reversal_id = new_id("po")
    txn = ctx.state.ledger.record(
        ctx.account, payout["amount"], payout["currency"], "payout", reversal_id, sweepable=False
    )
    reversal: StripeObject = {
        **payout,
        "id": reversal_id,
        "amount": -payout["amount"],
        "balance_transaction": txn["id"],
        "created": int(time.time()),
        "metadata": {},
        "original_payout": payout_id,
        "reversed_by": None,
        "status": "paid",
        "trace_id": {"status": "supported", "value": f"SBX{reversal_id[3:15].upper()}"},
    }
    apply_metadata(reversal, ctx.params)
    ctx.state.store.add(ctx.account, reversal)
    payout["reversed_by"] = reversal_id
    ctx.emit("payout.created", reversal)
    ctx.emit("payout.paid", reversal)
    ctx.emit("payout.updated", payout, {"reversed_by": None})
    return reversal


def retrieve(ctx: Ctx, payout_id: str) -> StripeObject:
    return ctx.state.store.get(ctx.account, payout_id, "payout")


def update(ctx: Ctx, payout_id: str) -> StripeObject:
    payout = retrieve(ctx, payout_id)
    apply_metadata(payout, ctx.params)
    return payout


def list_payouts(ctx: Ctx) -> StripeObject:
    status = ctx.params.get("status")
    created = created_filter(ctx.params)
    arrival = created_filter(ctx.params, "arrival_date")

    def keep(payout: StripeObject) -> bool:
        return (
            (not status or payout["status"] == status)
            and (created is None or created(payout))
            and (arrival is None or arrival(payout))
        )

    return paginate(ctx.state.store.newest_first(ctx.account, "payout"), ctx.params, "/v1/payouts", keep)


ROUTES = [
    ("POST", "/v1/payouts", create),
    ("GET", "/v1/payouts", list_payouts),
    ("GET", "/v1/payouts/{}", retrieve),
    ("POST", "/v1/payouts/{}", update),
    ("POST", "/v1/payouts/{}/cancel", cancel),
    ("POST", "/v1/payouts/{}/reverse", reverse),
]
