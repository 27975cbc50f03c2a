"""Operations on the owners' inboxes for platform admins: list and replay recorded events."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
from collect.events.v1 import events_pb2 as pb
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.errors import ApiError
from gateway.http import Fields, caller, json_body, json_response, query_fields, require_role, timestamp_json
from gateway.openapi import body_schema, error_responses, json_ok
from runtime.auth import PLATFORM_ADMIN
from runtime.config import SERVICES
from runtime.errors import FieldError

STATUSES = ("pending", "failed", "applied", "ignored")


def inbox_event_json(service: str, item: pb.InboxEvent) -> dict[str, Any]:
    event = item.event
    return {
        "service": service,
        "source": event.source,
        "event_id": event.event_id,
        "type": event.type,
        "account": event.account or None,
        "created_at": timestamp_json(event.created_at),
        "status": item.status,
        "attempts": item.attempts,
        "last_error": item.last_error or None,
        "received_at": timestamp_json(item.received_at),
        "applied_at": timestamp_json(item.applied_at),
    }


def _services(requested: str) -> tuple[str, ...]:
    if not requested:
        return SERVICES
    if requested not in SERVICES:
        raise ApiError(
            400, "validation_error", "unknown service", [FieldError("service", f"must be one of {', '.join(SERVICES)}")]
        )
    return (requested,)


def _unreachable(error: grpc.aio.AioRpcError) -> str:
    return "no_inbox" if error.code() == grpc.StatusCode.UNIMPLEMENTED else error.code().name.lower()


async def list_events(request: Request) -> Response:
    require_role(caller(request), PLATFORM_ADMIN)
    statuses = request.query_params.getlist("status") or ["failed", "pending"]
    fields = query_fields(request)
    limit = fields.count("limit", default=100, minimum=1, maximum=1000)
    if any(s not in STATUSES for s in statuses):
        fields.errors.append(FieldError("status", f"must be one of {', '.join(STATUSES)}"))
    fields.check()
    services = _services(request.query_params.get("service", ""))
    stubs = request.app.state.clients.events
    query = pb.ListEventsRequest(statuses=statuses, limit=limit)

    async def one(service: str) -> tuple[str, list[dict[str, Any]], str]:
        try:
            answer = await stubs[service].ListEvents(query)
        except grpc.aio.AioRpcError as error:
            return service, [], _unreachable(error)
        return service, [inbox_event_json(service, e) for e in answer.events], "ok"

    results = await asyncio.gather(*(one(s) for s in services))
    data = sorted((e for _, events, _ in results for e in events), key=lambda e: e["received_at"] or "", reverse=True)
    return json_response({"data": data, "services": {service: state for service, _, state in results}})


async def replay_events(request: Request) -> Response:
    require_role(caller(request), PLATFORM_ADMIN)
    fields = Fields(await json_body(request))
    service = fields.text("service", required=False, max_len=40)
    event_id = fields.text("event_id", required=False, max_len=255)
    source = fields.text("source", required=False, choices=("stripe", "qonto"))
    fields.check()
    services = _services(service)
    stubs = request.app.state.clients.events
    query = pb.ReplayEventsRequest(event_id=event_id, source=source)

    async def one(name: str) -> tuple[str, dict[str, Any]]:
        try:
            answer = await stubs[name].ReplayEvents(query)
        except grpc.aio.AioRpcError as error:
            return name, {"error": _unreachable(error)}
        return name, {"replayed": answer.replayed, "applied": answer.applied, "failed": answer.failed}

    results = dict(await asyncio.gather(*(one(s) for s in services)))
    totals = {k: sum(r.get(k, 0) for r in results.values()) for k in ("replayed", "applied", "failed")}
    return json_response({**totals, "services": results})


routes = [
    Route("/v1/ops/events", list_events, methods=["GET"]),
    Route("/v1/ops/events/replay", replay_events, methods=["POST"]),
]

openapi_paths: dict[str, dict[str, object]] = {
    "/v1/ops/events": {
        "get": {
            "summary": "Inbox events of every service (platform_admin); `?status=failed&status=pending` "
            "(default), `?service=`, `?limit=` (1..1000)",
            "responses": {
                **json_ok("`{data: [event], services: {name: ok|no_inbox|unavailable}}`"),
                **error_responses(400, 401, 403),
            },
        }
    },
    "/v1/ops/events/replay": {
        "post": {
            "summary": "Apply again one recorded event (`event_id`) or every failed and pending one (platform_admin)",
            "requestBody": body_schema(
                {"service": {"type": "string"}, "event_id": {"type": "string"}, "source": {"type": "string"}}
            ),
            "responses": {
                **json_ok("`{replayed, applied, failed, services: {...}}`"),
                **error_responses(400, 401, 403),
            },
        }
    },
}
