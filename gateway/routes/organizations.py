"""Organisations and Stripe Connect."""

from __future__ import annotations

from typing import Any

from collect.accounts.v1 import accounts_pb2 as pb
from collect.common.v1 import common_pb2
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.addresses import ADDRESS_SCHEMA, address_field, address_json
from gateway.errors import ApiError
from gateway.http import Fields, caller, json_body, json_response, page_params, require_role, timestamp_json
from gateway.openapi import body_schema, error_responses, json_ok
from runtime.auth import ORG_ADMIN, PLATFORM_ADMIN
from runtime.errors import FieldError

BUSINESS_TYPES = ("non_profit", "company", "individual")
CHARGE_MODELS = ("direct", "destination")
ACCOUNT_TYPES = ("express", "custom")
_COUNTRY = r"[A-Za-z]{2}"


def organization_json(org: pb.Organization) -> dict[str, Any]:
    return {
        "id": org.id,
        "name": org.name,
        "email": org.email,
        "country": org.country,
        "business_type": org.business_type,
        "address": address_json(org.address, org.country),
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


def account_json(account: pb.StripeAccountStatus) -> dict[str, Any]:
    return {
        "organization_id": account.organization_id,
        "stripe_account_id": account.stripe_account_id,
        "type": account.type or None,
        "charges_enabled": account.charges_enabled,
        "payouts_enabled": account.payouts_enabled,
        "details_submitted": account.details_submitted,
        "requirements_due": list(account.requirements_due),
        "requirements": {"currently_due": list(account.requirements_due)},
        "updated_at": timestamp_json(account.updated_at),
    }


async def create_organization(request: Request) -> Response:
    require_role(caller(request), PLATFORM_ADMIN)
    fields = Fields(await json_body(request))
    name = fields.text("name", max_len=200)
    email = fields.text("email", max_len=254)
    country = fields.text("country", max_len=2, pattern=_COUNTRY).upper()
    business_type = fields.text("business_type", choices=BUSINESS_TYPES)
    address = address_field(fields)
    charge_model = fields.text("charge_model", required=False, default="direct", choices=CHARGE_MODELS)
    fee_percent_bps = fields.integer("fee_percent_bps", required=False, minimum=0, maximum=10_000)
    fee_minimum = fields.integer("fee_minimum", required=False, minimum=0, maximum=1_000_000)
    legal_entity = fields.text("legal_entity", required=False, max_len=200)
    iban = fields.text("bank_account_iban", required=False, max_len=40)
    timezone = fields.text("timezone", required=False, max_len=64)
    currency = fields.text("default_currency", required=False, max_len=3, pattern="[a-z]{3}")
    fields.check()
    answer = await request.app.state.clients.accounts.CreateOrganization(
        pb.CreateOrganizationRequest(
            name=name,
            email=email,
            country=country,
            business_type=business_type,
            address=address,
            charge_model=charge_model,
            fee_percent_bps=fee_percent_bps,
            fee_minimum=fee_minimum,
            legal_entity=legal_entity,
            bank_account_iban=iban,
            timezone=timezone,
            default_currency=currency,
        )
    )
    return json_response(organization_json(answer.organization), 201)


async def list_organizations(request: Request) -> Response:
    require_role(caller(request), PLATFORM_ADMIN)
    limit, cursor = page_params(request)
    email = request.query_params.get("email", "")[:254]
    answer = await request.app.state.clients.accounts.ListOrganizations(
        pb.ListOrganizationsRequest(page=common_pb2.PageRequest(limit=limit, cursor=cursor), email=email)
    )
    return json_response(
        {"data": [organization_json(o) for o in answer.organizations], "next_cursor": answer.next_cursor or None}
    )


async def get_organization(request: Request) -> Response:
    caller(request)
    answer = await request.app.state.clients.accounts.GetOrganization(
        pb.GetOrganizationRequest(organization_id=request.path_params["org_id"])
    )
    return json_response(organization_json(answer.organization))


async def update_organization(request: Request) -> Response:
    require_role(caller(request), PLATFORM_ADMIN, organization_id=request.path_params["org_id"])
    body = await json_body(request)
    fields = Fields(body)
    message = pb.UpdateOrganizationRequest(organization_id=request.path_params["org_id"])
    if "name" in body:
        message.name = fields.text("name", max_len=200)
    if "charge_model" in body:
        message.charge_model = fields.text("charge_model", choices=CHARGE_MODELS)
    if "fee_percent_bps" in body:
        message.fee_percent_bps = fields.integer("fee_percent_bps", minimum=0, maximum=10_000)
    if "fee_minimum" in body:
        message.fee_minimum = fields.integer("fee_minimum", minimum=0, maximum=1_000_000)
    if "legal_entity" in body:
        message.legal_entity = fields.text("legal_entity", required=False, max_len=200)
    if "bank_account_iban" in body:
        message.bank_account_iban = fields.text("bank_account_iban", required=False, max_len=40)
    if "timezone" in body:
        message.timezone = fields.text("timezone", max_len=64)
    fields.check()
    answer = await request.app.state.clients.accounts.UpdateOrganization(message)
    return json_response(organization_json(answer.organization))


async def create_stripe_account(request: Request) -> Response:
    require_role(caller(request), ORG_ADMIN, PLATFORM_ADMIN, organization_id=request.path_params["org_id"])
    fields = Fields(await json_body(request))
    account_type = fields.text("type", required=False, default="express", choices=ACCOUNT_TYPES)
    fields.check()
    answer = await request.app.state.clients.accounts.CreateStripeAccount(
        pb.CreateStripeAccountRequest(organization_id=request.path_params["org_id"], type=account_type)
    )
    return json_response(account_json(answer.account))


async def get_stripe_account(request: Request) -> Response:
    caller(request)
    refresh = request.query_params.get("refresh", "false").lower()
    if refresh not in ("true", "false", "1", "0"):
        raise ApiError(400, "validation_error", "refresh must be true or false", [FieldError("refresh", "true|false")])
    answer = await request.app.state.clients.accounts.GetStripeAccount(
        pb.GetStripeAccountRequest(organization_id=request.path_params["org_id"], refresh=refresh in ("true", "1"))
    )
    return json_response(account_json(answer.account))


async def create_onboarding_link(request: Request) -> Response:
    require_role(caller(request), ORG_ADMIN, PLATFORM_ADMIN, organization_id=request.path_params["org_id"])
    fields = Fields(await json_body(request))
    return_url = fields.text("return_url", max_len=2000, pattern=r"https?://\S+")
    refresh_url = fields.text("refresh_url", max_len=2000, pattern=r"https?://\S+")
    fields.check()
    answer = await request.app.state.clients.accounts.CreateOnboardingLink(
        pb.CreateOnboardingLinkRequest(
            organization_id=request.path_params["org_id"], return_url=return_url, refresh_url=refresh_url
        )
    )
    return json_response({"url": answer.url, "expires_at": timestamp_json(answer.expires_at)})


routes = [
    Route("/v1/organizations", create_organization, methods=["POST"]),
    Route("/v1/organizations", list_organizations, methods=["GET"]),
    Route("/v1/organizations/{org_id}", get_organization, methods=["GET"]),
    Route("/v1/organizations/{org_id}", update_organization, methods=["PATCH"]),
    Route("/v1/organizations/{org_id}/stripe-account", create_stripe_account, methods=["POST"]),
    Route("/v1/organizations/{org_id}/stripe-account", get_stripe_account, methods=["GET"]),
    Route("/v1/organizations/{org_id}/onboarding-link", create_onboarding_link, methods=["POST"]),
]

_ORG_ID = {"name": "org_id", "in": "path", "required": True, "schema": {"type": "string"}}
_POLICY = {
    "charge_model": {"type": "string", "enum": list(CHARGE_MODELS)},
    "fee_percent_bps": {"type": "integer", "minimum": 0, "maximum": 10000},
    "fee_minimum": {"type": "integer", "minimum": 0, "description": "minor units"},
    "legal_entity": {"type": "string"},
    "bank_account_iban": {"type": "string"},
    "timezone": {"type": "string"},
}

openapi_paths: dict[str, dict[str, Any]] = {
    "/v1/organizations": {
        "post": {
            "summary": "Create an organisation (platform_admin)",
            "requestBody": body_schema(
                {
                    "name": {"type": "string"},
                    "email": {"type": "string"},
                    "country": {"type": "string", "description": "ISO 3166-1 alpha-2"},
                    "business_type": {"type": "string", "enum": list(BUSINESS_TYPES)},
                    "address": ADDRESS_SCHEMA,
                    "default_currency": {"type": "string"},
                    **_POLICY,
                },
                ["name", "email", "country", "business_type", "address"],
            ),
            "responses": {**json_ok("organisation", 201), **error_responses(400, 401, 403)},
        },
        "get": {
            "summary": "List organisations (platform_admin)",
            "parameters": [
                {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100}},
                {"name": "cursor", "in": "query", "schema": {"type": "string"}},
                {"name": "email", "in": "query", "schema": {"type": "string"}, "description": "exact e-mail"},
            ],
            "responses": {**json_ok("{data, next_cursor}"), **error_responses(400, 401, 403)},
        },
    },
    "/v1/organizations/{org_id}": {
        "get": {
            "summary": "An organisation with its Stripe account status (its members, platform_admin)",
            "parameters": [_ORG_ID],
            "responses": {**json_ok("organisation"), **error_responses(401, 404)},
        },
        "patch": {
            "summary": "Change the fee policy, charge model or names (platform_admin)",
            "parameters": [_ORG_ID],
            "requestBody": body_schema({"name": {"type": "string"}, **_POLICY}),
            "responses": {**json_ok("organisation"), **error_responses(400, 401, 403, 404)},
        },
    },
    "/v1/organizations/{org_id}/stripe-account": {
        "post": {
            "summary": "Create the connected account (org_admin, platform_admin); creating twice returns it",
            "parameters": [_ORG_ID],
            "requestBody": body_schema({"type": {"type": "string", "enum": list(ACCOUNT_TYPES)}}),
            "responses": {**json_ok("account status"), **error_responses(400, 401, 403, 404, 409, 502, 503)},
        },
        "get": {
            "summary": "The connected account's status; refresh=true re-reads it from Stripe",
            "parameters": [_ORG_ID, {"name": "refresh", "in": "query", "schema": {"type": "boolean"}}],
            "responses": {**json_ok("account status"), **error_responses(401, 404, 409, 502, 503)},
        },
    },
    "/v1/organizations/{org_id}/onboarding-link": {
        "post": {
            "summary": "A Stripe-hosted onboarding link (org_admin, platform_admin)",
            "parameters": [_ORG_ID],
            "requestBody": body_schema(
                {"return_url": {"type": "string"}, "refresh_url": {"type": "string"}}, ["return_url", "refresh_url"]
            ),
            "responses": {**json_ok("{url, expires_at}"), **error_responses(400, 401, 403, 404, 409, 502, 503)},
        }
    },
}
