"""SQL for the banking schema; $1 parameters only."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import asyncpg
import orjson

from runtime.db import Connection
from services.banking.allocation import AllocationRule, LegalEntity
from services.banking.qonto import QontoBankAccount, QontoTransaction

INSERTED, UPDATED, UNCHANGED = "inserted", "updated", "unchanged"


# ---- bank accounts and transactions ------------------------------------------------------


async def upsert_bank_account(conn: Connection, account: QontoBankAccount, legal_entity: str | None) -> str:
    account_id = account.id or account.slug
    await conn.execute(
        """INSERT INTO bank_accounts (id, slug, iban, name, currency, legal_entity, balance_cents)
           VALUES ($1, $2, $3, $4, $5, $6, $7)
           ON CONFLICT (id) DO UPDATE SET slug = EXCLUDED.slug, iban = EXCLUDED.iban, name = EXCLUDED.name,
               currency = EXCLUDED.currency, legal_entity = COALESCE(EXCLUDED.legal_entity, bank_accounts.legal_entity),
               balance_cents = EXCLUDED.balance_cents, updated_at = now()""",
        account_id,
        account.slug,
        account.iban,
        account.name,
        account.currency.lower(),
        legal_entity,
        account.balance_cents,
    )
    return account_id


async def sync_cursor(conn: Connection, account_id: str) -> datetime | None:
    value: datetime | None = await conn.fetchval("SELECT sync_cursor FROM bank_accounts WHERE id = $1", account_id)
    return value


async def set_sync_cursor(conn: Connection, account_id: str, cursor: datetime | None) -> None:
    await conn.execute(
        """UPDATE bank_accounts SET sync_cursor = GREATEST(sync_cursor, $2), synced_at = now() WHERE id = $1""",
        account_id,
        cursor,
    )


async def upsert_bank_transaction(conn: Connection, txn: QontoTransaction) -> str:
    """Inserts or updates by `transaction_id`; an older or identical version changes nothing."""
    row = await conn.fetchrow(
        """INSERT INTO bank_transactions AS t (id, transaction_id, bank_account_id, iban, amount_cents, currency, side,
               operation_type, label, reference, note, status, settled_at, emitted_at, updated_at, raw)
           VALUES ($1, $2, $3, (SELECT iban FROM bank_accounts WHERE id = $3), $4, $5, $6, $7, $8, $9, $10, $11,
               $12, $13, $14, $15::jsonb)
           ON CONFLICT (transaction_id) DO UPDATE SET
               bank_account_id = COALESCE(EXCLUDED.bank_account_id, t.bank_account_id),
               iban = COALESCE(EXCLUDED.iban, t.iban), amount_cents = EXCLUDED.amount_cents,
               currency = EXCLUDED.currency, side = EXCLUDED.side, operation_type = EXCLUDED.operation_type,
               label = EXCLUDED.label, reference = EXCLUDED.reference, note = EXCLUDED.note,
               status = EXCLUDED.status, settled_at = EXCLUDED.settled_at, emitted_at = EXCLUDED.emitted_at,
               updated_at = EXCLUDED.updated_at, raw = EXCLUDED.raw, modified_at = now()
             WHERE t.updated_at IS NULL OR EXCLUDED.updated_at > t.updated_at
           RETURNING (xmax = 0) AS inserted""",
        txn.id,
        txn.transaction_id or txn.id,
        txn.bank_account_id,
        txn.amount_cents,
        txn.currency.lower(),
        txn.side,
        txn.operation_type,
        txn.label,
        txn.reference,
        txn.note,
        txn.status,
        txn.settled_at,
        txn.emitted_at,
        txn.updated_at,
        orjson.dumps(dict(txn.raw)).decode(),
    )
    if row is None:
        return UNCHANGED
    return INSERTED if row["inserted"] else UPDATED


_TXN_COLUMNS = """t.id, t.transaction_id, t.bank_account_id, COALESCE(t.iban, a.iban) AS iban, t.amount_cents, t.currency, t.side,
    t.operation_type, t.label, t.reference, t.status, t.settled_at, t.updated_at, t.created_at,
    a.legal_entity, m.id IS NOT NULL AS reconciled"""
_TXN_FROM = """bank_transactions t LEFT JOIN bank_accounts a ON a.id = t.bank_account_id
    LEFT JOIN reconciliation_matches m ON m.bank_transaction_id = t.id"""


async def list_bank_transactions(
    conn: Connection, limit: int, after: tuple[datetime, str] | None, reconciled: bool | None
) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"""SELECT {_TXN_COLUMNS} FROM {_TXN_FROM}
            WHERE ($1::boolean IS NULL OR (m.id IS NOT NULL) = $1)
              AND ($2::timestamptz IS NULL OR (t.created_at, t.id) > ($2, $3))
            ORDER BY t.created_at, t.id LIMIT $4""",
        reconciled,
        after[0] if after else None,
        after[1] if after else "",
        limit,
    )


async def bank_transactions_by_ids(conn: Connection, ids: Sequence[str]) -> list[asyncpg.Record]:
    return await conn.fetch(f"SELECT {_TXN_COLUMNS} FROM {_TXN_FROM} WHERE t.id = ANY($1::text[])", list(ids))


# ---- payouts -----------------------------------------------------------------------------


@dataclass(frozen=True)
class PayoutFields:
    stripe_payout_id: str
    stripe_account_id: str
    amount: int
    currency: str
    status: str
    arrival_date: datetime | None
    stripe_created_at: datetime | None
    statement_descriptor: str | None
    trace_id: str | None
    failure_code: str | None = None
    failure_message: str | None = None


def _rank(column: str) -> str:
    """Order of a payout's statuses in its lifecycle."""
    return f"(CASE {column} WHEN 'pending' THEN 0 WHEN 'in_transit' THEN 1 ELSE 2 END)"


