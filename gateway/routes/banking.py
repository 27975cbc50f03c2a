"""Banking and reports (platform admins): Qonto sync, payouts, reconciliation, allocation, daily report, FEC."""

from __future__ import annotations

from typing import Any

from collect.banking.v1 import banking_pb2 as pb
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from gateway.errors import ApiError
from gateway.http import (
    Fields,
    caller,
    json_body,
    json_response,
    page_params,
    query_fields,
    require_role,
)
from gateway.openapi import body_schema, error_responses, json_ok
from gateway.transcoding import served
from gateway.transcoding.codec import writer
from runtime.auth import ORG_ADMIN, PLATFORM_ADMIN
from runtime.errors import FieldError

_DAY = r"\d{4}-\d{2}-\d{2}"


def _admin(request: Request) -> Any:
    require_role(caller(request), PLATFORM_ADMIN)
    return request.app.state.clients.banking


# As the generated routes write them (GET /v1/organizations/{organization_id}/payouts, /v1/banking/transactions).
payout_json = writer(pb.Payout.DESCRIPTOR)
transaction_json = writer(pb.BankTransaction.DESCRIPTOR)


match_json = writer(pb.ReconciliationMatch.DESCRIPTOR)


def report_json(report: pb.DailyReport) -> dict[str, Any]:
    return {
        "date": report.date,
        "currency": report.currency,
        "timezone": report.timezone,
        "organizations": [
            {
                "organization_id": line.organization_id,
                "organization_name": line.organization_name or None,
                "currency": line.currency,
                "count": line.count,
                "gross": line.gross,
                "fees": line.fees,
                "refunds": line.refunds,
                "net": line.net,
                "payouts": line.payouts,
                "bank_credits": line.bank_credits,
                "reconciled": line.reconciled,
                "difference": line.difference,
                "disputed_count": line.disputed_count,
                "disputed": line.disputed,
                "disputes_lost": line.disputes_lost,
            }
            for line in report.organizations
        ],
        "totals": {
            "gross": report.gross,
            "fees": report.fees,
            "refunds": report.refunds,
            "net": report.net,
            "payouts": report.payouts,
        },
        # One row per currency of the day; amounts of different currencies are never added.
        "totals_by_currency": [
            {
                "currency": t.currency,
                "count": t.count,
                "gross": t.gross,
                "fees": t.fees,
                "refunds": t.refunds,
                "net": t.net,
                "payouts": t.payouts,
                "bank_credits": t.bank_credits,
                "bank_debits": t.bank_debits,
                "disputed_count": t.disputed_count,
                "disputed": t.disputed,
                "disputes_lost": t.disputes_lost,
            }
            for t in report.totals_by_currency
        ],
        "bank": {"credits": report.bank_credits, "debits": report.bank_debits},
        # The audit chains' heads as the report was built: anchors for `verify-audit --anchor`.
        "audit_anchors": list(report.audit_anchors),
        "bank_credits": report.bank_credits,
        "reconciled": report.reconciled,
        "reconciliation": {
            "reconciled": report.reconciled,
            "unmatched_payouts": report.unmatched_payouts,
            "unmatched_credits": report.unmatched_credits,
        },
        "allocation": [
            {
                "entity": e.entity,
                "revenue": e.revenue,
                "tax_rate_bps": e.tax_rate_bps,
                "estimated_tax": e.estimated_tax,
            }
            for e in report.allocation
        ],
        "tax": {
            "estimated_total": report.estimated_tax_total,
            "baseline_entity": report.baseline_entity or None,
            "baseline_estimated": report.baseline_estimated_tax,
            "difference": report.tax_difference,
        },
    }


def _day_query(request: Request, name: str, *, required: bool) -> str:
    query = query_fields(request)
    value = query.day(name, required=required)
    query.check()
    return value


async def list_payouts(request: Request) -> Response:
    stub = _admin(request)
    limit, cursor = page_params(request)
    answer = await stub.ListPayouts(pb.ListPayoutsRequest(limit=limit, cursor=cursor))
    return json_response({"data": [payout_json(p) for p in answer.payouts], "next_cursor": answer.next_cursor or None})


async def get_reconciliation(request: Request) -> Response:
    answer = await _admin(request).GetReconciliation(pb.GetReconciliationRequest())
    return json_response(
        {
            "matches": [match_json(m) for m in answer.matches],
            "unmatched_payouts": [payout_json(p) for p in answer.unmatched_payouts],
            "unmatched_credits": [transaction_json(t) for t in answer.unmatched_credits],
        }
    )


def _allocation_json(answer: Any) -> dict[str, Any]:
    return {
        "rules": [
            {"organization_id": r.organization_id or None, "entity": r.entity, "share_bps": r.share_bps}
            for r in answer.rules
        ],
        "entities": [{"entity": e.entity, "tax_rate_bps": e.tax_rate_bps} for e in answer.entities],
    }


