"""The only place with SQL, for the `payments` schema."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import asyncpg
import orjson

from runtime import audit
from runtime.db import Connection
from services.payments.domain import BookMove, Dispute, Payment, Refund, encode_payment

_PAYMENT_COLUMNS = """id, organization_id, member_id, amount, currency, method, capture_method, status, charge_model,
    stripe_account_id, application_fee_amount, amount_captured, amount_refunded, application_fee_refunded,
    stripe_payment_intent_id, client_secret, description, receipt_email, metadata, decline_code, failure_message,
    local_id, local_date, created_at, updated_at, fee_percent_bps, fee_minimum"""
_PAYMENT_COLUMNS_OF_P = ", ".join("p." + c.strip() for c in _PAYMENT_COLUMNS.split(","))


def payment_from_row(row: asyncpg.Record) -> Payment:
    metadata = row["metadata"]
    return Payment(
        id=str(row["id"]),
        organization_id=row["organization_id"],
        member_id=row["member_id"],
        amount=row["amount"],
        currency=row["currency"],
        method=row["method"],
        capture_method=row["capture_method"],
        status=row["status"],
        charge_model=row["charge_model"],
        stripe_account_id=row["stripe_account_id"],
        application_fee_amount=row["application_fee_amount"],
        amount_captured=row["amount_captured"],
        amount_refunded=row["amount_refunded"],
        application_fee_refunded=row["application_fee_refunded"],
        stripe_payment_intent_id=row["stripe_payment_intent_id"],
        client_secret=row["client_secret"],
        description=row["description"],
        receipt_email=row["receipt_email"],
        metadata=orjson.loads(metadata) if isinstance(metadata, str | bytes) else dict(metadata or {}),
        decline_code=row["decline_code"],
        failure_message=row["failure_message"],
        local_id=row["local_id"],
        local_date=row["local_date"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        fee_percent_bps=row["fee_percent_bps"],
        fee_minimum=row["fee_minimum"],
    )


def refund_from_row(row: asyncpg.Record) -> Refund:
    return Refund(
        id=str(row["id"]),
        payment_id=str(row["payment_id"]),
        amount=row["amount"],
        currency=row["currency"],
        reason=row["reason"],
        status=row["status"],
        stripe_refund_id=row["stripe_refund_id"],
        application_fee_refunded=row["application_fee_refunded"],
        failure_reason=row["failure_reason"],
        created_at=row["created_at"],
        local_date=row["local_date"],
    )


def parse_uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except (ValueError, TypeError, AttributeError):
        return None


# --- idempotency keys ---------------------------------------------------------------------


async def claim_key(
    conn: Connection, organization_id: str, member_id: str, key: str, operation: str, fingerprint: str
) -> bool:
    """Records a new key; False when it exists already."""
    inserted = await conn.fetchval(
        """INSERT INTO idempotency_keys (organization_id, member_id, key, operation, fingerprint)
           VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING true""",
        organization_id,
        member_id,
        key,
        operation,
        fingerprint,
    )
    return bool(inserted)


async def lock_key(conn: Connection, organization_id: str, member_id: str, key: str) -> asyncpg.Record | None:
    """The key's row, locked until the transaction ends (a concurrent duplicate waits here)."""
    return await conn.fetchrow(
        "SELECT * FROM idempotency_keys WHERE organization_id = $1 AND member_id = $2 AND key = $3 FOR UPDATE",
        organization_id,
        member_id,
        key,
    )


async def set_key_target(
    conn: Connection,
    organization_id: str,
    member_id: str,
    key: str,
    *,
    payment_id: str | None = None,
    refund_id: str | None = None,
) -> None:
    await conn.execute(
        """UPDATE idempotency_keys SET payment_id = coalesce($4::uuid, payment_id), refund_id = coalesce($5::uuid, refund_id)
            WHERE organization_id = $1 AND member_id = $2 AND key = $3""",
        organization_id,
        member_id,
        key,
        payment_id,
        refund_id,
    )


async def store_response(conn: Connection, organization_id: str, member_id: str, key: str, response: bytes) -> None:
    await conn.execute(
        "UPDATE idempotency_keys SET response = $4 WHERE organization_id = $1 AND member_id = $2 AND key = $3",
        organization_id,
        member_id,
        key,
        response,
    )