async def upsert_payout(
    conn: Connection, fields: PayoutFields, organization_id: str | None, event_created_at: datetime | None
) -> tuple[str, str]:
    """(payout id, inserted/updated/unchanged); an event older than the stored state changes nothing."""
    row = await conn.fetchrow(
        f"""INSERT INTO payouts AS p (id, stripe_payout_id, stripe_account_id, organization_id, amount, currency,
               status, arrival_date, stripe_created_at, statement_descriptor, trace_id, event_created_at,
               failure_code, failure_message, paid_booked_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14,
                   CASE WHEN $7 = 'paid' THEN greatest($8, now()) END)
           ON CONFLICT (stripe_payout_id) DO UPDATE SET
               organization_id = COALESCE(EXCLUDED.organization_id, p.organization_id),
               -- The books' days, set once: paid (on its arrival, or now if later), failed after that.
               paid_booked_at = COALESCE(p.paid_booked_at,
                                         CASE WHEN EXCLUDED.status = 'paid' THEN greatest(EXCLUDED.arrival_date, now()) END),
               failed_booked_at = COALESCE(p.failed_booked_at,
                                           CASE WHEN EXCLUDED.status = 'failed' AND p.paid_booked_at IS NOT NULL
                                                THEN now() END),
               amount = EXCLUDED.amount, currency = EXCLUDED.currency, status = EXCLUDED.status,
               arrival_date = EXCLUDED.arrival_date, statement_descriptor = EXCLUDED.statement_descriptor,
               trace_id = COALESCE(EXCLUDED.trace_id, p.trace_id),
               failure_code = EXCLUDED.failure_code, failure_message = EXCLUDED.failure_message,
               event_created_at = GREATEST(EXCLUDED.event_created_at, p.event_created_at), updated_at = now()
             WHERE (p.status, p.amount, p.arrival_date, p.organization_id, p.trace_id, p.failure_code)
                   IS DISTINCT FROM (EXCLUDED.status, EXCLUDED.amount, EXCLUDED.arrival_date,
                                     COALESCE(EXCLUDED.organization_id, p.organization_id),
                                     COALESCE(EXCLUDED.trace_id, p.trace_id), EXCLUDED.failure_code)
               AND (EXCLUDED.event_created_at IS NULL OR p.event_created_at IS NULL
                    OR EXCLUDED.event_created_at > p.event_created_at
                    -- Same second: never step back in the lifecycle (paid, then a late payout.created).
                    OR (EXCLUDED.event_created_at = p.event_created_at
                        AND {_rank("EXCLUDED.status")} >= {_rank("p.status")}))
           RETURNING id, (xmax = 0) AS inserted""",
        uuid.uuid4(),
        fields.stripe_payout_id,
        fields.stripe_account_id,
        organization_id,
        fields.amount,
        fields.currency.lower(),
        fields.status,
        fields.arrival_date,
        fields.stripe_created_at,
        fields.statement_descriptor,
        fields.trace_id,
        event_created_at,
        fields.failure_code,
        fields.failure_message,
    )
    if row is None:
        found = await conn.fetchval("SELECT id FROM payouts WHERE stripe_payout_id = $1", fields.stripe_payout_id)
        return str(found), UNCHANGED
    return str(row["id"]), INSERTED if row["inserted"] else UPDATED


