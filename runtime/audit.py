"""The audit trail's shared half: every service records its actions; Accounts chains them.

`await audit.record(conn, "payment.refunded", targets={...}, organization_id=...)` inside the
action's own transaction writes one row to the service's `audit_outbox` (a runtime migration,
in every schema): the record commits with the action or not at all. Who did it (member, role,
organisation) comes from the current caller, `request_id` and `trace_id` from the current
request. A worker (`register_audit_outbox`) forwards the outbox to Accounts'
`AppendAuditEntries` (idempotent by source service + outbox id, so a retry after a lost answer
chains nothing twice) and deletes what was chained; Accounts itself chains its own outbox locally.

Records hold ids, roles, amounts and statuses: `before` / `after` / `targets` are redacted like
the inbox's payloads (`runtime.inbox.redact`) in case a personal value slips in.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import orjson
from collect.accounts.v1 import accounts_pb2 as pb
from collect.accounts.v1 import accounts_pb2_grpc

from runtime import inbox
from runtime.auth import SERVICE, current_caller
from runtime.db import Connection
from runtime.errors import FieldError, InvalidArgument
from runtime.logs import current_request_id
from runtime.metrics import audit_outbox_age
from runtime.proto import from_timestamp, to_timestamp
from runtime.tracing import current_trace_id
from runtime.workers import start_worker

log = logging.getLogger("runtime.audit")

# The target naming a connected account: Accounts chains such a record in the account's
# organisation when the recording service did not know it (an outside event applied).
STRIPE_ACCOUNT_TARGET = "stripe_account"
# What a record says of a value that changed but is not shown (a name, an IBAN, a token).
CHANGED = "[changed]"
# A service's forwarder sends at most this many records per call, and looks again this often.
BATCH_SIZE = 100
POLL_SETTING = "AUDIT_OUTBOX_POLL_SECONDS"
DEFAULT_POLL_SECONDS = 0.5


# How much of a chain head's hash an anchor keeps: 64 bits, beyond forging by trial, short enough to read.
ANCHOR_HASH_CHARS = 16
_ANCHOR_HASH = re.compile(r"[0-9a-f]{8,64}")


@dataclass(frozen=True)
class AuditAnchor:
    """A chain's head kept outside the database (the daily report), `<chain>:<sequence>:<hash prefix>`:
    `verify-audit --anchor` checks that the chain still reaches that entry and that it hashes the same."""

    chain: str
    sequence: int
    hash_prefix: str

    def __str__(self) -> str:
        return f"{self.chain}:{self.sequence}:{self.hash_prefix}"

    @classmethod
    def of_head(cls, chain: str, sequence: int, hash_hex: str) -> AuditAnchor:
        """The anchor of a chain head (`ListAuditHeads`)."""
        return cls(chain, sequence, hash_hex[:ANCHOR_HASH_CHARS])

    @classmethod
    def parse(cls, text: str) -> AuditAnchor:
        """An anchor as `str` writes it; InvalidArgument naming what is wrong otherwise."""
        parts = text.strip().split(":")
        if len(parts) != 3 or not parts[0] or not parts[1].isdigit() or int(parts[1]) < 1:
            raise InvalidArgument(
                f"an anchor is <chain>:<sequence>:<hash prefix>, not {text.strip()!r}", "invalid_anchor"
            )
        chain, sequence, prefix = parts[0], int(parts[1]), parts[2].lower()
        if not _ANCHOR_HASH.fullmatch(prefix):
            raise InvalidArgument(f"an anchor's hash prefix is 8 to 64 hex digits, not {prefix!r}", "invalid_anchor")
        return cls(chain, sequence, prefix)


def system_actor(service: str) -> str:
    """The actor of an action no member asked for (an outside event applied by `service`)."""
    return f"service:{service}"


@dataclass(frozen=True)
class AuditRecord:
    """One action as its service recorded it (the chain's fields are Accounts')."""

    action: str
    organization_id: str | None
    actor_id: str  # empty: the recording service itself (Accounts names it when chaining)
    actor_role: str
    actor_organization_id: str | None
    targets: dict[str, str]
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    request_id: str
    trace_id: str
    occurred_at: datetime | None = None
    source_id: str = ""

    def message(self) -> pb.AuditEntry:
        """The record as an AuditEntry (to append; Accounts adds the chain's fields when it answers)."""
        return pb.AuditEntry(
            organization_id=self.organization_id or "",
            actor_id=self.actor_id,
            actor_role=self.actor_role,
            actor_organization_id=self.actor_organization_id or "",
            action=self.action,
            targets=self.targets,
            before_json=json_text(self.before) or "",
            after_json=json_text(self.after) or "",
            request_id=self.request_id,
            trace_id=self.trace_id,
            occurred_at=to_timestamp(self.occurred_at),
            source_id=self.source_id,
        )


def record_from_message(message: pb.AuditEntry) -> AuditRecord:
    """The record an AuditEntry to append carries (Accounts' side of `AuditRecord.message`);
    InvalidArgument when it names no action or no source id."""
    missing = [
        FieldError(f"entries.{name}", "is required") for name in ("action", "source_id") if not getattr(message, name)
    ]
    if missing:
        raise InvalidArgument("an audit record is incomplete", "invalid_audit_record", missing)
    return AuditRecord(
        action=message.action,
        organization_id=message.organization_id or None,
        actor_id=message.actor_id,
        actor_role=message.actor_role or SERVICE,
        actor_organization_id=message.actor_organization_id or None,
        targets=dict(message.targets),
        before=_object(message.before_json),
        after=_object(message.after_json),
        request_id=message.request_id,
        trace_id=message.trace_id,
        occurred_at=from_timestamp(message.occurred_at) if message.HasField("occurred_at") else None,
        source_id=message.source_id,
    )


def _object(text: str) -> dict[str, Any] | None:
    if not text:
        return None
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        value = None
    if not isinstance(value, dict):
        raise InvalidArgument("before_json and after_json must be JSON objects", "invalid_audit_record")
    return value


def current_record(
    action: str,
    *,
    targets: Mapping[str, object],
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
    organization_id: str | None = None,
) -> AuditRecord:
    """A record of `action` by the current caller in the current request.

    `organization_id` defaults to the caller's own; a platform admin's or a service's action on
    an organisation names it. Empty target values are left out.
    """
    caller = current_caller()
    return AuditRecord(
        action=action,
        organization_id=organization_id or (caller.organization_id if caller is not None else None),
        actor_id=caller.member_id if caller is not None else "",
        actor_role=caller.role if caller is not None else SERVICE,
        actor_organization_id=caller.organization_id if caller is not None else None,
        targets={k: str(inbox.redact(str(v))) for k, v in targets.items() if v not in (None, "")},
        before=inbox.redact(dict(before)) if before is not None else None,
        after=inbox.redact(dict(after)) if after is not None else None,
        request_id=current_request_id() or "",
        trace_id=current_trace_id() or "",
    )


async def record(
    conn: Connection,
    action: str,
    *,
    targets: Mapping[str, object],
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
    organization_id: str | None = None,
) -> None:
    """Records `action` in this service's audit outbox, in `conn`'s transaction (see the module)."""
    entry = current_record(action, targets=targets, before=before, after=after, organization_id=organization_id)
    await conn.execute(f"INSERT INTO audit_outbox {outbox_row(1)}", *outbox_values(entry))


def outbox_row(first: int) -> str:
    """The outbox's columns and a row of parameters numbered from `$first`, `(columns) SELECT
    $first, ...`: a statement that writes an action can carry its record too (one round trip
    where the hot path counts them), as `INSERT INTO audit_outbox {outbox_row(n)}` in a CTE."""
    p = [f"${first + i}" for i in range(10)]
    return (
        "(organization_id, actor_id, actor_role, actor_organization_id, action, targets, before, after,"
        f" request_id, trace_id) SELECT {p[0]}, {p[1]}, {p[2]}, {p[3]}, {p[4]}, {p[5]}::jsonb, {p[6]}::jsonb,"
        f" {p[7]}::jsonb, {p[8]}, {p[9]}"
    )


def outbox_values(entry: AuditRecord) -> tuple[Any, ...]:
    """The ten values of `outbox_row`'s parameters, in order."""
    return (
        entry.organization_id,
        entry.actor_id,
        entry.actor_role,
        entry.actor_organization_id,
        entry.action,
        orjson.dumps(entry.targets).decode(),
        json_text(entry.before),
        json_text(entry.after),
        entry.request_id,
        entry.trace_id,
    )


def _loaded(value: Any) -> Any:
    return orjson.loads(value) if isinstance(value, str | bytes) else value


def record_from_row(row: asyncpg.Record | Mapping[str, Any], source_id: str) -> AuditRecord:
    """A record from a row with the record's columns (the outbox's, Accounts' entries')."""
    return AuditRecord(
        action=row["action"],
        organization_id=row["organization_id"],
        actor_id=row["actor_id"],
        actor_role=row["actor_role"],
        actor_organization_id=row["actor_organization_id"],
        targets=dict(_loaded(row["targets"])),
        before=_loaded(row["before"]),
        after=_loaded(row["after"]),
        request_id=row["request_id"],
        trace_id=row["trace_id"],
        occurred_at=row["occurred_at"],
        source_id=source_id,
    )


def json_text(value: dict[str, Any] | None) -> str | None:
    """A JSON object as text for a jsonb parameter (None stays SQL NULL)."""
    return orjson.dumps(value).decode() if value is not None else None


# Chains a batch of records from this service's outbox; raises when they were not chained.
AuditSink = Callable[[Sequence[AuditRecord]], Awaitable[object]]


async def forward_once(pool: asyncpg.Pool, sink: AuditSink, batch: int = BATCH_SIZE) -> int:
    """Sends the oldest outbox records to `sink` and deletes them once it answered; returns how many.

    The rows stay locked (SKIP LOCKED: replicas forward disjoint batches) until the sink answered;
    a failure rolls back and they are sent again later (the sink is idempotent by their ids).
    """
    async with pool.acquire() as conn, conn.transaction():
        rows = await conn.fetch(
            "SELECT * FROM audit_outbox ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
            batch,
        )
        if not rows:
            return 0
        await sink([record_from_row(row, str(row["id"])) for row in rows])
        await conn.execute("DELETE FROM audit_outbox WHERE id = ANY($1::bigint[])", [row["id"] for row in rows])
    return len(rows)


async def forward_all(pool: asyncpg.Pool, sink: AuditSink) -> int:
    """Forwards until the outbox is empty (tests, and the worker after a wake-up)."""
    total = 0
    while sent := await forward_once(pool, sink):
        total += sent
    return total


async def run_forwarder(pool: asyncpg.Pool, sink: AuditSink, every: float = DEFAULT_POLL_SECONDS) -> None:
    """Forwards the outbox every `every` seconds until cancelled; outlives failures (retried)."""
    while True:
        try:
            await forward_all(pool, sink)
        except asyncio.CancelledError:
            raise
        except Exception as error:  # Accounts or the database away: the records wait in the outbox
            log.warning("audit outbox not forwarded: %r", error)
        await asyncio.sleep(every)


async def outbox_age(pool: asyncpg.Pool) -> float:
    """Seconds since the oldest record waiting in this service's outbox was written (0 when none)."""
    age = await pool.fetchval("SELECT EXTRACT(EPOCH FROM clock_timestamp() - min(occurred_at)) FROM audit_outbox")
    return float(age or 0.0)


def accounts_sink(stub: accounts_pb2_grpc.AccountsServiceStub) -> AuditSink:
    """Chains records through Accounts' AppendAuditEntries (with the service's own token)."""

    async def send(records: Sequence[AuditRecord]) -> None:
        await stub.AppendAuditEntries(pb.AppendAuditEntriesRequest(entries=[r.message() for r in records]))

    return send


def register_audit_outbox(deps: Any, sink: AuditSink | None = None) -> None:
    """Starts the service's outbox forwarder (to Accounts unless `sink` is given); stops with `deps`.

    `deps` is the service's `runtime.service.ServiceDeps`.
    """
    service = deps.settings.service
    chosen = sink or accounts_sink(accounts_pb2_grpc.AccountsServiceStub(deps.channel("accounts")))
    every = deps.env.number(POLL_SETTING, DEFAULT_POLL_SECONDS)

    async def sample_age() -> None:
        audit_outbox_age.set(await outbox_age(deps.pool), service=service)

    start_worker(deps, run_forwarder(deps.pool, chosen, every), f"{service}-audit", sample_age)