async def put_allocation_rules(request: Request) -> Response:
    stub = _admin(request)
    fields = Fields(await json_body(request))
    rules: list[pb.AllocationRule] = []
    for i, item in enumerate(fields.array("rules")):
        rule = Fields(item if isinstance(item, dict) else {}, f"rules[{i}].", fields.errors)
        if not isinstance(item, dict):
            fields.errors.append(FieldError(f"rules[{i}]", "must be an object"))
        rules.append(
            pb.AllocationRule(
                organization_id=rule.text("organization_id", required=False, max_len=100),
                entity=rule.text("entity", max_len=100),
                share_bps=rule.integer("share_bps", minimum=1, maximum=10_000),
            )
        )
    entities: list[pb.LegalEntity] = []
    for i, item in enumerate(fields.array("entities")):
        entity = Fields(item if isinstance(item, dict) else {}, f"entities[{i}].", fields.errors)
        if not isinstance(item, dict):
            fields.errors.append(FieldError(f"entities[{i}]", "must be an object"))
        entities.append(
            pb.LegalEntity(
                entity=entity.text("entity", max_len=100),
                tax_rate_bps=entity.integer("tax_rate_bps", minimum=0, maximum=10_000),
            )
        )
    fields.check()
    answer = await stub.PutAllocationRules(pb.PutAllocationRulesRequest(rules=rules, entities=entities))
    return json_response(_allocation_json(answer))


async def get_allocation_rules(request: Request) -> Response:
    answer = await _admin(request).GetAllocationRules(pb.GetAllocationRulesRequest())
    return json_response(_allocation_json(answer))


async def allocation_report(request: Request) -> Response:
    stub = _admin(request)
    from_day = _day_query(request, "from", required=True)
    to_day = _day_query(request, "to", required=True)
    answer = await stub.GetAllocationReport(pb.GetAllocationReportRequest(from_date=from_day, to_date=to_day))
    return json_response(
        {
            "from": answer.from_date,
            "to": answer.to_date,
            "currency": answer.currency,
            "net": answer.net,
            "allocation": [
                {
                    "entity": e.entity,
                    "revenue": e.revenue,
                    "tax_rate_bps": e.tax_rate_bps,
                    "estimated_tax": e.estimated_tax,
                }
                for e in answer.allocation
            ],
            "tax": {
                "estimated_total": answer.estimated_tax_total,
                "baseline_entity": answer.baseline_entity or None,
                "baseline_estimated": answer.baseline_estimated_tax,
                "difference": answer.tax_difference,
            },
        }
    )


async def daily_report(request: Request) -> Response:
    stub = _admin(request)
    day = _day_query(request, "date", required=False)
    output = request.query_params.get("format", "json")
    if output not in ("json", "csv"):
        raise ApiError(400, "validation_error", "format must be json or csv", [FieldError("format", "json or csv")])
    answer = await stub.GetDailyReport(pb.GetDailyReportRequest(date=day))
    if output == "csv":
        filename = f"daily-report-{answer.report.date}.csv"
        return Response(
            answer.csv,
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )
    return json_response(report_json(answer.report))


async def send_daily_report(request: Request) -> Response:
    stub = _admin(request)
    fields = Fields(await json_body(request))
    day = fields.day("date")
    force = fields.boolean("force")
    fields.check()
    if not day:
        day = request.query_params.get("date", "")
    answer = await stub.SendDailyReport(pb.SendDailyReportRequest(date=day, force=force))
    body = {
        "sent": answer.sent,
        "already_sent": answer.already_sent,
        "pending": answer.pending,
        "last_error": answer.last_error or None,
    }
    return json_response(body, status=202 if answer.pending else 200)


async def export_fec(request: Request) -> Response:
    stub = _admin(request)
    from_day = _day_query(request, "from", required=True)
    to_day = _day_query(request, "to", required=True)
    return _fec_file(await stub.ExportFec(pb.ExportFecRequest(from_date=from_day, to_date=to_day)))


async def export_organization_fec(request: Request) -> Response:
    """The organisation's own books; Banking scopes the caller (another organisation answers 404)."""
    require_role(caller(request), ORG_ADMIN, PLATFORM_ADMIN)
    from_day = _day_query(request, "from", required=True)
    to_day = _day_query(request, "to", required=True)
    answer = await request.app.state.clients.banking.ExportOrganizationFec(
        pb.ExportOrganizationFecRequest(
            organization_id=request.path_params["org_id"], from_date=from_day, to_date=to_day
        )
    )
    return _fec_file(answer)


def _fec_file(answer: pb.ExportFecResponse | pb.ExportOrganizationFecResponse) -> Response:
    return Response(
        answer.content,
        media_type="text/plain; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{answer.filename}"',
            "X-FEC-Entries": str(answer.entries),
        },
    )


# The Banking RPCs that declare their HTTP mapping (an organisation's payouts, syncs, transactions,
# reconciliation runs); the others are still written by hand below.
generated_routes, operations = served("banking", pb.DESCRIPTOR.services_by_name["BankingService"])