async def payouts_needing_balance(conn: Connection, limit: int = 500) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT id, stripe_payout_id, stripe_account_id FROM payouts
            WHERE status = 'paid' AND NOT balance_synced ORDER BY created_at LIMIT $1""",
        limit,
    )


async def replace_balance_transactions(conn: Connection, payout_id: str, lines: Sequence[dict[str, Any]]) -> None:
    """Makes the payout's stored balance transactions Stripe's `lines`: one stored already keeps
    its row (and the day its fee was booked on: `recorded_at`), a new one is recorded now."""
    await conn.execute(
        "DELETE FROM payout_balance_transactions WHERE payout_id = $1 AND NOT stripe_balance_transaction_id = ANY($2)",
        uuid.UUID(payout_id),
        [x["id"] for x in lines],
    )
    await conn.executemany(
        """INSERT INTO payout_balance_transactions
               (payout_id, stripe_balance_transaction_id, type, source, amount, fee, net, currency, created)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING""",
        [
            (
                uuid.UUID(payout_id),
                x["id"],
                x["type"],
                x["source"],
                x["amount"],
                x["fee"],
                x["net"],
                x["currency"],
                x["created"],
            )
            for x in lines
        ],
    )
    await conn.execute("UPDATE payouts SET balance_synced = true WHERE id = $1", uuid.UUID(payout_id))


async def set_payout_organization(conn: Connection, stripe_account_id: str, organization_id: str) -> None:
    await conn.execute(
        "UPDATE payouts SET organization_id = $2 WHERE stripe_account_id = $1 AND organization_id IS NULL",
        stripe_account_id,
        organization_id,
    )


async def unresolved_accounts(conn: Connection) -> list[str]:
    rows = await conn.fetch(
        "SELECT DISTINCT stripe_account_id FROM payouts WHERE organization_id IS NULL AND stripe_account_id <> ''"
    )
    return [r["stripe_account_id"] for r in rows]


async def known_accounts(conn: Connection) -> list[str]:
    rows = await conn.fetch("SELECT DISTINCT stripe_account_id FROM payouts WHERE stripe_account_id <> ''")
    return [r["stripe_account_id"] for r in rows]


_PAYOUT_COLUMNS = """p.id, p.stripe_payout_id, p.stripe_account_id, p.organization_id, p.amount, p.currency,
    p.status, p.arrival_date, p.statement_descriptor, p.trace_id, p.created_at, mp.match_id,
    p.failure_code, p.failure_message"""
_PAYOUT_FROM = "payouts p LEFT JOIN reconciliation_match_payouts mp ON mp.payout_id = p.id"


async def list_payouts(
    conn: Connection, limit: int, after: tuple[datetime, str] | None, organization_id: str = ""
) -> list[asyncpg.Record]:
    """Payouts oldest first; of one organisation when `organization_id` is given."""
    return await conn.fetch(
        f"""SELECT {_PAYOUT_COLUMNS} FROM {_PAYOUT_FROM}
            WHERE ($1::timestamptz IS NULL OR (p.created_at, p.id) > ($1, $2::uuid))
              AND ($4 = '' OR p.organization_id = $4)
            ORDER BY p.created_at, p.id LIMIT $3""",
        after[0] if after else None,
        uuid.UUID(after[1]) if after else None,
        limit,
        organization_id,
    )


async def payout_request(conn: Connection, organization_id: str, key: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT amount, currency, stripe_payout_id FROM payout_requests WHERE organization_id = $1 AND idempotency_key = $2",
        organization_id,
        key,
    )


async def add_payout_request(
    conn: Connection, organization_id: str, key: str, amount: int, currency: str
) -> asyncpg.Record:
    """The request under this key: this one, or the one a concurrent call stored first."""
    await conn.execute(
        """INSERT INTO payout_requests (organization_id, idempotency_key, amount, currency) VALUES ($1, $2, $3, $4)
           ON CONFLICT DO NOTHING""",
        organization_id,
        key,
        amount,
        currency,
    )
    found = await payout_request(conn, organization_id, key)
    assert found is not None
    return found


async def set_payout_request_payout(conn: Connection, organization_id: str, key: str, stripe_payout_id: str) -> None:
    await conn.execute(
        "UPDATE payout_requests SET stripe_payout_id = $3 WHERE organization_id = $1 AND idempotency_key = $2",
        organization_id,
        key,
        stripe_payout_id,
    )


async def payout_id(conn: Connection, stripe_payout_id: str) -> str:
    return str(await conn.fetchval("SELECT id FROM payouts WHERE stripe_payout_id = $1", stripe_payout_id))


async def payout(conn: Connection, payout_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(f"SELECT {_PAYOUT_COLUMNS} FROM {_PAYOUT_FROM} WHERE p.id = $1", uuid.UUID(payout_id))


async def payouts_by_ids(conn: Connection, ids: Sequence[str]) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"SELECT {_PAYOUT_COLUMNS} FROM {_PAYOUT_FROM} WHERE p.id = ANY($1::uuid[])", [uuid.UUID(i) for i in ids]
    )


# ---- reconciliation ----------------------------------------------------------------------


async def drop_stale_automatic_matches(conn: Connection) -> int:
    """Automatic matches whose credit is no longer completed or whose payout is no longer paid."""
    rows = await conn.fetch(
        """DELETE FROM reconciliation_matches m
            WHERE NOT m.manual AND (
                EXISTS (SELECT 1 FROM bank_transactions t WHERE t.id = m.bank_transaction_id
                        AND (t.status <> 'completed' OR t.side <> 'credit'))
             OR EXISTS (SELECT 1 FROM reconciliation_match_payouts mp JOIN payouts p ON p.id = mp.payout_id
                        WHERE mp.match_id = m.id AND p.status <> 'paid'))
            RETURNING m.id"""
    )
    return len(rows)


async def open_payouts(
    conn: Connection, start: datetime | None, end: datetime | None, *, rules_only: bool = True
) -> list[asyncpg.Record]:
    """Paid payouts in no match; `rules_only` leaves out those a person unmatched."""
    return await conn.fetch(
        """SELECT p.id, p.stripe_payout_id, p.amount, p.currency, p.arrival_date, p.statement_descriptor, p.trace_id
             FROM payouts p
            WHERE p.status = 'paid' AND (p.auto_match OR NOT $3) AND p.arrival_date IS NOT NULL
              AND ($1::timestamptz IS NULL OR p.arrival_date >= $1) AND ($2::timestamptz IS NULL OR p.arrival_date < $2)
              AND NOT EXISTS (SELECT 1 FROM reconciliation_match_payouts mp WHERE mp.payout_id = p.id)""",
        start,
        end,
        rules_only,
    )


async def unmatched_payouts_summary(conn: Connection) -> asyncpg.Record:
    """How many paid payouts are in no match, and the seconds since the oldest one's arrival (for /metrics)."""
    row = await conn.fetchrow(
        """SELECT count(*) AS unmatched, COALESCE(EXTRACT(EPOCH FROM now() - min(p.arrival_date)), 0) AS oldest_age
             FROM payouts p
            WHERE p.status = 'paid' AND p.arrival_date IS NOT NULL
              AND NOT EXISTS (SELECT 1 FROM reconciliation_match_payouts mp WHERE mp.payout_id = p.id)"""
    )
    assert row is not None
    return row


