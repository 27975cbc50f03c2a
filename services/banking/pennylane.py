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
  `sales_as` never books an entry twice. A refund's credit note is linked to the invoice of its sale
  (`link_credit_note`), and waits for that invoice when it is not pushed yet;
- each pushed entry keeps the digest of the book entry it came from (and a ledger entry its body): an
  entry whose books changed since (or that left them) is corrected by a reversal and a new revision, as
  accountants do; what is not corrected automatically (an invoiced entry) is recorded and listed.
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
    corrected: int = 0  # pushed before, their books changed since: reversed, and pushed again when still there
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
                        "corrected": result.corrected,
                        "failed": len(result.failures),
                    },
                    changed=bool(result.pushed or result.found or result.corrected or result.failures),
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
    known: dict[tuple[str, str], asyncpg.Record]  # (document, reference) → its row, as recorded before the run
    invoiced: set[str] = field(default_factory=set)  # the references of the run's entries pushed as invoices
    ids: dict[tuple[str, str], int] = field(default_factory=dict)  # Pennylane's ids of documents created this run
    customer: tuple[int, int] | None = None  # (customer id, its ledger account id)
    customer_refused: PennylaneError | None = None  # a refusal is not asked again in the same run

    def pennylane_id(self, document: str, reference: str) -> int | None:
        """Pennylane's id of a document pushed (by this run or an earlier one), None when not pushed."""
        if (document, reference) in self.ids:
            return self.ids[(document, reference)]
        record = self.known.get((document, reference))
        return int(record["pennylane_id"]) if record is not None and _pushed(record) else None


# What became of one document, or of one book entry.
_Status = Literal["pushed", "found", "unchanged", "corrected", "failed", "stop"]


@dataclass(frozen=True)
class _Sent:
    """What a document's row keeps of it: a ledger entry's body (what a reversal gives back), the digest of
    the book entry it comes from, and the entry it corrects (for a reversal or a later revision)."""

    digest: str | None = None
    body: dict[str, Any] | None = None
    corrects: str | None = None


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
    # A credit note goes after the invoice it credits, so that it can be linked to it in the same run.
    pairs = sorted(pennylane_books.references(entries), key=lambda pair: bool(pair[1].credits))
    async with banking.pool.acquire() as conn:
        credited = [pennylane_invoices.credited_reference(entry) for _, entry in pairs]
        references = [reference for reference, _ in pairs] + [r for r in credited if r is not None]
        known = await repository.pennylane_entries_of_run(conn, row.entity, first, last, references)
    run = _Run(banking, client, row, outcome, place, known)
    plan = []
    for reference, entry in pairs:
        ledger, invoice = known.get((LEDGER_ENTRY, reference)), known.get((CUSTOMER_INVOICE, reference))
        # An entry keeps the form of its first push that may have reached Pennylane (its invoice is
        # always recorded before its settlement), so a change of `sales_as` never books it twice.
        as_invoice = pennylane_invoices.invoiced(entry) and (
            invoice is not None or (not _maybe_at_pennylane(ledger) and row.sales_as == CUSTOMER_INVOICES)
        )
        if as_invoice:
            run.invoiced.add(reference)
        plan.append((reference, entry, ledger, invoice if as_invoice else None, as_invoice))
    status: _Status = "unchanged"
    for reference, entry, ledger, invoice, as_invoice in plan:
        if ledger is not None and _pushed(ledger) and (not as_invoice or _pushed(invoice)):
            status = await _check_pushed(run, reference, entry, ledger, invoice)
        elif as_invoice:
            status = await _push_invoiced(run, reference, entry, invoice, ledger)
        else:
            digest = pennylane_books.digest(entry)
            status = await _push_ledger_entry(run, reference, entry, ledger, row.ledger_account_ids, digest)
        _count(outcome, status, invoiced=as_invoice)
        if status == "stop":  # the token or its rights are refused: every other entry would be too
            break
    if status != "stop":
        current = {reference for reference, _ in pairs}
        for (document, reference), record in known.items():
            gone = document == LEDGER_ENTRY and record["corrects"] is None and reference not in current
            if gone and first <= record["day"] <= last and _pushed(record) and not _reversed(run, reference, record):
                status = await _gone(run, reference, record)
                _count(outcome, status, invoiced=False)
                if status == "stop":
                    break
    outcome.rate_limited = client.rate_limited
    event(
        "pennylane.pushed",
        entity=row.entity,
        pushed=outcome.pushed,
        found=outcome.found,
        invoiced=outcome.invoiced,
        corrected=outcome.corrected,
        failed=len(outcome.failures),
        rate_limited=outcome.rate_limited,
    )
    return outcome


