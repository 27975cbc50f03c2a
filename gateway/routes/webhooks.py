"""Webhook ingress (Stripe, Qonto) and the operations on the owners' inboxes.

A delivery is verified on its raw body, routed by type to the owning service's
`EventSinkService.DeliverEvent` and answered 2xx only once that owner has recorded it;
anything else answers non-2xx so that the sender retries.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import grpc
from collect.events.v1 import events_pb2 as pb
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from gateway.errors import ApiError
from gateway.http import json_response, raw_body
from gateway.openapi import error_responses, json_ok
from gateway.webhooks import ops
from gateway.webhooks.recent import RecentEvents
from gateway.webhooks.routing import InvalidEvent, RoutedEvent, qonto_event, stripe_event
from runtime.webhook_signatures import InvalidSignature, verify_qonto_signature, verify_stripe_signature

log = logging.getLogger("gateway.webhooks")

# Qonto wants an answer within 1 s: past this, answer 503 and let it retry.
QONTO_DELIVERY_TIMEOUT_SECONDS = 0.8

Verifier = Callable[[str, bytes, Sequence[str]], None]


async def _ingest(
    request: Request,
    *,
    header: str,
    secrets: Sequence[str],
    verify: Verifier,
    parse: Callable[[bytes], RoutedEvent],
    rpc_timeout: float | None,
) -> Response:
    raw = await raw_body(request)
    try:
        verify(request.headers.get(header, ""), raw, secrets)
    except InvalidSignature as error:
        log.info("webhook refused: %s", error, extra={"path": request.url.path})
        raise ApiError(400, "invalid_signature", str(error)) from None
    try:
        routed = parse(raw)
    except InvalidEvent as error:
        raise ApiError(400, "invalid_event", str(error)) from None
    recent: RecentEvents = request.app.state.recent_webhook_events
    known = recent.get(routed.event.source, routed.event_id)
    if known is not None:  # recorded by its owner already: nothing to ask
        return json_response({"received": True, "duplicate": True, "status": known[1], "owner": known[0]})
    stub = request.app.state.clients.events[routed.owner]
    try:
        answer: pb.DeliverEventResponse = await stub.DeliverEvent(
            pb.DeliverEventRequest(event=routed.event), timeout=rpc_timeout
        )
    except grpc.aio.AioRpcError as error:
        # Not recorded: a non-2xx makes the sender deliver it again later.
        log.warning(
            "webhook not recorded",
            extra={"event_id": routed.event_id, "owner": routed.owner, "grpc_status": error.code().name},
        )
        raise ApiError(503, "event_not_recorded", f"{routed.owner} could not record the event", retry_after=1) from None
    recent.add(routed.event.source, routed.event_id, routed.owner, answer.status)
    return json_response(
        {"received": True, "duplicate": answer.duplicate, "status": answer.status, "owner": routed.owner}
    )


async def stripe_webhook(request: Request) -> Response:
    return await _ingest(
        request,
        header="stripe-signature",
        secrets=request.app.state.settings.stripe_webhook_secrets,
        verify=verify_stripe_signature,
        parse=stripe_event,
        rpc_timeout=None,
    )


async def qonto_webhook(request: Request) -> Response:
    return await _ingest(
        request,
        header="x-qonto-signature",
        secrets=request.app.state.settings.qonto_webhook_secrets,
        verify=verify_qonto_signature,
        parse=qonto_event,
        rpc_timeout=QONTO_DELIVERY_TIMEOUT_SECONDS,
    )


routes: list[BaseRoute] = [
    Route("/webhooks/stripe", stripe_webhook, methods=["POST"]),
    Route("/webhooks/qonto", qonto_webhook, methods=["POST"]),
    *ops.routes,
]

_RECEIVED = json_ok("`{received: true, duplicate, status, owner}` once the owning service recorded the event")

openapi_paths: dict[str, dict[str, object]] = {
    "/webhooks/stripe": {
        "post": {
            "summary": "Stripe events (platform and Connect), signed with `Stripe-Signature`",
            "security": [],
            "description": "Answered 2xx only once the owning service recorded the event; 400 for an "
            "unsigned, tampered, stale or unparsable delivery; 503 when the owner could not record it.",
            "responses": {**_RECEIVED, **error_responses(400, 413, 503)},
        }
    },
    "/webhooks/qonto": {
        "post": {
            "summary": "Qonto transaction events, signed with `X-Qonto-Signature`",
            "security": [],
            "responses": {**_RECEIVED, **error_responses(400, 413, 503)},
        }
    },
    **ops.openapi_paths,
}
