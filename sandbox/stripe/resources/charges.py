"""Charges: created by payment intents, listed and retrieved here."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from ..context import Ctx
from ..ids import new_id
from ..search import search
from ..store import StripeObject, created_filter, paginate
from ..wire import apply_metadata, get_dict, get_int, get_str, missing, not_found
from .payment_methods import method_details

_ADDRESS = {"city": None, "country": None, "line1": None, "line2": None, "postal_code": None, "state": None}


def new_charge(ctx: Ctx, intent: StripeObject, pm: StripeObject, decline: tuple[str, str] | None) -> StripeObject:
    charge_id = new_id("ch")
    failed = decline is not None
    transfer_data = intent.get("transfer_data")
    charge: StripeObject = {
        "id": charge_id,
        "object": "charge",
        "amount": intent["amount"],
        "amount_captured": 0,
        "amount_refunded": 0,
        "application": None,
        "application_fee": None,
        "application_fee_amount": intent.get("application_fee_amount"),
        "balance_transaction": None,
        "billing_details": {
            "address": dict(_ADDRESS),
            "email": pm["billing_details"]["email"],
            "name": pm["billing_details"]["name"],
            "phone": None,
        },
        "calculated_statement_descriptor": intent.get("statement_descriptor") or "SANDBOX",
        "captured": False,
        "created": int(time.time()),
        "currency": intent["currency"],
        "customer": intent.get("customer"),
        "description": intent.get("description"),
        "disputed": False,
        "failure_balance_transaction": None,
        "failure_code": decline[0] if decline else None,
        "failure_message": "Your card was declined." if decline else None,
        "fraud_details": {},
        "livemode": False,
        "metadata": dict(intent.get("metadata") or {}),
        "on_behalf_of": intent.get("on_behalf_of"),
        "outcome": {
            "network_status": "declined_by_network" if failed else "approved_by_network",
            "reason": decline[1] if decline else None,
            "risk_level": "normal",
            "risk_score": 20,
            "seller_message": "The bank did not return any further details with this decline."
            if failed
            else "Payment complete.",
            "type": "issuer_declined" if failed else "authorized",
        },
        "paid": not failed,
        "payment_intent": intent["id"],
        "payment_method": pm["id"],
        "payment_method_details": method_details(pm),
        "receipt_email": intent.get("receipt_email"),
        "receipt_number": None,
        "receipt_url": None,
        "refunded": False,
        "refunds": {"object": "list", "data": [], "has_more": False, "url": f"/v1/charges/{charge_id}/refunds"},
        "review": None,
        "shipping": None,
        "source": None,
        "source_transfer": None,
        "statement_descriptor": intent.get("statement_descriptor"),
        "statement_descriptor_suffix": intent.get("statement_descriptor_suffix"),
        "status": "failed" if failed else "succeeded",
        "transfer_data": dict(transfer_data) if transfer_data else None,
        "transfer_group": intent.get("transfer_group"),
    }
    ctx.state.store.add(ctx.account, charge)
    return charge


def retrieve_charge(ctx: Ctx, charge_id: str) -> StripeObject:
    return ctx.state.store.get(ctx.account, charge_id, "charge")


def update_charge(ctx: Ctx, charge_id: str) -> StripeObject:
    charge = retrieve_charge(ctx, charge_id)
    previous: dict[str, Any] = {}
    if "description" in ctx.params:
        previous["description"] = charge["description"]
        charge["description"] = ctx.params["description"] or None
    if "metadata" in ctx.params:
        previous["metadata"] = charge["metadata"]
        apply_metadata(charge, ctx.params)
    ctx.emit("charge.updated", charge, previous)
    return charge


def list_charges(ctx: Ctx) -> StripeObject:
    intent = ctx.params.get("payment_intent")
    created = created_filter(ctx.params)

    def keep(charge: StripeObject) -> bool:
        return (not intent or charge["payment_intent"] == intent) and (created is None or created(charge))

    return paginate(ctx.state.store.newest_first(ctx.account, "charge"), ctx.params, "/v1/charges", keep)


def search_charges(ctx: Ctx) -> StripeObject:
    return search("charges", ctx.state.store.newest_first(ctx.account, "charge"), ctx.params, "/v1/charges/search")


def capture_charge(ctx: Ctx, charge_id: str) -> StripeObject:
    """The legacy charge capture: captures the charge's PaymentIntent; answers the charge."""
    from .payment_intents import capture

    charge = retrieve_charge(ctx, charge_id)
    intent = ctx.state.store.get(ctx.account, charge["payment_intent"], "payment_intent")
    capture(
        ctx, intent, get_int(ctx.params, "amount", minimum=1), get_int(ctx.params, "application_fee_amount", minimum=0)
    )
    return charge


