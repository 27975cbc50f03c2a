"""Store-first processing of outside events (Stripe, Qonto), shared by every consuming service.

The owner records each event in its own `inbox_events` table (unique by source + event id)
in the same transaction as its effect. When the effect fails, that transaction is rolled back
and the event is recorded alone as `failed`; a background worker applies it again with backoff
(each retry's effect in a savepoint), so a delivery acknowledged once is never lost; a
duplicate changes nothing.

A delivery is answered within its deadline: an effect that would outlast it is rolled back,
the event stays recorded as `pending` and the worker applies it at once (the sender is told
"recorded", which is all it needs). The delivery's trace context is recorded with the event,
so an effect applied later by the worker or a replay belongs to the same trace.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import grpc
import orjson
from collect.events.v1 import events_pb2 as pb
from collect.events.v1 import events_pb2_grpc
from opentelemetry import propagate, trace

from runtime import audit
from runtime.auth import PLATFORM_ADMIN, require_caller
from runtime.db import Connection
from runtime.errors import FieldError, InvalidArgument
from runtime.metrics import inbox_backlog, inbox_events, inbox_ingest_lag, inbox_oldest
from runtime.proto import from_timestamp, to_timestamp
from runtime.settings import SettingsError
from runtime.workers import start_worker

log = logging.getLogger("runtime.inbox")
_tracer = trace.get_tracer("runtime.inbox")

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["EventSinkService"].full_name
APPLIED, IGNORED, PENDING, FAILED = "applied", "ignored", "pending", "failed"
# Where outside events come from (the `source` of each event).
SOURCES = ("stripe", "qonto")
MAX_ATTEMPTS = 20

# Personal data never sits in clear in stored payloads: the values under these keys (whole
# subtrees: addresses, people, billing details) and any e-mail address anywhere are redacted
# before an event is recorded. Handlers read ids, amounts, statuses and metadata, never these.
PERSONAL_KEYS = frozenset(
    {
        "account_holder_name",
        "address",
        "billing_details",
        "business_profile",
        "company",
        "customer_details",
        "customer_email",
        "customer_name",
        "customer_phone",
        "dob",
        "email",
        "first_name",
        "individual",
        "ip",
        "last_name",
        "name",
        "owner",
        "phone",
        "receipt_email",
        "representative",
        "settings",  # an account's: its display name and statement descriptors
        "shipping",
        "support_address",
        "support_email",
        "support_phone",
        "tos_acceptance",
    }
)
REDACTED = "[redacted]"
_EMAIL = re.compile(r"[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
# Stored payloads are purged (the event id, type and status stay, for deduplication) this many
# days after receipt, once the event is settled; the worker purges at most every PURGE_EVERY_SECONDS.
PAYLOAD_RETENTION_SETTING = "INBOX_PAYLOAD_RETENTION_DAYS"
DEFAULT_PAYLOAD_RETENTION_DAYS = 30
PURGE_EVERY_SECONDS = 3600.0
# Kept out of a delivery's deadline for recording the outcome, committing and answering.
DELIVERY_MARGIN_SECONDS = 0.25


@dataclass(frozen=True)
class InboundEvent:
    source: str
    event_id: str
    type: str
    account: str | None
    created_at: datetime | None
    payload: dict[str, Any]

    @property
    def data_object(self) -> dict[str, Any]:
        """Stripe's `data.object`: the object as it was when the event happened."""
        return dict(self.payload.get("data", {}).get("object", {}))


def redact(value: Any, personal: bool = False) -> Any:
    """A copy of a JSON value with personal data replaced (see PERSONAL_KEYS); structure kept."""
    if isinstance(value, dict):
        return {k: redact(v, personal or k in PERSONAL_KEYS) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v, personal) for v in value]
    if isinstance(value, str):
        if personal:
            return REDACTED if value else value
        return _EMAIL.sub(REDACTED, value) if "@" in value else value
    if personal and isinstance(value, int | float) and not isinstance(value, bool):
        return None
    return value


def payload_retention(env: Any) -> timedelta:
    """The retention of stored payloads (`INBOX_PAYLOAD_RETENTION_DAYS`, default 30) from a `runtime.settings.Env`."""
    days = env.integer(PAYLOAD_RETENTION_SETTING, DEFAULT_PAYLOAD_RETENTION_DAYS)
    if days < 1:
        raise SettingsError(f"setting {PAYLOAD_RETENTION_SETTING} must be at least 1 day, got {days}")
    return timedelta(days=days)


