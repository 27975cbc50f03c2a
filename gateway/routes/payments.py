"""Payments: create (idempotent), read, list, capture, cancel, refunds, offline batches and stats."""

from __future__ import annotations

from typing import Any

from collect.common.v1 import common_pb2
from collect.payments.v1 import payments_pb2 as pb
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.http import (
    Fields,
    caller,
    idempotency_key,
    json_body,
    json_response,
    org_query,
    page_params,
    query_fields,
    timestamp_json,
)
from gateway.openapi import IDEMPOTENCY_HEADER, body_schema, error_responses, json_ok
from runtime.proto import to_timestamp

METHODS = ("card_present", "card", "sepa_debit")
CAPTURE_METHODS = ("automatic", "manual")
REFUND_REASONS = ("duplicate", "fraudulent", "requested_by_customer")
STATUSES = (
    "pending",
    "requires_payment_method",
    "requires_confirmation",
    "requires_action",
    "requires_capture",
    "processing",
    "succeeded",
    "canceled",
    "failed",
)
MAX_OFFLINE_ITEMS = 500
_CURRENCY = r"[a-z]{3}"
_DATE = r"\d{4}-\d{2}-\d{2}"


def refund_json(refund: pb.Refund) -> dict[str, Any]:
    return {
        "id": refund.id,
        "payment_id": refund.payment_id,
        "amount": refund.amount,
        "currency": refund.currency,
        "reason": refund.reason or None,
        "status": refund.status,
        "stripe_refund_id": refund.stripe_refund_id or None,
        "application_fee_refunded": refund.application_fee_refunded,
        "failure_reason": refund.failure_reason or None,
        "created_at": timestamp_json(refund.created_at),
    }


def payment_json(payment: pb.Payment, client_secret: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": payment.id,
        "organization_id": payment.organization_id,
        "member_id": payment.member_id,
        "status": payment.status,
        "amount": payment.amount,
        "currency": payment.currency,
        "method": payment.method,
        "capture_method": payment.capture_method,
        "charge_model": payment.charge_model,
        "application_fee_amount": payment.application_fee_amount,
        "application_fee_refunded": payment.application_fee_refunded,
        "amount_captured": payment.amount_captured,
        "amount_refunded": payment.amount_refunded,
        "stripe_payment_intent_id": payment.stripe_payment_intent_id or None,
        "description": payment.description or None,
        "receipt_email": payment.receipt_email or None,
        "metadata": dict(payment.metadata),
        "decline_code": payment.decline_code or None,
        "failure_message": payment.failure_message or None,
        "local_id": payment.local_id or None,
        "local_date": payment.local_date,
        "refunds": [refund_json(r) for r in payment.refunds],
        "created_at": timestamp_json(payment.created_at),
        "updated_at": timestamp_json(payment.updated_at),
    }
    if client_secret is not None:
        body["client_secret"] = client_secret or None
    return body


def totals_json(totals: common_pb2.DailyTotals, with_date: bool = True) -> dict[str, Any]:
    body: dict[str, Any] = {"date": totals.date} if with_date else {}
    body.update(
        count=totals.count,
        gross=totals.gross,
        fees=totals.fees,
        refunded=totals.refunded,
        net=totals.net,
        currency=totals.currency or None,
        disputed_count=totals.disputed_count,
        disputed=totals.disputed,
        disputes_lost=totals.disputes_lost,
    )
    return body


def stats_json(answer: pb.GetOrganizationStatsResponse | pb.GetMemberStatsResponse) -> dict[str, Any]:
    """Days per currency, the totals in the organisation's currency, and the totals of each currency."""
    return {
        "days": [totals_json(d) for d in answer.days],
        "totals": totals_json(answer.totals, with_date=False),
        "totals_by_currency": [totals_json(t, with_date=False) for t in answer.totals_by_currency],
    }


