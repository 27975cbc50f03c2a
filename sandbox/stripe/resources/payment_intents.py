"""PaymentIntents: create, confirm (test cards decide the outcome), capture, cancel, update, list."""

from __future__ import annotations

import secrets
import time
from typing import Any

from ..context import Ctx, Handler, public
from ..currencies import check_minimum, checked_currency
from ..ids import new_id
from ..money import settle_charge
from ..search import search
from ..store import StripeObject, created_filter, paginate
from ..wire import StripeError, apply_metadata, get_bool, get_dict, get_int, get_list, get_str, invalid
from . import disputes, payment_methods
from .charges import new_charge

_TYPES = {"card", "card_present", "sepa_debit", "interac_present"}
_CANCELABLE = {"requires_payment_method", "requires_confirmation", "requires_action", "requires_capture", "processing"}
_CANCEL_REASONS = {"duplicate", "fraudulent", "requested_by_customer", "abandoned"}


def _unexpected_state(intent: StripeObject, action: str) -> StripeError:
    return StripeError(
        400,
        f"This PaymentIntent's {action} could not be performed because it has a status of {intent['status']}.",
        code="payment_intent_unexpected_state",
        extra={"payment_intent": public(intent)},
    )


def _check_destination(ctx: Ctx, destination: str) -> None:
    account = ctx.state.account(destination)
    if account is None or destination == ctx.state.platform_id:
        raise invalid(
            f"No such destination: '{destination}'", param="transfer_data[destination]", code="resource_missing"
        )
    if account["capabilities"].get("transfers") != "active":
        raise invalid(
            "Your destination account needs to have at least one of the following capabilities enabled: "
            "transfers, crypto_transfers, legacy_payments",
            param="transfer_data[destination]",
            code="insufficient_capabilities_for_transfer",
        )


def create_payment_intent(ctx: Ctx) -> StripeObject:
    params = ctx.params
    amount = get_int(params, "amount", required=True, minimum=1)
    currency = get_str(params, "currency", required=True)
    assert amount is not None and currency is not None
    currency = checked_currency(currency)
    check_minimum(amount, currency)
    types = get_list(params, "payment_method_types") or ["card"]
    for kind in types:
        if kind not in _TYPES:
            raise invalid(
                f"The payment method type provided: {kind} is invalid.",
                param="payment_method_types",
                code="payment_intent_invalid_parameter",
            )
    capture_method = params.get("capture_method") or "automatic"
    if capture_method == "automatic_async":
        capture_method = "automatic"
    if capture_method not in ("automatic", "manual"):
        raise invalid(f"Invalid capture_method: {capture_method}", param="capture_method")
    transfer_data = get_dict(params, "transfer_data")
    if transfer_data:
        if not ctx.is_platform:
            raise invalid("Destination charges are created on the platform.", param="transfer_data")
        _check_destination(ctx, str(transfer_data.get("destination") or ""))
        transfer_data = {
            "destination": transfer_data["destination"],
            **({"amount": int(transfer_data["amount"])} if transfer_data.get("amount") else {}),
        }
    fee = get_int(params, "application_fee_amount", minimum=0)
    if fee is not None and fee > amount:
        raise invalid("application_fee_amount cannot exceed amount", param="application_fee_amount")
    if fee and ctx.is_platform and not transfer_data:
        raise invalid(
            "Can only apply an application_fee_amount when the PaymentIntent is attempting a direct payment "
            "(using an OAuth key or Stripe-Account header) or destination payment (using `transfer_data[destination]`).",
            param="application_fee_amount",
        )
    intent_id = new_id("pi")
    intent: StripeObject = {
        "id": intent_id,
        "object": "payment_intent",
        "amount": amount,
        "amount_capturable": 0,
        "amount_details": {"tip": {}},
        "amount_received": 0,
        "application": None,
        "application_fee_amount": fee,
        "automatic_payment_methods": None,
        "canceled_at": None,
        "cancellation_reason": None,
        "capture_method": capture_method,
        "client_secret": f"{intent_id}_secret_{secrets.token_urlsafe(18)}",
        "confirmation_method": params.get("confirmation_method") or "automatic",
        "created": int(time.time()),
        "currency": currency,
        "customer": params.get("customer"),
        "customer_account": None,
        "description": params.get("description"),
        "excluded_payment_method_types": None,
        "last_payment_error": None,
        "latest_charge": None,
        "livemode": False,
        "managed_payments": {"enabled": False},
        "metadata": {},
        "next_action": None,
        "on_behalf_of": params.get("on_behalf_of"),
        "payment_method": None,
        "payment_method_configuration_details": None,
        "payment_method_options": {kind: {} for kind in types},
        "payment_method_types": types,
        "processing": None,
        "receipt_email": params.get("receipt_email"),
        "review": None,
        "setup_future_usage": None,
        "shipping": None,
        "source": None,
        "statement_descriptor": params.get("statement_descriptor"),
        "statement_descriptor_suffix": params.get("statement_descriptor_suffix"),
        "status": "requires_payment_method",
        "transfer_data": transfer_data,
        "transfer_group": params.get("transfer_group"),
    }
    apply_metadata(intent, params)
    pm_id = get_str(params, "payment_method")
    should_confirm = get_bool(params, "confirm")
    if should_confirm and not pm_id:
        raise _missing_payment_method(intent)
    pm = payment_methods.resolve(ctx, pm_id) if pm_id else None
    if pm is not None:
        _attach(intent, pm)
    ctx.state.store.add(ctx.account, intent)
    ctx.emit("payment_intent.created", intent)
    if should_confirm and pm is not None:
        confirm(ctx, intent, pm)
    return intent