def _count(outcome: EntityPush, status: _Status, *, invoiced: bool) -> None:
    if status == "pushed":
        outcome.pushed += 1
    elif status == "found":
        outcome.found += 1
    elif status == "unchanged":
        outcome.unchanged += 1
    elif status == "corrected":
        outcome.corrected += 1
    if invoiced and status in ("pushed", "found"):
        outcome.invoiced += 1


def _pushed(record: asyncpg.Record | None) -> bool:
    return record is not None and record["status"] == "pushed"


def _maybe_at_pennylane(record: asyncpg.Record | None) -> bool:
    """Pushed, or sent without an answer: only a refusal (or an unmapped account) left nothing there."""
    return record is not None and (record["status"] != "failed" or bool(record["maybe_sent"]))


async def _record_failure(
    run: _Run, document: str, reference: str, where: tuple[str, date], error: str, *, maybe_sent: bool
) -> None:
    journal, day = where
    async with run.banking.pool.acquire() as conn:
        await repository.pennylane_entry_failed(
            conn, run.row.entity, document, reference, journal, day, error, maybe_sent=maybe_sent
        )
    _failed(run.outcome, reference, error)


async def _record_problem(run: _Run, document: str, reference: str, error: str) -> None:
    """A document already pushed that is not right any more (or not linked): listed, counted, logged."""
    async with run.banking.pool.acquire() as conn:
        await repository.pennylane_entry_problem(conn, run.row.entity, document, reference, error)
    _failed(run.outcome, reference, error)


async def _push_ledger_entry(
    run: _Run,
    reference: str,
    entry: fec.Entry,
    prior: asyncpg.Record | None,
    account_ids: Mapping[str, int],
    digest: str,
    corrects: str | None = None,
) -> _Status:
    """The entry as one ledger entry (a whole FEC entry, an invoiced entry's settlement, or a revision)."""
    where = (entry.journal, entry.day)
    try:
        body = pennylane_books.ledger_entry(entry, reference, run.row.journal_ids, account_ids)
    except Unmapped as error:
        await _record_failure(run, LEDGER_ENTRY, reference, where, str(error), maybe_sent=_maybe_sent(prior))
        return "failed"
    client = run.client
    return await _create_once(
        run,
        LEDGER_ENTRY,
        reference,
        where,
        prior,
        _Sent(digest, body, corrects),
        lambda: client.create_ledger_entry(body),
        lambda: client.find_ledger_entry(body["journal_id"], entry.day, reference),
    )


async def _push_invoiced(
    run: _Run, reference: str, entry: fec.Entry, invoice: asyncpg.Record | None, ledger: asyncpg.Record | None
) -> _Status:
    """The entry as a customer invoice to the walk-in customer (a refund: a credit note linked to the
    invoice it credits), then the ledger entry settling it."""
    where, digest = (entry.journal, entry.day), pennylane_books.digest(entry)
    try:
        customer_id, customer_account_id = await _walk_in_customer(run)
    except PennylaneError as error:
        message = f"walk-in customer: {error}"
        # Recorded on the document that waits for the customer: the invoice, or once pushed its settlement.
        document, prior = (LEDGER_ENTRY, ledger) if _pushed(invoice) else (CUSTOMER_INVOICE, invoice)
        await _record_failure(run, document, reference, where, message, maybe_sent=_maybe_sent(prior))
        return "stop" if error.status in (401, 403) else "failed"
    found = False
    if not _pushed(invoice):
        credited = pennylane_invoices.credited_reference(entry)
        if credited in run.invoiced and run.pennylane_id(CUSTOMER_INVOICE, credited) is None:
            # Its sale's invoice goes first (this run, or a later one if it failed): a credit note is linked to it.
            message = f"waits for the invoice it credits ({credited}), not pushed yet"
            await _record_failure(run, CUSTOMER_INVOICE, reference, where, message, maybe_sent=_maybe_sent(invoice))
            return "failed"
        try:
            body = pennylane_invoices.customer_invoice(entry, reference, customer_id, run.row.ledger_account_ids)
        except Unmapped as error:
            await _record_failure(run, CUSTOMER_INVOICE, reference, where, str(error), maybe_sent=_maybe_sent(invoice))
            return "failed"
        client = run.client
        status = await _create_once(
            run,
            CUSTOMER_INVOICE,
            reference,
            where,
            invoice,
            _Sent(digest),
            lambda: client.create_customer_invoice(body),
            lambda: client.find_customer_invoice(reference),
        )
        if status not in ("pushed", "found"):
            return status  # the settlement waits for its invoice: never one without the other
        found = status == "found"
        if await _link(run, reference, entry, run.ids[(CUSTOMER_INVOICE, reference)], None) == "stop":
            return "stop"
    if _pushed(ledger):
        return "found" if found else "pushed"
    account_ids = {**run.row.ledger_account_ids, pennylane_invoices.CUSTOMER_ACCOUNT: customer_account_id}
    settlement = pennylane_invoices.settlement(entry)
    status = await _push_ledger_entry(run, reference, settlement, ledger, account_ids, digest)
    return "found" if found and status == "pushed" else status


