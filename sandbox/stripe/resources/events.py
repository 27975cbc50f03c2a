"""Events: list with filters, retrieve."""

from __future__ import annotations

from ..context import Ctx
from ..store import StripeObject, created_filter, paginate
from ..wire import get_list


def retrieve(ctx: Ctx, event_id: str) -> StripeObject:
    return ctx.state.store.get(ctx.account, event_id, "event")


def list_events(ctx: Ctx) -> StripeObject:
    kind = ctx.params.get("type")
    types = set(get_list(ctx.params, "types") or [])
    created = created_filter(ctx.params)
    prefix = kind[:-1] if kind and kind.endswith("*") else None

    def keep(event: StripeObject) -> bool:
        if kind and (event["type"] != kind if prefix is None else not event["type"].startswith(prefix)):
            return False
        if types and event["type"] not in types:
            return False
        return created is None or created(event)

    return paginate(ctx.state.store.newest_first(ctx.account, "event"), ctx.params, "/v1/events", keep)


ROUTES = [
    ("GET", "/v1/events", list_events),
    ("GET", "/v1/events/{}", retrieve),
]