async def open_credits(
    conn: Connection, start: datetime | None, end: datetime | None, *, rules_only: bool = True
) -> list[asyncpg.Record]:
    """Completed credits in no match (`day` is when it settled, else when it was emitted); `rules_only`
    leaves out those the rules cannot take: a person unmatched them, or they carry no date (a Qonto
    webhook may omit both times, and the rules' window is counted from the day), which people match."""
    return await conn.fetch(
        """SELECT t.id, t.amount_cents, t.currency, COALESCE(t.settled_at, t.emitted_at) AS day, t.label, t.reference
             FROM bank_transactions t
            WHERE t.side = 'credit' AND t.status = 'completed'
              AND ((t.auto_match AND COALESCE(t.settled_at, t.emitted_at) IS NOT NULL) OR NOT $3)
              AND ($1::timestamptz IS NULL OR COALESCE(t.settled_at, t.emitted_at) >= $1)
              AND ($2::timestamptz IS NULL OR COALESCE(t.settled_at, t.emitted_at) < $2)
              AND NOT EXISTS (SELECT 1 FROM reconciliation_matches m WHERE m.bank_transaction_id = t.id)""",
        start,
        end,
        rules_only,
    )


async def insert_match(
    conn: Connection,
    credit_id: str,
    payout_ids: Sequence[str],
    rule: str,
    explanation: str,
    difference: int,
    manual: bool,
) -> str | None:
    """None when the credit or a payout is already matched (a concurrent run or a manual match won)."""
    match_id = uuid.uuid4()
    try:
        async with conn.transaction():
            await conn.execute(
                """INSERT INTO reconciliation_matches (id, bank_transaction_id, rule, explanation, difference, manual)
                   VALUES ($1, $2, $3, $4, $5, $6)""",
                match_id,
                credit_id,
                rule,
                explanation,
                difference,
                manual,
            )
            await conn.executemany(
                "INSERT INTO reconciliation_match_payouts (match_id, payout_id) VALUES ($1, $2)",
                [(match_id, uuid.UUID(p)) for p in payout_ids],
            )
    except asyncpg.UniqueViolationError:
        return None
    return str(match_id)


async def insert_rule_matches(conn: Connection, matches: Sequence[tuple[str, Sequence[str], str, str, int]]) -> int:
    """Bulk insert of (credit id, payout ids, rule, explanation, difference); the caller holds the reconciliation lock."""
    if not matches:
        return 0
    ids = [uuid.uuid4() for _ in matches]
    async with conn.transaction():
        await conn.executemany(
            """INSERT INTO reconciliation_matches (id, bank_transaction_id, rule, explanation, difference, manual)
               VALUES ($1, $2, $3, $4, $5, false)""",
            [
                (match_id, credit, rule, why, diff)
                for match_id, (credit, _, rule, why, diff) in zip(ids, matches, strict=True)
            ],
        )
        await conn.executemany(
            "INSERT INTO reconciliation_match_payouts (match_id, payout_id) VALUES ($1, $2)",
            [
                (match_id, uuid.UUID(payout))
                for match_id, (_, payouts, _, _, _) in zip(ids, matches, strict=True)
                for payout in payouts
            ],
        )
    return len(matches)


async def lock_reconciliation(conn: Connection, key: int) -> None:
    """Waits for a running reconciliation (transaction-scoped; the run holds the same key)."""
    await conn.execute("SELECT pg_advisory_xact_lock($1)", key)


async def set_auto_match(conn: Connection, payout_ids: Sequence[str], credit_id: str | None, value: bool) -> None:
    await conn.execute(
        "UPDATE payouts SET auto_match = $2 WHERE id = ANY($1::uuid[])", [uuid.UUID(p) for p in payout_ids], value
    )
    if credit_id:
        await conn.execute("UPDATE bank_transactions SET auto_match = $2 WHERE id = $1", credit_id, value)


