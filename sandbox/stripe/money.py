"""Money movements shared by resources: settling a charge, transfers, reversals, application fees."""

from __future__ import annotations

import time

from .context import Ctx
from .ids import new_id
from .store import StripeObject
from .wire import StripeError

APPLICATION_ID = "ca_sandbox"


def _stripe_fee_detail(amount: int, currency: str) -> dict[str, object]:
    return {
        "amount": amount,
        "application": None,
        "currency": currency,
        "description": "Stripe processing fees",
        "type": "stripe_fee",
    }


def settle_charge(ctx: Ctx, charge: StripeObject, amount: int) -> None:
    """Book a captured charge: balance transaction with fees, application fee, destination transfer."""
    state = ctx.state
    currency = charge["currency"]
    fee_details = [_stripe_fee_detail(state.ledger.stripe_fee(amount), currency)]
    fee_amount = charge.get("application_fee_amount")
    direct = not ctx.is_platform
    if fee_amount and direct:
        fee_details.append(
            {
                "amount": fee_amount,
                "application": APPLICATION_ID,
                "currency": currency,
                "description": "Application fee",
                "type": "application_fee",
            }
        )
    txn = state.ledger.record(
        ctx.account,
        amount,
        currency,
        "charge",
        charge["id"],
        fee_details=fee_details,
        description=charge["description"],
    )
    charge["balance_transaction"] = txn["id"]
    transfer_data = charge.get("transfer_data")
    if direct:
        if fee_amount:
            create_application_fee(ctx, charge, fee_amount, ctx.account, collect=True)
    elif transfer_data and transfer_data.get("destination"):
        destination = transfer_data["destination"]
        transfer_amount = transfer_data.get("amount") or amount - (fee_amount or 0)
        transfer = create_transfer(
            ctx, transfer_amount, currency, destination, source_transaction=charge["id"], check_balance=False
        )
        transfer["transfer_group"] = charge.get("transfer_group")
        charge["transfer"] = transfer["id"]
        if fee_amount:
            create_application_fee(ctx, charge, fee_amount, destination, collect=False)


def create_application_fee(ctx: Ctx, charge: StripeObject, amount: int, account: str, collect: bool) -> StripeObject:
    """An application fee on the platform; `collect` books it (direct charges) — for destination
    charges the platform already kept it by transferring less."""
    state = ctx.state
    fee_id = new_id("fee")
    txn_id = None
    if collect:
        txn = state.ledger.record(
            state.platform_id, amount, charge["currency"], "application_fee", fee_id, reporting_category="fee"
        )
        txn_id = txn["id"]
    fee: StripeObject = {
        "id": fee_id,
        "object": "application_fee",
        "account": account,
        "amount": amount,
        "amount_refunded": 0,
        "application": APPLICATION_ID,
        "balance_transaction": txn_id,
        "charge": charge["id"],
        "created": int(time.time()),
        "currency": charge["currency"],
        "fee_source": {"charge": charge["id"], "type": "charge"},
        "livemode": False,
        "originating_transaction": None,
        "refunded": False,
        "refunds": {"object": "list", "data": [], "has_more": False, "url": f"/v1/application_fees/{fee_id}/refunds"},
    }
    state.store.add(state.platform_id, fee)
    charge["application_fee"] = fee_id
    state.emit(state.platform_id, "application_fee.created", fee)
    return fee


