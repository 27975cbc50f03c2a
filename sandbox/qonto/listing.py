"""``GET /v2/transactions``: query parsing, filtering, sorting and page metadata."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sandbox.qonto.clock import parse_time
from sandbox.qonto.models import SIDES, STATUSES, SandboxError, Transaction

__all__ = ["DEFAULT_STATUSES", "MAX_PER_PAGE", "TransactionQuery", "paginate", "parse_query"]

MAX_PER_PAGE = 100
# Qonto lists only completed transactions unless status[] says otherwise.
DEFAULT_STATUSES = ("completed",)
DEFAULT_SORT = ("settled_at", "desc")
SORT_FIELDS = ("settled_at", "updated_at")


@dataclass(frozen=True)
class TransactionQuery:
    """A parsed, validated listing request."""

    bank_account_id: str | None = None
    iban: str | None = None
    statuses: tuple[str, ...] = DEFAULT_STATUSES
    side: str | None = None
    settled_at_from: datetime | None = None
    settled_at_to: datetime | None = None
    updated_at_from: datetime | None = None
    updated_at_to: datetime | None = None
    sort_field: str = DEFAULT_SORT[0]
    sort_descending: bool = True
    current_page: int = 1
    per_page: int = MAX_PER_PAGE

    def matches(self, txn: Transaction) -> bool:
        """Whether ``txn`` passes every filter (bank account aside)."""
        if txn.status not in self.statuses:
            return False
        if self.side is not None and txn.side != self.side:
            return False
        if self.settled_at_from or self.settled_at_to:
            if txn.settled_at is None:
                return False
            if self.settled_at_from and txn.settled_at < self.settled_at_from:
                return False
            if self.settled_at_to and txn.settled_at > self.settled_at_to:
                return False
        if self.updated_at_from and txn.updated_at < self.updated_at_from:
            return False
        return not (self.updated_at_to and txn.updated_at > self.updated_at_to)


class _Params:
    """Read access to a multi-valued query string."""

    def __init__(self, values: Mapping[str, Sequence[str]]) -> None:
        self._values = values

    def one(self, name: str) -> str | None:
        found = self._values.get(name) or ()
        return found[-1] if found else None

    def many(self, *names: str) -> list[str]:
        collected: list[str] = []
        for name in names:
            for value in self._values.get(name) or ():
                # Accept status[]=a&status[]=b as well as status=a,b.
                collected.extend(part.strip() for part in value.split(",") if part.strip())
        return collected

    def time(self, name: str) -> datetime | None:
        text = self.one(name)
        if text is None or text == "":
            return None
        try:
            return parse_time(text)
        except ValueError:
            raise SandboxError(422, "invalid_parameter", f"{name} must be an ISO 8601 date-time", name) from None

    def positive_int(self, name: str, default: int) -> int:
        text = self.one(name)
        if text is None or text == "":
            return default
        if not text.isdigit() or int(text) < 1:
            raise SandboxError(422, "invalid_parameter", f"{name} must be a positive integer", name)
        return int(text)


def parse_query(values: Mapping[str, Sequence[str]]) -> TransactionQuery:
    """Validate the query string of ``GET /v2/transactions``; raises :class:`SandboxError`."""
    params = _Params(values)
    bank_account_id, iban = params.one("bank_account_id"), params.one("iban")
    if not bank_account_id and not iban:
        raise SandboxError(422, "invalid_parameter", "one of bank_account_id or iban is required", "bank_account_id")
    statuses = tuple(dict.fromkeys(params.many("status[]", "status"))) or DEFAULT_STATUSES
    for status in statuses:
        if status not in STATUSES:
            raise SandboxError(422, "invalid_parameter", f"unknown status {status!r}", "status")
    side = params.one("side") or None
    if side is not None and side not in SIDES:
        raise SandboxError(422, "invalid_parameter", "side must be credit or debit", "side")
    sort_by = params.one("sort_by") or ":".join(DEFAULT_SORT)
    field, _, direction = sort_by.partition(":")
    direction = direction or "desc"
    if field not in SORT_FIELDS or direction not in ("asc", "desc"):
        raise SandboxError(
            422, "invalid_parameter", "sort_by must be settled_at or updated_at, :asc or :desc", "sort_by"
        )
    per_page = params.positive_int("per_page", MAX_PER_PAGE)
    if per_page > MAX_PER_PAGE:
        raise SandboxError(422, "invalid_parameter", f"per_page must be at most {MAX_PER_PAGE}", "per_page")
    return TransactionQuery(
        bank_account_id=bank_account_id or None,
        iban=iban or None,
        statuses=statuses,
        side=side,
        settled_at_from=params.time("settled_at_from"),
        settled_at_to=params.time("settled_at_to"),
        updated_at_from=params.time("updated_at_from"),
        updated_at_to=params.time("updated_at_to"),
        sort_field=field,
        sort_descending=direction == "desc",
        current_page=params.positive_int("current_page", params.positive_int("page", 1)),
        per_page=per_page,
    )


def paginate(transactions: Iterable[Transaction], query: TransactionQuery) -> tuple[list[Transaction], dict[str, Any]]:
    """Filter, sort and cut one page; returns the page and Qonto's ``meta`` object."""
    selected = [txn for txn in transactions if query.matches(txn)]
    if query.sort_field == "updated_at":
        selected.sort(key=lambda txn: (txn.updated_at, txn.seq), reverse=query.sort_descending)
    else:
        # Pending transactions have no settled_at: they come last in either direction.
        settled = [txn for txn in selected if txn.settled_at is not None]
        unsettled = [txn for txn in selected if txn.settled_at is None]
        settled.sort(key=lambda txn: (txn.settled_at, txn.seq), reverse=query.sort_descending)
        unsettled.sort(key=lambda txn: txn.seq, reverse=query.sort_descending)
        selected = settled + unsettled
    total = len(selected)
    total_pages = math.ceil(total / query.per_page)
    page = query.current_page
    start = (page - 1) * query.per_page
    meta = {
        "current_page": page,
        "next_page": page + 1 if page < total_pages else None,
        "prev_page": page - 1 if page > 1 else None,
        "total_pages": total_pages,
        "total_count": total,
        "per_page": query.per_page,
    }
    return selected[start : start + query.per_page], meta
