"""What the sandbox accepts beyond Stripe's vendored description (`openapi/spec3.json`, 2020-08-27).

The platform and the current stripe SDK send parameters and values that Stripe added after that
description was published. Each one is declared here, once, with the reason it is accepted; the
request checker (`validation.py`) merges them into the operations' schemas at start. Anything
not declared here or in the description is refused as Stripe refuses it.

Keys are (METHOD, path as in the description, dotted parameter path: `process_config.tipping`).
"""

from __future__ import annotations

from typing import Any

_STRING = {"type": "string", "maxLength": 5000}
_BOOLEAN = {"type": "boolean"}
_INTEGER = {"type": "integer"}

# (method, path, parameter) -> (schema, reason)
NEWER_PARAMETERS: dict[tuple[str, str, str], tuple[dict[str, Any], str]] = {
    ("POST", "/v1/accounts", "controller"): (
        {
            "type": "object",
            "properties": {
                "fees": {
                    "type": "object",
                    "properties": {"payer": {"type": "string", "enum": ["account", "application"]}},
                },
                "losses": {
                    "type": "object",
                    "properties": {"payments": {"type": "string", "enum": ["application", "stripe"]}},
                },
                "requirement_collection": {"type": "string", "enum": ["application", "stripe"]},
                "stripe_dashboard": {
                    "type": "object",
                    "properties": {"type": {"type": "string", "enum": ["express", "full", "none"]}},
                },
            },
        },
        "Connect's `controller` (2023) replaces `type`; the sandbox derives the account type from it.",
    ),
    ("POST", "/v1/terminal/readers/{reader}/process_payment_intent", "process_config.enable_customer_cancellation"): (
        _BOOLEAN,
        "Terminal server-driven option added in 2023.",
    ),
    ("POST", "/v1/terminal/readers/{reader}/process_payment_intent", "process_config.tipping"): (
        {"type": "object", "properties": {"amount_eligible": _INTEGER}},
        "Terminal on-reader tipping (2023).",
    ),
    ("POST", "/v1/test_helpers/terminal/readers/{reader}/present_payment_method", "interac_present"): (
        {"type": "object", "properties": {"number": _STRING}},
        "Simulated Interac card, added with interac_present support of the simulated reader.",
    ),
    ("POST", "/v1/test_helpers/terminal/readers/{reader}/present_payment_method", "amount_tip"): (
        _INTEGER,
        "Simulated on-reader tip (2023).",
    ),
}

# (method, path, parameter) -> (extra enum values, reason)
NEWER_ENUM_VALUES: dict[tuple[str, str, str], tuple[tuple[str, ...], str]] = {
    ("POST", "/v1/payment_intents", "capture_method"): (
        ("automatic_async",),
        "Stripe's default capture method since API 2024-04-10; the sandbox treats it as `automatic`.",
    ),
    ("POST", "/v1/test_helpers/terminal/readers/{reader}/present_payment_method", "type"): (
        ("interac_present",),
        "The simulated reader presents Interac cards too (Canadian Terminal payments).",
    ),
    ("POST", "/v1/payment_methods", "type"): (
        ("card_present", "interac_present"),
        "Card-present methods, created by Terminal readers, are listed as PaymentMethod types today.",
    ),
}

# Values of response fields newer than the description, that the sandbox answers (tests and the
# spec-driven fuzzer accept them in responses): (schema name, field) -> (values, reason)
NEWER_RESPONSE_VALUES: dict[tuple[str, str], tuple[tuple[str, ...], str]] = {
    ("terminal.reader", "device_type"): (
        ("simulated_wisepos_e", "simulated_stripe_s700"),
        "Simulated readers registered with `simulated-wpe` / `simulated-s700` report these types.",
    ),
    ("payment_intent", "capture_method"): (("automatic_async",), "Echoes the newer request value."),
}