# A member's one-minute rate window (payments, refunds, offline batches all count in it).
_IN_WINDOW = "w.window_start > now() - interval '60 seconds'"
_RATE = f"""r AS (
        INSERT INTO rate_windows AS w (member_id, window_start, count) SELECT $2, now(), 1 FROM k
        ON CONFLICT (member_id) DO UPDATE
           SET count = CASE WHEN {_IN_WINDOW} THEN w.count + 1 ELSE 1 END,
               window_start = CASE WHEN {_IN_WINDOW} THEN w.window_start ELSE now() END
        RETURNING count, window_start),"""


async def take_rate(conn: Connection, member_id: str, units: int) -> tuple[int, datetime]:
    """Counts `units` in the member's rate window; returns (count in the window, window start)."""
    row = await conn.fetchrow(
        f"""INSERT INTO rate_windows AS w (member_id, window_start, count) VALUES ($1, now(), $2::integer)
            ON CONFLICT (member_id) DO UPDATE
               SET count = CASE WHEN {_IN_WINDOW} THEN w.count + $2::integer ELSE $2::integer END,
                   window_start = CASE WHEN {_IN_WINDOW} THEN w.window_start ELSE now() END
            RETURNING count, window_start""",
        member_id,
        units,
    )
    assert row is not None
    return int(row["count"]), row["window_start"]


_NO_RATE = "r AS (SELECT 0 AS count, now() AS window_start),"


async def claim_key_and_insert_payment(
    conn: Connection, key: str, operation: str, fingerprint: str, payment: Payment, rate_limit: int
) -> tuple[bool, int, datetime | None]:
    """One statement: records the key, counts the member's window, inserts the payment if within it.

    Returns (claimed, count in the window, window start); a claimed key over the limit has no payment.
    """
    row = await conn.fetchrow(
        f"""WITH k AS (
                INSERT INTO idempotency_keys (organization_id, member_id, key, operation, fingerprint, payment_id)
                VALUES ($1, $2, $3, $4, $5, $6::uuid) ON CONFLICT DO NOTHING RETURNING payment_id),
            {_RATE if rate_limit > 0 else _NO_RATE}
            p AS (
                INSERT INTO payments ({_PAYMENT_COLUMNS})
                SELECT $6::uuid, $1, $2, $7, $8, $9, $10, 'pending', $11, $12, $13, 0, 0, 0, NULL, NULL, $14, $15,
                       $16::jsonb, NULL, NULL, NULL, $17, $18, $18, $19, $20
                  FROM k WHERE $21 <= 0 OR (SELECT count FROM r) <= $21
                RETURNING id)
            SELECT (SELECT count(*) FROM k) AS claimed, (SELECT count FROM r) AS used,
                   (SELECT window_start FROM r) AS since""",
        payment.organization_id,
        payment.member_id,
        key,
        operation,
        fingerprint,
        payment.id,
        payment.amount,
        payment.currency,
        payment.method,
        payment.capture_method,
        payment.charge_model,
        payment.stripe_account_id,
        payment.application_fee_amount,
        payment.description,
        payment.receipt_email,
        orjson.dumps(payment.metadata).decode(),
        payment.local_date,
        payment.created_at,
        payment.fee_percent_bps,
        payment.fee_minimum,
        rate_limit,
    )
    assert row is not None
    return bool(row["claimed"]), int(row["used"] or 0), row["since"]


async def key_exists(conn: Connection, organization_id: str, member_id: str, key: str) -> bool:
    found = await conn.fetchval(
        "SELECT true FROM idempotency_keys WHERE organization_id = $1 AND member_id = $2 AND key = $3",
        organization_id,
        member_id,
        key,
    )
    return bool(found)


async def delete_payment(conn: Connection, payment_id: str) -> None:
    """A payment Stripe refused to create: nothing else refers to it yet."""
    await conn.execute("DELETE FROM payments WHERE id = $1", payment_id)


async def delete_key(conn: Connection, organization_id: str, member_id: str, key: str) -> None:
    await conn.execute(
        "DELETE FROM idempotency_keys WHERE organization_id = $1 AND member_id = $2 AND key = $3",
        organization_id,
        member_id,
        key,
    )


