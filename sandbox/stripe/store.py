"""In-memory object store: O(1) lookup by id, per-account insertion-ordered collections for lists.

Objects are kept compact: a bounded number of them live as dicts that handlers read and change in
place; all others as their JSON deflated against a dictionary of their kind (`compact.Codec`),
made live again when asked for. An object leaves the live set only while nothing but the store
holds it (a webhook in flight, a handler's variable or an embedding list keeps it live), so a
change made to a live object is never lost.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from typing import Any

import orjson

from .compact import BLOCK_OBJECTS, Block, Codec
from .wire import Params, get_int, invalid, not_found

StripeObject = dict[str, Any]

# Lists embedded in an object whose items are objects of the store in their own right (a charge's
# refunds): one object in memory, so a change to the refund shows in the charge.
_EMBEDDED_LISTS = ("refunds", "reversals")
_EMBEDDED_ARRAYS = ("balance_transactions",)
# Objects packed at once at most, past `live_limit`: a block of many objects costs less per object.
_BATCH = 1024
# References to an object taken out of the live set that `compact()` itself holds: its variable and
# getrefcount's argument. Any more and someone else holds it.
_UNHELD = 2


class Objects:
    """Read access by id to every object of a `Store` (a mapping's `get`, `[]`, `in`, `len`)."""

    __slots__ = ("_store",)

    def __init__(self, store: Store) -> None:
        self._store = store

    def get(self, object_id: str, default: StripeObject | None = None) -> StripeObject | None:
        obj = self._store.live(object_id)
        return default if obj is None else obj

    def __getitem__(self, object_id: str) -> StripeObject:
        obj = self._store.live(object_id)
        if obj is None:
            raise KeyError(object_id)
        return obj

    def __contains__(self, object_id: object) -> bool:
        return object_id in self._store.owner

    def __len__(self) -> int:
        return len(self._store.owner)

    def __iter__(self) -> Iterator[str]:
        return iter(self._store.owner)


class Store:
    """Every object the sandbox serves, owned by exactly one account."""

    def __init__(self, live_limit: int = 5_000) -> None:
        self.objects = Objects(self)
        self.owner: dict[str, str] = {}
        # (account, kind) -> ids; dicts keep insertion order, so reversed() is newest first.
        self.collections: dict[tuple[str, str], dict[str, None]] = {}
        self.live_limit = live_limit
        self._live: dict[str, StripeObject] = {}  # oldest first
        self._packed: dict[str, Block] = {}
        # Objects made live from their packed bytes: the hash of that JSON, to skip packing them
        # again when they leave the live set unchanged.
        self._clean: dict[str, int] = {}
        self._codec = Codec()

    def add(self, account: str, obj: StripeObject, kind: str | None = None) -> StripeObject:
        object_id = obj["id"]
        if object_id in self.owner:  # stored again (loading a file): this copy replaces the other
            self._packed.pop(object_id, None)
            self._clean.pop(object_id, None)
        self._live[object_id] = obj
        # One string per account however many requests named it.
        account = sys.intern(account)
        self.owner[object_id] = account
        key = (account, kind or obj["object"])
        collection = self.collections.get(key)
        if collection is None:
            collection = self.collections[key] = {}
        collection[object_id] = None
        return obj

    def remove(self, object_id: str, kind: str | None = None) -> None:
        """Forget an object (`kind` spares unpacking it to find its collection)."""
        account = self.owner.get(object_id)
        if account is None:
            return
        if kind is None:
            obj = self.live(object_id)
            kind = obj["object"] if obj is not None else ""
        del self.owner[object_id]
        self._live.pop(object_id, None)
        self._packed.pop(object_id, None)
        self._clean.pop(object_id, None)
        self.collections.get((account, kind), {}).pop(object_id, None)

    def live(self, object_id: str) -> StripeObject | None:
        """The object as a dict that may be changed in place; None if there is no such object."""
        obj = self._live.get(object_id)
        if obj is not None:
            return obj
        block = self._packed.get(object_id)
        if block is None:
            return None
        raw = self._codec.raw(block, object_id)
        obj = orjson.loads(raw)
        self._clean[object_id] = hash(raw)
        self._live[object_id] = obj
        self._relink(obj)
        return obj

    def peek(self, object_id: str) -> StripeObject | None:
        """The object to read only: a packed one is unpacked without joining the live set."""
        obj = self._live.get(object_id)
        if obj is not None:
            return obj
        block = self._packed.get(object_id)
        return None if block is None else self._codec.unpack(block, object_id)

    def _relink(self, obj: StripeObject) -> None:
        for name in _EMBEDDED_LISTS:
            sub = obj.get(name)
            if isinstance(sub, dict) and sub.get("object") == "list":
                sub["data"] = [self.live(item["id"]) or item for item in sub["data"]]
        for name in _EMBEDDED_ARRAYS:
            items = obj.get(name)
            if isinstance(items, list):
                obj[name] = [self.live(item["id"]) or item if isinstance(item, dict) else item for item in items]

    def relink_all(self) -> None:
        """Restore embedded lists' sharing of their items with the store (after loading a file)."""
        for obj in list(self._live.values()):
            self._relink(obj)

    @property
    def over_limit(self) -> bool:
        """A batch more live objects than `live_limit`: time to `compact()`."""
        return len(self._live) > self.live_limit + min(_BATCH, self.live_limit)

    def compact(self, limit: int | None = None) -> None:
        """Pack the oldest live objects beyond `limit` that nothing else holds; by default, once
        there are a batch more than the store's `live_limit`."""
        live = self._live
        if limit is None:
            if not self.over_limit:
                return
            limit = self.live_limit
        excess = len(live) - limit
        if excess <= 0:
            return
        changed: dict[str, tuple[list[str], list[bytes]]] = {}
        for object_id in list(islice(live, excess)):
            obj = live.pop(object_id)
            if sys.getrefcount(obj) > _UNHELD:
                live[object_id] = obj  # still in use: stays live, now as the newest
                continue
            raw = orjson.dumps(obj)
            clean = self._clean.pop(object_id, None)
            if clean is None or clean != hash(raw):
                kind = _kind_key(obj)
                group = changed.get(kind)
                if group is None:
                    group = changed[kind] = ([], [])
                group[0].append(object_id)
                group[1].append(raw)
        packed = self._packed
        for kind, (ids, raws) in changed.items():
            for start in range(0, len(ids), BLOCK_OBJECTS):
                block_ids = ids[start : start + BLOCK_OBJECTS]
                block = self._codec.pack(kind, block_ids, raws[start : start + BLOCK_OBJECTS])
                for object_id in block_ids:
                    packed[object_id] = block

    def get(self, account: str, object_id: str, kind: str, label: str | None = None) -> StripeObject:
        """The object if it exists on `account` and is a `kind`; Stripe's 404 otherwise."""
        obj = self.live(object_id)
        if obj is None or obj["object"] != kind or self.owner.get(object_id) != account:
            raise not_found(label or kind, object_id)
        return obj

    def find(self, object_id: str) -> StripeObject | None:
        return self.live(object_id)

    def account_of(self, object_id: str) -> str | None:
        return self.owner.get(object_id)

    def ids(self, account: str, kind: str) -> Iterable[str]:
        """Ids of `account`'s objects of `kind`, oldest first."""
        return self.collections.get((account, kind), {}).keys()

    def newest_first(self, account: str, kind: str) -> Iterator[StripeObject]:
        live_limit = self.live_limit
        for count, object_id in enumerate(reversed(self.collections.get((account, kind), {}))):
            obj = self.live(object_id)
            if obj is not None:
                yield obj
            # A scan over many packed objects makes each live: keep that bounded as it goes.
            if count % 1024 == 1023 and len(self._live) > 2 * live_limit:
                del obj
                self.compact()

    def snapshot_json(self) -> Iterator[tuple[str, str, bytes]]:
        """(account, kind, the object's JSON) for every object, packed ones as they are (saving)."""
        for (account, kind), collection in self.collections.items():
            for object_id in collection:
                obj = self._live.get(object_id)
                if obj is not None:
                    yield account, kind, orjson.dumps(obj)
                else:
                    yield account, kind, self._codec.raw(self._packed[object_id], object_id)

    def snapshot(self) -> Iterator[tuple[str, str, StripeObject]]:
        """(account, kind, object) for every object, unpacked without making them live (saving)."""
        for (account, kind), collection in self.collections.items():
            for object_id in collection:
                obj = self.peek(object_id)
                if obj is not None:
                    yield account, kind, obj

    def memory_parts(self) -> dict[str, int]:
        """How many objects are live and packed, in how many blocks of how many bytes."""
        blocks = {id(block): block for block in self._packed.values()}
        return {
            "objects": len(self.owner),
            "live": len(self._live),
            "packed": len(self._packed),
            "blocks": len(blocks),
            "packed_bytes": sum(len(block.data) for block in blocks.values()),
        }


def _kind_key(obj: StripeObject) -> str:
    # Events differ most by the object they carry: one dictionary per event type.
    kind: str = obj["object"]
    return f"event.{obj['type']}" if kind == "event" else kind


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
