"""SQL for the accounts schema: members and organisations; $1 parameters only."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg
import orjson

from runtime.audit import json_text, record_from_row
from runtime.db import Connection
from services.accounts.crypto import Secrets
from services.accounts.domain import (
    Address,
    AuditEntry,
    Member,
    NewOrganization,
    Organization,
    OrganizationChanges,
    PaymentPolicy,
    StripeAccountState,
)

_MEMBER_COLUMNS = "id, organization_id, email, name, role, disabled, created_at"


def _member(row: asyncpg.Record) -> Member:
    return Member(
        id=str(row["id"]),
        organization_id=str(row["organization_id"]) if row["organization_id"] else None,
        email=row["email"],
        name=row["name"],
        role=row["role"],
        disabled=row["disabled"],
        created_at=row["created_at"],
    )


async def member_credentials(conn: Connection, email: str) -> tuple[Member, str] | None:
    row = await conn.fetchrow(f"SELECT {_MEMBER_COLUMNS}, password_hash FROM members WHERE lower(email) = $1", email)
    return (_member(row), row["password_hash"]) if row else None


async def login_wait_seconds(conn: Connection, keys: list[str]) -> float:
    """How long sign-in stays refused for any of `keys` (0 when none is locked)."""
    wait = await conn.fetchval(
        """SELECT extract(epoch FROM max(locked_until) - now()) FROM login_failures
            WHERE key = ANY($1::text[]) AND locked_until > now()""",
        keys,
    )
    return float(wait or 0.0)


async def count_login_failure(conn: Connection, key: str, forget_after_seconds: int) -> int:
    """Counts one more failure for `key` (starting again after a quiet spell); returns the count."""
    failures = await conn.fetchval(
        """INSERT INTO login_failures AS f (key, failures, last_failure_at) VALUES ($1, 1, now())
           ON CONFLICT (key) DO UPDATE
              SET failures = CASE WHEN f.last_failure_at > now() - make_interval(secs => $2) THEN f.failures + 1 ELSE 1 END,
                  last_failure_at = now()
           RETURNING failures""",
        key,
        forget_after_seconds,
    )
    return int(failures)


async def lock_login(conn: Connection, key: str, seconds: int) -> None:
    await conn.execute(
        "UPDATE login_failures SET locked_until = now() + make_interval(secs => $2) WHERE key = $1", key, seconds
    )


async def clear_login_failures(conn: Connection, key: str) -> None:
    await conn.execute("DELETE FROM login_failures WHERE key = $1", key)


async def get_member(conn: Connection, member_id: str) -> Member | None:
    row = await conn.fetchrow(f"SELECT {_MEMBER_COLUMNS} FROM members WHERE id = $1", _uuid(member_id))
    return _member(row) if row else None


async def insert_member(
    conn: Connection,
    *,
    organization_id: str | None,
    email: str,
    name: str,
    role: str,
    password_hash: str,
) -> Member | None:
    """Inserts a member; None when the e-mail is taken."""
    row = await conn.fetchrow(
        f"""INSERT INTO members (id, organization_id, email, name, role, password_hash)
            VALUES ($1, $2, $3, $4, $5, $6)
            ON CONFLICT (lower(email)) DO NOTHING
            RETURNING {_MEMBER_COLUMNS}""",
        uuid.uuid4(),
        _uuid(organization_id) if organization_id else None,
        email,
        name,
        role,
        password_hash,
    )
    return _member(row) if row else None


async def update_member(
    conn: Connection, member_id: str, *, name: str | None, role: str | None, disabled: bool | None
) -> tuple[Member, datetime | None] | None:
    """The updated member, and when its access changed if this update changed it (role or disabled)."""
    row = await conn.fetchrow(
        f"""UPDATE members SET name = coalesce($2, name), role = coalesce($3, role),
                   disabled = coalesce($4, disabled), updated_at = now(),
                   access_changed_at = CASE WHEN coalesce($3, role) <> role OR coalesce($4, disabled) <> disabled
                                            THEN now() ELSE access_changed_at END
             WHERE id = $1
         RETURNING {_MEMBER_COLUMNS}, CASE WHEN access_changed_at = now() THEN access_changed_at END AS access_changed""",
        _uuid(member_id),
        name,
        role,
        disabled,
    )
    return (_member(row), row["access_changed"]) if row else None


async def recent_access_changes(conn: Connection, seconds: int) -> list[tuple[str, datetime]]:
    """Members whose access changed in the last `seconds` (a token's lifetime), and when."""
    rows = await conn.fetch(
        """SELECT id, access_changed_at FROM members
            WHERE access_changed_at > now() - make_interval(secs => $1)""",
        seconds,
    )
    return [(str(row["id"]), row["access_changed_at"]) for row in rows]


async def set_password_hash(conn: Connection, member_id: str, password_hash: str) -> None:
    await conn.execute(
        "UPDATE members SET password_hash = $2, updated_at = now() WHERE id = $1",
        _uuid(member_id),
        password_hash,
    )


async def list_members(
    conn: Connection, organization_id: str, limit: int, after: tuple[datetime, str] | None
) -> list[Member]:
    if after is None:
        rows = await conn.fetch(
            f"""SELECT {_MEMBER_COLUMNS} FROM members WHERE organization_id = $1
                ORDER BY created_at, id LIMIT $2""",
            _uuid(organization_id),
            limit,
        )
    else:
        rows = await conn.fetch(
            f"""SELECT {_MEMBER_COLUMNS} FROM members WHERE organization_id = $1 AND (created_at, id) > ($2, $3)
                ORDER BY created_at, id LIMIT $4""",
            _uuid(organization_id),
            after[0],
            _uuid(after[1]),
            limit,
        )
    return [_member(r) for r in rows]


def _uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except (ValueError, TypeError):
        return None


# Organisations ------------------------------------------------------------------------------

_TABLE = "organizations"
_ORG_COLUMNS = """id, name, email, country, business_type, address, charge_model, fee_percent_bps, fee_minimum,
    legal_entity, bank_account_iban, timezone, default_currency, created_at, stripe_account_id,
    stripe_account_type, charges_enabled, payouts_enabled, details_submitted, requirements_due,
    stripe_state_at, stripe_updated_at, siren"""


class OrganizationRows:
    """Reads and writes organisation rows, sealing the encrypted columns on the way in and out."""

    def __init__(self, secrets: Secrets) -> None:
        self._cipher = secrets.cipher
        self._email_index = secrets.email_index

    def index(self, value: str) -> bytes:
        """The blind index (keyed digest) of a value, e.g. for keys that must not hold an e-mail."""
        return self._email_index(value)

    def _seal(self, row_id: str, column: str, value: str) -> str:
        return self._cipher.encrypt(value, table=_TABLE, row_id=row_id, column=column)

    def _open(self, row_id: str, column: str, value: str | None) -> str:
        return self._cipher.decrypt(value, table=_TABLE, row_id=row_id, column=column) if value else ""

    def _organization(self, row: asyncpg.Record) -> Organization:
        row_id = str(row["id"])
        address = orjson.loads(row["address"]) if isinstance(row["address"], str) else dict(row["address"])
        stripe = None
        if row["stripe_account_id"]:
            stripe = StripeAccountState(
                account_id=row["stripe_account_id"],
                type=row["stripe_account_type"] or "",
                charges_enabled=row["charges_enabled"],
                payouts_enabled=row["payouts_enabled"],
                details_submitted=row["details_submitted"],
                requirements_due=tuple(row["requirements_due"]),
                state_at=row["stripe_state_at"],
                updated_at=row["stripe_updated_at"],
            )
        return Organization(
            id=row_id,
            name=self._open(row_id, "name", row["name"]),
            email=self._open(row_id, "email", row["email"]),
            country=row["country"],
            business_type=row["business_type"],
            address=Address(**{k: str(v) for k, v in address.items() if k in Address.__dataclass_fields__}),
            charge_model=row["charge_model"],
            fee_percent_bps=row["fee_percent_bps"],
            fee_minimum=row["fee_minimum"],
            legal_entity=row["legal_entity"],
            bank_account_iban=self._open(row_id, "bank_account_iban", row["bank_account_iban"]),
            timezone=row["timezone"],
            default_currency=row["default_currency"],
            created_at=row["created_at"],
            stripe=stripe,
            siren=row["siren"] or "",
        )

    async def insert(self, conn: Connection, new: NewOrganization) -> Organization:
        row_id = str(uuid.uuid4())
        address = {
            "line1": new.address.line1,
            "line2": new.address.line2,
            "city": new.address.city,
            "postal_code": new.address.postal_code,
            "country": new.address.country or new.country,
            "state": new.address.state,
        }
        row = await conn.fetchrow(
            f"""INSERT INTO organizations (id, name, email, email_index, encryption_key_id, country, business_type,
                    address, charge_model, fee_percent_bps, fee_minimum, legal_entity, bank_account_iban,
                    timezone, default_currency, siren)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9, $10, $11, $12, $13, $14, $15, $16)
                RETURNING {_ORG_COLUMNS}""",
            uuid.UUID(row_id),
            self._seal(row_id, "name", new.name),
            self._seal(row_id, "email", new.email),
            self._email_index(new.email),
            self._cipher.current_key_id,
            new.country,
            new.business_type,
            orjson.dumps(address).decode(),
            new.charge_model,
            new.fee_percent_bps,
            new.fee_minimum,
            new.legal_entity,
            self._seal(row_id, "bank_account_iban", new.bank_account_iban) if new.bank_account_iban else None,
            new.timezone,
            new.default_currency,
            new.siren or None,
        )
        assert row is not None
        return self._organization(row)

    async def get(self, conn: Connection, organization_id: str, *, for_update: bool = False) -> Organization | None:
        key = _uuid(organization_id)
        if key is None:
            return None
        lock = " FOR UPDATE" if for_update else ""
        row = await conn.fetchrow(f"SELECT {_ORG_COLUMNS} FROM organizations WHERE id = $1{lock}", key)
        return self._organization(row) if row else None

    async def find_by_email(self, conn: Connection, email: str) -> list[Organization]:
        rows = await conn.fetch(
            f"SELECT {_ORG_COLUMNS} FROM organizations WHERE email_index = $1 ORDER BY created_at, id",
            self._email_index(email),
        )
        return [self._organization(r) for r in rows]

    async def page(self, conn: Connection, limit: int, after: tuple[datetime, str] | None) -> list[Organization]:
        if after is None:
            rows = await conn.fetch(f"SELECT {_ORG_COLUMNS} FROM organizations ORDER BY created_at, id LIMIT $1", limit)
        else:
            rows = await conn.fetch(
                f"""SELECT {_ORG_COLUMNS} FROM organizations WHERE (created_at, id) > ($1, $2)
                    ORDER BY created_at, id LIMIT $3""",
                after[0],
                _uuid(after[1]),
                limit,
            )
        return [self._organization(r) for r in rows]

    async def stale_key_ids(self, conn: Connection, limit: int) -> list[str]:
        """Organisations whose fields are sealed with another key than the current one."""
        rows = await conn.fetch(
            "SELECT id FROM organizations WHERE encryption_key_id <> $1 ORDER BY id LIMIT $2",
            self._cipher.current_key_id,
            limit,
        )
        return [str(r["id"]) for r in rows]

    async def reseal(self, conn: Connection, organization_id: str) -> bool:
        """Re-encrypts one organisation's fields with the current key (key rotation); False if not found."""
        org = await self.get(conn, organization_id, for_update=True)
        if org is None:
            return False
        await conn.execute(
            """UPDATE organizations SET name = $2, email = $3, bank_account_iban = $4, email_index = $5,
                      encryption_key_id = $6, updated_at = now()
                WHERE id = $1""",
            uuid.UUID(org.id),
            self._seal(org.id, "name", org.name),
            self._seal(org.id, "email", org.email),
            self._seal(org.id, "bank_account_iban", org.bank_account_iban) if org.bank_account_iban else None,
            self._email_index(org.email),
            self._cipher.current_key_id,
        )
        return True

    async def update(self, conn: Connection, organization_id: str, changes: OrganizationChanges) -> Organization | None:
        assignments: list[str] = []
        values: list[Any] = [_uuid(organization_id)]

        def assign(column: str, value: Any) -> None:
            values.append(value)
            assignments.append(f"{column} = ${len(values)}")

        if changes.name is not None:
            # encryption_key_id stays: it names the oldest key a row may use, for `reseal`.
            assign("name", self._seal(organization_id, "name", changes.name))
        for column in ("charge_model", "fee_percent_bps", "fee_minimum", "legal_entity", "timezone"):
            value = getattr(changes, column)
            if value is not None:
                assign(column, value)
        if changes.siren is not None:
            assign("siren", changes.siren or None)
        if changes.bank_account_iban is not None:
            iban = changes.bank_account_iban
            assign("bank_account_iban", self._seal(organization_id, "bank_account_iban", iban) if iban else None)
        set_clause = ", ".join([*assignments, "updated_at = now()"])
        row = await conn.fetchrow(
            f"UPDATE organizations SET {set_clause} WHERE id = $1 RETURNING {_ORG_COLUMNS}", *values
        )
        return self._organization(row) if row else None

    async def set_stripe_state(
        self, conn: Connection, organization_id: str, state: StripeAccountState, *, only_if_newer: bool = True
    ) -> bool:
        """Stores the account's state unless a newer one is stored already; True when written."""
        status = await conn.execute(
            """UPDATE organizations
                  SET stripe_account_id = $2, stripe_account_type = coalesce(nullif($3, ''), stripe_account_type),
                      charges_enabled = $4, payouts_enabled = $5, details_submitted = $6,
                      requirements_due = $7, stripe_state_at = $8, stripe_updated_at = now(), updated_at = now()
                WHERE id = $1 AND (stripe_account_id IS NULL OR stripe_account_id = $2)
                  AND (NOT $9 OR stripe_state_at IS NULL OR stripe_state_at <= $8)""",
            _uuid(organization_id),
            state.account_id,
            state.type,
            state.charges_enabled,
            state.payouts_enabled,
            state.details_submitted,
            list(state.requirements_due),
            state.state_at,
            only_if_newer,
        )
        return status.endswith(" 1")

    async def organization_of_account(
        self, conn: Connection, stripe_account_id: str, *, for_update: bool = False
    ) -> Organization | None:
        lock = " FOR UPDATE" if for_update else ""
        row = await conn.fetchrow(
            f"SELECT {_ORG_COLUMNS} FROM organizations WHERE stripe_account_id = $1{lock}", stripe_account_id
        )
        return self._organization(row) if row else None


async def organization_exists(conn: Connection, organization_id: str) -> bool:
    key = _uuid(organization_id)
    return key is not None and bool(await conn.fetchval("SELECT true FROM organizations WHERE id = $1", key))


async def organization_id_of_account(conn: Connection, stripe_account_id: str) -> str | None:
    value = await conn.fetchval("SELECT id FROM organizations WHERE stripe_account_id = $1", stripe_account_id)
    return str(value) if value else None


async def payment_policy(conn: Connection, organization_id: str) -> PaymentPolicy | None:
    """One primary-key read of the plain (unencrypted) columns a payment needs."""
    key = _uuid(organization_id)
    if key is None:
        return None
    row = await conn.fetchrow(
        """SELECT id, coalesce(stripe_account_id, '') AS stripe_account_id, charge_model, fee_percent_bps, fee_minimum,
                  charges_enabled, country, default_currency, timezone
             FROM organizations WHERE id = $1""",
        key,
    )
    if row is None:
        return None
    return PaymentPolicy(
        organization_id=str(row["id"]),
        stripe_account_id=row["stripe_account_id"],
        charge_model=row["charge_model"],
        fee_percent_bps=row["fee_percent_bps"],
        fee_minimum=row["fee_minimum"],
        charges_enabled=row["charges_enabled"] and bool(row["stripe_account_id"]),
        country=row["country"],
        default_currency=row["default_currency"],
        timezone=row["timezone"],
    )


# The audit trail ----------------------------------------------------------------------------------


async def lock_audit_chain(conn: Connection, chain: str, genesis: bytes) -> tuple[int, bytes]:
    """The chain's head (sequence, hash), locked until the transaction ends: appends to one chain
    take turns, so it never forks."""
    await conn.execute(
        "INSERT INTO audit_chain_heads (chain, sequence, hash) VALUES ($1, 0, $2) ON CONFLICT (chain) DO NOTHING",
        chain,
        genesis,
    )
    row = await conn.fetchrow("SELECT sequence, hash FROM audit_chain_heads WHERE chain = $1 FOR UPDATE", chain)
    assert row is not None
    return row["sequence"], bytes(row["hash"])


async def chained_source_ids(conn: Connection, source: str, source_ids: list[str]) -> set[str]:
    """Which of these records of `source` are chained already."""
    rows = await conn.fetch(
        "SELECT source_id FROM audit_entries WHERE source = $1 AND source_id = ANY($2::text[])", source, source_ids
    )
    return {row["source_id"] for row in rows}


_INSERT_AUDIT_ENTRIES = """INSERT INTO audit_entries (id, chain, sequence, organization_id, actor_id, actor_role,
                              actor_organization_id, action, targets, before, after, request_id,
                              trace_id, source, source_id, occurred_at, recorded_at, previous_hash, hash)
   SELECT * FROM unnest($1::uuid[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[],
                        $8::text[], $9::jsonb[], $10::jsonb[], $11::jsonb[], $12::text[], $13::text[], $14::text[],
                        $15::text[], $16::timestamptz[], $17::timestamptz[], $18::bytea[], $19::bytea[])"""


def _audit_entry_args(entry: AuditEntry) -> tuple[Any, ...]:
    found = entry.record
    return (
        uuid.UUID(entry.id),
        entry.chain,
        entry.sequence,
        found.organization_id,
        found.actor_id,
        found.actor_role,
        found.actor_organization_id,
        found.action,
        json_text(found.targets),
        json_text(found.before),
        json_text(found.after),
        found.request_id,
        found.trace_id,
        entry.source,
        found.source_id,
        found.occurred_at,
        entry.recorded_at,
        entry.previous_hash,
        entry.hash,
    )


async def insert_audit_entries(conn: Connection, entries: Sequence[AuditEntry]) -> None:
    """Adds entries, in each chain's order, and moves every chain's head to its last one (the heads
    are locked by `lock_audit_chain`). One statement for the batch (a row per array element), not
    an execution each."""
    if not entries:
        return
    await conn.execute(_INSERT_AUDIT_ENTRIES, *map(list, zip(*(_audit_entry_args(e) for e in entries), strict=True)))
    heads = {entry.chain: entry for entry in entries}
    for entry in heads.values():
        await conn.execute(
            "UPDATE audit_chain_heads SET sequence = $2, hash = $3 WHERE chain = $1",
            entry.chain,
            entry.sequence,
            entry.hash,
        )


def _audit_entry(row: asyncpg.Record) -> AuditEntry:
    return AuditEntry(
        id=str(row["id"]),
        chain=row["chain"],
        sequence=row["sequence"],
        record=record_from_row(row, row["source_id"]),
        source=row["source"],
        recorded_at=row["recorded_at"],
        previous_hash=bytes(row["previous_hash"]),
        hash=bytes(row["hash"]),
    )


async def list_audit_entries(
    conn: Connection,
    *,
    organization_id: str | None,
    actor_id: str,
    action: str,
    from_time: datetime | None,
    to_time: datetime | None,
    limit: int,
    before: tuple[datetime, str] | None,
) -> list[AuditEntry]:
    """Newest first; `organization_id` None means every chain; `before` is the last row of the previous page."""
    rows = await conn.fetch(
        """SELECT * FROM audit_entries
            WHERE ($1::text IS NULL OR organization_id = $1)
              AND ($2 = '' OR actor_id = $2)
              AND ($3 = '' OR action = $3)
              AND ($4::timestamptz IS NULL OR recorded_at >= $4)
              AND ($5::timestamptz IS NULL OR recorded_at < $5)
              AND ($6::timestamptz IS NULL OR (recorded_at, id) < ($6, $7::uuid))
            ORDER BY recorded_at DESC, id DESC
            LIMIT $8""",
        organization_id,
        actor_id,
        action,
        from_time,
        to_time,
        before[0] if before else None,
        _uuid(before[1]) if before else None,
        limit,
    )
    return [_audit_entry(r) for r in rows]


async def audit_chains(conn: Connection) -> dict[str, tuple[int, bytes]]:
    """Every chain's head: (sequence, hash) of the entry it last recorded."""
    rows = await conn.fetch("SELECT chain, sequence, hash FROM audit_chain_heads")
    return {row["chain"]: (row["sequence"], bytes(row["hash"])) for row in rows}


async def audit_chain_names(conn: Connection) -> list[str]:
    """Every chain with an entry or a head (an entry whose head was removed still gets verified)."""
    rows = await conn.fetch("SELECT chain FROM audit_chain_heads UNION SELECT DISTINCT chain FROM audit_entries")
    return sorted(row["chain"] for row in rows)


async def audit_chain_entries(conn: Connection, chain: str, after_sequence: int, limit: int) -> list[AuditEntry]:
    rows = await conn.fetch(
        """SELECT * FROM audit_entries WHERE chain = $1 AND sequence > $2 ORDER BY sequence LIMIT $3""",
        chain,
        after_sequence,
        limit,
    )
    return [_audit_entry(r) for r in rows]
