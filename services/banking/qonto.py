"""HTTP client for the Qonto Business API v2 (or the Qonto sandbox): organisation and transactions.

Pure I/O, no database. Every call is an idempotent GET, so rate limiting (429), server
errors (5xx) and connection failures are retried with bounded exponential backoff and
jitter; ``Retry-After`` is honoured. Money comes back as integer cents.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import random
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx

from runtime import deadlines

__all__ = [
    "ALL_STATUSES",
    "QontoAuthError",
    "QontoBankAccount",
    "QontoClient",
    "QontoError",
    "QontoOrganization",
    "QontoRequestError",
    "QontoTransaction",
    "QontoUnavailable",
    "parse_transaction",
]

ALL_STATUSES = ("pending", "completed", "declined", "reversed")
DEFAULT_BASE_URL = "https://thirdparty.qonto.com"

log = logging.getLogger(__name__)


class QontoError(Exception):
    """Anything that went wrong talking to Qonto."""


class QontoAuthError(QontoError):
    """Qonto refused the credentials (401/403): retrying will not help."""


class QontoUnavailable(QontoError):
    """Qonto kept failing (429, 5xx, timeouts, connection errors) after every retry."""


class QontoRequestError(QontoError):
    """Qonto rejected the request itself (other 4xx): a bug or a bad parameter."""

    def __init__(self, status_code: int, detail: str) -> None:
        super().__init__(f"Qonto answered {status_code}: {detail}")
        self.status_code = status_code
        self.detail = detail


@dataclass(frozen=True)
class QontoBankAccount:
    """One bank account of the organisation."""

    id: str | None
    slug: str
    iban: str
    bic: str | None
    currency: str
    name: str | None
    balance_cents: int
    authorized_balance_cents: int
    status: str | None
    main: bool
    updated_at: datetime | None


@dataclass(frozen=True)
class QontoOrganization:
    """The organisation behind the credentials, with its bank accounts."""

    slug: str
    legal_name: str | None
    bank_accounts: tuple[QontoBankAccount, ...]


@dataclass(frozen=True)
class QontoTransaction:
    """One bank transaction; ``raw`` keeps Qonto's JSON as received."""

    id: str
    transaction_id: str | None
    bank_account_id: str | None
    amount_cents: int
    currency: str
    side: str
    operation_type: str | None
    status: str
    label: str | None
    reference: str | None
    note: str | None
    local_amount_cents: int | None
    local_currency: str | None
    settled_at: datetime | None
    emitted_at: datetime | None
    updated_at: datetime | None
    settled_balance_cents: int | None
    vat_amount_cents: int | None
    vat_rate: Decimal | None
    attachment_ids: tuple[str, ...] = ()
    label_ids: tuple[str, ...] = ()
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def signed_amount_cents(self) -> int:
        """Positive for credits, negative for debits."""
        return self.amount_cents if self.side == "credit" else -self.amount_cents


