"""An organisation's payouts: listed, paid out by hand on a manual schedule, and the schedule itself."""

from __future__ import annotations

from collect.accounts.v1 import accounts_pb2 as accounts_pb
from collect.banking.v1 import banking_pb2 as pb
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from gateway.http import Fields, caller, idempotency_key, json_body, json_response, page_params
from gateway.openapi import IDEMPOTENCY_HEADER, body_schema, error_responses, json_ok
from gateway.routes.banking import payout_json
from runtime.proto import EnumNames

INTERVALS = EnumNames(accounts_pb.PayoutInterval)
WEEKDAYS = EnumNames(accounts_pb.Weekday)


async def list_payouts(request: Request) -> Response:
    caller(request)
    limit, cursor = page_params(request)
    answer = await request.app.state.clients.banking.ListPayouts(
        pb.ListPayoutsRequest(organization_id=request.path_params["org_id"], limit=limit, cursor=cursor)
    )
    return json_response({"data": [payout_json(p) for p in answer.payouts], "next_cursor": answer.next_cursor or None})


async def create_payout(request: Request) -> Response:
    caller(request)
    key = idempotency_key(request)
    fields = Fields(await json_body(request))
    amount = fields.integer("amount", required=False, minimum=1)
    fields.check()
    answer = await request.app.state.clients.banking.CreatePayout(
        pb.CreatePayoutRequest(organization_id=request.path_params["org_id"], idempotency_key=key, amount=amount)
    )
    return json_response(payout_json(answer.payout), 201)


async def update_payout_schedule(request: Request) -> Response:
    caller(request)
    fields = Fields(await json_body(request))
    interval = fields.text("interval", choices=INTERVALS.names)
    weekly_anchor = fields.text("weekly_anchor", required=False, choices=WEEKDAYS.names)
    fields.check()
    # Whether an anchor goes with the interval is the service's rule.
    asked = accounts_pb.PayoutSchedule(
        interval=INTERVALS.number(interval),  # type: ignore[arg-type]
        weekly_anchor=WEEKDAYS.number(weekly_anchor),  # type: ignore[arg-type]
    )
    answer = await request.app.state.clients.accounts.UpdatePayoutSchedule(
        accounts_pb.UpdatePayoutScheduleRequest(organization_id=request.path_params["org_id"], schedule=asked)
    )
    schedule = answer.schedule
    return json_response(
        {
            "interval": INTERVALS.name(schedule.interval),
            "weekly_anchor": WEEKDAYS.name(schedule.weekly_anchor) or None,
            "delay_days": schedule.delay_days,
        }
    )


routes: list[BaseRoute] = [
    Route("/v1/organizations/{org_id}/payouts", list_payouts, methods=["GET"]),
    Route("/v1/organizations/{org_id}/payouts", create_payout, methods=["POST"]),
    Route("/v1/organizations/{org_id}/payout-schedule", update_payout_schedule, methods=["PATCH"]),
]

_PAGE = [
    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100}},
    {"name": "cursor", "in": "query", "schema": {"type": "string"}},
]

openapi_paths = {
    "/v1/organizations/{org_id}/payouts": {
        "get": {
            "summary": "Payouts of the organisation's connected account, oldest first (org_admin, platform_admin)",
            "parameters": _PAGE,
            "responses": {
                **json_ok("{data: [{id, amount, currency, status, arrival_date, failure_message}], next_cursor}"),
                **error_responses(400, 401, 403, 404),
            },
        },
        "post": {
            "summary": "Pay out the available balance (or `amount` of it) now; the schedule must be manual",
            "parameters": [IDEMPOTENCY_HEADER],
            "requestBody": body_schema({"amount": {"type": "integer", "minimum": 1}}),
            "responses": {**json_ok("payout", 201), **error_responses(400, 401, 403, 404, 409, 502, 503)},
        },
    },
    "/v1/organizations/{org_id}/payout-schedule": {
        "patch": {
            "summary": "When Stripe pays out the organisation's balance",
            "requestBody": body_schema(
                {
                    "interval": {"type": "string", "enum": list(INTERVALS.names)},
                    "weekly_anchor": {"type": "string", "enum": list(WEEKDAYS.names)},
                },
                ["interval"],
            ),
            "responses": {
                **json_ok("{interval, weekly_anchor, delay_days}"),
                **error_responses(400, 401, 403, 404, 409, 502, 503),
            },
        }
    },
}
