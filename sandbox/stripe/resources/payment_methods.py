"""Payment methods, including Stripe's test-mode shortcuts (`pm_card_visa`, `pm_card_chargeDeclined`...)."""

from __future__ import annotations

import time
from typing import Any

from ..context import Ctx, public
from ..ids import new_id
from ..store import StripeObject, paginate
from ..wire import apply_metadata, get_dict, get_str, invalid, not_found

Decline = tuple[str, str]  # (code, decline_code)

_CARDS: dict[str, tuple[str, str, Decline | None]] = {
    # token: (brand, last4, decline)
    "pm_card_visa": ("visa", "4242", None),
    "pm_card_visa_debit": ("visa", "5556", None),
    "pm_card_mastercard": ("mastercard", "4444", None),
    "pm_card_amex": ("amex", "8431", None),
    "pm_card_fr": ("visa", "0003", None),
    # Charges succeed; refunds succeed, then fail asynchronously (like Stripe's 4000 0000 0000 5126).
    "pm_card_refundFail": ("visa", "5126", None),
    # Charges succeed, then are disputed (fraudulent) like Stripe's 4000 0000 0000 0259.
    "pm_card_createDispute": ("visa", "0259", None),
    "pm_card_chargeDeclined": ("visa", "0002", ("card_declined", "generic_decline")),
    "pm_card_visa_chargeDeclined": ("visa", "0002", ("card_declined", "generic_decline")),
    "pm_card_chargeDeclinedInsufficientFunds": ("visa", "9995", ("card_declined", "insufficient_funds")),
    "pm_card_visa_chargeDeclinedInsufficientFunds": ("visa", "9995", ("card_declined", "insufficient_funds")),
    "pm_card_chargeDeclinedLostCard": ("visa", "9987", ("card_declined", "lost_card")),
    "pm_card_chargeDeclinedStolenCard": ("visa", "9979", ("card_declined", "stolen_card")),
    "pm_card_chargeDeclinedFraudulent": ("visa", "0019", ("card_declined", "fraudulent")),
    "pm_card_chargeDeclinedExpiredCard": ("visa", "0069", ("expired_card", "expired_card")),
    "pm_card_chargeDeclinedIncorrectCvc": ("visa", "0127", ("incorrect_cvc", "incorrect_cvc")),
    "pm_card_chargeDeclinedProcessingError": ("visa", "0119", ("processing_error", "processing_error")),
}

# Card numbers a simulated reader can be presented with.
CARD_PRESENT_NUMBERS: dict[str, tuple[str, str, Decline | None]] = {
    "4242424242424242": ("visa", "4242", None),
    "4000000000000002": ("visa", "0002", ("card_declined", "generic_decline")),
    "4000000000009995": ("visa", "9995", ("card_declined", "insufficient_funds")),
    "5555555555554444": ("mastercard", "4444", None),
    "4000000000005126": ("visa", "5126", None),
    "4000000000000259": ("visa", "0259", None),
}

REFUND_FAILS_LAST4 = "5126"

_ADDRESS = {"city": None, "country": None, "line1": None, "line2": None, "postal_code": None, "state": None}


def _card_details(brand: str, last4: str) -> dict[str, Any]:
    return {
        "brand": brand,
        "checks": {"address_line1_check": None, "address_postal_code_check": None, "cvc_check": "pass"},
        "country": "FR",
        "exp_month": 12,
        "exp_year": 2034,
        "fingerprint": f"sbx{brand[:4]}{last4}",
        "funding": "credit",
        "last4": last4,
        "networks": {"available": [brand], "preferred": None},
        "three_d_secure_usage": {"supported": True},
        "wallet": None,
    }


def _present_details(brand: str, last4: str) -> dict[str, Any]:
    return {
        "brand": brand,
        "cardholder_name": None,
        "country": "FR",
        "exp_month": 12,
        "exp_year": 2034,
        "fingerprint": f"sbx{brand[:4]}{last4}",
        "funding": "credit",
        "last4": last4,
        "networks": {"available": [brand], "preferred": None},
        "read_method": "contactless_emv",
    }


def new_payment_method(
    ctx: Ctx, type: str, brand: str = "visa", last4: str = "4242", decline: Decline | None = None
) -> StripeObject:
    pm: StripeObject = {
        "id": new_id("pm"),
        "object": "payment_method",
        "allow_redisplay": "unspecified",
        "billing_details": {"address": dict(_ADDRESS), "email": None, "name": None, "phone": None},
        "created": int(time.time()),
        "customer": None,
        "customer_account": None,
        "livemode": False,
        "metadata": {},
        "type": type,
    }
    if type == "card":
        pm["card"] = _card_details(brand, last4)
    elif type in ("card_present", "interac_present"):
        pm[type] = _present_details(brand, last4)
    elif type == "sepa_debit":
        pm["sepa_debit"] = {
            "bank_code": "37040044",
            "branch_code": "",
            "country": "DE",
            "fingerprint": "sbxsepa3000",
            "generated_from": {"charge": None, "setup_attempt": None},
            "last4": "3000",
        }
        pm["billing_details"]["name"] = "Jenny Rosen"
        pm["billing_details"]["email"] = "jenny@example.com"
    if decline is not None:
        pm["_decline"] = list(decline)
    ctx.state.store.add(ctx.account, pm)
    return pm