def refund_charge(ctx: Ctx, charge_id: str) -> StripeObject:
    """`POST /v1/charges/{charge}/refund`: a refund of the charge; answers the charge."""
    from .refunds import refund

    charge = retrieve_charge(ctx, charge_id)
    refund(ctx, charge)
    return charge


def create_charge_refund(ctx: Ctx, charge_id: str) -> StripeObject:
    from .refunds import refund

    return refund(ctx, retrieve_charge(ctx, charge_id))


def update_charge_refund(ctx: Ctx, charge_id: str, refund_id: str) -> StripeObject:
    refund = retrieve_charge_refund(ctx, charge_id, refund_id)
    previous = {"metadata": refund["metadata"]}
    apply_metadata(refund, ctx.params)
    ctx.emit("refund.updated", refund, previous)
    return refund


def create_charge(ctx: Ctx) -> StripeObject:
    """The legacy Charges API: a PaymentIntent confirmed with `source` (`tok_visa` → `pm_card_visa`),
    captured unless `capture=false`; answers the charge."""
    from .payment_intents import create_payment_intent

    params = ctx.params
    source = get_str(params, "source") or ""
    if not source:
        raise missing("source")
    intent_params = {
        "amount": params.get("amount"),
        "currency": params.get("currency"),
        "confirm": "true",
        "payment_method": source.replace("tok_", "pm_card_", 1) if source.startswith("tok_") else source,
        "capture_method": "manual" if params.get("capture") == "false" else "automatic",
    }
    for name in (
        "description",
        "metadata",
        "receipt_email",
        "on_behalf_of",
        "statement_descriptor",
        "statement_descriptor_suffix",
        "transfer_group",
        "application_fee_amount",
    ):
        if name in params:
            intent_params[name] = params[name]
    destination = get_dict(params, "transfer_data") or (
        {"destination": params["destination"]} if isinstance(params.get("destination"), str) else None
    )
    if destination:
        intent_params["transfer_data"] = destination
    intent = create_payment_intent(replace(ctx, params=intent_params))
    return retrieve_charge(ctx, intent["latest_charge"])


def retrieve_charge_refund(ctx: Ctx, charge_id: str, refund_id: str) -> StripeObject:
    refund = ctx.state.store.get(ctx.account, refund_id, "refund")
    if refund["charge"] != charge_id:
        raise not_found("refund", refund_id)
    return refund


def list_charge_refunds(ctx: Ctx, charge_id: str) -> StripeObject:
    charge = retrieve_charge(ctx, charge_id)
    return paginate(iter(charge["refunds"]["data"]), ctx.params, f"/v1/charges/{charge_id}/refunds")


ROUTES = [
    ("GET", "/v1/charges", list_charges),
    ("GET", "/v1/charges/search", search_charges),
    ("GET", "/v1/charges/{}", retrieve_charge),
    ("POST", "/v1/charges/{}", update_charge),
    ("GET", "/v1/charges/{}/refunds", list_charge_refunds),
    ("POST", "/v1/charges/{}/refunds", create_charge_refund),
    ("GET", "/v1/charges/{}/refunds/{}", retrieve_charge_refund),
    ("POST", "/v1/charges/{}/refunds/{}", update_charge_refund),
    ("POST", "/v1/charges", create_charge),
    ("POST", "/v1/charges/{}/capture", capture_charge),
    ("POST", "/v1/charges/{}/refund", refund_charge),
]