async def create_payment(request: Request) -> Response:
    caller(request)
    key = idempotency_key(request)
    fields = Fields(await json_body(request))
    amount = fields.integer("amount")
    currency = fields.text("currency", required=False, pattern=_CURRENCY)
    method = fields.text("method", required=False, choices=METHODS)
    capture_method = fields.text("capture_method", required=False, choices=CAPTURE_METHODS)
    description = fields.text("description", required=False, max_len=500)
    receipt_email = fields.text("receipt_email", required=False, max_len=254, pattern=r"[^@\s]+@[^@\s]+\.[^@\s]+")
    metadata = fields.string_map("metadata")
    organization_id = fields.text("organization_id", required=False, max_len=100)
    fields.check()
    answer = await request.app.state.clients.payments.CreatePayment(
        pb.CreatePaymentRequest(
            organization_id=organization_id,
            idempotency_key=key,
            amount=amount,
            currency=currency,
            method=method,
            capture_method=capture_method,
            description=description,
            receipt_email=receipt_email,
            metadata=metadata,
        )
    )
    headers = {"Idempotent-Replayed": "true"} if answer.replayed else None
    return json_response(payment_json(answer.payment, answer.client_secret), 201, headers)


async def get_payment(request: Request) -> Response:
    caller(request)
    answer = await request.app.state.clients.payments.GetPayment(
        pb.GetPaymentRequest(organization_id=org_query(request), payment_id=request.path_params["payment_id"])
    )
    return json_response(payment_json(answer.payment))


async def list_payments(request: Request) -> Response:
    caller(request)
    limit, cursor = page_params(request)
    query = query_fields(request)
    status = query.text("status", required=False, choices=STATUSES)
    member_id = query.text("member_id", required=False, max_len=100)
    from_time = to_timestamp(query.instant("from"))
    to_time = to_timestamp(query.instant("to"))
    query.check()
    answer = await request.app.state.clients.payments.ListPayments(
        pb.ListPaymentsRequest(
            organization_id=org_query(request),
            status=status,
            member_id=member_id,
            from_time=from_time,
            to_time=to_time,
            page=common_pb2.PageRequest(limit=limit, cursor=cursor),
        )
    )
    return json_response(
        {"data": [payment_json(p) for p in answer.payments], "next_cursor": answer.next_cursor or None}
    )


async def capture_payment(request: Request) -> Response:
    caller(request)
    fields = Fields(await json_body(request))
    amount = fields.integer("amount_to_capture", required=False, minimum=1)
    organization_id = fields.text("organization_id", required=False, max_len=100)
    fields.check()
    answer = await request.app.state.clients.payments.CapturePayment(
        pb.CapturePaymentRequest(
            organization_id=organization_id, payment_id=request.path_params["payment_id"], amount_to_capture=amount
        )
    )
    return json_response(payment_json(answer.payment))


async def cancel_payment(request: Request) -> Response:
    caller(request)
    fields = Fields(await json_body(request))
    organization_id = fields.text("organization_id", required=False, max_len=100)
    fields.check()
    answer = await request.app.state.clients.payments.CancelPayment(
        pb.CancelPaymentRequest(organization_id=organization_id, payment_id=request.path_params["payment_id"])
    )
    return json_response(payment_json(answer.payment))


async def create_refund(request: Request) -> Response:
    caller(request)
    key = idempotency_key(request)
    fields = Fields(await json_body(request))
    amount = fields.integer("amount", required=False, minimum=1)
    reason = fields.text("reason", required=False, choices=REFUND_REASONS)
    organization_id = fields.text("organization_id", required=False, max_len=100)
    fields.check()
    answer = await request.app.state.clients.payments.CreateRefund(
        pb.CreateRefundRequest(
            organization_id=organization_id,
            payment_id=request.path_params["payment_id"],
            idempotency_key=key,
            amount=amount,
            reason=reason,
        )
    )
    headers = {"Idempotent-Replayed": "true"} if answer.replayed else None
    return json_response(refund_json(answer.refund), 201, headers)