async def lock_key_and_payment(
    conn: Connection, organization_id: str, member_id: str, key: str
) -> tuple[str, str, bytes | None, Payment | None] | None:
    """The key (fingerprint, operation, answer) and its payment, both locked until the transaction ends."""
    row = await conn.fetchrow(
        f"""SELECT k.fingerprint AS key_fingerprint, k.operation AS key_operation, k.response AS key_response,
                   {_PAYMENT_COLUMNS_OF_P}
              FROM idempotency_keys k JOIN payments p ON p.id = k.payment_id
             WHERE k.organization_id = $1 AND k.member_id = $2 AND k.key = $3
               FOR UPDATE OF k, p""",
        organization_id,
        member_id,
        key,
    )
    if row is not None:
        response = row["key_response"]
        payment = payment_from_row(row)
        return row["key_fingerprint"], row["key_operation"], bytes(response) if response else None, payment
    alone = await lock_key(conn, organization_id, member_id, key)
    if alone is None:
        return None
    response = alone["response"]
    return alone["fingerprint"], alone["operation"], bytes(response) if response else None, None


@dataclass(frozen=True)
class KeyAnswer:
    """An idempotency key whose answer is written with the payment (`save_payment(..., answering=)`)."""

    organization_id: str
    member_id: str
    key: str


# --- payments -----------------------------------------------------------------------------


async def insert_payment(conn: Connection, payment: Payment) -> bool:
    """Inserts a payment; False when an offline payment with this local_id exists already."""
    inserted = await conn.fetchval(
        f"""INSERT INTO payments ({_PAYMENT_COLUMNS})
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19::jsonb,
                    $20, $21, $22, $23, $24, $25, $26, $27)
            ON CONFLICT DO NOTHING RETURNING true""",
        payment.id,
        payment.organization_id,
        payment.member_id,
        payment.amount,
        payment.currency,
        payment.method,
        payment.capture_method,
        payment.status,
        payment.charge_model,
        payment.stripe_account_id,
        payment.application_fee_amount,
        payment.amount_captured,
        payment.amount_refunded,
        payment.application_fee_refunded,
        payment.stripe_payment_intent_id,
        payment.client_secret,
        payment.description,
        payment.receipt_email,
        orjson.dumps(payment.metadata).decode(),
        payment.decline_code,
        payment.failure_message,
        payment.local_id,
        payment.local_date,
        payment.created_at,
        payment.updated_at,
        payment.fee_percent_bps,
        payment.fee_minimum,
    )
    return bool(inserted)


async def get_payment(conn: Connection, payment_id: str, *, for_update: bool = False) -> Payment | None:
    if parse_uuid(payment_id) is None:
        return None
    lock = " FOR UPDATE" if for_update else ""
    row = await conn.fetchrow(f"SELECT {_PAYMENT_COLUMNS} FROM payments WHERE id = $1{lock}", payment_id)
    return payment_from_row(row) if row else None


async def get_payment_by_intent(conn: Connection, intent_id: str, *, for_update: bool = False) -> Payment | None:
    lock = " FOR UPDATE" if for_update else ""
    row = await conn.fetchrow(
        f"SELECT {_PAYMENT_COLUMNS} FROM payments WHERE stripe_payment_intent_id = $1{lock}", intent_id
    )
    return payment_from_row(row) if row else None


async def payment_ids_by_local_id(
    conn: Connection, organization_id: str, member_id: str, local_ids: list[str]
) -> dict[str, str]:
    """The member's offline payments by local_id (a local_id is the phone's, so the member's)."""
    rows = await conn.fetch(
        """SELECT local_id, id FROM payments
            WHERE organization_id = $1 AND member_id = $2 AND local_id = ANY($3::text[])""",
        organization_id,
        member_id,
        local_ids,
    )
    return {row["local_id"]: str(row["id"]) for row in rows}


_SAVE_PAYMENT = """UPDATE payments SET status = $2, application_fee_amount = $3, amount_captured = $4,
       amount_refunded = $5, application_fee_refunded = $6, stripe_payment_intent_id = $7, client_secret = $8,
       decline_code = $9, failure_message = $10, updated_at = now()
 WHERE id = $1"""