async def _link(run: _Run, reference: str, entry: fec.Entry, note_id: int, prior: asyncpg.Record | None) -> str:
    """Links a refund's credit note to the invoice of the sale it gives back, once: `linked`, `none` (that
    sale is no invoice at Pennylane: before the first day pushed, or pushed as a ledger entry), or the
    failure (recorded on the credit note, retried by the next run)."""
    credited = pennylane_invoices.credited_reference(entry)
    if credited is None or (prior is not None and prior["credited_id"] is not None):
        return "none" if credited is None else "linked"
    invoice_id = run.pennylane_id(CUSTOMER_INVOICE, credited)
    if invoice_id is None:
        return "none"
    client = run.client
    try:
        # An earlier try may have landed with its answer lost: Pennylane says what the credit note credits.
        landed = prior is not None and prior["last_error"] is not None and await _credits(client, note_id) == invoice_id
        if not landed:
            try:
                await client.link_credit_note(invoice_id, note_id)
            except PennylaneError as error:
                # A lost answer, or a refusal of a link made by a run stopped before it recorded it.
                if not (error.maybe_created or error.status == 422) or await _credits(client, note_id) != invoice_id:
                    raise
    except PennylaneError as error:
        await _record_problem(run, CUSTOMER_INVOICE, reference, f"credit note not linked to {credited}: {error}")
        return "stop" if error.status in (401, 403) else "failed"
    async with run.banking.pool.acquire() as conn:
        await repository.pennylane_entry_linked(conn, run.row.entity, CUSTOMER_INVOICE, reference, invoice_id)
    event("pennylane.credit_note_linked", entity=run.row.entity, reference=reference, credited=credited)
    return "linked"


async def _credits(client: PennylaneClient, note_id: int) -> int | None:
    """The id of the invoice a credit note is linked to at Pennylane, if any."""
    credited = (await client.customer_invoice(note_id)).get("credited_invoice") or {}
    return int(credited["id"]) if credited.get("id") else None


async def _check_pushed(
    run: _Run, reference: str, entry: fec.Entry, ledger: asyncpg.Record, invoice: asyncpg.Record | None
) -> _Status:
    """An entry pushed before: its credit note linked, and Pennylane still holding what the books say —
    `unchanged`, or corrected (a reversal and a new revision) when its books changed since."""
    if invoice is not None:
        note_id = int(invoice["pennylane_id"])
        if await _link(run, reference, entry, note_id, invoice) == "stop":
            return "stop"
    digest = pennylane_books.digest(entry)
    if ledger["digest"] is None and invoice is None and not _reversed(run, reference, ledger):
        return await _adopt(run, reference, entry, ledger, digest)
    if not _reversed(run, reference, ledger) and ledger["digest"] in (None, digest):
        if ledger["digest"] is None or ledger["last_error"] is not None:
            async with run.banking.pool.acquire() as conn:
                # Pushed before digests were kept: the books as they are now. Books back to what was
                # pushed: the divergence recorded is gone.
                await repository.pennylane_entry_digest(conn, run.row.entity, reference, digest)
                await repository.pennylane_entry_problem(conn, run.row.entity, LEDGER_ENTRY, reference, None)
        return "unchanged"
    if invoice is not None:
        # A finalized invoice cannot be amended: its correction (a credit note, a new invoice) is the
        # accountant's call. Recorded, counted and listed until the books are back to what was pushed.
        message = "books changed after the push of this invoiced entry: correct it at Pennylane"
        await _record_problem(run, LEDGER_ENTRY, reference, message)
        metrics.pennylane_entries.add(outcome="diverged")
        return "failed"
    return await _correct(run, reference, entry, ledger)