async def submit_offline_batch(request: Request) -> Response:
    caller(request)
    fields = Fields(await json_body(request))
    raw_items = fields.array("transactions", max_items=MAX_OFFLINE_ITEMS)
    organization_id = fields.text("organization_id", required=False, max_len=100)
    fields.check()
    items: list[pb.OfflineItem] = []
    for raw in raw_items:
        # Nothing is refused here: a bad item is rejected alone, with its reason, by the service.
        if not isinstance(raw, dict):
            items.append(pb.OfflineItem())
            continue
        amount = raw.get("amount")
        item = pb.OfflineItem(
            local_id=str(raw.get("local_id") or "")[:300],
            amount=amount if isinstance(amount, int) and not isinstance(amount, bool) else 0,
            currency=str(raw.get("currency") or "")[:10],
            method=str(raw.get("method") or "")[:20],
            stripe_payment_intent_id=str(raw.get("stripe_payment_intent_id") or "")[:255],
        )
        # A created_at that is not a timestamp in the supported range is left out: the service
        # then rejects the item alone, as it rejects any item without one.
        moment = Fields(raw).instant("created_at")
        if moment is not None:
            item.created_at.FromDatetime(moment)
        items.append(item)
    answer = await request.app.state.clients.payments.SubmitOfflineBatch(
        pb.SubmitOfflineBatchRequest(organization_id=organization_id, items=items)
    )
    return json_response(
        {
            "results": [
                {
                    "local_id": r.local_id,
                    "status": r.status,
                    "payment_id": r.payment_id or None,
                    "error": r.error or None,
                }
                for r in answer.results
            ]
        }
    )


def _date_params(request: Request) -> tuple[str, str]:
    query = query_fields(request)
    first, last = query.day("from"), query.day("to")
    query.check()
    return first, last


async def organization_stats(request: Request) -> Response:
    caller(request)
    first, last = _date_params(request)
    answer = await request.app.state.clients.payments.GetOrganizationStats(
        pb.GetOrganizationStatsRequest(organization_id=request.path_params["org_id"], from_date=first, to_date=last)
    )
    return json_response(stats_json(answer))


async def member_stats(request: Request) -> Response:
    caller(request)
    first, last = _date_params(request)
    answer = await request.app.state.clients.payments.GetMemberStats(
        pb.GetMemberStatsRequest(
            organization_id=org_query(request),
            member_id=request.path_params["member_id"],
            from_date=first,
            to_date=last,
        )
    )
    return json_response(stats_json(answer))


routes = [
    Route("/v1/payments", create_payment, methods=["POST"]),
    Route("/v1/payments", list_payments, methods=["GET"]),
    Route("/v1/payments/offline-batch", submit_offline_batch, methods=["POST"]),
    Route("/v1/payments/{payment_id}", get_payment, methods=["GET"]),
    Route("/v1/payments/{payment_id}/capture", capture_payment, methods=["POST"]),
    Route("/v1/payments/{payment_id}/cancel", cancel_payment, methods=["POST"]),
    Route("/v1/payments/{payment_id}/refunds", create_refund, methods=["POST"]),
    Route("/v1/organizations/{org_id}/stats", organization_stats, methods=["GET"]),
    Route("/v1/members/{member_id}/stats", member_stats, methods=["GET"]),
]

_ORG_QUERY = {"name": "organization_id", "in": "query", "schema": {"type": "string"}}
_RANGE = [
    {"name": "from", "in": "query", "schema": {"type": "string", "format": "date"}},
    {"name": "to", "in": "query", "schema": {"type": "string", "format": "date"}},
]
_STATS_OK = json_ok(
    "{days: [{date, count, gross, fees, refunded, net, disputed_count, disputed, disputes_lost}], totals}"
)

