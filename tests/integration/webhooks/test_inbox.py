"""The inbox under a delivery deadline: slow effects are deferred to the worker, in the same trace."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator

import asyncpg
import grpc
import orjson
import pytest
from collect.events.v1 import events_pb2 as pb
from collect.events.v1 import events_pb2_grpc
from opentelemetry import trace

from runtime.auth import TokenSigner
from runtime.clients import ServiceTokens, make_channel
from runtime.db import Connection, create_pool
from runtime.inbox import APPLIED, PENDING, EventHandler, EventSinkServicer, InboundEvent, record_and_apply, replay
from runtime.migrations import apply_migrations, provision_schema, service_dsn
from runtime.server import start_grpc_server
from runtime.service import RUNTIME_MIGRATIONS
from tests.conftest import SPANS
from tests.fixtures.database import PlatformDatabase

SECRET = "inbox-test-secret-0123456789-0123456789"


@pytest.fixture
async def pool(database: PlatformDatabase) -> AsyncIterator[asyncpg.Pool]:
    schema = f"t_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(database.admin_url)
    try:
        await provision_schema(admin, schema, "pw-for-tests-123")
    finally:
        await admin.close()
    pool = await create_pool(service_dsn(database.admin_url, schema, "pw-for-tests-123"), schema, max_size=12)
    async with pool.acquire() as conn:
        await apply_migrations(conn, schema, RUNTIME_MIGRATIONS, table="runtime_migrations")
        await conn.execute("CREATE TABLE effects (event_id text, n int)")
    try:
        yield pool
    finally:
        await pool.close()


def _event(event_id: str = "") -> InboundEvent:
    event_id = event_id or f"evt_{uuid.uuid4().hex}"
    return InboundEvent("stripe", event_id, "thing.happened", None, None, {"id": event_id})


def slow_handler(seconds: float) -> tuple[list[str], EventHandler]:
    calls: list[str] = []

    async def handler(conn: Connection, event: InboundEvent) -> str:
        calls.append(event.event_id)
        await conn.execute("INSERT INTO effects VALUES ($1, 1)", event.event_id)
        if len(calls) == 1:
            await conn.execute("SELECT pg_sleep($1)", seconds)
        return APPLIED

    return calls, handler


async def test_an_effect_past_the_budget_is_rolled_back_and_left_to_the_worker(pool: asyncpg.Pool) -> None:
    calls, handler = slow_handler(3)
    event = _event()
    started = time.monotonic()
    assert await record_and_apply(pool, handler, event, apply_timeout=0.3) == (False, PENDING)
    assert time.monotonic() - started < 1.5
    assert await pool.fetchval("SELECT count(*) FROM effects") == 0
    row = await pool.fetchrow("SELECT * FROM inbox_events WHERE event_id = $1", event.event_id)
    assert row is not None
    assert row["status"] == PENDING and row["next_attempt_at"] is not None and "deferred" in row["last_error"]
    assert await replay(pool, handler, due_only=True) == (1, 1, 0)
    assert await pool.fetchval("SELECT count(*) FROM effects WHERE event_id = $1", event.event_id) == 1
    assert len(calls) == 2


async def test_concurrent_duplicates_of_a_slow_event_apply_it_once(pool: asyncpg.Pool) -> None:
    _, handler = slow_handler(0.3)
    event = _event()
    results = await asyncio.gather(*(record_and_apply(pool, handler, event) for _ in range(10)))
    assert sorted(d for d, _ in results) == [False] + [True] * 9
    assert {s for _, s in results} == {APPLIED}
    assert await pool.fetchval("SELECT count(*) FROM effects") == 1


async def test_a_delivery_is_answered_within_its_deadline_and_applied_later_in_its_trace(pool: asyncpg.Pool) -> None:
    _, handler = slow_handler(2)
    servicer = EventSinkServicer(pool, handler)
    signer = TokenSigner(SECRET)

    def register(server: grpc.aio.Server) -> list[str]:
        events_pb2_grpc.add_EventSinkServiceServicer_to_server(servicer, server)
        return []

    running = await start_grpc_server(register=register, signer=signer)
    worker = asyncio.create_task(servicer.run_worker(every=0.1))
    channel = make_channel(running.target, ServiceTokens(signer, "gateway"))
    try:
        stub = events_pb2_grpc.EventSinkServiceStub(channel)
        event_id = f"evt_{uuid.uuid4().hex}"
        message = pb.Event(source="qonto", event_id=event_id, type="transaction.created", payload=orjson.dumps({}))
        SPANS.clear()
        with trace.get_tracer("test").start_as_current_span("delivery") as delivery:
            # The call's own deadline is the check: a delivery that waited for the 2 s handler would
            # fail with DEADLINE_EXCEEDED instead of answering.
            answer = await stub.DeliverEvent(pb.DeliverEventRequest(event=message), timeout=0.8)
        assert answer.status == PENDING and not answer.duplicate
        for _ in range(100):
            if await pool.fetchval("SELECT status FROM inbox_events WHERE event_id = $1", event_id) == APPLIED:
                break
            await asyncio.sleep(0.05)
        else:
            pytest.fail("the worker did not apply the deferred event")
        assert await pool.fetchval("SELECT count(*) FROM effects WHERE event_id = $1", event_id) == 1
        applied = [s for s in SPANS.get_finished_spans() if s.name == "inbox apply transaction.created"]
        assert applied and applied[-1].context.trace_id == delivery.get_span_context().trace_id
    finally:
        worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await worker
        await channel.close(None)
        await running.stop(0)


async def test_replaying_everything_tries_a_failing_event_once(pool: asyncpg.Pool) -> None:
    async def broken(conn: Connection, event: InboundEvent) -> str:
        raise RuntimeError("still broken")

    first, second = _event(), _event()
    for event in (first, second):
        assert await record_and_apply(pool, broken, event) == (False, "failed")
    assert await replay(pool, broken) == (2, 0, 2)
    attempts = await pool.fetch("SELECT attempts FROM inbox_events WHERE status = 'failed'")
    assert sorted(r["attempts"] for r in attempts) == [2, 2]


async def test_an_ignored_event_named_by_id_is_applied_again_an_applied_one_never(pool: asyncpg.Pool) -> None:
    handled: set[str] = set()

    async def handler(conn: Connection, event: InboundEvent) -> str:
        if event.type not in handled:
            return "ignored"
        await conn.execute("INSERT INTO effects VALUES ($1, 1)", event.event_id)
        return APPLIED

    event = _event()
    assert await record_and_apply(pool, handler, event) == (False, "ignored")
    assert await replay(pool, handler) == (0, 0, 0)  # ignored events are not retried on their own
    handled.add(event.type)  # a handler for the type is deployed
    assert await replay(pool, handler, event_id=event.event_id) == (1, 1, 0)
    assert await replay(pool, handler, event_id=event.event_id) == (0, 0, 0)
    assert await pool.fetchval("SELECT count(*) FROM effects WHERE event_id = $1", event.event_id) == 1
