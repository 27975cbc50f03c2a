"""Banking and reports: Qonto sync, payouts, reconciliation, allocation, daily report, FEC.

Every JSON route is the HTTP mapping its RPC declares in protos/collect/banking/v1/banking.proto.
Written by hand: the daily report's CSV variant and the FEC downloads (text files), which read
their query parameters by the same messages' rules and document them from the same descriptors."""

from __future__ import annotations

from typing import Any

from collect.banking.v1 import banking_pb2 as pb
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from gateway.http import caller, require_role
from gateway.openapi import error_responses
from gateway.transcoding import served
from gateway.transcoding.routes import read_query, reader
from gateway.transcoding.schema import query_parameters
from runtime.auth import ORG_ADMIN, PLATFORM_ADMIN

generated_routes, operations = served("banking", pb.DESCRIPTOR.services_by_name["BankingService"])

_daily = next(op for op in operations if op.method.name == "GetDailyReport")
_read_daily = reader(_daily)
_json_daily = next(r for r in generated_routes if isinstance(r, Route) and r.name == "GetDailyReport")


async def daily_report(request: Request) -> Response:
    """`format=csv` answers the report as a CSV file; otherwise the generated JSON route."""
    if request.query_params.get("format") != "csv":
        return await _json_daily.endpoint(request)
    message = await _read_daily(request)
    answer = await request.app.state.clients.banking.GetDailyReport(message)
    return Response(
        answer.csv,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="daily-report-{answer.report.date}.csv"'},
    )


async def export_fec(request: Request) -> Response:
    require_role(caller(request), PLATFORM_ADMIN)
    message = pb.ExportFecRequest()
    read_query(request, message)
    return _fec_file(await request.app.state.clients.banking.ExportFec(message))


async def export_organization_fec(request: Request) -> Response:
    """The organisation's own books; Banking scopes the caller (another organisation answers 404)."""
    require_role(caller(request), ORG_ADMIN, PLATFORM_ADMIN)
    message = pb.ExportOrganizationFecRequest(organization_id=request.path_params["org_id"])
    read_query(request, message, skip=frozenset(("organization_id",)))
    return _fec_file(await request.app.state.clients.banking.ExportOrganizationFec(message))


def _fec_file(answer: pb.ExportFecResponse | pb.ExportOrganizationFecResponse) -> Response:
    return Response(
        answer.content,
        media_type="text/plain; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{answer.filename}"',
            "X-FEC-Entries": str(answer.entries),
        },
    )


routes: list[BaseRoute] = [
    # Before the generated routes: the same path and verb, CSV or JSON by `format`.
    Route(_daily.path, daily_report, methods=["GET"]),
    *(r for r in generated_routes if r is not _json_daily),
    Route("/v1/banking/exports/fec", export_fec, methods=["GET"]),
    Route("/v1/organizations/{org_id}/exports/fec", export_organization_fec, methods=["GET"]),
]


def _fec_responses(*statuses: int) -> dict[str, Any]:
    return {
        "200": {
            "description": "FEC text file (tab-separated); `X-FEC-Entries` counts its entries",
            "content": {"text/plain": {"schema": {"type": "string"}}},
            "headers": {"X-FEC-Entries": {"schema": {"type": "integer"}}},
        },
        **error_responses(*statuses),
    }


_FEC_STATUSES = (400, 401, 403, 404, 409, 429, 502, 503)

openapi_paths: dict[str, dict[str, object]] = {
    "/v1/banking/exports/fec": {
        "get": {
            "operationId": "exportFec",
            "tags": ["banking"],
            "summary": "The platform's FEC journal for `?from=YYYY-MM-DD&to=YYYY-MM-DD`; every entry balances",
            "description": "Its application fees, the Stripe fees it bears, transfers to organisations and their "
            "reversals (destination charges), its payouts and bank. File `<FEC_SIREN>FEC<to as YYYYMMDD>.txt`; "
            "platform_admin.",
            "parameters": query_parameters(pb.ExportFecRequest.DESCRIPTOR),
            "responses": _fec_responses(*_FEC_STATUSES),
        }
    },
    "/v1/organizations/{org_id}/exports/fec": {
        "get": {
            "operationId": "exportOrganizationFec",
            "tags": ["banking"],
            "summary": "The organisation's own FEC journal for `?from=YYYY-MM-DD&to=YYYY-MM-DD` (org_admin, platform_admin)",
            "description": "Card and cash sales on the day they were made, Stripe and platform fees, refunds on the "
            "day they were made, payouts to its bank; one currency per entry, every entry balances, EcritureNum "
            "gapless per journal. File `<siren>FEC<to as YYYYMMDD>.txt`; 409 `siren_required` until the "
            "organisation's SIREN is set.",
            "parameters": [
                {"name": "org_id", "in": "path", "required": True, "schema": {"type": "string", "maxLength": 100}},
                *query_parameters(pb.ExportOrganizationFecRequest.DESCRIPTOR, frozenset(("organization_id",))),
            ],
            "responses": _fec_responses(*_FEC_STATUSES),
        }
    },
}