def _missing_payment_method(intent: StripeObject) -> StripeError:
    return StripeError(
        400,
        "You cannot confirm this PaymentIntent because it's missing a payment method. "
        "To confirm the PaymentIntent, pass a payment_method.",
        code="payment_intent_unexpected_state",
        param="payment_method",
        extra={"payment_intent": public(intent)},
    )


def _attach(intent: StripeObject, pm: StripeObject) -> None:
    if pm["type"] not in intent["payment_method_types"]:
        raise invalid(
            f"The PaymentMethod provided ({pm['type']}) is not allowed for this PaymentIntent. "
            f"Allowed: {', '.join(intent['payment_method_types'])}.",
            param="payment_method",
            code="payment_intent_incompatible_payment_method",
        )
    intent["payment_method"] = pm["id"]
    intent["status"] = "requires_confirmation"


def confirm(ctx: Ctx, intent: StripeObject, pm: StripeObject) -> StripeObject:
    """Run a confirmation: a charge that succeeds or declines, per the payment method's test behaviour."""
    if intent["status"] not in ("requires_payment_method", "requires_confirmation"):
        raise _unexpected_state(intent, "confirmation")
    account = ctx.state.account(ctx.account)
    if account is not None and not account["charges_enabled"]:
        raise invalid(
            "Your account cannot currently make live charges: card_payments capability is inactive.",
            code="account_invalid",
        )
    _attach(intent, pm)
    raw = pm.get("_decline")
    decline = (raw[0], raw[1]) if raw else None
    charge = new_charge(ctx, intent, pm, decline)
    intent["latest_charge"] = charge["id"]
    if decline is not None:
        error: dict[str, Any] = {
            "charge": charge["id"],
            "code": decline[0],
            "decline_code": decline[1],
            "doc_url": f"https://stripe.com/docs/error-codes/{decline[0].replace('_', '-')}",
            "message": "Your card was declined."
            if decline[1] != "insufficient_funds"
            else "Your card has insufficient funds.",
            "payment_method": public(pm),
            "type": "card_error",
        }
        intent["last_payment_error"] = error
        intent["status"] = "requires_payment_method"
        intent["payment_method"] = None
        ctx.emit("charge.failed", charge)
        ctx.emit("payment_intent.payment_failed", intent)
        raise StripeError(
            402,
            error["message"],
            type="card_error",
            code=decline[0],
            decline_code=decline[1],
            extra={"charge": charge["id"], "payment_intent": public(intent), "payment_method": public(pm)},
        )
    intent["last_payment_error"] = None
    if intent["capture_method"] == "manual":
        intent["status"] = "requires_capture"
        intent["amount_capturable"] = intent["amount"]
        ctx.emit("charge.succeeded", charge)
        ctx.emit("payment_intent.amount_capturable_updated", intent)
        return intent
    charge["captured"] = True
    charge["amount_captured"] = intent["amount"]
    settle_charge(ctx, charge, intent["amount"])
    intent["status"] = "succeeded"
    intent["amount_received"] = intent["amount"]
    ctx.emit("charge.succeeded", charge)
    ctx.emit("payment_intent.succeeded", intent)
    disputes.schedule_dispute(ctx, charge)
    return intent