_MATCH_COLUMNS = """m.id, m.bank_transaction_id, m.rule, m.explanation, m.difference, m.manual, m.created_at,
    t.amount_cents AS bank_amount, t.currency,
    COALESCE((SELECT array_agg(mp.payout_id::text ORDER BY mp.payout_id) FROM reconciliation_match_payouts mp
              WHERE mp.match_id = m.id), '{}') AS payout_ids,
    COALESCE((SELECT sum(p.amount) FROM reconciliation_match_payouts mp JOIN payouts p ON p.id = mp.payout_id
              WHERE mp.match_id = m.id), 0)::bigint AS payouts_amount"""


async def get_match(conn: Connection, match_id: str) -> asyncpg.Record | None:
    try:
        key = uuid.UUID(match_id)
    except ValueError:
        return None
    return await conn.fetchrow(
        f"""SELECT {_MATCH_COLUMNS} FROM reconciliation_matches m JOIN bank_transactions t ON t.id = m.bank_transaction_id
            WHERE m.id = $1""",
        key,
    )


async def list_matches(conn: Connection, limit: int = 1000) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"""SELECT {_MATCH_COLUMNS} FROM reconciliation_matches m JOIN bank_transactions t ON t.id = m.bank_transaction_id
            ORDER BY m.created_at DESC, m.id LIMIT $1""",
        limit,
    )


async def delete_match(conn: Connection, match_id: str) -> None:
    await conn.execute("DELETE FROM reconciliation_matches WHERE id = $1", uuid.UUID(match_id))


async def count_matches(conn: Connection, start: datetime | None, end: datetime | None) -> int:
    value: int = await conn.fetchval(
        """SELECT count(*) FROM reconciliation_matches m JOIN bank_transactions t ON t.id = m.bank_transaction_id
            WHERE ($1::timestamptz IS NULL OR COALESCE(t.settled_at, t.emitted_at) >= $1)
              AND ($2::timestamptz IS NULL OR COALESCE(t.settled_at, t.emitted_at) < $2)""",
        start,
        end,
    )
    return value


# ---- allocation --------------------------------------------------------------------------


async def replace_allocation(
    conn: Connection, rules: Sequence[AllocationRule], entities: Sequence[LegalEntity]
) -> None:
    async with conn.transaction():
        await conn.execute("DELETE FROM allocation_rules")
        await conn.execute("DELETE FROM legal_entities")
        await conn.executemany(
            "INSERT INTO legal_entities (entity, tax_rate_bps, position) VALUES ($1, $2, $3)",
            [(e.entity, e.tax_rate_bps, i) for i, e in enumerate(entities)],
        )
        await conn.executemany(
            "INSERT INTO allocation_rules (organization_id, entity, share_bps) VALUES ($1, $2, $3)",
            [(r.organization_id, r.entity, r.share_bps) for r in rules],
        )


async def allocation(conn: Connection) -> tuple[list[AllocationRule], list[LegalEntity]]:
    entities = await conn.fetch("SELECT entity, tax_rate_bps FROM legal_entities ORDER BY position")
    rules = await conn.fetch(
        "SELECT organization_id, entity, share_bps FROM allocation_rules ORDER BY organization_id, entity"
    )
    return (
        [AllocationRule(r["organization_id"], r["entity"], r["share_bps"]) for r in rules],
        [LegalEntity(e["entity"], e["tax_rate_bps"]) for e in entities],
    )


# ---- daily report and FEC ----------------------------------------------------------------


async def day_payouts(conn: Connection, start: datetime, end: datetime) -> list[asyncpg.Record]:
    """Paid payouts arriving in [start, end), every currency."""
    return await conn.fetch(
        """SELECT p.id::text AS id, p.stripe_account_id, COALESCE(p.organization_id, '') AS organization_id, p.amount,
                  p.currency, mp.match_id::text AS match_id, m.difference
             FROM payouts p
             LEFT JOIN reconciliation_match_payouts mp ON mp.payout_id = p.id
             LEFT JOIN reconciliation_matches m ON m.id = mp.match_id
            WHERE p.status = 'paid' AND p.arrival_date >= $1 AND p.arrival_date < $2""",
        start,
        end,
    )


async def day_bank_totals(conn: Connection, start: datetime, end: datetime) -> dict[str, tuple[int, int]]:
    """(credits, debits) per currency of the completed bank transactions settled in [start, end)."""
    rows = await conn.fetch(
        """SELECT currency, COALESCE(sum(amount_cents) FILTER (WHERE side = 'credit'), 0)::bigint AS credits,
                  COALESCE(sum(amount_cents) FILTER (WHERE side = 'debit'), 0)::bigint AS debits
             FROM bank_transactions
            WHERE status = 'completed'
              AND COALESCE(settled_at, emitted_at) >= $1 AND COALESCE(settled_at, emitted_at) < $2
            GROUP BY currency""",
        start,
        end,
    )
    return {r["currency"]: (r["credits"], r["debits"]) for r in rows}