async def purge_payloads(pool: asyncpg.Pool, older_than: timedelta) -> int:
    """Empties the payloads of settled events received more than `older_than` ago; returns how many.

    Settled: applied, ignored, or failed for good (out of attempts). The row stays, so a
    redelivery is still a duplicate.
    """
    status = await pool.execute(
        """UPDATE inbox_events SET payload = '{}'::jsonb
            WHERE received_at < now() - $1::interval AND payload <> '{}'::jsonb
              AND (status IN ('applied', 'ignored') OR (status = 'failed' AND attempts >= $2::integer))""",
        older_than,
        MAX_ATTEMPTS,
    )
    return int(status.rsplit(" ", 1)[-1])


# Applies one event with the connection of the recording transaction; returns APPLIED or IGNORED.
EventHandler = Callable[[Connection, InboundEvent], Awaitable[str]]


def _backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(600, 2 ** min(attempts, 10)))


def _failure(event: InboundEvent, error: BaseException, budget: float | None) -> tuple[str, str]:
    """The status and error to record for an effect that raised (or outlasted its budget)."""
    if isinstance(error, TimeoutError) and budget is not None:
        log.info("event %s (%s) deferred to the worker after %.2f s", event.event_id, event.type, budget)
        return PENDING, f"deferred: not applied within the delivery's {budget:.2f} s"
    log.warning("event %s (%s) failed: %r", event.event_id, event.type, error)
    return FAILED, f"{type(error).__name__}: {error}"[:1000]


async def _apply(
    conn: Connection, handler: EventHandler, event: InboundEvent, budget: float | None = None
) -> tuple[str, str | None]:
    """Runs the handler in a savepoint; returns the status to record and the error, if any.

    Past `budget` seconds the effect is rolled back and the event left `pending` for the worker.
    """
    try:
        async with asyncio.timeout(budget):
            async with conn.transaction():
                status = await _handled(handler, conn, event)
        return (status if status in (APPLIED, IGNORED) else APPLIED), None
    except asyncio.CancelledError:
        raise
    except Exception as error:  # recorded; retried by the worker
        return _failure(event, error, budget)


async def _handled(handler: EventHandler, conn: Connection, event: InboundEvent) -> str:
    """The handler's outcome; an event that changed something goes to the audit trail with its effect."""
    status = await handler(conn, event)
    if status != IGNORED:
        account = audit.STRIPE_ACCOUNT_TARGET if event.source == "stripe" else "account"
        targets = {"event_id": event.event_id, "event_type": event.type, account: event.account}
        await audit.record(conn, f"{event.source}_event.applied", targets=targets)
    return status


def _trace_context() -> str | None:
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier.get("traceparent")


class _EffectFailed(Exception):
    """Rolls back the recording transaction of an event whose effect failed or was deferred."""

    def __init__(self, status: str, error: str) -> None:
        super().__init__(error)
        self.status, self.error = status, error


# Records an event, or finds the recorded one, in one round trip. The status is written up front
# ("applied", or "pending" when applied later): the row only becomes visible if the transaction
# commits, which it does only once the effect succeeded. A row committed by a concurrent
# delivery after this statement's snapshot is found by the next query instead.
_RECORD = """
WITH inserted AS (
    INSERT INTO inbox_events (source, event_id, type, account, created_at, payload, status, attempts,
                              last_error, applied_at, next_attempt_at, trace_context)
    VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7::text, $8::integer, $9::text,
            CASE WHEN $7::text IN ('applied', 'ignored') THEN now() END,
            CASE WHEN $7::text = 'pending' THEN now() WHEN $7::text = 'failed' THEN now() + $10::interval END,
            $11)
    ON CONFLICT (source, event_id) DO NOTHING
    RETURNING status)
SELECT true AS inserted, status FROM inserted
UNION ALL
SELECT false, status FROM inbox_events
 WHERE source = $1 AND event_id = $2 AND NOT EXISTS (SELECT 1 FROM inserted)"""