async def _adopt(run: _Run, reference: str, entry: fec.Entry, ledger: asyncpg.Record, digest: str) -> _Status:
    """A ledger entry pushed before digests and bodies were kept: what Pennylane holds is read back once.
    The books' lines → adopted (`unchanged`); other lines (the books changed since its push) → corrected:
    what Pennylane holds reversed, the books' entry pushed."""
    try:
        expected = pennylane_books.ledger_entry(entry, reference, run.row.journal_ids, run.row.ledger_account_ids)
        held = await _read_back(run.client, ledger)
    except Unmapped:  # not comparable (an account unmapped since): the books as they are now
        async with run.banking.pool.acquire() as conn:
            await repository.pennylane_entry_digest(conn, run.row.entity, reference, digest)
        return "unchanged"
    except PennylaneError as error:
        await _record_problem(run, LEDGER_ENTRY, reference, f"not compared with Pennylane: {error}")
        return "stop" if error.status in (401, 403) else "failed"
    same = (held["date"], held["label"]) == (expected["date"], expected["label"]) and pennylane_books.held_lines(
        held["ledger_entry_lines"]
    ) == pennylane_books.held_lines(expected["ledger_entry_lines"])
    async with run.banking.pool.acquire() as conn:
        await repository.pennylane_entry_adopted(conn, run.row.entity, reference, digest if same else "", held)
    if same:
        return "unchanged"
    return await _correct(run, reference, entry, ledger, sent=held)


async def _read_back(client: PennylaneClient, record: asyncpg.Record) -> dict[str, Any]:
    """What Pennylane holds of a ledger entry we pushed, in the form it was sent (what a reversal gives back)."""
    held = await client.ledger_entry(int(record["pennylane_id"]))
    lines = await client.ledger_entry_lines(int(record["pennylane_id"]))
    return {
        "date": str(held.get("date") or record["day"].isoformat()),
        "label": str(held.get("label") or record["reference"]),
        "journal_id": int(held.get("journal_id") or (held.get("journal") or {}).get("id") or 0),
        "currency": str(held.get("currency") or "EUR"),
        "piece_number": str(held.get("piece_number") or record["reference"]),
        "ledger_entry_lines": pennylane_books.as_sent(lines),
    }


def _reversed(run: _Run, reference: str, ledger: asyncpg.Record) -> bool:
    """Whether the revision of an entry Pennylane holds is reversed (or its reversal maybe sent)."""
    reversal = pennylane_books.reversal_reference(reference, ledger["revision"])
    return _maybe_at_pennylane(run.known.get((LEDGER_ENTRY, reversal)))


async def _gone(run: _Run, reference: str, ledger: asyncpg.Record) -> _Status:
    """An entry pushed that the books no longer have (e.g. a bank credit matched to an organisation's
    payout after its push): reversed, once."""
    if run.known.get((CUSTOMER_INVOICE, reference)) is not None:
        message = "this invoiced entry is no longer in the books: correct it at Pennylane"
        await _record_problem(run, LEDGER_ENTRY, reference, message)
        metrics.pennylane_entries.add(outcome="diverged")
        return "failed"
    return await _correct(run, reference, None, ledger)


