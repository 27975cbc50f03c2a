"""Organisations and Stripe Connect (filled in by the Accounts issue)."""

from __future__ import annotations

from typing import Any

from collect.accounts.v1 import accounts_pb2 as pb
from starlette.routing import BaseRoute

from gateway.http import timestamp_json


def organization_json(org: pb.Organization) -> dict[str, Any]:
    return {
        "id": org.id,
        "name": org.name,
        "email": org.email,
        "country": org.country,
        "business_type": org.business_type,
        "address": {
            "line1": org.address.line1,
            "line2": org.address.line2 or None,
            "city": org.address.city,
            "postal_code": org.address.postal_code,
            "country": org.address.country or org.country,
        },
        "charge_model": org.charge_model,
        "fee_percent_bps": org.fee_percent_bps,
        "fee_minimum": org.fee_minimum,
        "stripe_account_id": org.stripe_account_id or None,
        "charges_enabled": org.charges_enabled,
        "payouts_enabled": org.payouts_enabled,
        "details_submitted": org.details_submitted,
        "requirements_due": list(org.requirements_due),
        "legal_entity": org.legal_entity or None,
        "timezone": org.timezone,
        "default_currency": org.default_currency,
        "created_at": timestamp_json(org.created_at),
    }


routes: list[BaseRoute] = []

openapi_paths: dict[str, dict[str, object]] = {}