# The same write and the key's answer in one round trip (a create's phase 2 records both).
_SAVE_PAYMENT_AND_ANSWER = f"""WITH p AS ({_SAVE_PAYMENT})
UPDATE idempotency_keys SET response = $11 WHERE organization_id = $12 AND member_id = $13 AND key = $14"""


def _saved_values(payment: Payment) -> tuple[Any, ...]:
    """`_SAVE_PAYMENT`'s parameters $1..$10."""
    return (
        payment.id,
        payment.status,
        payment.application_fee_amount,
        payment.amount_captured,
        payment.amount_refunded,
        payment.application_fee_refunded,
        payment.stripe_payment_intent_id,
        payment.client_secret,
        payment.decline_code,
        payment.failure_message,
    )


async def save_payment(conn: Connection, payment: Payment, answering: KeyAnswer | None = None) -> None:
    """Writes back the fields that change after creation; with `answering`, the payment as answered
    (`encode_payment`) becomes that idempotency key's answer in the same statement."""
    values = _saved_values(payment)
    if answering is None:
        await conn.execute(_SAVE_PAYMENT, *values)
        return
    await conn.execute(
        _SAVE_PAYMENT_AND_ANSWER,
        *values,
        encode_payment(payment),
        answering.organization_id,
        answering.member_id,
        answering.key,
    )


# A create's phase 2 when nothing moved the payment since phase 1 (`record_created`). The key's
# row is locked first, as `lock_key_and_payment` locks it (key, then payment), so the two never
# deadlock; a payment no longer pending without an intent (an event or a retry saved it) writes nothing.
_RECORD_CREATED = f"""WITH k AS (
        SELECT 1 FROM idempotency_keys WHERE organization_id = $12 AND member_id = $13 AND key = $14
           AND response IS NULL FOR UPDATE),
    p AS ({_SAVE_PAYMENT} AND status = 'pending' AND stripe_payment_intent_id IS NULL AND EXISTS (SELECT 1 FROM k)
        RETURNING id),
    answered AS (
        UPDATE idempotency_keys SET response = $11 WHERE organization_id = $12 AND member_id = $13 AND key = $14
           AND EXISTS (SELECT 1 FROM p) RETURNING 1),
    audited AS (INSERT INTO audit_outbox {audit.outbox_row(15)} WHERE EXISTS (SELECT 1 FROM answered))
SELECT count(*) FROM answered"""


async def record_created(conn: Connection, payment: Payment, answering: KeyAnswer, record: audit.AuditRecord) -> bool:
    """Saves a new payment as Stripe created it, with its key's answer and its audit record, in
    one statement, unless anything saved the payment or answered the key since it was claimed
    (then False, and nothing is written)."""
    recorded = await conn.fetchval(
        _RECORD_CREATED,
        *_saved_values(payment),
        encode_payment(payment),
        answering.organization_id,
        answering.member_id,
        answering.key,
        *audit.outbox_values(record),
    )
    return bool(recorded)


async def list_payments(
    conn: Connection,
    organization_id: str,
    *,
    status: str,
    member_id: str,
    since: date | datetime | None,
    until: date | datetime | None,
    after: tuple[datetime, str] | None,
    limit: int,
) -> list[Payment]:
    """Newest first. A day bound is on the payment's local day (inclusive); an instant on its creation."""
    rows = await conn.fetch(
        f"""SELECT {_PAYMENT_COLUMNS} FROM payments
             WHERE organization_id = $1
               AND ($2 = '' OR status = $2) AND ($3 = '' OR member_id = $3)
               AND ($4::timestamptz IS NULL OR created_at >= $4) AND ($5::timestamptz IS NULL OR created_at < $5)
               AND ($9::date IS NULL OR local_date >= $9) AND ($10::date IS NULL OR local_date <= $10)
               AND ($6::timestamptz IS NULL OR (created_at, id) < ($6, $7::uuid))
             ORDER BY created_at DESC, id DESC LIMIT $8""",
        organization_id,
        status,
        member_id,
        since if isinstance(since, datetime) else None,
        until if isinstance(until, datetime) else None,
        after[0] if after else None,
        after[1] if after else None,
        limit,
        since if isinstance(since, date) and not isinstance(since, datetime) else None,
        until if isinstance(until, date) and not isinstance(until, datetime) else None,
    )
    return [payment_from_row(row) for row in rows]