class QontoClient:
    """Async client; use as ``async with QontoClient(...) as qonto:`` or call :meth:`aclose`.

    ``base_url`` is ``https://thirdparty.qonto.com`` (with or without ``/v2``) or a sandbox URL.
    Retries: up to ``max_attempts`` tries per request, waiting ``Retry-After`` when given
    (capped at ``max_retry_after``) and otherwise a random delay up to
    ``backoff_base * 2**attempt`` (capped at ``backoff_max``).
    """

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        login: str = "",
        secret_key: str = "",
        timeout: float = 10.0,
        *,
        max_attempts: int = 5,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        max_retry_after: float = 60.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        root = base_url.rstrip("/")
        if root.endswith("/v2"):
            root = root[: -len("/v2")]
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.max_retry_after = max_retry_after
        self.timeout = timeout
        # The literal "login:secret_key" pair, as Qonto wants it (neither Basic nor Bearer).
        self._http = httpx.AsyncClient(
            base_url=root,
            timeout=timeout,
            headers={"Authorization": f"{login}:{secret_key}", "Accept": "application/json"},
            transport=transport,
        )

    async def __aenter__(self) -> QontoClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def get_organization(self) -> QontoOrganization:
        """``GET /v2/organization``."""
        body = await self._get("/v2/organization", [])
        org = body.get("organization")
        if not isinstance(org, Mapping):
            raise QontoError("GET /v2/organization: no organization in the answer")
        accounts = tuple(_bank_account(item) for item in org.get("bank_accounts") or ())
        return QontoOrganization(
            slug=str(org.get("slug") or ""), legal_name=org.get("legal_name"), bank_accounts=accounts
        )

    async def iter_transactions(
        self,
        *,
        bank_account_id: str | None = None,
        iban: str | None = None,
        updated_at_from: datetime | str | None = None,
        statuses: Sequence[str] = ALL_STATUSES,
        per_page: int = 100,
    ) -> AsyncIterator[QontoTransaction]:
        """Yield every transaction of one account, page after page, oldest update first.

        Sorted by ``updated_at`` ascending so a caller can keep the last ``updated_at`` it
        stored as the cursor of the next run. Qonto pages by offset: a transaction updated
        while we page moves to the end, which can shift another one across a page boundary
        and hide it from this run. Restart the next run from a cursor slightly in the past
        (and upsert by ``id``) to pick such transactions up.
        """
        if not bank_account_id and not iban:
            raise ValueError("bank_account_id or iban is required")
        if not 1 <= per_page <= 100:
            raise ValueError("per_page must be between 1 and 100")
        params: list[tuple[str, str]] = []
        if bank_account_id:
            params.append(("bank_account_id", bank_account_id))
        else:
            params.append(("iban", str(iban)))
        params.extend(("status[]", status) for status in statuses)
        if updated_at_from is not None:
            params.append(("updated_at_from", _format_time(updated_at_from)))
        params.extend([("sort_by", "updated_at:asc"), ("per_page", str(per_page))])
        page: int | None = 1
        while page is not None:
            body = await self._get("/v2/transactions", [*params, ("current_page", str(page))])
            for item in body.get("transactions") or ():
                yield _transaction(item)
            meta = body.get("meta") or {}
            next_page = int(meta["next_page"]) if meta.get("next_page") else None
            if next_page is not None and next_page <= page:
                raise QontoError(f"GET /v2/transactions: next_page {next_page} after page {page}")
            page = next_page

    async def _get(self, path: str, params: Sequence[tuple[str, str]]) -> dict[str, Any]:
        last_problem = "no attempt made"
        for attempt in range(1, self.max_attempts + 1):
            retry_after: float | None = None
            try:
                # Never outlive the RPC being served: its deadline caps each try.
                response = await self._http.get(path, params=tuple(params), timeout=deadlines.remaining(self.timeout))
            except httpx.TransportError as exc:
                last_problem = f"{type(exc).__name__}: {exc}"
            else:
                status = response.status_code
                if 200 <= status < 300:
                    try:
                        document = response.json()
                    except ValueError:
                        raise QontoError(f"GET {path}: the answer is not JSON") from None
                    if not isinstance(document, dict):
                        raise QontoError(f"GET {path}: the answer is not a JSON object")
                    return document
                if status in (401, 403):
                    raise QontoAuthError(f"GET {path}: Qonto refused the credentials ({status})")
                if status != 429 and status < 500:
                    raise QontoRequestError(status, _error_detail(response))
                last_problem = f"HTTP {status}"
                retry_after = _retry_after(response.headers.get("Retry-After"))
            if attempt == self.max_attempts:
                break
            delay = self._delay(attempt, retry_after)
            if delay >= deadlines.remaining(float("inf")):
                last_problem += "; no time left before the deadline"
                break
            log.warning("GET %s failed (%s); retry %d in %.2fs", path, last_problem, attempt, delay)
            await asyncio.sleep(delay)
        raise QontoUnavailable(f"GET {path}: giving up after {attempt} attempts ({last_problem})")

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            # A small jitter on top keeps many workers from coming back in the same instant.
            return min(retry_after, self.max_retry_after) + random.uniform(0, self.backoff_base / 2)
        # "Full jitter": uniformly random up to the exponential ceiling.
        return random.uniform(0, min(self.backoff_max, self.backoff_base * 2**attempt))


