"""Pennylane settings and push: an organisation's (its org_admins, platform admins) and the platform's books
(platform admins). The API token is write only; Banking seals it."""

from __future__ import annotations

import re
from typing import Any

from collect.banking.v1 import banking_pb2 as pb
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from gateway.http import Fields, caller, json_body, json_response, require_role
from gateway.openapi import body_schema, error_responses, json_ok
from runtime.auth import ORG_ADMIN, PLATFORM_ADMIN
from runtime.errors import FieldError
from runtime.proto import EnumNames

_KEY = re.compile(r"[A-Z0-9]{1,12}")
SALES_AS = EnumNames(pb.PennylaneSalesAs)
DOCUMENTS = EnumNames(pb.PennylaneDocument)


def _settings_json(settings: pb.PennylaneSettings) -> dict[str, Any]:
    return {
        "organization_id": settings.organization_id or None,
        "platform": settings.platform,
        "journal_ids": dict(settings.journal_ids),
        "ledger_account_ids": dict(settings.ledger_account_ids),
        "start_date": settings.start_date or None,
        "enabled": settings.enabled,
        "api_token_set": settings.api_token_set,
        "sales_as": SALES_AS.name(settings.sales_as) or None,
    }


def _failure_json(failure: pb.PennylaneFailure) -> dict[str, Any]:
    return {
        "reference": failure.reference or None,
        "document": DOCUMENTS.name(failure.document) or None,
        "journal": failure.journal or None,
        "date": failure.date or None,
        "status": failure.status or "failed",
        "attempts": failure.attempts,
        "error": failure.error,
    }


def _ids(body: dict[str, Any], fields: Fields, name: str) -> dict[str, int]:
    """`{"VE": 12, ...}`: short codes or account numbers to positive ids."""
    raw = body.get(name)
    nested = fields.obj(name, required=False)
    if not isinstance(raw, dict):
        return {}
    if len(raw) > 100:
        fields.errors.append(FieldError(name, "must have at most 100 keys"))
        return {}
    found = {}
    for key in raw:
        if not _KEY.fullmatch(key):
            fields.errors.append(FieldError(f"{name}.{key[:20]}", "must be a journal code or an account number"))
            continue
        found[key] = nested.integer(key, minimum=1)
    return found


async def _put(request: Request, organization_id: str, platform: bool) -> Response:
    body = await json_body(request)
    fields = Fields(body)
    api_token = fields.text("api_token", required=False, max_len=500)
    journal_ids = _ids(body, fields, "journal_ids")
    account_ids = _ids(body, fields, "ledger_account_ids")
    start_date = fields.day("start_date", required=True)
    enabled = fields.boolean("enabled", default=True)
    # Absent: Banking's default (ledger entries).
    sales_as = fields.text("sales_as", required=False, choices=SALES_AS.names)
    fields.check()
    answer = await request.app.state.clients.banking.PutPennylaneSettings(
        pb.PutPennylaneSettingsRequest(
            organization_id=organization_id,
            platform=platform,
            api_token=api_token,
            journal_ids=journal_ids,
            ledger_account_ids=account_ids,
            start_date=start_date,
            enabled=enabled,
            sales_as=SALES_AS.number(sales_as),  # type: ignore[arg-type]
        )
    )
    return json_response(_settings_json(answer.settings))


async def _get(request: Request, organization_id: str, platform: bool) -> Response:
    answer = await request.app.state.clients.banking.GetPennylaneSettings(
        pb.GetPennylaneSettingsRequest(organization_id=organization_id, platform=platform)
    )
    return json_response({**_settings_json(answer.settings), "failures": [_failure_json(f) for f in answer.failures]})


async def organization_settings(request: Request) -> Response:
    """Banking scopes the caller: another organisation answers 404."""
    require_role(caller(request), ORG_ADMIN, PLATFORM_ADMIN)
    organization_id = request.path_params["org_id"]
    if request.method == "PUT":
        return await _put(request, organization_id, False)
    return await _get(request, organization_id, False)


async def platform_settings(request: Request) -> Response:
    require_role(caller(request), PLATFORM_ADMIN)
    if request.method == "PUT":
        return await _put(request, "", True)
    return await _get(request, "", True)


