"""The Pennylane push: each entity's books (the platform's, each organisation's) as ledger entries,
or, for an organisation that chooses it (`sales_as`), its sales journal as customer invoices.

Per entity (settings in `pennylane_settings`: API token encrypted at rest, Pennylane journal and
ledger account ids of the FEC's journals and accounts, first day pushed), the same entries as the
FEC exports (`reports.platform_books` / `organization_books`) over the last
`PENNYLANE_LOOKBACK_DAYS` days up to `PENNYLANE_PUSH_DELAY_DAYS` ago are pushed once each:

- every entry has a deterministic reference (`pennylane_books.references`), sent as its piece number;
- an entry is recorded `sending` (committed) before its creation is sent and `pushed` with
  Pennylane's id after; one left `sending` (a crash) or failed with a lost answer is looked up at
  Pennylane by reference before it is created again — Pennylane has no idempotency key;
- 429s are waited out (`retry-after`), 5xx and network failures retried with backoff, a refusal
  (4xx) recorded with Pennylane's message; failures are counted (metric), logged and listed
  (`GetPennylaneSettings`), and retried by the next run;
- one run at a time across replicas (advisory lock);
- an organisation on customer invoices has each sale (refund) of its sales journal pushed as a
  customer invoice (credit note) to its walk-in customer and the rest of the entry as a ledger entry
  settling it (`pennylane_invoices`), the invoice first, each document under the same guarantees
  (found by external reference). Each entry keeps the form its first push gave it, so a change of
  `sales_as` never books an entry twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Literal

import asyncpg
import grpc
import httpx
from collect.accounts.v1 import accounts_pb2 as accounts_pb

from runtime import metrics
from runtime.clients import call
from runtime.crypto import DecryptionError
from runtime.errors import Conflict, DomainError, FieldError, InvalidArgument
from runtime.logs import event
from services.banking import auditing, fec, pennylane_books, pennylane_invoices, reports, repository
from services.banking.context import PENNYLANE_LOCK, Banking
from services.banking.pennylane_api import PennylaneClient, PennylaneError
from services.banking.pennylane_books import (
    CUSTOMER_INVOICE,
    CUSTOMER_INVOICES,
    LEDGER_ENTRIES,
    LEDGER_ENTRY,
    PLATFORM,
    SALES_AS,
    Unmapped,
)
from services.banking.repository import PennylaneSettingsRow
from services.banking.sync import advisory_lock

log = logging.getLogger("services.banking.pennylane")

_TABLE, _COLUMN = "pennylane_settings", "api_token"


@dataclass
class EntityPush:
    """What one run did for one entity."""

    entity: str
    pushed: int = 0  # created now
    found: int = 0  # already at Pennylane (an answer lost or a run stopped after sending), now recorded
    unchanged: int = 0  # recorded as pushed by an earlier run
    rate_limited: int = 0  # 429s waited out
    invoiced: int = 0  # of the pushed and found, entries pushed as a customer invoice and its settlement
    failures: list[tuple[str, str]] = field(default_factory=list)  # (reference, what went wrong)


# ---- settings ----------------------------------------------------------------------------


async def put_settings(
    banking: Banking,
    entity: str,
    *,
    api_token: str,
    journal_ids: Mapping[str, int],
    ledger_account_ids: Mapping[str, int],
    start_date: str,
    enabled: bool,
    sales_as: str = "",
) -> PennylaneSettingsRow:
    """Creates or replaces an entity's settings; an empty token keeps the stored one, an empty
    `sales_as` means ledger entries."""
    errors = pennylane_books.mapping_errors(journal_ids, ledger_account_ids)
    sales_as = sales_as or LEDGER_ENTRIES
    if sales_as not in SALES_AS.names:
        errors.append(FieldError("sales_as", f"must be one of {', '.join(SALES_AS.names)}"))
    elif sales_as == CUSTOMER_INVOICES and entity == PLATFORM:
        # The platform's sales are its commissions, owed by identified organisations: not walk-in sales.
        errors.append(FieldError("sales_as", "the platform's books are pushed as ledger entries"))
    try:
        first = date.fromisoformat(start_date)
    except ValueError:
        errors.append(FieldError("start_date", "must be a date (YYYY-MM-DD)"))
    if errors:
        raise InvalidArgument("invalid Pennylane settings", "validation_error", errors)
    if banking.cipher is None:
        raise Conflict("no encryption key is configured (BANKING_ENCRYPTION_KEYS)", "encryption_not_configured")
    if entity != PLATFORM:  # an unknown organisation is NotFound
        await call(banking.accounts.GetOrganization, accounts_pb.GetOrganizationRequest(organization_id=entity))
    async with banking.pool.acquire() as conn, conn.transaction():
        current = await repository.pennylane_settings_get(conn, entity)
        if api_token:
            sealed = banking.cipher.encrypt(api_token, table=_TABLE, row_id=entity, column=_COLUMN)
        elif current is not None:
            sealed = current.api_token_ciphertext
        else:
            raise InvalidArgument("an API token is required", "validation_error", [FieldError("api_token", "required")])
        row = PennylaneSettingsRow(
            entity, sealed, dict(journal_ids), dict(ledger_account_ids), first, enabled, sales_as
        )
        saved = await repository.pennylane_settings_put(conn, row)
        await auditing.pennylane_settings_saved(conn, current, saved, token_given=bool(api_token))
    event("pennylane.settings_saved", entity=entity, enabled=enabled, sales_as=sales_as)
    return saved


async def get_settings(banking: Banking, entity: str) -> tuple[PennylaneSettingsRow | None, list[asyncpg.Record]]:
    """The entity's settings (None when it has none) and its entries not pushed yet."""
    async with banking.pool.acquire() as conn:
        return await repository.pennylane_settings_get(conn, entity), await repository.pennylane_failures(conn, entity)


