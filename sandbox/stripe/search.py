"""Stripe's search query language (https://stripe.com/docs/search), the subset documented for charges
and PaymentIntents: `field:value` (exact), `field~"sub"` (substring, strings of 3+ characters),
`field>n`, `<`, `>=`, `<=` on numbers, `-` negation, `metadata['key']:'value'`, `field:null`,
clauses joined by `AND` or by `OR` (not both), at most 10 clauses.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from .store import StripeObject
from .wire import Params, StripeError, get_int, invalid

# resource -> searchable field -> kind ("string", "number", "boolean", "token")
FIELDS: dict[str, dict[str, str]] = {
    "charges": {
        "amount": "number",
        "billing_details.address.postal_code": "string",
        "created": "number",
        "currency": "token",
        "customer": "token",
        "disputed": "boolean",
        "metadata": "string",
        "payment_method_details.card.brand": "token",
        "payment_method_details.card.exp_month": "number",
        "payment_method_details.card.exp_year": "number",
        "payment_method_details.card.fingerprint": "token",
        "payment_method_details.card.last4": "token",
        "payment_method_details.card_present.brand": "token",
        "payment_method_details.card_present.exp_month": "number",
        "payment_method_details.card_present.exp_year": "number",
        "payment_method_details.card_present.fingerprint": "token",
        "payment_method_details.card_present.last4": "token",
        "refunded": "boolean",
        "status": "token",
    },
    "payment_intents": {
        "amount": "number",
        "created": "number",
        "currency": "token",
        "customer": "token",
        "metadata": "string",
        "status": "token",
    },
}

_CLAUSE = re.compile(
    r"""\s*(?P<neg>-)?(?P<field>[a-z_][a-z0-9_.]*(?:\[(?P<q>['"])(?P<key>[^'"]*)(?P=q)\])?)\s*"""
    r"""(?P<op>:|~|>=|<=|>|<)\s*"""
    r"""(?:(?P<vq>['"])(?P<quoted>(?:\\.|(?!(?P=vq)).)*)(?P=vq)|(?P<bare>[^\s'"]+))\s*""",
)
_JOIN = re.compile(r"\s*(AND|OR)\s+|\s*$")
_MAX_CLAUSES = 10

Predicate = Callable[[StripeObject], bool]


@dataclass(frozen=True)
class _Clause:
    path: tuple[str, ...]
    op: str
    value: str | None  # None: `field:null`
    negated: bool

    def __call__(self, obj: StripeObject) -> bool:
        actual: Any = obj
        for part in self.path:
            actual = actual.get(part) if isinstance(actual, dict) else None
        return self._test(actual) != self.negated

    def _test(self, actual: Any) -> bool:
        if self.value is None:
            return actual is None
        if actual is None:
            return False
        if self.op in (">", "<", ">=", "<="):
            number = int(self.value)
            return bool(
                (self.op == ">" and actual > number)
                or (self.op == "<" and actual < number)
                or (self.op == ">=" and actual >= number)
                or (self.op == "<=" and actual <= number)
            )
        if isinstance(actual, bool):
            return str(actual).lower() == self.value.lower()
        if self.op == "~":
            return self.value.lower() in str(actual).lower()
        return str(actual).lower() == self.value.lower() if isinstance(actual, str) else str(actual) == self.value


def _bad(message: str) -> StripeError:
    return invalid(message, param="query")


def parse(resource: str, query: str) -> Predicate:
    """The query as a predicate on the resource's objects; Stripe's 400 (param `query`) otherwise."""
    fields = FIELDS[resource]
    clauses: list[_Clause] = []
    joins: set[str] = set()
    position = 0
    text = query.strip()
    if not text:
        raise _bad("The query cannot be empty.")
    while position < len(text):
        match = _CLAUSE.match(text, position)
        if match is None:
            raise _bad(f"Invalid query: unexpected input at position {position}: {text[position : position + 20]!r}.")
        field = match["field"]
        key = match["key"]
        name = field.split("[", 1)[0]
        if name not in fields or (name == "metadata") != (key is not None):
            raise _bad(
                f"Field '{name}' is an unsupported search field for resource '{resource}'. See "
                f"http://stripe.com/docs/search#query-fields-for-{resource.replace('_', '-')} for a list of "
                "supported fields."
            )
        kind = fields[name]
        op = match["op"]
        value: str | None = match["quoted"] if match["vq"] else match["bare"]
        assert value is not None
        if match["vq"]:
            value = re.sub(r"\\(.)", r"\1", value)
        elif value == "null":
            value = None
        if op in (">", "<", ">=", "<=") and (kind != "number" or value is None or not re.fullmatch(r"-?\d+", value)):
            raise _bad(f"The '{op}' operator needs a numeric field and an integer value ({name}).")
        if kind == "number" and op == ":" and value is not None and not re.fullmatch(r"-?\d+", value):
            raise _bad(f"Field '{name}' takes an integer value.")
        if op == "~" and (kind == "number" or value is None or len(value) < 3):
            raise _bad("The substring operator '~' needs a string field and a value of at least 3 characters.")
        path = ("metadata", key) if key is not None else tuple(name.split("."))
        clauses.append(_Clause(path, op, value, bool(match["neg"])))
        position = match.end()
        join = _JOIN.match(text, position)
        if join is None or (join.group(1) is None and join.end() < len(text)):
            raise _bad(f"Invalid query: expected AND or OR at position {position}.")
        if join.group(1):
            joins.add(join.group(1))
            if join.end() >= len(text):
                raise _bad(f"Invalid query: a clause is expected after {join.group(1)}.")
        position = join.end()
    if len(joins) > 1:
        raise _bad("A query cannot mix AND and OR; use one of them throughout.")
    if len(clauses) > _MAX_CLAUSES:
        raise _bad(f"A query can have at most {_MAX_CLAUSES} clauses.")
    if joins == {"OR"}:
        return lambda obj: any(clause(obj) for clause in clauses)
    return lambda obj: all(clause(obj) for clause in clauses)


def search(resource: str, items: Iterable[StripeObject], params: Params, url: str) -> StripeObject:
    """Stripe's `search_result` over `items` (newest first): `query`, `limit`, `page` (a cursor)."""
    query = params.get("query")
    if not isinstance(query, str) or not query:
        raise StripeError(400, "Missing required param: query.", param="query", code="parameter_missing")
    predicate = parse(resource, query)
    limit = get_int(params, "limit") or 10
    if limit < 1 or limit > 100:
        raise invalid("This value must be between 1 and 100.", param="limit")
    page = params.get("page") or None
    iterator = iter(items)
    if page:
        for obj in iterator:
            if obj["id"] == page:
                break
        else:
            raise invalid(f"Invalid page: {page}", param="page")
    data: list[StripeObject] = []
    has_more = False
    for obj in iterator:
        if not predicate(obj):
            continue
        if len(data) == limit:
            has_more = True
            break
        data.append(obj)
    return {
        "object": "search_result",
        "data": data,
        "has_more": has_more,
        "next_page": data[-1]["id"] if has_more else None,
        "url": url,
    }
