"""GET /v1/config: what the app needs to sell for the member's organisation, in one answer.

Each part comes from the service that owns it (asked at once): the account and charge model from
Accounts, the bounds from Payments, the locations and Tap to Pay floors from Terminal.
"""

from __future__ import annotations

import asyncio

from collect.accounts.v1 import accounts_pb2
from collect.common.v1 import common_pb2
from collect.payments.v1 import payments_pb2
from collect.terminal.v1 import terminal_pb2
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from gateway.http import caller, json_response, org_query
from gateway.openapi import error_responses, json_ok
from gateway.transcoding.codec import writer

location_json = writer(terminal_pb2.Location.DESCRIPTOR)  # as GET /v1/terminal/locations writes one
# Stripe's Terminal SDK reads at most this many locations at once; an organisation has a handful.
_LOCATIONS = 100


async def get_config(request: Request) -> Response:
    caller(request)
    clients = request.app.state.clients
    # Members get their own organisation (naming another is a 404); platform admins name one.
    organization_id = org_query(request)
    organization, payments, locations, floors = await asyncio.gather(
        clients.accounts.GetOrganization(accounts_pb2.GetOrganizationRequest(organization_id=organization_id)),
        clients.payments.GetPaymentConfig(payments_pb2.GetPaymentConfigRequest(organization_id=organization_id)),
        clients.terminal.ListLocations(
            terminal_pb2.ListLocationsRequest(
                organization_id=organization_id, page=common_pb2.PageRequest(limit=_LOCATIONS)
            )
        ),
        clients.terminal.ListApplicableOsFloors(
            terminal_pb2.ListApplicableOsFloorsRequest(organization_id=organization_id)
        ),
    )
    org = organization.organization
    return json_response(
        {
            "organization_id": org.id,
            "stripe_publishable_key": request.app.state.settings.stripe_publishable_key or None,
            "stripe_account_id": org.stripe_account_id or None,
            "charge_model": org.charge_model,
            "currency": payments.currencies[0] if payments.currencies else org.default_currency,
            "currencies": list(payments.currencies),
            "locations": [location_json(location) for location in locations.locations],
            "limits": {
                "min_amount": payments.min_amount,
                "max_amount": payments.max_amount,
                "payments_per_minute": payments.rate_limit_per_minute,
                "methods": list(payments.methods),
                "offline": {
                    "max_items": payments.offline_max_items,
                    "max_age_days": payments.offline_max_age_days,
                    "max_ahead_seconds": payments.offline_max_ahead_seconds,
                },
            },
            "tap_to_pay": {
                "country": org.country,
                "min_os_versions": {floor.platform: floor.min_os_version for floor in floors.floors},
                "check": "/v1/devices/tap-to-pay/check",
            },
        }
    )


routes: list[BaseRoute] = [Route("/v1/config", get_config, methods=["GET"])]

openapi_paths = {
    "/v1/config": {
        "get": {
            "summary": "What the app needs to take payments for the member's organisation",
            "description": "Platform admins name the organisation with `?organization_id=`.",
            "parameters": [{"name": "organization_id", "in": "query", "schema": {"type": "string"}}],
            "responses": {
                **json_ok(
                    "{stripe_publishable_key, stripe_account_id, charge_model, currency, currencies, locations, "
                    "limits: {min_amount, max_amount, payments_per_minute, methods, offline}, "
                    "tap_to_pay: {country, min_os_versions, check}}"
                ),
                **error_responses(400, 401, 404, 502, 503),
            },
        }
    },
}