# ---- the push ----------------------------------------------------------------------------


async def push(
    banking: Banking, *, wait: bool = False, entities: Collection[str] | None = None, to_day: date | None = None
) -> list[EntityPush] | None:
    """One run over every enabled entity (or those named); None when another run holds the lock."""
    settings = banking.settings
    last = to_day or datetime.now(settings.zone).date() - timedelta(days=settings.pennylane_delay_days)
    async with advisory_lock(banking.pool, PENNYLANE_LOCK, wait=wait) as locked:
        if locked is None:
            return None
        async with banking.pool.acquire() as conn:
            rows = await repository.pennylane_settings_enabled(conn)
        results = []
        async with httpx.AsyncClient(timeout=settings.pennylane_timeout_seconds) as http:
            for row in rows:
                if entities is None or row.entity in entities:
                    results.append(await _push_entity(banking, http, row, last))
        async with banking.pool.acquire() as conn, conn.transaction():
            for result in results:
                await auditing.run_action(
                    conn,
                    "pennylane.pushed",
                    {
                        "to": last.isoformat(),
                        "pushed": result.pushed,
                        "found": result.found,
                        "unchanged": result.unchanged,
                        "invoiced": result.invoiced,
                        "rate_limited": result.rate_limited,
                        "failed": len(result.failures),
                    },
                    changed=bool(result.pushed or result.found or result.failures),
                    targets={"entity": result.entity},
                    organization_id=auditing.entity_organization(result.entity),
                )
        return results


async def run_push_job(banking: Banking) -> None:
    """The scheduled push, every `PENNYLANE_PUSH_INTERVAL_SECONDS` (0: never); every replica runs it,
    the advisory lock elects one."""
    interval = banking.settings.pennylane_push_interval_seconds
    if interval <= 0:
        return
    while True:
        await asyncio.sleep(interval)
        try:
            with metrics.job_run("pennylane_push") as run:
                if await push(banking) is None:
                    run.skip()
        except asyncio.CancelledError:
            raise
        except Exception as error:  # the loop must survive any one failure
            log.warning("Pennylane push failed: %s", error)


async def _books(banking: Banking, entity: str, first: date, last: date) -> tuple[list[fec.Entry], dict[str, str]]:
    """The entity's entries and the address its walk-in customer is billed at (an organisation's own)."""
    if entity == PLATFORM:
        return await reports.platform_books(banking, first, last), {}
    found = await call(banking.accounts.GetOrganization, accounts_pb.GetOrganizationRequest(organization_id=entity))
    organization = found.organization
    address = organization.address
    place = {
        "address": " ".join(p for p in (address.line1, address.line2) if p),
        "postal_code": address.postal_code,
        "city": address.city,
        "country_alpha2": address.country or organization.country,
    }
    return await reports.organization_books(banking, entity, organization.stripe_account_id, first, last), place


def _failed(outcome: EntityPush, reference: str, error: str) -> None:
    outcome.failures.append((reference, error))
    metrics.pennylane_entries.add(outcome="failed")
    event("pennylane.entry_failed", entity=outcome.entity, reference=reference, error=error)


@dataclass
class _Run:
    """One entity's run: what its documents share, and its walk-in customer once looked up."""

    banking: Banking
    client: PennylaneClient
    row: PennylaneSettingsRow
    outcome: EntityPush
    place: dict[str, str]
    customer: tuple[int, int] | None = None  # (customer id, its ledger account id)
    customer_refused: PennylaneError | None = None  # a refusal is not asked again in the same run


# What became of one document, or of one book entry.
_Status = Literal["pushed", "found", "failed", "stop"]