def confirm_payment_intent(ctx: Ctx, intent_id: str) -> StripeObject:
    intent = retrieve_payment_intent(ctx, intent_id)
    pm_id = get_str(ctx.params, "payment_method") or intent["payment_method"]
    if not pm_id:
        raise _missing_payment_method(intent)
    if intent["status"] not in ("requires_payment_method", "requires_confirmation"):
        raise _unexpected_state(intent, "confirmation")
    return confirm(ctx, intent, payment_methods.resolve(ctx, pm_id))


def capture_payment_intent(ctx: Ctx, intent_id: str) -> StripeObject:
    intent = retrieve_payment_intent(ctx, intent_id)
    amount = get_int(ctx.params, "amount_to_capture", minimum=1)
    return capture(ctx, intent, amount, get_int(ctx.params, "application_fee_amount", minimum=0))


def capture(ctx: Ctx, intent: StripeObject, amount: int | None, fee: int | None) -> StripeObject:
    """Capture `amount` (all that is capturable by default) of an authorised PaymentIntent."""
    if intent["status"] != "requires_capture":
        raise _unexpected_state(intent, "capture")
    capturable = intent["amount_capturable"]
    amount = amount or capturable
    if amount > capturable:
        raise invalid(
            f"The amount_to_capture ({amount}) exceeds the amount capturable ({capturable}).",
            param="amount_to_capture",
            code="amount_too_large",
        )
    if fee is not None:
        intent["application_fee_amount"] = fee
    charge = ctx.state.store.objects[intent["latest_charge"]]
    charge["application_fee_amount"] = intent["application_fee_amount"]
    previous = {"captured": False, "amount_captured": 0}
    charge["captured"] = True
    charge["amount_captured"] = amount
    settle_charge(ctx, charge, amount)
    intent["amount_capturable"] = 0
    intent["amount_received"] = amount
    intent["status"] = "succeeded"
    ctx.emit("charge.captured", charge, previous)
    ctx.emit("payment_intent.succeeded", intent, {"status": "requires_capture"})
    disputes.schedule_dispute(ctx, charge)
    return intent


def increment_authorization(ctx: Ctx, intent_id: str) -> StripeObject:
    """A larger authorisation of a `requires_capture` PaymentIntent (Terminal's incremental auth)."""
    intent = retrieve_payment_intent(ctx, intent_id)
    if intent["status"] != "requires_capture":
        raise _unexpected_state(intent, "incremental authorization")
    amount = get_int(ctx.params, "amount", required=True)
    assert amount is not None
    if amount <= intent["amount"]:
        raise invalid(
            f"The amount ({amount}) must be greater than the PaymentIntent's current amount ({intent['amount']}).",
            param="amount",
        )
    fee = get_int(ctx.params, "application_fee_amount", minimum=0)
    previous = {"amount": intent["amount"], "amount_capturable": intent["amount_capturable"]}
    intent["amount"] = amount
    intent["amount_capturable"] = amount
    if fee is not None:
        intent["application_fee_amount"] = fee
    if "description" in ctx.params:
        intent["description"] = ctx.params["description"] or None
    apply_metadata(intent, ctx.params)
    charge = ctx.state.store.objects[intent["latest_charge"]]
    charge["amount"] = amount
    ctx.emit("payment_intent.amount_capturable_updated", intent, previous)
    return intent


def _not_applicable(message: str) -> Handler:
    """An operation for payment methods the sandbox does not hold (customer balance, US bank accounts)."""

    def handler(ctx: Ctx, intent_id: str) -> StripeObject:
        intent = retrieve_payment_intent(ctx, intent_id)
        raise StripeError(
            400, message, code="payment_intent_unexpected_state", extra={"payment_intent": public(intent)}
        )

    return handler


apply_customer_balance = _not_applicable(
    "This PaymentIntent does not accept customer_balance payments (the sandbox has no customers)."
)
verify_microdeposits = _not_applicable("This PaymentIntent has no bank account awaiting microdeposit verification.")