async def fec_stripe_fees(conn: Connection, start: datetime, end: datetime, account: str) -> list[asyncpg.Record]:
    """Stripe's fees on the balance transactions of `account`'s paid payouts ('' = the platform's own),
    recorded in [start, end): each is booked when Banking stored it with its payout (`recorded_at`),
    never on its own earlier `created` day, which may have been exported already."""
    return await conn.fetch(
        """SELECT b.stripe_balance_transaction_id AS id, b.source, b.fee, b.currency, b.recorded_at
             FROM payout_balance_transactions b JOIN payouts p ON p.id = b.payout_id
            WHERE p.stripe_account_id = $3 AND b.fee <> 0 AND b.recorded_at >= $1 AND b.recorded_at < $2
            ORDER BY b.recorded_at, b.stripe_balance_transaction_id""",
        start,
        end,
        account,
    )


async def fec_payouts(conn: Connection, start: datetime, end: datetime, account: str) -> list[asyncpg.Record]:
    """Payouts of `account` ('' = the platform's own) booked in [start, end): paid (`day` its
    `paid_booked_at`), and undone (`undone`) on the day recorded failed after being paid; each day
    fixed when recorded, so a payout failing later never rewrites the day it was booked paid."""
    return await conn.fetch(
        """SELECT * FROM (
             SELECT stripe_payout_id, amount, currency, paid_booked_at AS day, stripe_account_id, false AS undone
               FROM payouts WHERE stripe_account_id = $3 AND paid_booked_at IS NOT NULL
             UNION ALL
             SELECT stripe_payout_id, amount, currency, failed_booked_at, stripe_account_id, true
               FROM payouts WHERE stripe_account_id = $3 AND failed_booked_at IS NOT NULL) AS booked
            WHERE day >= $1 AND day < $2
            ORDER BY day, stripe_payout_id, undone""",
        start,
        end,
        account,
    )


async def fec_bank_lines(conn: Connection, start: datetime, end: datetime) -> list[asyncpg.Record]:
    """The platform's bank lines: completed transactions, less credits matched to an organisation's payout
    (that money is the organisation's, booked in its own FEC as the payout)."""
    return await conn.fetch(
        """SELECT t.transaction_id, t.amount_cents, t.side, t.currency, COALESCE(t.settled_at, t.emitted_at) AS day,
                  t.label, EXISTS (SELECT 1 FROM reconciliation_matches m WHERE m.bank_transaction_id = t.id) AS matched
             FROM bank_transactions t
            WHERE t.status = 'completed'
              AND COALESCE(t.settled_at, t.emitted_at) >= $1 AND COALESCE(t.settled_at, t.emitted_at) < $2
              AND NOT EXISTS (SELECT 1 FROM reconciliation_matches m
                                JOIN reconciliation_match_payouts mp ON mp.match_id = m.id
                                JOIN payouts p ON p.id = mp.payout_id
                               WHERE m.bank_transaction_id = t.id AND p.stripe_account_id <> '')
            ORDER BY day, t.transaction_id""",
        start,
        end,
    )


# ---- report outbox -----------------------------------------------------------------------


async def outbox_row(conn: Connection, report_date: date) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM report_outbox WHERE report_date = $1", report_date)


async def outbox_put(conn: Connection, report_date: date, message: dict[str, Any], *, force: bool) -> bool:
    """Records the message to send; True when recorded (new, or forced over an earlier one)."""
    payload = orjson.dumps(message).decode()
    if force:
        await conn.execute(
            """INSERT INTO report_outbox (report_date, message, status) VALUES ($1, $2::jsonb, 'pending')
               ON CONFLICT (report_date) DO UPDATE SET message = EXCLUDED.message, status = 'pending',
                   attempts = 0, last_error = NULL, next_attempt_at = now(), sent_at = NULL""",
            report_date,
            payload,
        )
        return True
    inserted = await conn.fetchval(
        """INSERT INTO report_outbox (report_date, message, status) VALUES ($1, $2::jsonb, 'pending')
           ON CONFLICT (report_date) DO NOTHING RETURNING true""",
        report_date,
        payload,
    )
    return bool(inserted)


async def lock_outbox_row(conn: Connection, report_date: date) -> asyncpg.Record | None:
    """The pending row, locked for this delivery (skipped while another replica delivers it)."""
    return await conn.fetchrow(
        "SELECT * FROM report_outbox WHERE report_date = $1 AND status = 'pending' FOR UPDATE SKIP LOCKED",
        report_date,
    )


async def due_outbox_dates(conn: Connection) -> list[date]:
    rows = await conn.fetch(
        "SELECT report_date FROM report_outbox WHERE status = 'pending' AND next_attempt_at <= now() ORDER BY report_date"
    )
    return [r["report_date"] for r in rows]


async def outbox_sent(conn: Connection, report_date: date) -> None:
    await conn.execute(
        """UPDATE report_outbox SET status = 'sent', sent_at = now(), attempts = attempts + 1, last_error = NULL
            WHERE report_date = $1""",
        report_date,
    )