async def _push_entity(banking: Banking, http: httpx.AsyncClient, row: PennylaneSettingsRow, last: date) -> EntityPush:
    settings = banking.settings
    outcome = EntityPush(row.entity)
    first = max(row.start_date, last - timedelta(days=settings.pennylane_lookback_days))
    if first > last:
        return outcome
    if banking.cipher is None:
        _failed(outcome, "", "no encryption key to read the API token (BANKING_ENCRYPTION_KEYS)")
        return outcome
    try:
        token = banking.cipher.decrypt(row.api_token_ciphertext, table=_TABLE, row_id=row.entity, column=_COLUMN)
        entries, place = await _books(banking, row.entity, first, last)
    except (DomainError, grpc.aio.AioRpcError, DecryptionError) as error:
        reason = error.code().name if isinstance(error, grpc.aio.AioRpcError) else str(error)
        _failed(outcome, "", f"books not read: {reason}")
        return outcome
    client = PennylaneClient(
        http,
        settings.pennylane_api_base,
        token,
        attempts=settings.pennylane_attempts,
        backoff_seconds=settings.pennylane_retry_base_seconds,
        max_wait_seconds=settings.pennylane_max_wait_seconds,
    )
    run = _Run(banking, client, row, outcome, place)
    pairs = pennylane_books.references(entries)
    async with banking.pool.acquire() as conn:
        known = await repository.pennylane_entries(conn, row.entity, [reference for reference, _ in pairs])
    for reference, entry in pairs:
        ledger, invoice = known.get((LEDGER_ENTRY, reference)), known.get((CUSTOMER_INVOICE, reference))
        # An entry keeps the form of its first push that may have reached Pennylane (its invoice is
        # always recorded before its settlement), so a change of `sales_as` never books it twice.
        as_invoice = pennylane_invoices.invoiced(entry) and (
            invoice is not None or (not _maybe_at_pennylane(ledger) and row.sales_as == CUSTOMER_INVOICES)
        )
        if _pushed(ledger) and (not as_invoice or _pushed(invoice)):
            outcome.unchanged += 1
            continue
        if as_invoice:
            status = await _push_invoiced(run, reference, entry, invoice, ledger)
        else:
            status = await _push_ledger_entry(run, reference, entry, ledger, row.ledger_account_ids)
        if status == "pushed":
            outcome.pushed += 1
        elif status == "found":
            outcome.found += 1
        elif status == "stop":  # the token or its rights are refused: every other entry would be too
            break
        if as_invoice and status in ("pushed", "found"):
            outcome.invoiced += 1
    outcome.rate_limited = client.rate_limited
    event(
        "pennylane.pushed",
        entity=row.entity,
        pushed=outcome.pushed,
        found=outcome.found,
        invoiced=outcome.invoiced,
        failed=len(outcome.failures),
        rate_limited=outcome.rate_limited,
    )
    return outcome


def _pushed(record: asyncpg.Record | None) -> bool:
    return record is not None and record["status"] == "pushed"


def _maybe_at_pennylane(record: asyncpg.Record | None) -> bool:
    """Pushed, or sent without an answer: only a refusal (or an unmapped account) left nothing there."""
    return record is not None and (record["status"] != "failed" or bool(record["maybe_sent"]))


async def _record_failure(
    run: _Run, document: str, reference: str, entry: fec.Entry, error: str, *, maybe_sent: bool
) -> None:
    async with run.banking.pool.acquire() as conn:
        await repository.pennylane_entry_failed(
            conn, run.row.entity, document, reference, entry.journal, entry.day, error, maybe_sent=maybe_sent
        )
    _failed(run.outcome, reference, error)


async def _push_ledger_entry(
    run: _Run, reference: str, entry: fec.Entry, prior: asyncpg.Record | None, account_ids: Mapping[str, int]
) -> _Status:
    """The entry as one ledger entry (a whole FEC entry, or an invoiced entry's settlement)."""
    try:
        body = pennylane_books.ledger_entry(entry, reference, run.row.journal_ids, account_ids)
    except Unmapped as error:
        await _record_failure(run, LEDGER_ENTRY, reference, entry, str(error), maybe_sent=_maybe_sent(prior))
        return "failed"
    client = run.client
    return await _create_once(
        run,
        LEDGER_ENTRY,
        reference,
        entry,
        prior,
        lambda: client.create_ledger_entry(body),
        lambda: client.find_ledger_entry(body["journal_id"], entry.day, reference),
    )