def resolve(ctx: Ctx, pm_id: str) -> StripeObject:
    """A stored payment method of this account, or a fresh one for a test token."""
    card = _CARDS.get(pm_id)
    if card is not None:
        return new_payment_method(ctx, "card", card[0], card[1], card[2])
    if pm_id.startswith("pm_card_present") or pm_id.startswith("pm_card_interac_present"):
        return new_payment_method(ctx, "card_present")
    if pm_id.startswith("pm_sepa_debit") or pm_id == "pm_sepa":
        return new_payment_method(ctx, "sepa_debit")
    pm = ctx.state.store.objects.get(pm_id)
    if pm is None or pm["object"] != "payment_method" or ctx.state.store.owner.get(pm_id) != ctx.account:
        raise not_found("PaymentMethod", pm_id, param="payment_method")
    return pm


def method_details(pm: StripeObject) -> dict[str, Any]:
    """A charge's `payment_method_details` for this payment method."""
    kind = pm["type"]
    details = dict(pm.get(kind) or {})
    if kind == "card_present":
        details.update(
            {
                "amount_authorized": None,
                "emv_auth_data": "8A023030",
                "generated_card": None,
                "overcapture_supported": False,
                "receipt": {"application_preferred_name": "Visa Credit", "account_type": "credit"},
            }
        )
    elif kind == "sepa_debit":
        details.pop("generated_from", None)
        details["mandate"] = None
    return {"type": kind, kind: details}


def retrieve_payment_method(ctx: Ctx, pm_id: str) -> StripeObject:
    return public(ctx.state.store.get(ctx.account, pm_id, "payment_method", "PaymentMethod"))


def create_payment_method(ctx: Ctx) -> StripeObject:
    kind = ctx.params.get("type") or "card"
    if kind not in ("card", "card_present", "sepa_debit"):
        raise invalid(f"Invalid payment method type: {kind}", param="type")
    return public(new_payment_method(ctx, kind))


def list_payment_methods(ctx: Ctx) -> StripeObject:
    page = paginate(ctx.state.store.newest_first(ctx.account, "payment_method"), ctx.params, "/v1/payment_methods")
    page["data"] = [public(pm) for pm in page["data"]]
    return page


def _stored(ctx: Ctx, pm_id: str) -> StripeObject:
    return ctx.state.store.get(ctx.account, pm_id, "payment_method", "PaymentMethod")


def update_payment_method(ctx: Ctx, pm_id: str) -> StripeObject:
    pm = _stored(ctx, pm_id)
    previous: dict[str, Any] = {}
    billing = get_dict(ctx.params, "billing_details")
    if billing:
        previous["billing_details"] = dict(pm["billing_details"])
        for name in ("email", "name", "phone"):
            if name in billing:
                pm["billing_details"][name] = billing[name] or None
        address = billing.get("address")
        if isinstance(address, dict):
            pm["billing_details"]["address"] = {**pm["billing_details"]["address"], **address}
    card = get_dict(ctx.params, "card")
    if card and pm["type"] == "card":
        for name in ("exp_month", "exp_year"):
            if card.get(name):
                pm["card"][name] = int(card[name])
    if "metadata" in ctx.params:
        previous["metadata"] = pm["metadata"]
        apply_metadata(pm, ctx.params)
    ctx.emit("payment_method.updated", public(pm), previous)
    return public(pm)


def attach_payment_method(ctx: Ctx, pm_id: str) -> StripeObject:
    pm = _stored(ctx, pm_id)
    customer = get_str(ctx.params, "customer", required=True)
    if pm["customer"] and pm["customer"] != customer:
        raise invalid(
            "The payment method you provided has already been attached to a customer.",
            param="payment_method",
            code="payment_method_unexpected_state",
        )
    pm["customer"] = customer
    ctx.emit("payment_method.attached", public(pm))
    return public(pm)


def detach_payment_method(ctx: Ctx, pm_id: str) -> StripeObject:
    pm = _stored(ctx, pm_id)
    if not pm["customer"]:
        raise invalid(
            "The payment method you provided is not attached to a customer so detachment is impossible.",
            param="payment_method",
            code="payment_method_unexpected_state",
        )
    pm["customer"] = None
    ctx.emit("payment_method.detached", public(pm))
    return public(pm)


ROUTES = [
    ("POST", "/v1/payment_methods", create_payment_method),
    ("GET", "/v1/payment_methods", list_payment_methods),
    ("GET", "/v1/payment_methods/{}", retrieve_payment_method),
    ("POST", "/v1/payment_methods/{}", update_payment_method),
    ("POST", "/v1/payment_methods/{}/attach", attach_payment_method),
    ("POST", "/v1/payment_methods/{}/detach", detach_payment_method),
]
