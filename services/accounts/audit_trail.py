"""Use cases of the audit trail: chain records, list entries, verify the chains.

Accounts owns the chains. Its own actions chain their record in the action's transaction
(`record`); the other services' records arrive from their outboxes through AppendAuditEntries
(`append`), idempotent by source service + source id. Appends lock the heads of the chains
they touch, in a fixed order, so concurrent appends take turns per chain and never deadlock.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime

import asyncpg

from runtime.audit import STRIPE_ACCOUNT_TARGET, AuditAnchor, AuditRecord, AuditSink, system_actor
from runtime.db import Connection
from runtime.pagination import decode_cursor, next_page, page_limit
from services.accounts import repository
from services.accounts.domain import (
    GENESIS_HASH,
    AuditEntry,
    ChainBreak,
    audit_anchor_break,
    audit_chain,
    audit_hash,
    audit_head_break,
    audit_link_break,
)

SOURCE = "accounts"
_VERIFY_BATCH = 1000


async def record(conn: Connection, found: AuditRecord) -> None:
    """Chains one of Accounts' own actions (`runtime.audit.current_record`) in `conn`'s transaction (the action's)."""
    await append(conn, SOURCE, [found])


async def append(conn: Connection, source: str, records: Sequence[AuditRecord]) -> int:
    """Chains `records` from `source` in `conn`'s transaction; returns how many were new.

    A record with a source id already chained from that source is skipped (a forwarder's retry).
    """
    placed: list[tuple[str, AuditRecord]] = []
    skipped = await repository.chained_source_ids(conn, source, [r.source_id for r in records if r.source_id])
    for found in records:
        if found.source_id in skipped:
            continue
        if found.source_id:
            skipped.add(found.source_id)  # sent twice in one batch: chained once
        organization_id = found.organization_id
        account = found.targets.get(STRIPE_ACCOUNT_TARGET)
        if not organization_id and account:
            organization_id = await repository.organization_id_of_account(conn, account)
        actor = found.actor_id or system_actor(source)  # no member asked: the service itself (or its CLI)
        placed.append((audit_chain(organization_id), replace(found, organization_id=organization_id, actor_id=actor)))
    heads = {
        chain: await repository.lock_audit_chain(conn, chain, GENESIS_HASH) for chain in sorted({c for c, _ in placed})
    }
    recorded_at = datetime.now(UTC)
    entries = []
    for chain, found in placed:
        sequence, previous = heads[chain]
        entry = _entry(found, source, chain, sequence + 1, previous, recorded_at)
        entries.append(entry)
        heads[chain] = (entry.sequence, entry.hash)
    await repository.insert_audit_entries(conn, entries)
    return len(placed)


def local_sink(pool: asyncpg.Pool) -> AuditSink:
    """Chains the records of Accounts' own outbox (outside events applied here) without an RPC."""

    async def chain(records: Sequence[AuditRecord]) -> None:
        async with pool.acquire() as conn, conn.transaction():
            await append(conn, SOURCE, records)

    return chain


def _entry(
    found: AuditRecord, source: str, chain: str, sequence: int, previous: bytes, recorded_at: datetime
) -> AuditEntry:
    entry_id = str(uuid.uuid4())
    found = replace(found, occurred_at=found.occurred_at or recorded_at, source_id=found.source_id or entry_id)
    entry = AuditEntry(entry_id, chain, sequence, found, source, recorded_at, previous)
    return replace(entry, hash=audit_hash(entry))


async def list_entries(
    pool: asyncpg.Pool,
    organization_id: str | None,
    *,
    actor_id: str = "",
    action: str = "",
    from_time: datetime | None = None,
    to_time: datetime | None = None,
    limit: int = 0,
    cursor: str = "",
) -> tuple[list[AuditEntry], str]:
    """A page of entries, newest first; `organization_id` None lists every chain (platform admins)."""
    size = page_limit(limit)
    async with pool.acquire() as conn:
        found = await repository.list_audit_entries(
            conn,
            organization_id=organization_id,
            actor_id=actor_id,
            action=action,
            from_time=from_time,
            to_time=to_time,
            limit=size + 1,
            before=decode_cursor(cursor),
        )
    return next_page(found, size)


async def heads(pool: asyncpg.Pool) -> list[tuple[str, int, bytes]]:
    """Every chain's head (chain, sequence, hash), by chain."""
    async with pool.acquire() as conn:
        found = await repository.audit_chains(conn)
    return [(chain, sequence, hash_) for chain, (sequence, hash_) in sorted(found.items())]


async def verify(
    pool: asyncpg.Pool, chain: str | None = None, anchors: Sequence[AuditAnchor] = ()
) -> tuple[int, list[ChainBreak]]:
    """Walks every chain (or one) from its first entry; returns the entries checked and, per
    broken chain, the first entry found edited, deleted or out of place, or an anchor (a head
    kept outside the database) the chain no longer reaches or matches."""
    checked = 0
    breaks: list[ChainBreak] = []
    async with pool.acquire() as conn:
        heads = await repository.audit_chains(conn)
        # An anchored chain is walked even when nothing of it is left.
        chains = [chain] if chain else sorted({*await repository.audit_chain_names(conn), *(a.chain for a in anchors)})
        for name in chains:
            anchored = {a.sequence: a for a in anchors if a.chain == name}
            at_anchor: dict[int, AuditEntry] = {}
            sequence, previous, broken = 0, GENESIS_HASH, None
            while broken is None:
                batch = await repository.audit_chain_entries(conn, name, sequence, _VERIFY_BATCH)
                for entry in batch:
                    checked += 1
                    broken = audit_link_break(sequence, previous, entry)
                    if broken is not None:
                        break
                    if entry.sequence in anchored:
                        at_anchor[entry.sequence] = entry
                    sequence, previous = entry.sequence, entry.hash
                if len(batch) < _VERIFY_BATCH:
                    break
            for anchor in sorted(anchored.values(), key=lambda a: a.sequence):
                broken = broken or audit_anchor_break(anchor, sequence, at_anchor.get(anchor.sequence))
            if broken is None:
                broken = audit_head_break(name, sequence, previous, heads.get(name))
            if broken is not None:
                breaks.append(broken)
    return checked, breaks