async def _push_invoiced(
    run: _Run, reference: str, entry: fec.Entry, invoice: asyncpg.Record | None, ledger: asyncpg.Record | None
) -> _Status:
    """The entry as a customer invoice to the walk-in customer, then the ledger entry settling it."""
    try:
        customer_id, customer_account_id = await _walk_in_customer(run)
    except PennylaneError as error:
        message = f"walk-in customer: {error}"
        # Recorded on the document that waits for the customer: the invoice, or once pushed its settlement.
        document, prior = (LEDGER_ENTRY, ledger) if _pushed(invoice) else (CUSTOMER_INVOICE, invoice)
        await _record_failure(run, document, reference, entry, message, maybe_sent=_maybe_sent(prior))
        return "stop" if error.status in (401, 403) else "failed"
    found = False
    if not _pushed(invoice):
        try:
            body = pennylane_invoices.customer_invoice(entry, reference, customer_id, run.row.ledger_account_ids)
        except Unmapped as error:
            await _record_failure(run, CUSTOMER_INVOICE, reference, entry, str(error), maybe_sent=_maybe_sent(invoice))
            return "failed"
        client = run.client
        status = await _create_once(
            run,
            CUSTOMER_INVOICE,
            reference,
            entry,
            invoice,
            lambda: client.create_customer_invoice(body),
            lambda: client.find_customer_invoice(reference),
        )
        if status not in ("pushed", "found"):
            return status  # the settlement waits for its invoice: never one without the other
        found = status == "found"
    if _pushed(ledger):
        return "found" if found else "pushed"
    account_ids = {**run.row.ledger_account_ids, pennylane_invoices.CUSTOMER_ACCOUNT: customer_account_id}
    status = await _push_ledger_entry(run, reference, pennylane_invoices.settlement(entry), ledger, account_ids)
    return "found" if found and status == "pushed" else status


async def _walk_in_customer(run: _Run) -> tuple[int, int]:
    """The entity's walk-in customer at Pennylane (found by its unique external reference, created the
    first time): its id and its own ledger account's."""
    if run.customer_refused is not None:
        raise run.customer_refused
    if run.customer is None:
        client = run.client
        found = await client.find_customer(pennylane_invoices.WALK_IN_REFERENCE)
        if found is None:
            body = pennylane_invoices.walk_in_customer(pennylane_invoices.WALK_IN_NAME, run.place)
            try:
                found = await client.create_company_customer(body)
            except PennylaneError as error:
                # A lost answer, or another run's creation: its reference is unique, so look once more.
                found = await client.find_customer(pennylane_invoices.WALK_IN_REFERENCE)
                if found is None:
                    if not error.retryable:  # e.g. the organisation's address refused: same for every entry
                        run.customer_refused = error
                    raise
        account = found.get("ledger_account") or {}
        if not account.get("id"):
            raise PennylaneError("the walk-in customer has no ledger account")
        run.customer = (int(found["id"]), int(account["id"]))
    return run.customer


def _maybe_sent(prior: asyncpg.Record | None) -> bool:
    return bool(prior is not None and prior["maybe_sent"])


async def _create_once(
    run: _Run,
    document: str,
    reference: str,
    entry: fec.Entry,
    prior: asyncpg.Record | None,
    create: Callable[[], Awaitable[dict[str, Any]]],
    find: Callable[[], Awaitable[dict[str, Any] | None]],
) -> _Status:
    """Creates one document (or finds it created by a stopped run or a lost answer), recorded `sending`
    before the creation is sent and `pushed` after: never twice."""
    pool, entity, attempts = run.banking.pool, run.row.entity, run.banking.settings.pennylane_attempts
    maybe_sent = _maybe_sent(prior)
    for attempt in range(1, attempts + 1):
        creating = False
        try:
            if maybe_sent:
                found = await find()
                if found is not None:
                    async with pool.acquire() as conn:
                        await repository.pennylane_entry_pushed(conn, entity, document, reference, int(found["id"]))
                    metrics.pennylane_entries.add(outcome="found")
                    return "found"
            async with pool.acquire() as conn:
                await repository.pennylane_entry_sending(conn, entity, document, reference, entry.journal, entry.day)
            maybe_sent = creating = True
            created = await create()
            async with pool.acquire() as conn:
                await repository.pennylane_entry_pushed(conn, entity, document, reference, int(created["id"]))
            metrics.pennylane_entries.add(outcome="pushed")
            return "pushed"
        except PennylaneError as error:
            if creating:  # a lookup that failed leaves what was known
                maybe_sent = error.maybe_created
            if error.retryable and attempt < attempts:
                await asyncio.sleep(min(run.banking.settings.pennylane_retry_base_seconds * 2 ** (attempt - 1), 60.0))
                continue
            await _record_failure(run, document, reference, entry, str(error), maybe_sent=maybe_sent)
            return "stop" if error.status in (401, 403) else "failed"
    return "failed"  # pragma: no cover - the loop returns