async def record_and_apply(
    pool: asyncpg.Pool,
    handler: EventHandler,
    event: InboundEvent,
    *,
    apply_now: bool = True,
    apply_timeout: float | None = None,
    raw_payload: bytes | None = None,
) -> tuple[bool, str]:
    """Records the event and (unless `apply_now` is False) applies it. Returns (duplicate, status).

    Status is "applied", "ignored", "failed" (recorded, retried by the worker) or "pending"
    (recorded, applied by the worker: `apply_now` False, or the effect took longer than
    `apply_timeout` seconds and was rolled back). `raw_payload`, when given, is stored as the
    payload instead of serialising `event.payload` again.

    A new event costs three round trips besides its effect (begin, record, commit): a failed
    effect rolls the whole transaction back and the event is then recorded alone as failed.
    """
    stored = redact(event.payload)
    if raw_payload is not None and stored == event.payload:
        payload = raw_payload.decode()  # nothing personal: the bytes as sent
    else:
        payload = orjson.dumps(stored).decode()
        # Applied as stored, now and on any retry: no handler comes to depend on personal data.
        event = replace(event, payload=stored)
    trace_context = _trace_context()

    async def record(conn: Connection, status: str, error: str | None = None) -> tuple[bool, str]:
        row = await conn.fetchrow(
            _RECORD,
            event.source,
            event.event_id,
            event.type,
            event.account,
            event.created_at,
            payload,
            status,
            0 if status == PENDING and error is None else 1,
            error,
            _backoff(1),
            trace_context,
        )
        if row is None:
            found = await conn.fetchval(
                "SELECT status FROM inbox_events WHERE source = $1 AND event_id = $2", event.source, event.event_id
            )
            return True, str(found)
        return not row["inserted"], str(row["status"])

    async with pool.acquire() as conn:
        try:
            async with conn.transaction():
                duplicate, status = await record(conn, APPLIED if apply_now else PENDING)
                if duplicate or not apply_now:
                    return duplicate, status
                try:
                    async with asyncio.timeout(apply_timeout):
                        status = await _handled(handler, conn, event)
                except asyncio.CancelledError:
                    raise
                except Exception as error:
                    raise _EffectFailed(*_failure(event, error, apply_timeout)) from error
                if status == IGNORED:
                    await conn.execute(
                        "UPDATE inbox_events SET status = 'ignored' WHERE source = $1 AND event_id = $2",
                        event.source,
                        event.event_id,
                    )
                return False, IGNORED if status == IGNORED else APPLIED
        except _EffectFailed as failed:
            # Recorded on its own; a duplicate that got in meanwhile has applied or recorded it.
            return await record(conn, failed.status, failed.error)


async def _record_outcome(conn: Connection, event: InboundEvent, status: str, error: str | None, attempts: int) -> None:
    await conn.execute(
        """UPDATE inbox_events
              SET status = $3::text, attempts = $4::integer, last_error = $5::text,
                  applied_at = CASE WHEN $3::text IN ('applied', 'ignored') THEN now() END,
                  next_attempt_at = CASE WHEN $3::text = 'pending' THEN now()
                                         WHEN $3::text = 'failed' AND $4::integer < $7::integer
                                         THEN now() + $6::interval END
            WHERE source = $1 AND event_id = $2""",
        event.source,
        event.event_id,
        status,
        attempts,
        error,
        _backoff(attempts),
        MAX_ATTEMPTS,
    )


def _event_from_row(row: asyncpg.Record) -> InboundEvent:
    payload = row["payload"]
    return InboundEvent(
        source=row["source"],
        event_id=row["event_id"],
        type=row["type"],
        account=row["account"],
        created_at=row["created_at"],
        payload=orjson.loads(payload) if isinstance(payload, str | bytes) else dict(payload),
    )


async def replay(
    pool: asyncpg.Pool,
    handler: EventHandler,
    *,
    event_id: str = "",
    source: str = "",
    due_only: bool = False,
    service: str = "",
) -> tuple[int, int, int]:
    """Applies again one event, or every pending and failed one; returns (replayed, applied, failed).

    One event named by its id may also be one that was ignored (e.g. of a type handled since);
    an applied event is never applied twice. Each event is locked (SKIP LOCKED) while applied,
    so replicas and the worker never apply one event twice at the same time.
    """
    replayed = applied = failed = 0
    tried: list[str] = []
    while True:
        async with pool.acquire() as conn, conn.transaction():
            if event_id:
                row = await conn.fetchrow(
                    """SELECT * FROM inbox_events
                        WHERE event_id = $1 AND ($2 = '' OR source = $2) AND status <> 'applied'
                        LIMIT 1 FOR UPDATE SKIP LOCKED""",
                    event_id,
                    source,
                )
            else:
                # Literal statuses, so that the partial retry index serves it however large the inbox;
                # oldest first; each event at most once per call (one that fails again stays failed).
                row = await conn.fetchrow(
                    """SELECT * FROM inbox_events
                        WHERE status IN ('pending', 'failed') AND ($1 = '' OR source = $1)
                          AND (NOT $2 OR next_attempt_at <= now())
                          AND NOT (source || ' ' || event_id = ANY($3::text[]))
                        ORDER BY created_at NULLS FIRST, received_at
                        LIMIT 1 FOR UPDATE SKIP LOCKED""",
                    source,
                    due_only,
                    tried,
                )
            if row is None:
                return replayed, applied, failed
            event = _event_from_row(row)
            tried.append(f"{event.source} {event.event_id}")
            with _replay_span(event, row["trace_context"]):
                status, error = await _apply(conn, handler, event)
            await _record_outcome(conn, event, status, error, attempts=row["attempts"] + 1)
        inbox_events.add(service=service, source=event.source, status=status)
        replayed += 1
        if status == FAILED:
            failed += 1
        else:
            applied += 1
        if event_id or replayed >= 1000:
            return replayed, applied, failed


