"""Pennylane Company API v2 client: ledger entries, customer invoices (credit notes and their links) and
customers, for Banking's push.

Authentication is `Authorization: Bearer <company token>`; Pennylane allows 25 requests per 5 s per
token and answers 429 with `retry-after` beyond. Every request waits that long and retries on a 429
(nothing was done); a read also retries 5xx and network failures with backoff. A creation that
fails that way is NOT retried here: Pennylane has no idempotency key, so it may hold the entry —
the caller looks it up by reference (`find_ledger_entry`, `find_customer_invoice`, `find_customer`)
before creating it again.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any

import httpx

API_PATH = "/api/external/v2"
PAGE = 100


class PennylaneError(Exception):
    """A request that did not succeed; `maybe_created` when a creation may have landed anyway."""

    def __init__(self, message: str, *, status: int | None = None, maybe_created: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.maybe_created = maybe_created

    @property
    def retryable(self) -> bool:
        """Pennylane's or the network's fault (worth another try), not the request's."""
        return self.status is None or self.status == 429 or self.status >= 500


def _retry_after(response: httpx.Response, fallback: float, most: float) -> float:
    try:
        return min(max(float(response.headers.get("retry-after", fallback)), 0.0), most)
    except ValueError:
        return min(fallback, most)


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"Pennylane answered {response.status_code}"
    if isinstance(body, dict):
        details = body.get("details")
        detail = f" ({details.get('field')}: {details.get('issue')})" if isinstance(details, dict) else ""
        return f"Pennylane answered {response.status_code} {body.get('error', '')}: {body.get('message', '')}{detail}"
    return f"Pennylane answered {response.status_code}"


class PennylaneClient:
    """One company's API (one token) over a shared httpx client."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        base: str,
        token: str,
        *,
        attempts: int = 6,
        backoff_seconds: float = 1.0,
        max_wait_seconds: float = 60.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._http = http
        self._url = base.rstrip("/") + API_PATH
        self._headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        self._attempts = max(1, attempts)
        self._backoff = backoff_seconds
        self._max_wait = max_wait_seconds
        self._sleep = sleep
        self.rate_limited = 0  # 429s waited out, for the run's report

    async def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        creating = method == "POST"
        for attempt in range(1, self._attempts + 1):
            last = attempt == self._attempts
            delay = min(self._backoff * 2 ** (attempt - 1), self._max_wait)
            try:
                response = await self._http.request(method, self._url + path, headers=self._headers, **kwargs)
            except httpx.HTTPError as error:
                failure = f"Pennylane unreachable: {type(error).__name__}"
                # A request that may have been sent may have been acted on.
                if creating or last:
                    raise PennylaneError(failure, maybe_created=creating) from None
                await self._sleep(delay)
                continue
            if response.status_code == 429:
                self.rate_limited += 1
                if last:
                    raise PennylaneError(_message(response), status=429)
                await self._sleep(_retry_after(response, delay, self._max_wait))
                continue
            if response.status_code >= 500:
                if creating or last:
                    raise PennylaneError(_message(response), status=response.status_code, maybe_created=creating)
                await self._sleep(delay)
                continue
            if response.status_code >= 400:
                raise PennylaneError(_message(response), status=response.status_code)
            return response
        raise AssertionError("unreachable")  # pragma: no cover

    async def create_ledger_entry(self, body: dict[str, Any]) -> dict[str, Any]:
        response = await self._send("POST", "/ledger_entries", json=body)
        created: dict[str, Any] = response.json()
        return created

    async def find_ledger_entry(self, journal_id: int, day: date, piece_number: str) -> dict[str, Any] | None:
        """The entry of that journal and date whose piece number is `piece_number`, if Pennylane holds one
        (ledger entries cannot be filtered by piece number: the day's entries are read)."""
        rules = [
            {"field": "journal_id", "operator": "eq", "value": str(journal_id)},
            {"field": "date", "operator": "eq", "value": day.isoformat()},
        ]
        page = 1
        while True:
            params = {"filter": json.dumps(rules), "page": str(page), "per_page": str(PAGE)}
            listed = (await self._send("GET", "/ledger_entries", params=params)).json()
            for item in listed.get("items") or []:
                if item.get("piece_number") == piece_number:
                    found: dict[str, Any] = item
                    return found
            if page >= int(listed.get("total_pages") or 1):
                return None
            page += 1

    async def ledger_entry(self, entry_id: int) -> dict[str, Any]:
        """One ledger entry (`date`, `label`, `journal_id`, `currency`, `piece_number`; its lines apart)."""
        found: dict[str, Any] = (await self._send("GET", f"/ledger_entries/{entry_id}")).json()
        return found

    async def ledger_entry_lines(self, entry_id: int) -> list[dict[str, Any]]:
        """The lines of a ledger entry as Pennylane holds them (`debit`, `credit`, `ledger_account: {"id"}`,
        `label`), every page."""
        lines: list[dict[str, Any]] = []
        params = {"limit": str(PAGE)}
        while True:
            listed = (await self._send("GET", f"/ledger_entries/{entry_id}/ledger_entry_lines", params=params)).json()
            lines += listed.get("items") or []
            if not listed.get("has_more") or not listed.get("next_cursor"):
                return lines
            params = {"limit": str(PAGE), "cursor": str(listed["next_cursor"])}

    async def _find_one(self, path: str, field: str, value: str) -> dict[str, Any] | None:
        """The first item of a cursor-paged list whose `field` equals `value` (a filter Pennylane serves)."""
        params = {"filter": json.dumps([{"field": field, "operator": "eq", "value": value}]), "limit": str(PAGE)}
        listed = (await self._send("GET", path, params=params)).json()
        for item in listed.get("items") or []:
            if item.get(field) == value:
                found: dict[str, Any] = item
                return found
        return None

    async def create_customer_invoice(self, body: dict[str, Any]) -> dict[str, Any]:
        """A customer invoice (a credit note when its amounts are negative)."""
        created: dict[str, Any] = (await self._send("POST", "/customer_invoices", json=body)).json()
        return created

    async def find_customer_invoice(self, external_reference: str) -> dict[str, Any] | None:
        """The customer invoice (or credit note) with this external reference, if Pennylane holds one."""
        return await self._find_one("/customer_invoices", "external_reference", external_reference)

    async def customer_invoice(self, invoice_id: int) -> dict[str, Any]:
        """One customer invoice or credit note (a credit note's `credited_invoice` says what it is linked to)."""
        found: dict[str, Any] = (await self._send("GET", f"/customer_invoices/{invoice_id}")).json()
        return found

    async def link_credit_note(self, invoice_id: int, credit_note_id: int) -> dict[str, Any]:
        """Links a credit note to the invoice it credits (`POST /customer_invoices/{id}/link_credit_note`:
        Pennylane removed `credited_invoice_id` from the creation in June 2025, this is the way). Like a
        creation it is not retried blindly: a lost answer is checked with `customer_invoice`."""
        path = f"/customer_invoices/{invoice_id}/link_credit_note"
        linked: dict[str, Any] = (await self._send("POST", path, json={"credit_note_id": credit_note_id})).json()
        return linked

    async def create_company_customer(self, body: dict[str, Any]) -> dict[str, Any]:
        created: dict[str, Any] = (await self._send("POST", "/company_customers", json=body)).json()
        return created

    async def find_customer(self, external_reference: str) -> dict[str, Any] | None:
        """The customer with this external reference (unique per company), if any."""
        return await self._find_one("/customers", "external_reference", external_reference)
