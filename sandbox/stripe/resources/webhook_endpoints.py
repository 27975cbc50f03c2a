"""Webhook endpoints of the platform; the `whsec_` secret is shown only in the creation response."""

from __future__ import annotations

import time

from ..context import Ctx, deleted, public
from ..ids import new_id, new_secret
from ..state import API_VERSION
from ..store import StripeObject, paginate
from ..wire import apply_metadata, get_bool, get_list, get_str, invalid


def _platform_only(ctx: Ctx) -> None:
    if not ctx.is_platform:
        raise invalid("Webhook endpoints belong to the platform account.")


def _events(ctx: Ctx) -> list[str]:
    events = get_list(ctx.params, "enabled_events")
    if not events:
        raise invalid("Missing required param: enabled_events.", param="enabled_events", code="parameter_missing")
    return [str(e) for e in events]


def create(ctx: Ctx) -> StripeObject:
    _platform_only(ctx)
    url = get_str(ctx.params, "url", required=True)
    assert url is not None
    if not url.startswith(("http://", "https://")):
        raise invalid("Invalid URL: must be http(s)", param="url", code="url_invalid")
    secret = new_secret("whsec")
    endpoint: StripeObject = {
        "id": new_id("we"),
        "object": "webhook_endpoint",
        "api_version": get_str(ctx.params, "api_version") or API_VERSION,
        "application": None,
        "created": int(time.time()),
        "description": get_str(ctx.params, "description"),
        "enabled_events": _events(ctx),
        "livemode": False,
        "metadata": {},
        "status": "enabled",
        "url": url,
        "_secret": secret,
        "_connect": get_bool(ctx.params, "connect"),
    }
    apply_metadata(endpoint, ctx.params)
    ctx.state.store.add(ctx.account, endpoint)
    return {**public(endpoint), "secret": secret}


def retrieve(ctx: Ctx, endpoint_id: str) -> StripeObject:
    return public(ctx.state.store.get(ctx.account, endpoint_id, "webhook_endpoint"))


def update(ctx: Ctx, endpoint_id: str) -> StripeObject:
    endpoint = ctx.state.store.get(ctx.account, endpoint_id, "webhook_endpoint")
    params = ctx.params
    if "url" in params:
        endpoint["url"] = get_str(params, "url", required=True)
    if "enabled_events" in params:
        endpoint["enabled_events"] = _events(ctx)
    if "description" in params:
        endpoint["description"] = params["description"] or None
    if "disabled" in params:
        endpoint["status"] = "disabled" if get_bool(params, "disabled") else "enabled"
    apply_metadata(endpoint, params)
    return public(endpoint)


def delete(ctx: Ctx, endpoint_id: str) -> StripeObject:
    endpoint = ctx.state.store.get(ctx.account, endpoint_id, "webhook_endpoint")
    ctx.state.store.remove(endpoint_id)
    return deleted(endpoint)


def list_endpoints(ctx: Ctx) -> StripeObject:
    page = paginate(ctx.state.store.newest_first(ctx.account, "webhook_endpoint"), ctx.params, "/v1/webhook_endpoints")
    page["data"] = [public(e) for e in page["data"]]
    return page


ROUTES = [
    ("POST", "/v1/webhook_endpoints", create),
    ("GET", "/v1/webhook_endpoints", list_endpoints),
    ("GET", "/v1/webhook_endpoints/{}", retrieve),
    ("POST", "/v1/webhook_endpoints/{}", update),
    ("DELETE", "/v1/webhook_endpoints/{}", delete),
]