def refund_application_fee(ctx: Ctx, fee: StripeObject, amount: int) -> StripeObject:
    state = ctx.state
    remaining = fee["amount"] - fee["amount_refunded"]
    if remaining <= 0:
        raise StripeError(
            400, f"Application fee {fee['id']} has already been refunded.", code="charge_already_refunded"
        )
    if amount > remaining:
        raise StripeError(
            400,
            f"Refund amount ({amount}) is greater than unrefunded amount on fee ({remaining})",
            param="amount",
            code="amount_too_large",
        )
    refund_id = new_id("fr")
    txn = state.ledger.record(
        state.platform_id, -amount, fee["currency"], "application_fee_refund", refund_id, reporting_category="fee"
    )
    state.ledger.record(fee["account"], amount, fee["currency"], "application_fee_refund", refund_id)
    refund: StripeObject = {
        "id": refund_id,
        "object": "fee_refund",
        "amount": amount,
        "balance_transaction": txn["id"],
        "created": int(time.time()),
        "currency": fee["currency"],
        "fee": fee["id"],
        "metadata": {},
    }
    state.store.add(state.platform_id, refund)
    previous = {"amount_refunded": fee["amount_refunded"], "refunded": fee["refunded"]}
    fee["amount_refunded"] += amount
    fee["refunded"] = fee["amount_refunded"] >= fee["amount"]
    fee["refunds"]["data"].insert(0, refund)
    state.emit(state.platform_id, "application_fee.refunded", fee, previous)
    return refund


def create_transfer(
    ctx: Ctx,
    amount: int,
    currency: str,
    destination: str,
    *,
    source_transaction: str | None = None,
    description: str | None = None,
    check_balance: bool = True,
) -> StripeObject:
    """Move platform funds to a connected account (`tr_` on the platform, a payment on the destination)."""
    state = ctx.state
    platform = state.platform_id
    if check_balance and state.ledger.available(platform, currency) < amount:
        raise StripeError(
            400,
            "You have insufficient available funds in your Stripe account. Try adding funds directly to your "
            "available balance by creating Charges using the 4000000000000077 test card.",
            code="balance_insufficient",
        )
    transfer_id = new_id("tr")
    payment_id = new_id("py")
    txn = state.ledger.record(platform, -amount, currency, "transfer", transfer_id)
    state.ledger.record(destination, amount, currency, "payment", payment_id)
    transfer: StripeObject = {
        "id": transfer_id,
        "object": "transfer",
        "amount": amount,
        "amount_reversed": 0,
        "balance_transaction": txn["id"],
        "created": int(time.time()),
        "currency": currency,
        "description": description,
        "destination": destination,
        "destination_payment": payment_id,
        "livemode": False,
        "metadata": {},
        "reversals": {
            "object": "list",
            "data": [],
            "has_more": False,
            "url": f"/v1/transfers/{transfer_id}/reversals",
        },
        "reversed": False,
        "source_transaction": source_transaction,
        "source_type": "card",
        "transfer_group": None,
    }
    state.store.add(platform, transfer)
    state.emit(platform, "transfer.created", transfer)
    return transfer


def reverse_transfer(ctx: Ctx, transfer: StripeObject, amount: int, source_refund: str | None = None) -> StripeObject:
    state = ctx.state
    remaining = transfer["amount"] - transfer["amount_reversed"]
    if amount > remaining:
        raise StripeError(
            400,
            f"Transfer reversal amount ({amount}) is greater than the remaining amount ({remaining}).",
            param="amount",
            code="amount_too_large",
        )
    reversal_id = new_id("trr")
    txn = state.ledger.record(state.platform_id, amount, transfer["currency"], "transfer_refund", reversal_id)
    refund_payment = new_id("pyr")
    state.ledger.record(transfer["destination"], -amount, transfer["currency"], "payment_refund", refund_payment)
    reversal: StripeObject = {
        "id": reversal_id,
        "object": "transfer_reversal",
        "amount": amount,
        "balance_transaction": txn["id"],
        "created": int(time.time()),
        "currency": transfer["currency"],
        "destination_payment_refund": refund_payment,
        "metadata": {},
        "source_refund": source_refund,
        "transfer": transfer["id"],
    }
    state.store.add(state.platform_id, reversal)
    previous = {"amount_reversed": transfer["amount_reversed"], "reversed": transfer["reversed"]}
    transfer["amount_reversed"] += amount
    transfer["reversed"] = transfer["amount_reversed"] >= transfer["amount"]
    transfer["reversals"]["data"].insert(0, reversal)
    state.emit(state.platform_id, "transfer.reversed", transfer, previous)
    return reversal