# --- refunds ------------------------------------------------------------------------------


async def refunds_of(conn: Connection, payment_ids: list[str]) -> dict[str, list[Refund]]:
    rows = await conn.fetch(
        "SELECT * FROM refunds WHERE payment_id = ANY($1::uuid[]) ORDER BY created_at, id", payment_ids
    )
    found: dict[str, list[Refund]] = {}
    for row in rows:
        refund = refund_from_row(row)
        found.setdefault(refund.payment_id, []).append(refund)
    return found


async def pending_refunds_total(conn: Connection, payment_id: str) -> int:
    total = await conn.fetchval(
        "SELECT coalesce(sum(amount), 0) FROM refunds WHERE payment_id = $1 AND status = 'pending'", payment_id
    )
    return int(total)


async def insert_refund(conn: Connection, refund: Refund) -> None:
    await conn.execute(
        """INSERT INTO refunds (id, payment_id, amount, currency, reason, status, stripe_refund_id,
                                application_fee_refunded, failure_reason, created_at, local_date)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)""",
        refund.id,
        refund.payment_id,
        refund.amount,
        refund.currency,
        refund.reason,
        refund.status,
        refund.stripe_refund_id,
        refund.application_fee_refunded,
        refund.failure_reason,
        refund.created_at,
        refund.local_date,
    )


async def get_refund(conn: Connection, refund_id: str, *, for_update: bool = False) -> Refund | None:
    if parse_uuid(refund_id) is None:
        return None
    lock = " FOR UPDATE" if for_update else ""
    row = await conn.fetchrow(f"SELECT * FROM refunds WHERE id = $1{lock}", refund_id)
    return refund_from_row(row) if row else None


async def refund_by_stripe_id(conn: Connection, stripe_refund_id: str) -> Refund | None:
    row = await conn.fetchrow("SELECT * FROM refunds WHERE stripe_refund_id = $1", stripe_refund_id)
    return refund_from_row(row) if row else None


async def save_refund(conn: Connection, refund: Refund) -> None:
    await conn.execute(
        """UPDATE refunds SET status = $2, stripe_refund_id = $3, application_fee_refunded = $4, failure_reason = $5,
                  updated_at = now()
            WHERE id = $1""",
        refund.id,
        refund.status,
        refund.stripe_refund_id,
        refund.application_fee_refunded,
        refund.failure_reason,
    )


REFUND_SWEEP_LOCK = 0x5E_F0_4D_01  # one refund sweeper at a time across replicas


