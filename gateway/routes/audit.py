"""The audit trail: every money-moving and administrative action, newest first (Accounts' chains)."""

from __future__ import annotations

from typing import Any

import orjson
from collect.accounts.v1 import accounts_pb2 as pb
from collect.common.v1 import common_pb2
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from gateway.http import caller, json_response, org_query, page_params, query_fields, require_role, timestamp_json
from gateway.openapi import PAGE_PARAMETERS, error_responses, json_ok
from runtime.auth import ORG_ADMIN, PLATFORM_ADMIN
from runtime.proto import to_timestamp


def _object(text: str) -> Any:
    return orjson.loads(text) if text else None


def audit_entry_json(entry: pb.AuditEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "organization_id": entry.organization_id or None,
        "actor_id": entry.actor_id,
        "actor_role": entry.actor_role,
        "actor_organization_id": entry.actor_organization_id or None,
        "action": entry.action,
        "targets": dict(entry.targets),
        "before": _object(entry.before_json),
        "after": _object(entry.after_json),
        "request_id": entry.request_id or None,
        "trace_id": entry.trace_id or None,
        "occurred_at": timestamp_json(entry.occurred_at),
        "recorded_at": timestamp_json(entry.recorded_at),
        "source": entry.source,
        "sequence": entry.sequence,
        "hash": entry.hash,
    }


async def list_audit(request: Request) -> Response:
    found = caller(request)
    require_role(found, ORG_ADMIN, PLATFORM_ADMIN)
    limit, cursor = page_params(request)
    query = query_fields(request)
    actor_id = query.text("actor_id", required=False, max_len=100)
    action = query.text("action", required=False, max_len=100)
    from_time = to_timestamp(query.instant("from"))
    to_time = to_timestamp(query.instant("to"))
    query.check()
    answer = await request.app.state.clients.accounts.ListAuditEntries(
        pb.ListAuditEntriesRequest(
            organization_id=org_query(request),
            actor_id=actor_id,
            action=action,
            from_time=from_time,
            to_time=to_time,
            page=common_pb2.PageRequest(limit=limit, cursor=cursor),
        )
    )
    return json_response(
        {"data": [audit_entry_json(e) for e in answer.entries], "next_cursor": answer.next_cursor or None}
    )


routes: list[BaseRoute] = [Route("/v1/audit", list_audit, methods=["GET"])]


def _query(name: str, description: str, **schema: Any) -> dict[str, Any]:
    return {"name": name, "in": "query", "description": description, "schema": {"type": "string", **schema}}


openapi_paths = {
    "/v1/audit": {
        "get": {
            "summary": "The audit trail, newest first (org_admin: its organisation; platform_admin: all, or one)",
            "parameters": [
                _query("organization_id", "platform_admin: only this organisation's entries"),
                _query("actor_id", "only this member's actions (or `service:<name>`)"),
                _query("action", "e.g. `payment.refunded`, `member.updated`, `stripe_event.applied`"),
                _query("from", "recorded at or after (RFC 3339)", format="date-time"),
                _query("to", "recorded before (RFC 3339)", format="date-time"),
                *PAGE_PARAMETERS,
            ],
            "responses": {
                **json_ok(
                    "{data: [{id, organization_id, actor_id, actor_role, actor_organization_id, action, targets, "
                    "before, after, request_id, trace_id, occurred_at, recorded_at, source, sequence, hash}], "
                    "next_cursor}"
                ),
                **error_responses(400, 401, 403, 404),
            },
        }
    }
}
