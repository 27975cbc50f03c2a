"""Disputes (chargebacks): listed with their evidence due date, answered with evidence."""

from __future__ import annotations

from typing import Any

from collect.common.v1 import common_pb2
from collect.payments.v1 import payments_pb2 as pb
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.http import Fields, caller, json_body, json_response, org_query, page_params, timestamp_json
from gateway.openapi import body_schema, error_responses, json_ok
from runtime.errors import FieldError
from runtime.proto import EnumNames

STATUSES = EnumNames(pb.DisputeStatus)


def dispute_json(dispute: pb.Dispute) -> dict[str, Any]:
    return {
        "id": dispute.id,
        "payment_id": dispute.payment_id,
        "organization_id": dispute.organization_id,
        "amount": dispute.amount,
        "currency": dispute.currency,
        "reason": dispute.reason or None,
        "status": STATUSES.name(dispute.status),
        "evidence_due_by": timestamp_json(dispute.evidence_due_by) if dispute.HasField("evidence_due_by") else None,
        "evidence_submissions": dispute.evidence_submissions,
        "charge_model": dispute.charge_model,
        "withdrawn": dispute.withdrawn,
        "dispute_fee": dispute.dispute_fee,
        "reinstated": dispute.reinstated,
        "transfer_reversed": dispute.transfer_reversed,
        "transfer_returned": dispute.transfer_returned,
        "stripe_dispute_id": dispute.stripe_dispute_id,
        "created_at": timestamp_json(dispute.created_at),
    }


async def list_disputes(request: Request) -> Response:
    caller(request)
    limit, cursor = page_params(request)
    answer = await request.app.state.clients.payments.ListDisputes(
        pb.ListDisputesRequest(
            organization_id=org_query(request), page=common_pb2.PageRequest(limit=limit, cursor=cursor)
        )
    )
    return json_response(
        {"data": [dispute_json(d) for d in answer.disputes], "next_cursor": answer.next_cursor or None}
    )


async def submit_evidence(request: Request) -> Response:
    caller(request)
    body = await json_body(request)
    fields = Fields(body)
    submit = fields.boolean("submit", default=True)
    evidence = body.get("evidence")
    # Which evidence fields Stripe takes, and how much, is the service's rule; here only the shape.
    if not isinstance(evidence, dict) or not all(isinstance(v, str) for v in evidence.values()):
        fields.errors.append(FieldError("evidence", "must be an object of text values"))
        evidence = {}
    fields.check()
    answer = await request.app.state.clients.payments.SubmitDisputeEvidence(
        pb.SubmitDisputeEvidenceRequest(dispute_id=request.path_params["dispute_id"], evidence=evidence, submit=submit)
    )
    return json_response(dispute_json(answer.dispute))


routes = [
    Route("/v1/disputes", list_disputes, methods=["GET"]),
    Route("/v1/disputes/{dispute_id}/evidence", submit_evidence, methods=["POST"]),
]

openapi_paths: dict[str, dict[str, Any]] = {
    "/v1/disputes": {
        "get": {
            "summary": "List disputes with their evidence due date (org_admin: its organisation's; "
            "platform_admin: every organisation's, or one's with organization_id)",
            "parameters": [
                {"name": "organization_id", "in": "query", "schema": {"type": "string"}},
                {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100}},
                {"name": "cursor", "in": "query", "schema": {"type": "string"}},
            ],
            "responses": {
                **json_ok("{data: [{id, payment_id, amount, currency, reason, status, evidence_due_by}], next_cursor}"),
                **error_responses(400, 401, 403, 404),
            },
        }
    },
    "/v1/disputes/{dispute_id}/evidence": {
        "post": {
            "summary": "Stage (submit: false) or submit evidence for a dispute (org_admin of its organisation, "
            "platform_admin)",
            "parameters": [{"name": "dispute_id", "in": "path", "required": True, "schema": {"type": "string"}}],
            "requestBody": body_schema(
                {
                    "evidence": {
                        "type": "object",
                        "description": "Stripe's evidence fields (product_description, uncategorized_text, ...)",
                        "additionalProperties": {"type": "string"},
                    },
                    "submit": {"type": "boolean", "default": True},
                },
                ["evidence"],
            ),
            "responses": {
                **json_ok("dispute: {id, payment_id, amount, currency, reason, status, evidence_due_by}"),
                **error_responses(400, 401, 403, 404, 409, 502, 503),
            },
        }
    },
}