async def lock_refund_sweep(conn: Connection) -> bool:
    """The sweep's lock, held until the transaction ends; False when another replica sweeps."""
    return bool(await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", REFUND_SWEEP_LOCK))


async def stale_pending_refunds(conn: Connection, older_than_seconds: float, limit: int) -> list[tuple[str, str]]:
    """(payment id, refund id) of refunds pending for longer than `older_than_seconds`, their payment
    locked (skipped when a request holds it: that request completes its refund itself)."""
    rows = await conn.fetch(
        """SELECT p.id AS payment_id, r.id AS refund_id FROM refunds r JOIN payments p ON p.id = r.payment_id
            WHERE r.status = 'pending' AND r.created_at < now() - make_interval(secs => $1)
            ORDER BY r.created_at LIMIT $2 FOR UPDATE OF p SKIP LOCKED""",
        older_than_seconds,
        limit,
    )
    return [(str(row["payment_id"]), str(row["refund_id"])) for row in rows]


# --- daily totals -------------------------------------------------------------------------


async def add_to_day(
    conn: Connection,
    payment: Payment,
    *,
    count: int = 0,
    gross: int = 0,
    fees: int = 0,
    refunded: int = 0,
    disputed_count: int = 0,
    disputed: int = 0,
    disputes_lost: int = 0,
    day: date | None = None,
) -> None:
    """Adds to the rollup row of the payment's day (or `day`: a refund's or a dispute's), in the
    transaction that changed it."""
    await conn.execute(
        """INSERT INTO daily_totals AS t (organization_id, day, member_id, currency, count, gross, fees, refunded,
                                          disputed_count, disputed, disputes_lost)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
           ON CONFLICT (organization_id, day, member_id, currency) DO UPDATE
              SET count = t.count + excluded.count, gross = t.gross + excluded.gross,
                  fees = t.fees + excluded.fees, refunded = t.refunded + excluded.refunded,
                  disputed_count = t.disputed_count + excluded.disputed_count,
                  disputed = t.disputed + excluded.disputed, disputes_lost = t.disputes_lost + excluded.disputes_lost""",
        payment.organization_id,
        day or payment.local_date,
        payment.member_id,
        payment.currency,
        count,
        gross,
        fees,
        refunded,
        disputed_count,
        disputed,
        disputes_lost,
    )


async def daily_totals(
    conn: Connection, organization_id: str, member_id: str, first: date, last: date
) -> list[asyncpg.Record]:
    """Per day and currency, for an organisation (member_id '') or one member."""
    return await conn.fetch(
        """SELECT day, currency, sum(count)::bigint AS count, sum(gross)::bigint AS gross, sum(fees)::bigint AS fees,
                  sum(refunded)::bigint AS refunded,
                  sum(disputed_count)::bigint AS disputed_count, sum(disputed)::bigint AS disputed,
                  sum(disputes_lost)::bigint AS disputes_lost
             FROM daily_totals
            WHERE organization_id = $1 AND ($2 = '' OR member_id = $2) AND day BETWEEN $3 AND $4
            GROUP BY day, currency ORDER BY day, currency""",
        organization_id,
        member_id,
        first,
        last,
    )


async def totals_by_organization(
    conn: Connection, organization_id: str, first: date, last: date
) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT organization_id, day, currency, sum(count)::bigint AS count, sum(gross)::bigint AS gross,
                  sum(fees)::bigint AS fees, sum(refunded)::bigint AS refunded,
                  sum(disputed_count)::bigint AS disputed_count, sum(disputed)::bigint AS disputed,
                  sum(disputes_lost)::bigint AS disputes_lost
             FROM daily_totals
            WHERE ($1 = '' OR organization_id = $1) AND day BETWEEN $2 AND $3
            GROUP BY organization_id, day, currency ORDER BY organization_id, day, currency""",
        organization_id,
        first,
        last,
    )


# --- disputes -----------------------------------------------------------------------------

_DISPUTE_COLUMNS = """id, stripe_dispute_id, payment_id, organization_id, member_id, charge_model, amount, currency, reason,
    status, evidence_due_by, evidence_submissions, withdrawn, dispute_fee, withdrawn_at, reinstated, reinstated_at,
    closed_at, stripe_transfer_id, transfer_reversed, stripe_transfer_reversal_id, transfer_returned,
    stripe_return_transfer_id, transfer_refused_at, local_date, created_at"""
_DISPUTE_FIELDS = [c.strip() for c in _DISPUTE_COLUMNS.split(",")]
# What changes after a dispute is recorded (its payment, organisation, amount and day do not).
_DISPUTE_CHANGING = _DISPUTE_FIELDS[_DISPUTE_FIELDS.index("status") : _DISPUTE_FIELDS.index("transfer_refused_at") + 1]


def dispute_from_row(row: asyncpg.Record) -> Dispute:
    values = {name: row[name] for name in _DISPUTE_FIELDS}
    values["id"], values["payment_id"] = str(row["id"]), str(row["payment_id"])
    return Dispute(**values)


def _dispute_values(dispute: Dispute) -> list[Any]:
    return [getattr(dispute, name) for name in _DISPUTE_FIELDS]


async def insert_dispute(conn: Connection, dispute: Dispute) -> bool:
    """Records a dispute first seen; False when its Stripe id is recorded already."""
    places = ", ".join(f"${i}" for i in range(1, len(_DISPUTE_FIELDS) + 1))
    inserted = await conn.fetchval(
        f"INSERT INTO disputes ({_DISPUTE_COLUMNS}) VALUES ({places}) ON CONFLICT DO NOTHING RETURNING true",
        *_dispute_values(dispute),
    )
    return bool(inserted)


async def save_dispute(conn: Connection, dispute: Dispute) -> None:
    """Writes back every field that changes after the dispute is recorded."""
    changing = _DISPUTE_CHANGING
    sets = ", ".join(f"{name} = ${i}" for i, name in enumerate(changing, start=2))
    await conn.execute(
        f"UPDATE disputes SET {sets}, updated_at = now() WHERE id = $1",
        dispute.id,
        *[getattr(dispute, name) for name in changing],
    )


async def get_dispute(conn: Connection, dispute_id: str, *, for_update: bool = False) -> Dispute | None:
    if parse_uuid(dispute_id) is None:
        return None
    lock = " FOR UPDATE" if for_update else ""
    row = await conn.fetchrow(f"SELECT {_DISPUTE_COLUMNS} FROM disputes WHERE id = $1{lock}", dispute_id)
    return dispute_from_row(row) if row else None


async def get_dispute_by_stripe_id(
    conn: Connection, stripe_dispute_id: str, *, for_update: bool = False
) -> Dispute | None:
    lock = " FOR UPDATE" if for_update else ""
    row = await conn.fetchrow(
        f"SELECT {_DISPUTE_COLUMNS} FROM disputes WHERE stripe_dispute_id = $1{lock}", stripe_dispute_id
    )
    return dispute_from_row(row) if row else None


async def has_dispute(conn: Connection, payment_id: str) -> bool:
    return bool(await conn.fetchval("SELECT true FROM disputes WHERE payment_id = $1 LIMIT 1", payment_id))


async def list_disputes(
    conn: Connection, organization_id: str, after: tuple[datetime, str] | None, limit: int
) -> list[Dispute]:
    """Newest first; every organisation's when `organization_id` is ''."""
    rows = await conn.fetch(
        f"""SELECT {_DISPUTE_COLUMNS} FROM disputes
             WHERE ($1 = '' OR organization_id = $1)
               AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3::uuid))
             ORDER BY created_at DESC, id DESC LIMIT $4""",
        organization_id,
        after[0] if after else None,
        after[1] if after else None,
        limit,
    )
    return [dispute_from_row(row) for row in rows]


DISPUTE_SWEEP_LOCK = 0x5E_F0_4D_02  # one dispute sweeper at a time across replicas


async def lock_dispute_sweep(conn: Connection) -> bool:
    """The dispute sweep's lock, held until the transaction ends; False when another replica sweeps."""
    return bool(await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", DISPUTE_SWEEP_LOCK))


async def disputes_with_transfer_due(conn: Connection, older_than_seconds: float, limit: int) -> list[tuple[str, str]]:
    """(payment id, Stripe dispute id) of disputes whose transfer move Stripe refused longer than
    `older_than_seconds` ago, their
    payment locked (skipped while an event holds it: that event tries the move itself)."""
    rows = await conn.fetch(
        """SELECT p.id AS payment_id, d.stripe_dispute_id FROM disputes d JOIN payments p ON p.id = d.payment_id
            WHERE d.transfer_refused_at <= now() - make_interval(secs => $1)
            ORDER BY d.transfer_refused_at LIMIT $2 FOR UPDATE OF p SKIP LOCKED""",
        older_than_seconds,
        limit,
    )
    return [(str(row["payment_id"]), row["stripe_dispute_id"]) for row in rows]


# --- receipts -----------------------------------------------------------------------------


async def queue_receipt(conn: Connection, payment_id: str, email: str) -> bool:
    inserted = await conn.fetchval(
        """INSERT INTO receipts (payment_id, email, status) VALUES ($1, $2, 'pending')
           ON CONFLICT DO NOTHING RETURNING true""",
        payment_id,
        email,
    )
    return bool(inserted)


async def claim_due_receipt(conn: Connection) -> asyncpg.Record | None:
    return await conn.fetchrow(
        """SELECT r.payment_id, r.email, r.attempts FROM receipts r
            WHERE r.status = 'pending' AND r.next_attempt_at <= now()
            ORDER BY r.next_attempt_at LIMIT 1 FOR UPDATE SKIP LOCKED"""
    )


async def finish_receipt(conn: Connection, payment_id: Any, *, sent: bool, error: str | None, attempts: int) -> None:
    await conn.execute(
        """UPDATE receipts SET status = CASE WHEN $2 THEN 'sent' WHEN $4 >= 10 THEN 'failed' ELSE 'pending' END,
                  attempts = $4, last_error = $3, sent_at = CASE WHEN $2 THEN now() END,
                  next_attempt_at = now() + make_interval(secs => least(600, 2 ^ $4))
            WHERE payment_id = $1""",
        payment_id,
        sent,
        error,
        attempts,
    )


async def expire_keys(conn: Connection, hours: int) -> int:
    """Forgets answered idempotency keys older than `hours` (Stripe keeps its keys 24 h)."""
    status = await conn.execute(
        "DELETE FROM idempotency_keys WHERE response IS NOT NULL AND created_at < now() - make_interval(hours => $1)",
        hours,
    )
    return int(status.split()[-1])


# --- books (read only, services/payments/books.py) -----------------------------------------


async def insert_book_move(
    conn: Connection, payment: Payment, move: BookMove, recorded_at: datetime, day: date
) -> bool:
    """Books a move once (never updated afterwards); False when that move of its source is booked already."""
    inserted = await conn.fetchval(
        """INSERT INTO book_moves (kind, source_id, payment_id, organization_id, currency, amount, application_fee,
                                   dispute_fee, transfer_reversed, recorded_at, day)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT DO NOTHING RETURNING true""",
        move.kind,
        move.source_id,
        payment.id,
        payment.organization_id,
        payment.currency,
        move.amount,
        move.application_fee,
        move.dispute_fee,
        move.transfer_reversed,
        recorded_at,
        day,
    )
    return bool(inserted)


async def book_organizations(conn: Connection, first: date, last: date) -> list[str]:
    """Organisations with a sale or a booked move around [first, last] (a day either side for time zones)."""
    rows = await conn.fetch(
        """SELECT organization_id FROM payments
            WHERE status = 'succeeded' AND local_date BETWEEN $1::date - 1 AND $2::date + 1
           UNION
           SELECT organization_id FROM book_moves
            WHERE recorded_at >= $1::date - 2 AND recorded_at < $2::date + 3""",
        first,
        last,
    )
    return sorted(r["organization_id"] for r in rows)


async def book_entries(
    conn: Connection,
    organizations: list[str],
    zones: list[str],
    first: date,
    last: date,
    after: tuple[date, str, str] | None,
    limit: int,
) -> list[asyncpg.Record]:
    """Sales on their local day, refunds' and disputes' moves on the local day they were booked
    (carried-over moves without a day: their moment in the organisation's zone)."""
    return await conn.fetch(
        """WITH zones AS (SELECT * FROM unnest($1::text[], $2::text[]) AS z (organization_id, timezone)),
           entries AS (
             SELECT 'sale' AS kind, p.id::text AS id, p.id::text AS payment_id, p.organization_id,
                    p.local_date AS day, p.method, p.charge_model, p.currency, p.amount_captured AS amount,
                    p.application_fee_amount AS application_fee, coalesce(p.stripe_account_id, '') AS stripe_account_id,
                    coalesce(p.stripe_payment_intent_id, '') AS stripe_payment_intent_id, 0::bigint AS dispute_fee,
                    0::bigint AS transfer_reversed
               FROM payments p JOIN zones z ON z.organization_id = p.organization_id
              WHERE p.status = 'succeeded' AND p.local_date BETWEEN $3 AND $4
             UNION ALL
             SELECT m.kind, m.source_id::text, p.id::text, p.organization_id,
                    coalesce(m.day, (m.recorded_at AT TIME ZONE z.timezone)::date), p.method, p.charge_model,
                    m.currency, m.amount, m.application_fee, coalesce(p.stripe_account_id, ''),
                    coalesce(p.stripe_payment_intent_id, ''), m.dispute_fee, m.transfer_reversed
               FROM book_moves m JOIN payments p ON p.id = m.payment_id
               JOIN zones z ON z.organization_id = m.organization_id
              WHERE m.recorded_at >= $3::date - 2 AND m.recorded_at < $4::date + 3
                AND coalesce(m.day, (m.recorded_at AT TIME ZONE z.timezone)::date) BETWEEN $3 AND $4)
           SELECT * FROM entries
            WHERE $5::date IS NULL OR (day, kind, id) > ($5::date, $6, $7)
            ORDER BY day, kind, id LIMIT $8""",
        organizations,
        zones,
        first,
        last,
        after[0] if after else None,
        after[1] if after else "",
        after[2] if after else "",
        limit,
    )