# ---- JSON → dataclasses ------------------------------------------------------------------


def _bank_account(item: Mapping[str, Any]) -> QontoBankAccount:
    return QontoBankAccount(
        id=item.get("id"),
        slug=str(item.get("slug") or ""),
        iban=str(item.get("iban") or ""),
        bic=item.get("bic"),
        currency=str(item.get("currency") or "EUR"),
        name=item.get("name"),
        balance_cents=_cents(item, "balance_cents", "balance") or 0,
        authorized_balance_cents=_cents(item, "authorized_balance_cents", "authorized_balance") or 0,
        status=item.get("status"),
        main=bool(item.get("main")),
        updated_at=_parse_time(item.get("updated_at")),
    )


def _transaction(item: Mapping[str, Any]) -> QontoTransaction:
    amount_cents = _cents(item, "amount_cents", "amount")
    if amount_cents is None:
        raise QontoError(f"transaction {item.get('id')!r} has no amount")
    vat_rate = item.get("vat_rate")
    return QontoTransaction(
        id=str(item["id"]),
        transaction_id=item.get("transaction_id"),
        bank_account_id=item.get("bank_account_id"),
        amount_cents=amount_cents,
        currency=str(item.get("currency") or "EUR"),
        side=str(item.get("side")),
        operation_type=item.get("operation_type"),
        status=str(item.get("status")),
        label=item.get("label"),
        reference=item.get("reference"),
        note=item.get("note"),
        local_amount_cents=_cents(item, "local_amount_cents", "local_amount"),
        local_currency=item.get("local_currency"),
        settled_at=_parse_time(item.get("settled_at")),
        emitted_at=_parse_time(item.get("emitted_at")),
        updated_at=_parse_time(item.get("updated_at")),
        settled_balance_cents=_cents(item, "settled_balance_cents", "settled_balance"),
        vat_amount_cents=_cents(item, "vat_amount_cents", "vat_amount"),
        vat_rate=_decimal(vat_rate) if vat_rate is not None else None,
        attachment_ids=tuple(item.get("attachment_ids") or ()),
        label_ids=tuple(item.get("label_ids") or ()),
        raw=dict(item),
    )


def _cents(item: Mapping[str, Any], cents_key: str, euros_key: str) -> int | None:
    """Integer cents from ``cents_key``, else from the decimal ``euros_key`` (never via float maths)."""
    value = item.get(cents_key)
    if value is not None:
        if isinstance(value, bool):
            raise QontoError(f"{cents_key} is not a number")
        if isinstance(value, int):
            return value
        cents = _decimal(value)
    else:
        euros = item.get(euros_key)
        if euros is None:
            return None
        cents = _decimal(euros) * 100
    if cents != cents.to_integral_value():
        raise QontoError(f"{cents_key} is not a whole number of cents: {value!r}")
    return int(cents)


def _decimal(value: Any) -> Decimal:
    # str() first: Decimal(0.1) would carry the float's binary error.
    text = str(value).replace(",", ".") if isinstance(value, str) else str(value)
    try:
        return Decimal(text)
    except InvalidOperation:
        raise QontoError(f"not a decimal number: {value!r}") from None


def _parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        raise QontoError(f"not an ISO 8601 date-time: {value!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _format_time(value: datetime | str) -> str:
    if isinstance(value, str):
        return value
    moment = value if value.tzinfo else value.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _retry_after(header: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header: a number of seconds or an HTTP date."""
    if not header:
        return None
    try:
        return max(0.0, float(header))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _error_detail(response: httpx.Response) -> str:
    try:
        errors = response.json().get("errors") or []
        return "; ".join(str(error.get("detail") or error.get("code")) for error in errors) or response.text
    except (ValueError, AttributeError):
        return response.text[:200]


def parse_transaction(item: Mapping[str, Any]) -> QontoTransaction:
    """A transaction from Qonto's JSON (a list item or a webhook's `data`)."""
    return _transaction(item)