def _replay_span(event: InboundEvent, traceparent: str | None) -> Any:
    """A span for applying a recorded event: in the delivery's trace when nothing else is current
    (the worker), else in the current one (an operator's replay) with a link to the delivery's."""
    recorded = trace.get_current_span(propagate.extract({"traceparent": traceparent})) if traceparent else None
    recorded_context = recorded.get_span_context() if recorded is not None else None
    current = trace.get_current_span().get_span_context()
    attributes = {"messaging.message.id": event.event_id, "event.type": event.type, "event.source": event.source}
    if current.is_valid or recorded_context is None or not recorded_context.is_valid:
        links = [trace.Link(recorded_context)] if recorded_context is not None and recorded_context.is_valid else []
        return _tracer.start_as_current_span(f"inbox apply {event.type}", attributes=attributes, links=links)
    parent = trace.set_span_in_context(trace.NonRecordingSpan(recorded_context))
    return _tracer.start_as_current_span(f"inbox apply {event.type}", context=parent, attributes=attributes)


class EventSinkServicer(events_pb2_grpc.EventSinkServiceServicer):
    """`collect.events.v1.EventSinkService` over a service's inbox and its event handler.

    `apply_now(event)` decides whether an event is applied during the delivery (default) or
    only recorded and applied by the worker (for senders that must be answered at once).
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        handler: EventHandler,
        *,
        apply_now: Callable[[InboundEvent], bool] | None = None,
        retention: timedelta = timedelta(days=DEFAULT_PAYLOAD_RETENTION_DAYS),
        service: str = "",
    ) -> None:
        self._pool = pool
        self._service = service
        self._handler = handler
        self._apply_now = apply_now or (lambda event: True)
        self._wake = asyncio.Event()
        self._retention = retention

    async def DeliverEvent(
        self, request: pb.DeliverEventRequest, context: grpc.aio.ServicerContext
    ) -> pb.DeliverEventResponse:
        require_caller(min_role=PLATFORM_ADMIN)
        event = _event_from_proto(request.event)
        apply_now = self._apply_now(event)
        remaining = context.time_remaining()
        budget = None if remaining is None else remaining - DELIVERY_MARGIN_SECONDS
        if budget is not None and budget <= 0:
            apply_now = False  # no time to apply: record it, the worker applies it
        duplicate, status = await record_and_apply(
            self._pool,
            self._handler,
            event,
            apply_now=apply_now,
            apply_timeout=budget,
            raw_payload=request.event.payload or None,
        )
        inbox_events.add(service=self._service, source=event.source, status="duplicate" if duplicate else status)
        if not duplicate and event.created_at is not None:
            lag = (datetime.now(UTC) - event.created_at).total_seconds()
            inbox_ingest_lag.record(
                max(lag, 0.0), inbox_ingest_lag.attributes(service=self._service, source=event.source)
            )
        if status in (PENDING, FAILED):
            self._wake.set()
        return pb.DeliverEventResponse(duplicate=duplicate, status=status)

    async def ListEvents(
        self, request: pb.ListEventsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListEventsResponse:
        require_caller(min_role=PLATFORM_ADMIN)
        limit = request.limit or 100
        rows = await self._pool.fetch(
            """SELECT * FROM inbox_events WHERE cardinality($1::text[]) = 0 OR status = ANY($1::text[])
               ORDER BY received_at DESC LIMIT $2""",
            list(request.statuses),
            min(max(limit, 1), 1000),
        )
        return pb.ListEventsResponse(events=[_inbox_message(r) for r in rows])

    async def ReplayEvents(
        self, request: pb.ReplayEventsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ReplayEventsResponse:
        require_caller(min_role=PLATFORM_ADMIN)
        replayed, applied, failed = await replay(
            self._pool, self._handler, event_id=request.event_id, source=request.source, service=self._service
        )
        async with self._pool.acquire() as conn, conn.transaction():  # each event applied is recorded too
            await audit.record(
                conn,
                "inbox_events.replayed",
                targets={"event_id": request.event_id, "source": request.source},
                after={"replayed": replayed, "applied": applied, "failed": failed},
            )
        return pb.ReplayEventsResponse(replayed=replayed, applied=applied, failed=failed)

    async def run_worker(self, every: float = 1.0) -> None:
        """Applies pending events and retries failed ones when they are due; purges old payloads."""
        next_purge = 0.0
        while True:
            if time.monotonic() >= next_purge:
                next_purge = time.monotonic() + PURGE_EVERY_SECONDS
                try:
                    await purge_payloads(self._pool, self._retention)
                except asyncio.CancelledError:
                    raise
                except Exception as error:  # the worker must outlive any database hiccup
                    log.warning("inbox purge: %s", error)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(every):
                    await self._wake.wait()
            self._wake.clear()
            try:
                await replay(self._pool, self._handler, due_only=True, service=self._service)
            except asyncio.CancelledError:
                raise
            except Exception as error:  # the worker must outlive any database hiccup
                log.warning("inbox worker: %s", error)

    async def sample_backlog(self) -> None:
        """The inbox's waiting events per source and status, and the oldest one's age (for /metrics)."""
        rows = await self._pool.fetch(
            """SELECT source, status, count(*) AS waiting, EXTRACT(EPOCH FROM now() - min(received_at)) AS age
                 FROM inbox_events WHERE status IN ('pending', 'failed') GROUP BY source, status"""
        )
        waiting = {(source, status): 0 for source in SOURCES for status in (PENDING, FAILED)}
        oldest = dict.fromkeys(SOURCES, 0.0)
        for row in rows:
            waiting[row["source"], row["status"]] = row["waiting"]
            oldest[row["source"]] = max(oldest.get(row["source"], 0.0), float(row["age"] or 0))
        inbox_backlog.clear(service=self._service)
        inbox_oldest.clear(service=self._service)
        for (source, status), count in waiting.items():
            inbox_backlog.set(count, service=self._service, source=source, status=status)
        for source, age in oldest.items():
            inbox_oldest.set(age, service=self._service, source=source)


def register_event_sink(
    deps: Any,
    server: grpc.aio.Server,
    handler: EventHandler,
    *,
    apply_now: Callable[[InboundEvent], bool] | None = None,
) -> str:
    """Adds the EventSinkService and its retry worker to a service; returns the service name.

    `deps` is the service's `runtime.service.ServiceDeps`; the worker stops with it.
    """
    servicer = EventSinkServicer(
        deps.pool,
        handler,
        apply_now=apply_now,
        retention=payload_retention(deps.env),
        service=deps.settings.service,
    )
    events_pb2_grpc.add_EventSinkServiceServicer_to_server(servicer, server)
    start_worker(deps, servicer.run_worker(), f"{deps.settings.service}-inbox", servicer.sample_backlog)
    return SERVICE_NAME


def _event_from_proto(message: pb.Event) -> InboundEvent:
    errors = [FieldError(name, "is required") for name in ("source", "event_id", "type") if not getattr(message, name)]
    if errors:
        raise InvalidArgument("the event is incomplete", "invalid_event", errors)
    try:
        payload = orjson.loads(message.payload) if message.payload else {}
    except orjson.JSONDecodeError:
        raise InvalidArgument("the event payload is not JSON", "invalid_event") from None
    if not isinstance(payload, dict):
        raise InvalidArgument("the event payload must be a JSON object", "invalid_event")
    created = from_timestamp(message.created_at) if message.HasField("created_at") else None
    return InboundEvent(message.source, message.event_id, message.type, message.account or None, created, payload)


def _inbox_message(row: asyncpg.Record) -> pb.InboxEvent:
    event = _event_from_row(row)
    return pb.InboxEvent(
        event=pb.Event(
            source=event.source,
            event_id=event.event_id,
            type=event.type,
            account=event.account or "",
            created_at=to_timestamp(event.created_at),
            payload=orjson.dumps(event.payload),
        ),
        status=row["status"],
        attempts=row["attempts"],
        last_error=row["last_error"] or "",
        received_at=to_timestamp(row["received_at"]),
        applied_at=to_timestamp(row["applied_at"]),
    )


def event_from_stripe_json(payload: dict[str, Any]) -> InboundEvent:
    """An InboundEvent from a Stripe event object (as delivered or listed)."""
    created = payload.get("created")
    return InboundEvent(
        source="stripe",
        event_id=str(payload["id"]),
        type=str(payload["type"]),
        account=payload.get("account") or None,
        created_at=datetime.fromtimestamp(created, UTC) if isinstance(created, int) else None,
        payload=payload,
    )
