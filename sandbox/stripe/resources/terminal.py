"""Terminal: locations, connection tokens, simulated readers and the present-payment-method helper."""

from __future__ import annotations

import time
from typing import Any

from ..context import Ctx, deleted
from ..ids import new_id, new_secret
from ..store import StripeObject, paginate
from ..wire import StripeError, apply_metadata, get_dict, get_str, invalid, not_found
from . import payment_intents
from .payment_methods import CARD_PRESENT_NUMBERS, new_payment_method

_SIMULATED_CODES = {"simulated-wpe": "simulated_wisepos_e", "simulated-s700": "simulated_stripe_s700"}
_ADDRESS_FIELDS = ("city", "country", "line1", "line2", "postal_code", "state")


# --- locations ------------------------------------------------------------------------------------


def create_location(ctx: Ctx) -> StripeObject:
    display_name = get_str(ctx.params, "display_name", required=True)
    address = get_dict(ctx.params, "address")
    if not address:
        raise invalid("Missing required param: address.", param="address", code="parameter_missing")
    if not address.get("country"):
        raise invalid("Missing required param: address[country].", param="address[country]", code="parameter_missing")
    location: StripeObject = {
        "id": new_id("tml"),
        "object": "terminal.location",
        "address": {name: address.get(name) for name in _ADDRESS_FIELDS},
        "configuration_overrides": get_str(ctx.params, "configuration_overrides"),
        "display_name": display_name,
        "livemode": False,
        "metadata": {},
    }
    apply_metadata(location, ctx.params)
    ctx.state.store.add(ctx.account, location)
    return location


def retrieve_location(ctx: Ctx, location_id: str) -> StripeObject:
    return ctx.state.store.get(ctx.account, location_id, "terminal.location")


def update_location(ctx: Ctx, location_id: str) -> StripeObject:
    location = retrieve_location(ctx, location_id)
    if ctx.params.get("display_name"):
        location["display_name"] = ctx.params["display_name"]
    address = get_dict(ctx.params, "address")
    if address:
        location["address"].update({k: v for k, v in address.items() if k in _ADDRESS_FIELDS})
    apply_metadata(location, ctx.params)
    return location


def delete_location(ctx: Ctx, location_id: str) -> StripeObject:
    location = retrieve_location(ctx, location_id)
    ctx.state.store.remove(location_id)
    return deleted(location)


def list_locations(ctx: Ctx) -> StripeObject:
    return paginate(
        ctx.state.store.newest_first(ctx.account, "terminal.location"), ctx.params, "/v1/terminal/locations"
    )


def create_connection_token(ctx: Ctx) -> StripeObject:
    location = get_str(ctx.params, "location")
    if location:
        retrieve_location(ctx, location)
    token: StripeObject = {"object": "terminal.connection_token", "secret": new_secret("pst_test", 40)}
    if location:
        token["location"] = location
    return token


# --- readers --------------------------------------------------------------------------------------


def create_reader(ctx: Ctx) -> StripeObject:
    code = get_str(ctx.params, "registration_code", required=True)
    assert code is not None
    device_type = _SIMULATED_CODES.get(code)
    if device_type is None:
        raise invalid(
            "The registration code is invalid. Use `simulated-wpe` to register a simulated reader.",
            param="registration_code",
            code="resource_missing",
        )
    location = get_str(ctx.params, "location")
    if location:
        retrieve_location(ctx, location)
    reader_id = new_id("tmr")
    reader: StripeObject = {
        "id": reader_id,
        "object": "terminal.reader",
        "action": None,
        "device_sw_version": "2.37.2.0",
        "device_type": device_type,
        "ip_address": "0.0.0.0",
        "label": get_str(ctx.params, "label") or "Simulated reader",
        "last_seen_at": int(time.time() * 1000),
        "livemode": False,
        "location": location,
        "metadata": {},
        "serial_number": f"SIMULATOR-{reader_id[4:14]}",
        "status": "online",
    }
    apply_metadata(reader, ctx.params)
    ctx.state.store.add(ctx.account, reader)
    return reader


def retrieve_reader(ctx: Ctx, reader_id: str) -> StripeObject:
    return ctx.state.store.get(ctx.account, reader_id, "terminal.reader")


def update_reader(ctx: Ctx, reader_id: str) -> StripeObject:
    reader = retrieve_reader(ctx, reader_id)
    if ctx.params.get("label"):
        reader["label"] = ctx.params["label"]
    apply_metadata(reader, ctx.params)
    return reader


def delete_reader(ctx: Ctx, reader_id: str) -> StripeObject:
    reader = retrieve_reader(ctx, reader_id)
    ctx.state.store.remove(reader_id)
    return deleted(reader)


def list_readers(ctx: Ctx) -> StripeObject:
    location = ctx.params.get("location")
    status = ctx.params.get("status")

    def keep(reader: StripeObject) -> bool:
        return (not location or reader["location"] == location) and (not status or reader["status"] == status)

    return paginate(
        ctx.state.store.newest_first(ctx.account, "terminal.reader"), ctx.params, "/v1/terminal/readers", keep
    )


def _action(kind: str, status: str, detail: dict[str, Any]) -> dict[str, Any]:
    return {"failure_code": None, "failure_message": None, "status": status, "type": kind, kind: detail}