def cancel_payment_intent(ctx: Ctx, intent_id: str) -> StripeObject:
    intent = retrieve_payment_intent(ctx, intent_id)
    if intent["status"] not in _CANCELABLE:
        raise _unexpected_state(intent, "cancellation")
    reason = get_str(ctx.params, "cancellation_reason")
    if reason is not None and reason not in _CANCEL_REASONS:
        raise invalid(f"Invalid cancellation_reason: {reason}", param="cancellation_reason")
    previous = {"status": intent["status"]}
    if intent["status"] == "requires_capture" and intent["latest_charge"]:
        # Cancelling an authorisation releases it: Stripe shows the uncaptured charge as refunded.
        charge = ctx.state.store.objects[intent["latest_charge"]]
        charge_previous = {"amount_refunded": charge["amount_refunded"], "refunded": charge["refunded"]}
        charge["amount_refunded"] = charge["amount"]
        charge["refunded"] = True
        ctx.emit("charge.refunded", charge, charge_previous)
    intent["status"] = "canceled"
    intent["canceled_at"] = int(time.time())
    intent["cancellation_reason"] = reason
    intent["amount_capturable"] = 0
    ctx.emit("payment_intent.canceled", intent, previous)
    return intent


def retrieve_payment_intent(ctx: Ctx, intent_id: str) -> StripeObject:
    return ctx.state.store.get(ctx.account, intent_id, "payment_intent")


def update_payment_intent(ctx: Ctx, intent_id: str) -> StripeObject:
    intent = retrieve_payment_intent(ctx, intent_id)
    params = ctx.params
    if intent["status"] in ("succeeded", "canceled") and ({"amount", "payment_method"} & params.keys()):
        raise _unexpected_state(intent, "update")
    previous: dict[str, Any] = {}
    amount = get_int(params, "amount", minimum=1)
    if amount is not None:
        check_minimum(amount, intent["currency"])
        previous["amount"] = intent["amount"]
        intent["amount"] = amount
    fee = get_int(params, "application_fee_amount", minimum=0)
    if fee is not None:
        previous["application_fee_amount"] = intent["application_fee_amount"]
        intent["application_fee_amount"] = fee
    for name in ("description", "receipt_email", "statement_descriptor", "statement_descriptor_suffix"):
        if name in params:
            previous[name] = intent[name]
            intent[name] = params[name] or None
    if "metadata" in params:
        previous["metadata"] = intent["metadata"]
        apply_metadata(intent, params)
    pm_id = get_str(params, "payment_method")
    if pm_id:
        previous["payment_method"] = intent["payment_method"]
        _attach(intent, payment_methods.resolve(ctx, pm_id))
    return intent


def list_payment_intents(ctx: Ctx) -> StripeObject:
    created = created_filter(ctx.params)
    customer = ctx.params.get("customer")

    def keep(intent: StripeObject) -> bool:
        return (created is None or created(intent)) and (not customer or intent["customer"] == customer)

    return paginate(
        ctx.state.store.newest_first(ctx.account, "payment_intent"), ctx.params, "/v1/payment_intents", keep
    )


def search_payment_intents(ctx: Ctx) -> StripeObject:
    items = ctx.state.store.newest_first(ctx.account, "payment_intent")
    return search("payment_intents", items, ctx.params, "/v1/payment_intents/search")


ROUTES = [
    ("POST", "/v1/payment_intents", create_payment_intent),
    ("GET", "/v1/payment_intents", list_payment_intents),
    ("GET", "/v1/payment_intents/search", search_payment_intents),
    ("GET", "/v1/payment_intents/{}", retrieve_payment_intent),
    ("POST", "/v1/payment_intents/{}", update_payment_intent),
    ("POST", "/v1/payment_intents/{}/confirm", confirm_payment_intent),
    ("POST", "/v1/payment_intents/{}/capture", capture_payment_intent),
    ("POST", "/v1/payment_intents/{}/cancel", cancel_payment_intent),
    ("POST", "/v1/payment_intents/{}/increment_authorization", increment_authorization),
    ("POST", "/v1/payment_intents/{}/apply_customer_balance", apply_customer_balance),
    ("POST", "/v1/payment_intents/{}/verify_microdeposits", verify_microdeposits),
]