async def outbox_failed(conn: Connection, report_date: date, error: str, retry_in_seconds: float) -> None:
    await conn.execute(
        """UPDATE report_outbox SET attempts = attempts + 1, last_error = $2,
               next_attempt_at = now() + make_interval(secs => $3) WHERE report_date = $1""",
        report_date,
        error[:500],
        retry_in_seconds,
    )


# ---- Pennylane ---------------------------------------------------------------------------


def _json_map(value: Any) -> dict[str, int]:
    loaded = orjson.loads(value) if isinstance(value, str | bytes) else value
    return {str(k): int(v) for k, v in (loaded or {}).items()}


@dataclass(frozen=True)
class PennylaneSettingsRow:
    entity: str
    api_token_ciphertext: str
    journal_ids: dict[str, int]
    ledger_account_ids: dict[str, int]
    start_date: date
    enabled: bool
    sales_as: str  # a name of the proto's PennylaneSalesAs


def _settings_row(row: asyncpg.Record) -> PennylaneSettingsRow:
    return PennylaneSettingsRow(
        row["entity"],
        row["api_token_ciphertext"],
        _json_map(row["journal_ids"]),
        _json_map(row["ledger_account_ids"]),
        row["start_date"],
        row["enabled"],
        row["sales_as"],
    )


async def pennylane_settings_put(conn: Connection, settings: PennylaneSettingsRow) -> PennylaneSettingsRow:
    row = await conn.fetchrow(
        """INSERT INTO pennylane_settings
               (entity, api_token_ciphertext, journal_ids, ledger_account_ids, start_date, enabled, sales_as)
           VALUES ($1, $2, $3::jsonb, $4::jsonb, $5, $6, $7)
           ON CONFLICT (entity) DO UPDATE SET
               api_token_ciphertext = EXCLUDED.api_token_ciphertext, journal_ids = EXCLUDED.journal_ids,
               ledger_account_ids = EXCLUDED.ledger_account_ids, start_date = EXCLUDED.start_date,
               enabled = EXCLUDED.enabled, sales_as = EXCLUDED.sales_as, updated_at = now()
           RETURNING *""",
        settings.entity,
        settings.api_token_ciphertext,
        orjson.dumps(settings.journal_ids).decode(),
        orjson.dumps(settings.ledger_account_ids).decode(),
        settings.start_date,
        settings.enabled,
        settings.sales_as,
    )
    assert row is not None  # RETURNING always answers a row
    return _settings_row(row)


async def pennylane_settings_get(conn: Connection, entity: str) -> PennylaneSettingsRow | None:
    row = await conn.fetchrow("SELECT * FROM pennylane_settings WHERE entity = $1", entity)
    return _settings_row(row) if row else None


async def pennylane_settings_enabled(conn: Connection) -> list[PennylaneSettingsRow]:
    rows = await conn.fetch("SELECT * FROM pennylane_settings WHERE enabled ORDER BY entity")
    return [_settings_row(r) for r in rows]


async def pennylane_entries_of_run(
    conn: Connection, entity: str, first: date, last: date, references: Sequence[str]
) -> dict[tuple[str, str], asyncpg.Record]:
    """(document, reference) → row, for every row of those days (the run's entries, those no longer in the
    books, their corrections) and of `references` and their corrections whatever their day (an entry whose
    day changed, the sale a refund credits)."""
    rows = await conn.fetch(
        """SELECT * FROM pennylane_entries
            WHERE entity = $1 AND (day BETWEEN $2 AND $3 OR reference = ANY($4::text[]) OR corrects = ANY($4::text[]))""",
        entity,
        first,
        last,
        list(references),
    )
    return {(r["document"], r["reference"]): r for r in rows}


async def pennylane_entry_sending(
    conn: Connection,
    entity: str,
    document: str,
    reference: str,
    journal: str,
    day: date,
    *,
    body: Mapping[str, Any] | None = None,
    digest: str | None = None,
    corrects: str | None = None,
) -> None:
    """Recorded (and committed) before the creation is sent: from now on Pennylane may hold it, and
    `body` (a ledger entry's) and `digest` (of the book entry) are what it holds."""
    await conn.execute(
        """INSERT INTO pennylane_entries
               (entity, reference, journal, day, status, maybe_sent, attempts, document, body, digest, corrects)
           VALUES ($1, $2, $3, $4, 'sending', true, 1, $5, $6::jsonb, $7, $8)
           ON CONFLICT (entity, reference, document) DO UPDATE SET status = 'sending', maybe_sent = true,
               attempts = pennylane_entries.attempts + 1, body = EXCLUDED.body, digest = EXCLUDED.digest,
               corrects = EXCLUDED.corrects, updated_at = now()
           WHERE pennylane_entries.status <> 'pushed'""",
        entity,
        reference,
        journal,
        day,
        document,
        orjson.dumps(body).decode() if body is not None else None,
        digest,
        corrects,
    )