def process_payment_intent(ctx: Ctx, reader_id: str) -> StripeObject:
    reader = retrieve_reader(ctx, reader_id)
    intent_id = get_str(ctx.params, "payment_intent", required=True)
    assert intent_id is not None
    intent = ctx.state.store.get(ctx.account, intent_id, "payment_intent")
    if intent["status"] not in ("requires_payment_method", "requires_confirmation"):
        raise StripeError(
            400,
            f"This PaymentIntent has a status of {intent['status']} and cannot be processed.",
            code="payment_intent_unexpected_state",
            param="payment_intent",
        )
    if "card_present" not in intent["payment_method_types"] and "interac_present" not in intent["payment_method_types"]:
        raise invalid(
            "The PaymentIntent must accept card_present payments to be processed by a reader.",
            param="payment_intent",
        )
    if reader["action"] and reader["action"]["status"] == "in_progress":
        raise StripeError(409, "Reader is currently busy processing another request.", code="terminal_reader_busy")
    config = get_dict(ctx.params, "process_config") or {}
    reader["action"] = _action(
        "process_payment_intent",
        "in_progress",
        {"payment_intent": intent_id, **({"process_config": config} if config else {})},
    )
    return reader


def process_setup_intent(ctx: Ctx, reader_id: str) -> StripeObject:
    """The sandbox has no SetupIntents: the named one is missing, as Stripe says of an unknown id."""
    reader = retrieve_reader(ctx, reader_id)
    setup_intent = get_str(ctx.params, "setup_intent", required=True)
    assert setup_intent is not None
    setup = ctx.state.store.objects.get(setup_intent)
    if setup is None or setup["object"] != "setup_intent":
        raise not_found("setupintent", setup_intent, param="setup_intent")
    _busy(reader)
    reader["action"] = _action("process_setup_intent", "in_progress", {"setup_intent": setup_intent})
    return reader


def set_reader_display(ctx: Ctx, reader_id: str) -> StripeObject:
    """Show a cart on the reader: the action succeeds at once."""
    reader = retrieve_reader(ctx, reader_id)
    _busy(reader)
    cart = get_dict(ctx.params, "cart") or {}
    items = cart.get("line_items") or []
    detail = {
        "cart": {
            "currency": str(cart.get("currency") or "").lower(),
            "line_items": [
                {"amount": int(i["amount"]), "description": i["description"], "quantity": int(i["quantity"])}
                for i in items
            ],
            "tax": int(cart["tax"]) if cart.get("tax") not in (None, "") else None,
            "total": int(cart.get("total") or 0),
        },
        "type": "cart",
    }
    previous = {"action": reader["action"]}
    reader["action"] = _action("set_reader_display", "succeeded", detail)
    ctx.emit("terminal.reader.action_succeeded", reader, previous)
    return reader


def _busy(reader: StripeObject) -> None:
    if reader["action"] and reader["action"]["status"] == "in_progress":
        raise StripeError(409, "Reader is currently busy processing another request.", code="terminal_reader_busy")


def cancel_action(ctx: Ctx, reader_id: str) -> StripeObject:
    reader = retrieve_reader(ctx, reader_id)
    if reader["action"] and reader["action"]["status"] == "in_progress":
        reader["action"] = None
    return reader


def present_payment_method(ctx: Ctx, reader_id: str) -> StripeObject:
    """Test helper: the customer taps a card; the processed PaymentIntent is confirmed with it."""
    reader = retrieve_reader(ctx, reader_id)
    action = reader["action"]
    if not action or action["type"] != "process_payment_intent" or action["status"] != "in_progress":
        raise invalid("The reader has no in-progress process_payment_intent action.", code="terminal_reader_timeout")
    intent = ctx.state.store.objects.get(action["process_payment_intent"]["payment_intent"])
    if intent is None:
        raise not_found("payment_intent", action["process_payment_intent"]["payment_intent"])
    present = get_dict(ctx.params, "card_present") or {}
    number = str(present.get("number") or "4242424242424242")
    brand, last4, decline = CARD_PRESENT_NUMBERS.get(number, ("visa", number[-4:], None))
    kind = "interac_present" if ctx.params.get("type") == "interac_present" else "card_present"
    pm = new_payment_method(
        ctx, kind if kind in intent["payment_method_types"] else "card_present", brand, last4, decline
    )
    previous = {"action": dict(action)}
    try:
        payment_intents.confirm(ctx, intent, pm)
    except StripeError as exc:
        action["status"] = "failed"
        action["failure_code"] = exc.code
        action["failure_message"] = exc.message
        ctx.emit("terminal.reader.action_failed", reader, previous)
        return reader
    action["status"] = "succeeded"
    ctx.emit("terminal.reader.action_succeeded", reader, previous)
    return reader


ROUTES = [
    ("POST", "/v1/terminal/locations", create_location),
    ("GET", "/v1/terminal/locations", list_locations),
    ("GET", "/v1/terminal/locations/{}", retrieve_location),
    ("POST", "/v1/terminal/locations/{}", update_location),
    ("DELETE", "/v1/terminal/locations/{}", delete_location),
    ("POST", "/v1/terminal/connection_tokens", create_connection_token),
    ("POST", "/v1/terminal/readers", create_reader),
    ("GET", "/v1/terminal/readers", list_readers),
    ("GET", "/v1/terminal/readers/{}", retrieve_reader),
    ("POST", "/v1/terminal/readers/{}", update_reader),
    ("DELETE", "/v1/terminal/readers/{}", delete_reader),
    ("POST", "/v1/terminal/readers/{}/process_payment_intent", process_payment_intent),
    ("POST", "/v1/terminal/readers/{}/cancel_action", cancel_action),
    ("POST", "/v1/terminal/readers/{}/process_setup_intent", process_setup_intent),
    ("POST", "/v1/terminal/readers/{}/set_reader_display", set_reader_display),
    ("POST", "/v1/test_helpers/terminal/readers/{}/present_payment_method", present_payment_method),
]