async def push(request: Request) -> Response:
    require_role(caller(request), PLATFORM_ADMIN)
    body = await json_body(request)
    fields = Fields(body)
    entities = fields.array("entities", required=False, max_items=100)
    if not all(isinstance(e, str) and 0 < len(e) <= 100 for e in entities):
        fields.errors.append(FieldError("entities", "must be organisation ids or `platform`"))
    to_date = fields.day("to_date")
    fields.check()
    answer = await request.app.state.clients.banking.PushToPennylane(
        pb.PushToPennylaneRequest(entities=entities, to_date=to_date)
    )
    results = [
        {
            "entity": r.entity,
            "pushed": r.pushed,
            "found": r.found,
            "unchanged": r.unchanged,
            "rate_limited": r.rate_limited,
            "invoiced": r.invoiced,
            "failures": [_failure_json(f) for f in r.failures],
        }
        for r in answer.results
    ]
    return json_response({"ran": answer.ran, "results": results})


routes: list[BaseRoute] = [
    Route("/v1/organizations/{org_id}/pennylane", organization_settings, methods=["GET", "PUT"]),
    Route("/v1/banking/pennylane", platform_settings, methods=["GET", "PUT"]),
    Route("/v1/banking/pennylane/push", push, methods=["POST"]),
]

_SETTINGS_BODY = body_schema(
    {
        "api_token": {"type": "string", "description": "write only; omitted or empty keeps the stored one"},
        "journal_ids": {"type": "object", "additionalProperties": {"type": "integer"}},
        "ledger_account_ids": {"type": "object", "additionalProperties": {"type": "integer"}},
        "start_date": {"type": "string", "format": "date"},
        "enabled": {"type": "boolean"},
        "sales_as": {
            "type": "string",
            "enum": list(SALES_AS.names),
            "description": "how the sales journal is pushed (default ledger_entries; customer_invoices: organisations only)",
        },
    },
    ["start_date"],
)


def _responses(description: str, *errors: int) -> dict[str, Any]:
    return {**json_ok(description), **error_responses(*errors)}


_ORG = [{"name": "org_id", "in": "path", "required": True, "schema": {"type": "string"}}]
_SETTINGS_DESCRIPTION = (
    "FEC journal codes (VE, CA, ST, BQ) and account numbers mapped to the Pennylane company's journal and "
    "ledger account ids; the token is never answered (`api_token_set`). GET also lists the entries not "
    "pushed yet with Pennylane's answer. `sales_as: customer_invoices` (organisations only) pushes each card or "
    "cash sale as a finalized customer invoice (a refund as a credit note) to one anonymous walk-in customer, "
    "and the rest of its entry (money received, fees) as a ledger entry settling that customer; everything else "
    "stays ledger entries, and the sum equals the FEC."
)

openapi_paths: dict[str, dict[str, object]] = {
    "/v1/organizations/{org_id}/pennylane": {
        "get": {
            "summary": "The organisation's Pennylane settings and entries not pushed (org_admin, platform_admin)",
            "parameters": _ORG,
            "responses": _responses("settings and failures", 401, 403, 404),
        },
        "put": {
            "summary": "Set the organisation's Pennylane company (org_admin, platform_admin)",
            "description": _SETTINGS_DESCRIPTION,
            "parameters": _ORG,
            "requestBody": _SETTINGS_BODY,
            "responses": _responses("settings", 400, 401, 403, 404, 409),
        },
    },
    "/v1/banking/pennylane": {
        "get": {
            "summary": "The platform's Pennylane settings and entries not pushed (platform_admin)",
            "responses": _responses("settings and failures", 401, 403),
        },
        "put": {
            "summary": "Set the platform's Pennylane company (platform_admin)",
            "description": _SETTINGS_DESCRIPTION,
            "requestBody": _SETTINGS_BODY,
            "responses": _responses("settings", 400, 401, 403, 409),
        },
    },
    "/v1/banking/pennylane/push": {
        "post": {
            "summary": "Push the books to Pennylane now, as the scheduled job does (platform_admin)",
            "description": "`ran` is false when a run is already under way (nothing done). Each entry is pushed once.",
            "requestBody": body_schema(
                {"entities": {"type": "array", "items": {"type": "string"}}, "to_date": {"type": "string"}}
            ),
            "responses": _responses("what each entity's run did", 400, 401, 403),
        }
    },
}