async def pennylane_entry_pushed(
    conn: Connection, entity: str, document: str, reference: str, pennylane_id: int
) -> None:
    await conn.execute(
        """UPDATE pennylane_entries SET status = 'pushed', maybe_sent = false, pennylane_id = $3,
               last_error = NULL, updated_at = now()
            WHERE entity = $1 AND reference = $2 AND document = $4""",
        entity,
        reference,
        pennylane_id,
        document,
    )


async def pennylane_entry_failed(
    conn: Connection,
    entity: str,
    document: str,
    reference: str,
    journal: str,
    day: date,
    error: str,
    *,
    maybe_sent: bool,
) -> None:
    """The last try failed; `maybe_sent` when Pennylane may hold it anyway (looked up before a new creation)."""
    await conn.execute(
        """INSERT INTO pennylane_entries (entity, reference, journal, day, status, maybe_sent, last_error, document)
           VALUES ($1, $2, $3, $4, 'failed', $6, $5, $7)
           ON CONFLICT (entity, reference, document) DO UPDATE SET status = 'failed', last_error = EXCLUDED.last_error,
               maybe_sent = EXCLUDED.maybe_sent, updated_at = now()
           WHERE pennylane_entries.status <> 'pushed'""",
        entity,
        reference,
        journal,
        day,
        error[:500],
        maybe_sent,
        document,
    )


async def pennylane_entry_problem(
    conn: Connection, entity: str, document: str, reference: str, error: str | None
) -> None:
    """What is wrong with a document already pushed (its books changed since, its credit note not linked):
    listed with the failures until the problem is gone (None)."""
    await conn.execute(
        """UPDATE pennylane_entries SET last_error = $4, updated_at = now()
            WHERE entity = $1 AND reference = $2 AND document = $3""",
        entity,
        reference,
        document,
        error[:500] if error is not None else None,
    )


async def pennylane_entry_linked(
    conn: Connection, entity: str, document: str, reference: str, credited_id: int
) -> None:
    """A credit note is linked to the invoice it credits (Pennylane's id of that invoice)."""
    await conn.execute(
        """UPDATE pennylane_entries SET credited_id = $4, last_error = NULL, updated_at = now()
            WHERE entity = $1 AND reference = $2 AND document = $3""",
        entity,
        reference,
        document,
        credited_id,
    )


async def pennylane_entry_digest(conn: Connection, entity: str, reference: str, digest: str) -> None:
    """A row pushed before digests were kept adopts the books as they are now (its documents alike)."""
    await conn.execute(
        """UPDATE pennylane_entries SET digest = $3 WHERE entity = $1 AND reference = $2 AND digest IS NULL""",
        entity,
        reference,
        digest,
    )


async def pennylane_entry_adopted(
    conn: Connection, entity: str, reference: str, digest: str, body: Mapping[str, Any]
) -> None:
    """A ledger entry pushed before digests and bodies were kept, as Pennylane holds it (read back): its body,
    and the books' digest when they agree (an empty one when they do not: a correction follows)."""
    await conn.execute(
        """UPDATE pennylane_entries SET digest = $3, body = $4::jsonb, last_error = NULL, updated_at = now()
            WHERE entity = $1 AND reference = $2 AND document = 'ledger_entry'""",
        entity,
        reference,
        digest,
        orjson.dumps(body).decode(),
    )


async def pennylane_entry_revised(
    conn: Connection, entity: str, document: str, reference: str, revision: int, digest: str
) -> None:
    """An entry corrected after its books changed: `revision` (its digest) is the one Pennylane now holds."""
    await conn.execute(
        """UPDATE pennylane_entries SET revision = $4, digest = $5, last_error = NULL, updated_at = now()
            WHERE entity = $1 AND reference = $2 AND document = $3""",
        entity,
        reference,
        document,
        revision,
        digest,
    )


async def pennylane_failures(conn: Connection, entity: str, limit: int = 100) -> list[asyncpg.Record]:
    """Entries of `entity` not pushed (failed, or left sending by a run that stopped) or pushed with a
    problem since (books changed, credit note not linked), oldest first."""
    return await conn.fetch(
        """SELECT reference, document, journal, day, status, attempts, last_error, maybe_sent FROM pennylane_entries
            WHERE entity = $1 AND (status <> 'pushed' OR last_error IS NOT NULL)
            ORDER BY day, reference, document LIMIT $2""",
        entity,
        limit,
    )


async def pennylane_unpushed_count(conn: Connection) -> int:
    """Entries tried and not pushed yet, or pushed with a problem since, every entity (the metric's sampler)."""
    found = await conn.fetchval(
        "SELECT count(*) FROM pennylane_entries WHERE status <> 'pushed' OR last_error IS NOT NULL"
    )
    return int(found or 0)


def pennylane_body(row: asyncpg.Record | None) -> dict[str, Any] | None:
    """The body a row's ledger entry was sent with (None when not kept: rows older than the digests)."""
    if row is None or row["body"] is None:
        return None
    raw = row["body"]
    found: dict[str, Any] = orjson.loads(raw) if isinstance(raw, str | bytes) else dict(raw)
    return found
