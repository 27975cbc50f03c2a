"""Qonto → bank_transactions: incremental pull per bank account, and the webhook path into the same upsert."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import asyncpg

from runtime.db import Connection
from runtime.errors import Unavailable, UpstreamError
from runtime.inbox import APPLIED, IGNORED, InboundEvent
from services.banking import auditing, repository
from services.banking.context import SYNC_LOCK, Banking
from services.banking.qonto import (
    QontoAuthError,
    QontoError,
    QontoUnavailable,
    parse_transaction,
)


@dataclass
class SyncCounts:
    fetched: int = 0
    inserted: int = 0
    updated: int = 0


@contextlib.contextmanager
def qonto_errors() -> Iterator[None]:
    """Qonto failures as domain errors: unreachable or rate limited → 503, anything else → 502."""
    try:
        yield
    except QontoUnavailable as error:
        raise Unavailable("Qonto is unavailable, try again later", "qonto_unavailable") from error
    except QontoAuthError as error:
        raise UpstreamError("Qonto refused the platform's credentials", "qonto_auth_failed") from error
    except QontoError as error:
        raise UpstreamError("Qonto answered with an error", "qonto_error") from error


@contextlib.asynccontextmanager
async def advisory_lock(pool: asyncpg.Pool, key: int, *, wait: bool) -> AsyncIterator[Connection | None]:
    """A session advisory lock on a connection of its own; yields None when `wait` is False and it is taken."""
    async with pool.acquire() as conn:
        if wait:
            await conn.execute("SELECT pg_advisory_lock($1)", key)
        elif not await conn.fetchval("SELECT pg_try_advisory_lock($1)", key):
            yield None
            return
        try:
            yield conn
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", key)


async def sync_transactions(banking: Banking, *, wait: bool = True) -> SyncCounts | None:
    """Pulls every bank account since its cursor (minus an overlap); None when another replica is syncing."""
    counts = SyncCounts()
    accounts: list[str] = []
    overlap = timedelta(seconds=banking.settings.sync_overlap_seconds)
    async with advisory_lock(banking.pool, SYNC_LOCK, wait=wait) as conn:
        if conn is None:
            return None
        with qonto_errors():
            async with banking.qonto() as qonto:
                organization = await qonto.get_organization()
                for account in organization.bank_accounts:
                    entity = banking.settings.entity_of(account.iban, account.id, account.slug)
                    account_id = await repository.upsert_bank_account(conn, account, entity)
                    cursor = await repository.sync_cursor(conn, account_id)
                    newest = cursor
                    async for txn in qonto.iter_transactions(
                        bank_account_id=account_id, updated_at_from=cursor - overlap if cursor else None
                    ):
                        if not txn.bank_account_id:
                            txn = dataclasses.replace(txn, bank_account_id=account_id)
                        outcome = await repository.upsert_bank_transaction(conn, txn)
                        counts.fetched += 1
                        counts.inserted += outcome == repository.INSERTED
                        counts.updated += outcome == repository.UPDATED
                        if txn.updated_at and (newest is None or txn.updated_at > newest):
                            newest = txn.updated_at
                    await repository.set_sync_cursor(conn, account_id, newest)
                    accounts.append(account_id)
        await auditing.run_action(
            conn,
            "bank_transactions.synced",
            dataclasses.asdict(counts),
            changed=bool(counts.inserted or counts.updated),
            targets={"bank_accounts": ",".join(accounts)},
        )
    return counts


async def apply_qonto_event(conn: Connection, event: InboundEvent) -> str:
    """A Qonto transaction webhook (`transaction.created` / `transaction.updated`) into the same upsert."""
    data = event.payload.get("data")
    if not isinstance(data, dict):
        return IGNORED
    nested = data.get("transaction")
    item: dict[str, Any] = nested if isinstance(nested, dict) else data
    if not item.get("id") or item.get("amount_cents", item.get("amount")) is None:
        return IGNORED
    await repository.upsert_bank_transaction(conn, parse_transaction(item))
    return APPLIED
