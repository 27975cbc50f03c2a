"""The Pennylane push: each entity's books (the platform's, each organisation's) as ledger entries.

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
- one run at a time across replicas (advisory lock).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import asyncpg
import grpc
import httpx
from collect.accounts.v1 import accounts_pb2 as accounts_pb

from runtime import metrics
from runtime.clients import call
from runtime.crypto import DecryptionError
from runtime.errors import Conflict, DomainError, FieldError, InvalidArgument
from runtime.logs import event
from services.banking import fec, pennylane_books, reports, repository
from services.banking.context import PENNYLANE_LOCK, Banking
from services.banking.pennylane_api import PennylaneClient, PennylaneError
from services.banking.pennylane_books import PLATFORM, Unmapped
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
) -> PennylaneSettingsRow:
    """Creates or replaces an entity's settings; an empty token keeps the stored one."""
    errors = pennylane_books.mapping_errors(journal_ids, ledger_account_ids)
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
        row = PennylaneSettingsRow(entity, sealed, dict(journal_ids), dict(ledger_account_ids), first, enabled)
        saved = await repository.pennylane_settings_put(conn, row)
    event("pennylane.settings_saved", entity=entity, enabled=enabled)
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


async def _books(banking: Banking, entity: str, first: date, last: date) -> list[fec.Entry]:
    if entity == PLATFORM:
        return await reports.platform_books(banking, first, last)
    found = await call(banking.accounts.GetOrganization, accounts_pb.GetOrganizationRequest(organization_id=entity))
    return await reports.organization_books(banking, entity, found.organization.stripe_account_id, first, last)


def _failed(outcome: EntityPush, reference: str, error: str) -> None:
    outcome.failures.append((reference, error))
    metrics.pennylane_entries.add(outcome="failed")
    event("pennylane.entry_failed", entity=outcome.entity, reference=reference, error=error)


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
        entries = await _books(banking, row.entity, first, last)
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
    pairs = pennylane_books.references(entries)
    async with banking.pool.acquire() as conn:
        known = await repository.pennylane_entries(conn, row.entity, [reference for reference, _ in pairs])
    for reference, entry in pairs:
        prior = known.get(reference)
        if prior is not None and prior["status"] == "pushed":
            outcome.unchanged += 1
            continue
        stop = await _push_one(banking, client, row, reference, entry, prior, outcome)
        if stop:  # the token or its rights are refused: every other entry would be too
            break
    outcome.rate_limited = client.rate_limited
    event(
        "pennylane.pushed",
        entity=row.entity,
        pushed=outcome.pushed,
        found=outcome.found,
        failed=len(outcome.failures),
        rate_limited=outcome.rate_limited,
    )
    return outcome


async def _push_one(
    banking: Banking,
    client: PennylaneClient,
    row: PennylaneSettingsRow,
    reference: str,
    entry: fec.Entry,
    prior: asyncpg.Record | None,
    outcome: EntityPush,
) -> bool:
    """Pushes one entry (or finds it pushed); True when the entity's push should stop."""
    pool, attempts = banking.pool, banking.settings.pennylane_attempts
    maybe_sent = bool(prior is not None and prior["maybe_sent"])
    try:
        body: dict[str, Any] = pennylane_books.ledger_entry(entry, reference, row.journal_ids, row.ledger_account_ids)
    except Unmapped as error:
        async with pool.acquire() as conn:
            await repository.pennylane_entry_failed(
                conn, row.entity, reference, entry.journal, entry.day, str(error), maybe_sent=maybe_sent
            )
        _failed(outcome, reference, str(error))
        return False
    for attempt in range(1, attempts + 1):
        creating = False
        try:
            if maybe_sent:
                found = await client.find_ledger_entry(body["journal_id"], entry.day, reference)
                if found is not None:
                    async with pool.acquire() as conn:
                        await repository.pennylane_entry_pushed(conn, row.entity, reference, int(found["id"]))
                    outcome.found += 1
                    metrics.pennylane_entries.add(outcome="found")
                    return False
            async with pool.acquire() as conn:
                await repository.pennylane_entry_sending(conn, row.entity, reference, entry.journal, entry.day)
            maybe_sent = creating = True
            created = await client.create_ledger_entry(body)
            async with pool.acquire() as conn:
                await repository.pennylane_entry_pushed(conn, row.entity, reference, int(created["id"]))
            outcome.pushed += 1
            metrics.pennylane_entries.add(outcome="pushed")
            return False
        except PennylaneError as error:
            if creating:  # a lookup that failed leaves what was known
                maybe_sent = error.maybe_created
            if error.retryable and attempt < attempts:
                await asyncio.sleep(min(banking.settings.pennylane_retry_base_seconds * 2 ** (attempt - 1), 60.0))
                continue
            async with pool.acquire() as conn:
                await repository.pennylane_entry_failed(
                    conn, row.entity, reference, entry.journal, entry.day, str(error), maybe_sent=maybe_sent
                )
            _failed(outcome, reference, str(error))
            return error.status in (401, 403)
    return False  # pragma: no cover - the loop returns
