"""In-memory object store: O(1) lookup by id, per-account insertion-ordered collections for lists."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from .wire import Params, get_int, invalid, not_found

StripeObject = dict[str, Any]


class Store:
    """Every object the sandbox serves, owned by exactly one account."""

    def __init__(self) -> None:
        self.objects: dict[str, StripeObject] = {}
        self.owner: dict[str, str] = {}
        # (account, kind) -> id -> object; dicts keep insertion order, so reversed() is newest first.
        self.collections: dict[tuple[str, str], dict[str, StripeObject]] = {}

    def add(self, account: str, obj: StripeObject, kind: str | None = None) -> StripeObject:
        object_id = obj["id"]
        self.objects[object_id] = obj
        self.owner[object_id] = account
        key = (account, kind or obj["object"])
        collection = self.collections.get(key)
        if collection is None:
            collection = self.collections[key] = {}
        collection[object_id] = obj
        return obj

    def remove(self, object_id: str) -> None:
        obj = self.objects.pop(object_id, None)
        account = self.owner.pop(object_id, None)
        if obj is not None and account is not None:
            self.collections.get((account, obj["object"]), {}).pop(object_id, None)

    def get(self, account: str, object_id: str, kind: str, label: str | None = None) -> StripeObject:
        """The object if it exists on `account` and is a `kind`; Stripe's 404 otherwise."""
        obj = self.objects.get(object_id)
        if obj is None or obj["object"] != kind or self.owner.get(object_id) != account:
            raise not_found(label or kind, object_id)
        return obj

    def find(self, object_id: str) -> StripeObject | None:
        return self.objects.get(object_id)

    def account_of(self, object_id: str) -> str | None:
        return self.owner.get(object_id)

    def newest_first(self, account: str, kind: str) -> Iterator[StripeObject]:
        return reversed(self.collections.get((account, kind), {}).values())


def paginate(
    items: Iterable[StripeObject],
    params: Params,
    url: str,
    predicate: Callable[[StripeObject], bool] | None = None,
) -> StripeObject:
    """Stripe list object over `items` (newest first) with `limit`, `starting_after`, `ending_before`."""
    limit = get_int(params, "limit") or 10
    if limit < 1 or limit > 100:
        raise invalid("This value must be between 1 and 100.", param="limit")
    starting_after = params.get("starting_after") or None
    ending_before = params.get("ending_before") or None
    if predicate is not None:
        items = (obj for obj in items if predicate(obj))
    data: list[StripeObject] = []
    has_more = False
    if ending_before:
        before: list[StripeObject] = []
        found = False
        for obj in items:
            if obj["id"] == ending_before:
                found = True
                break
            before.append(obj)
        if not found:
            raise not_found("object", ending_before, param="ending_before")
        data = before[-limit:]
        has_more = len(before) > limit
    else:
        iterator = iter(items)
        if starting_after:
            for obj in iterator:
                if obj["id"] == starting_after:
                    break
            else:
                raise not_found("object", starting_after, param="starting_after")
        for obj in iterator:
            if len(data) == limit:
                has_more = True
                break
            data.append(obj)
    return {"object": "list", "data": data, "has_more": has_more, "url": url}


def created_filter(params: Params, field: str = "created") -> Callable[[StripeObject], bool] | None:
    """`created[gte]=..` style range filters (also a plain `created=..` equality).

    Non-integer bounds are refused by the request checker before a handler runs; `get_int` here
    keeps a handler called otherwise to a 400 as well."""
    spec = params.get(field)
    if spec is None or spec == "":
        return None
    if not isinstance(spec, dict):
        exact = get_int(params, field)
        return lambda obj: obj.get(field) == exact
    bounds = {op: get_int(spec, op) for op in ("gt", "gte", "lt", "lte") if spec.get(op) not in (None, "")}

    def check(obj: StripeObject) -> bool:
        value = obj.get(field) or 0
        return all(
            (op == "gt" and value > bound)
            or (op == "gte" and value >= bound)
            or (op == "lt" and value < bound)
            or (op == "lte" and value <= bound)
            for op, bound in bounds.items()
            if bound is not None
        )

    return check