openapi_paths: dict[str, dict[str, Any]] = {
    "/v1/payments": {
        "post": {
            "summary": "Create a payment (agent+; idempotent by Idempotency-Key)",
            "parameters": [IDEMPOTENCY_HEADER],
            "requestBody": body_schema(
                {
                    "amount": {"type": "integer", "description": "minor units"},
                    "currency": {"type": "string", "default": "eur"},
                    "method": {"type": "string", "enum": list(METHODS), "default": "card_present"},
                    "capture_method": {"type": "string", "enum": list(CAPTURE_METHODS), "default": "automatic"},
                    "description": {"type": "string"},
                    "receipt_email": {"type": "string"},
                    "metadata": {"type": "object", "additionalProperties": {"type": "string"}},
                    "organization_id": {"type": "string", "description": "platform_admin only"},
                },
                ["amount"],
            ),
            "responses": {
                **json_ok("id, status, amount, application_fee_amount, stripe_payment_intent_id, client_secret", 201),
                **error_responses(400, 401, 403, 409, 429, 502, 503),
            },
        },
        "get": {
            "summary": "List payments (agents: their own sales)",
            "parameters": [
                {"name": "status", "in": "query", "schema": {"type": "string", "enum": list(STATUSES)}},
                {"name": "member_id", "in": "query", "schema": {"type": "string"}},
                {"name": "from", "in": "query", "schema": {"type": "string", "format": "date-time"}},
                {"name": "to", "in": "query", "schema": {"type": "string", "format": "date-time"}},
                {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100}},
                {"name": "cursor", "in": "query", "schema": {"type": "string"}},
                _ORG_QUERY,
            ],
            "responses": {**json_ok("{data, next_cursor}"), **error_responses(400, 401)},
        },
    },
    "/v1/payments/offline-batch": {
        "post": {
            "summary": "Sync sales recorded offline (cash and card), at most 500 per batch",
            "requestBody": body_schema(
                {
                    "transactions": {
                        "type": "array",
                        "maxItems": MAX_OFFLINE_ITEMS,
                        "items": {
                            "type": "object",
                            "required": ["local_id", "amount", "method", "created_at"],
                            "properties": {
                                "local_id": {"type": "string"},
                                "amount": {"type": "integer"},
                                "currency": {"type": "string"},
                                "method": {"type": "string", "enum": ["cash", "card"]},
                                "created_at": {"type": "string", "format": "date-time"},
                                "stripe_payment_intent_id": {"type": "string"},
                            },
                        },
                    }
                },
                ["transactions"],
            ),
            "responses": {
                **json_ok("{results: [{local_id, status: created|duplicate|rejected, payment_id, error}]}"),
                **error_responses(400, 401),
            },
        }
    },
    "/v1/payments/{payment_id}": {
        "get": {
            "summary": "A payment with its refunds",
            "parameters": [_ORG_QUERY],
            "responses": {**json_ok("payment"), **error_responses(401, 404)},
        }
    },
    "/v1/payments/{payment_id}/capture": {
        "post": {
            "summary": "Capture an authorised payment (all, or amount_to_capture)",
            "requestBody": body_schema({"amount_to_capture": {"type": "integer"}}),
            "responses": {**json_ok("payment"), **error_responses(400, 401, 404, 409, 502, 503)},
        }
    },
    "/v1/payments/{payment_id}/cancel": {
        "post": {
            "summary": "Cancel a payment that is not final",
            "responses": {**json_ok("payment"), **error_responses(401, 404, 409, 502, 503)},
        }
    },
    "/v1/payments/{payment_id}/refunds": {
        "post": {
            "summary": "Refund a payment, fully or partly (org_admin+; idempotent by Idempotency-Key)",
            "parameters": [IDEMPOTENCY_HEADER],
            "requestBody": body_schema(
                {
                    "amount": {"type": "integer", "description": "default: everything that is left"},
                    "reason": {"type": "string", "enum": list(REFUND_REASONS)},
                }
            ),
            "responses": {**json_ok("refund", 201), **error_responses(400, 401, 403, 404, 409, 502, 503)},
        }
    },
    "/v1/organizations/{org_id}/stats": {
        "get": {
            "summary": "Per-day sales of an organisation (its time zone)",
            "parameters": _RANGE,
            "responses": {**_STATS_OK, **error_responses(400, 401, 404)},
        }
    },
    "/v1/members/{member_id}/stats": {
        "get": {
            "summary": "Per-day sales of one member (the member, its org_admin)",
            "parameters": [*_RANGE, _ORG_QUERY],
            "responses": {**_STATS_OK, **error_responses(400, 401, 403, 404)},
        }
    },
}