async def _correct(
    run: _Run,
    reference: str,
    entry: fec.Entry | None,
    ledger: asyncpg.Record,
    sent: dict[str, Any] | None = None,
) -> _Status:
    """The books of a pushed entry changed (or it left them): as accountants do, a ledger entry reversing
    what Pennylane holds (`<reference>.x<n>`), then the entry as the books now say (`<reference>.v<n+1>`),
    both on the entry's own day so that Pennylane's ledger stays the FEC per account and per day. Each
    document under the same guarantees as any other (recorded before it is sent, looked up after a lost
    answer): a run stopped between the two resumes, nothing is sent twice. `sent`: what Pennylane holds
    when just read back (otherwise the body recorded with the revision)."""
    revision, where = ledger["revision"], (ledger["journal"], ledger["day"])
    metrics.pennylane_entries.add(outcome="diverged")
    event("pennylane.entry_diverged", entity=run.row.entity, reference=reference, revision=revision)
    reversal_reference = pennylane_books.reversal_reference(reference, revision)
    reversal_row = run.known.get((LEDGER_ENTRY, reversal_reference))
    if not _pushed(reversal_row):
        current = run.known.get((LEDGER_ENTRY, pennylane_books.revision_reference(reference, revision)))
        sent = sent or repository.pennylane_body(current)
        if sent is None:  # pushed before bodies were kept: read back from Pennylane
            if current is None or current["pennylane_id"] is None:
                message = "books changed after the push (what Pennylane holds is not known): correct it at Pennylane"
                await _record_problem(run, LEDGER_ENTRY, reference, message)
                return "failed"
            try:
                sent = await _read_back(run.client, current)
            except PennylaneError as error:
                await _record_problem(run, LEDGER_ENTRY, reference, f"not read back from Pennylane: {error}")
                return "stop" if error.status in (401, 403) else "failed"
        body = pennylane_books.reversal(sent, reversal_reference)
        client = run.client
        status = await _create_once(
            run,
            LEDGER_ENTRY,
            reversal_reference,
            where,
            reversal_row,
            _Sent(None, body, reference),
            lambda: client.create_ledger_entry(body),
            lambda: client.find_ledger_entry(body["journal_id"], ledger["day"], reversal_reference),
        )
        if status not in ("pushed", "found"):
            return status
    if entry is None:
        return "corrected"
    digest = pennylane_books.digest(entry)
    following = pennylane_books.revision_reference(reference, revision + 1)
    prior = run.known.get((LEDGER_ENTRY, following))
    account_ids = run.row.ledger_account_ids
    status = await _push_ledger_entry(run, following, entry, prior, account_ids, digest, corrects=reference)
    if status not in ("pushed", "found"):
        return status
    async with run.banking.pool.acquire() as conn:
        await repository.pennylane_entry_revised(conn, run.row.entity, LEDGER_ENTRY, reference, revision + 1, digest)
    return "corrected"


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
    where: tuple[str, date],
    prior: asyncpg.Record | None,
    sent: _Sent,
    create: Callable[[], Awaitable[dict[str, Any]]],
    find: Callable[[], Awaitable[dict[str, Any] | None]],
) -> _Status:
    """Creates one document (or finds it created by a stopped run or a lost answer), recorded `sending`
    (with what it sends) before the creation is sent and `pushed` after: never twice."""
    pool, entity, attempts = run.banking.pool, run.row.entity, run.banking.settings.pennylane_attempts
    journal, day = where
    maybe_sent = _maybe_sent(prior)
    for attempt in range(1, attempts + 1):
        creating = False
        try:
            if maybe_sent:
                found = await find()
                if found is not None:
                    async with pool.acquire() as conn:
                        await repository.pennylane_entry_pushed(conn, entity, document, reference, int(found["id"]))
                    run.ids[(document, reference)] = int(found["id"])
                    metrics.pennylane_entries.add(outcome="found")
                    return "found"
            async with pool.acquire() as conn:
                await repository.pennylane_entry_sending(
                    conn,
                    entity,
                    document,
                    reference,
                    journal,
                    day,
                    body=sent.body,
                    digest=sent.digest,
                    corrects=sent.corrects,
                )
            maybe_sent = creating = True
            created = await create()
            async with pool.acquire() as conn:
                await repository.pennylane_entry_pushed(conn, entity, document, reference, int(created["id"]))
            run.ids[(document, reference)] = int(created["id"])
            metrics.pennylane_entries.add(outcome="pushed")
            return "pushed"
        except PennylaneError as error:
            if creating:  # a lookup that failed leaves what was known
                maybe_sent = error.maybe_created
            if error.retryable and attempt < attempts:
                await asyncio.sleep(min(run.banking.settings.pennylane_retry_base_seconds * 2 ** (attempt - 1), 60.0))
                continue
            await _record_failure(run, document, reference, where, str(error), maybe_sent=maybe_sent)
            return "stop" if error.status in (401, 403) else "failed"
    return "failed"  # pragma: no cover - the loop returns