routes: list[BaseRoute] = [
    *generated_routes,
    Route("/v1/banking/payouts", list_payouts, methods=["GET"]),
    Route("/v1/banking/reconciliation", get_reconciliation, methods=["GET"]),
    Route("/v1/banking/allocation-rules", put_allocation_rules, methods=["PUT"]),
    Route("/v1/banking/allocation-rules", get_allocation_rules, methods=["GET"]),
    Route("/v1/banking/allocation-report", allocation_report, methods=["GET"]),
    Route("/v1/reports/daily", daily_report, methods=["GET"]),
    Route("/v1/reports/daily/send", send_daily_report, methods=["POST"]),
    Route("/v1/banking/exports/fec", export_fec, methods=["GET"]),
    Route("/v1/organizations/{org_id}/exports/fec", export_organization_fec, methods=["GET"]),
]

_ADMIN_ERRORS = error_responses(400, 401, 403, 502, 503)
_ORG_FEC_RESPONSES: dict[str, Any] = {
    "200": {"description": "FEC text file", "content": {"text/plain": {}}},
    **error_responses(400, 401, 403, 404, 409, 502, 503),
}

openapi_paths: dict[str, dict[str, object]] = {
    "/v1/banking/payouts": {
        "get": {"summary": "Stripe payouts", "responses": {**json_ok("{data: [payout], next_cursor}"), **_ADMIN_ERRORS}}
    },
    "/v1/banking/reconciliation": {
        "get": {
            "summary": "Matches (with rule and explanation) and what is unmatched",
            "responses": {**json_ok("{matches, unmatched_payouts, unmatched_credits}"), **_ADMIN_ERRORS},
        }
    },
    "/v1/banking/allocation-rules": {
        "put": {
            "summary": "Replace legal entities and allocation rules (shares per organisation sum to 10000)",
            "requestBody": body_schema(
                {
                    "rules": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "organization_id": {"type": "string"},
                                "entity": {"type": "string"},
                                "share_bps": {"type": "integer"},
                            },
                        },
                    },
                    "entities": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {"entity": {"type": "string"}, "tax_rate_bps": {"type": "integer"}},
                        },
                    },
                },
                ["rules", "entities"],
            ),
            "responses": {**json_ok("{rules, entities}"), **_ADMIN_ERRORS},
        },
        "get": {
            "summary": "Legal entities and allocation rules",
            "responses": {**json_ok("{rules, entities}"), **_ADMIN_ERRORS},
        },
    },
    "/v1/banking/allocation-report": {
        "get": {
            "summary": "Net revenue per legal entity over `?from&to`, estimated tax, and the single-entity baseline",
            "responses": {**json_ok("{from, to, currency, net, allocation, tax}"), **_ADMIN_ERRORS},
        }
    },
    "/v1/reports/daily": {
        "get": {
            "summary": "Daily report: totals per organisation, bank, reconciliation, allocation with estimated tax",
            "description": "`?date=YYYY-MM-DD` (default: yesterday in the report time zone), `&format=csv` for CSV. "
            "One line per organisation and currency and `totals_by_currency`: amounts of different currencies are "
            "never added (`totals`, `bank`, allocation and tax are in the report's `currency`). A refund counts on "
            "the day it was made, so a reported day does not change afterwards.",
            "responses": {**json_ok("report"), **_ADMIN_ERRORS},
        }
    },
    "/v1/reports/daily/send": {
        "post": {
            "summary": "Push the daily report to the configured Slack webhook (once per date unless `force`)",
            "requestBody": body_schema({"date": {"type": "string", "format": "date"}, "force": {"type": "boolean"}}),
            "responses": {
                **json_ok("{sent, already_sent, pending, last_error}"),
                "202": {"description": "recorded; Slack unavailable, retried in the background"},
                **_ADMIN_ERRORS,
            },
        }
    },
    "/v1/banking/exports/fec": {
        "get": {
            "summary": "The platform's FEC journal for `?from=YYYY-MM-DD&to=YYYY-MM-DD`; every entry balances",
            "description": "Its application fees, the Stripe fees it bears, transfers to organisations and their "
            "reversals (destination charges), its payouts and bank. File `<FEC_SIREN>FEC<to as YYYYMMDD>.txt`.",
            "responses": {"200": {"description": "FEC text file", "content": {"text/plain": {}}}, **_ADMIN_ERRORS},
        }
    },
    "/v1/organizations/{org_id}/exports/fec": {
        "get": {
            "summary": "The organisation's own FEC journal for `?from=YYYY-MM-DD&to=YYYY-MM-DD` (org_admin, platform_admin)",
            "description": "Card and cash sales on the day they were made, Stripe and platform fees, refunds on the "
            "day they were made, payouts to its bank; one currency per entry, every entry balances, EcritureNum "
            "gapless per journal. File `<siren>FEC<to as YYYYMMDD>.txt`; 409 `siren_required` until the "
            "organisation's SIREN is set.",
            "parameters": [{"name": "org_id", "in": "path", "required": True, "schema": {"type": "string"}}],
            "responses": _ORG_FEC_RESPONSES,
        }
    },
}
