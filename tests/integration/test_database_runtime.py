"""Migrations, per-service roles and the inbox, on a real PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import asyncpg
import grpc
import pytest

from runtime import audit
from runtime.auth import Caller, set_current_caller
from runtime.db import Connection, create_pool
from runtime.inbox import FAILED, InboundEvent, record_and_apply, replay
from runtime.logs import set_request_id
from runtime.migrations import MigrationError, apply_migrations, load_migrations, provision_schema, service_dsn
from runtime.service import RUNTIME_MIGRATIONS
from services.payments.main import MIGRATIONS as PAYMENTS_MIGRATIONS
from tests.fixtures.database import PlatformDatabase


async def _fresh_schema(admin_url: str) -> tuple[str, str]:
    schema = f"t_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(admin_url)
    try:
        await provision_schema(conn, schema, "pw-for-tests-123")
    finally:
        await conn.close()
    return schema, service_dsn(admin_url, schema, "pw-for-tests-123")


async def test_migrations_apply_once_in_order_and_are_idempotent(database: PlatformDatabase, tmp_path: Path) -> None:
    schema, dsn = await _fresh_schema(database.admin_url)
    (tmp_path / "0001_first.sql").write_text("CREATE TABLE things (id int PRIMARY KEY);")
    (tmp_path / "0002_second.sql").write_text("INSERT INTO things VALUES (1);")
    conn = await asyncpg.connect(dsn)
    try:
        assert await apply_migrations(conn, schema, tmp_path) == [1, 2]
        assert await apply_migrations(conn, schema, tmp_path) == []
        assert await conn.fetchval(f"SELECT count(*) FROM {schema}.things") == 1
        recorded = await conn.fetch(f"SELECT version, name FROM {schema}.schema_migrations ORDER BY version")
        assert [(r["version"], r["name"]) for r in recorded] == [(1, "first"), (2, "second")]
        (tmp_path / "0002_second.sql").write_text("INSERT INTO things VALUES (2);")
        with pytest.raises(MigrationError, match="changed after it was applied"):
            await apply_migrations(conn, schema, tmp_path)
    finally:
        await conn.close()


async def test_concurrent_migrators_apply_each_migration_once(database: PlatformDatabase, tmp_path: Path) -> None:
    schema, dsn = await _fresh_schema(database.admin_url)
    (tmp_path / "0001_counter.sql").write_text("CREATE TABLE counter (n int); INSERT INTO counter VALUES (1);")
    conns = [await asyncpg.connect(dsn) for _ in range(4)]
    try:
        results = await asyncio.gather(*(apply_migrations(c, schema, tmp_path) for c in conns))
        assert sorted(map(len, results)) == [0, 0, 0, 1]
        assert await conns[0].fetchval(f"SELECT count(*) FROM {schema}.counter") == 1
    finally:
        for c in conns:
            await c.close()


async def test_a_service_role_cannot_read_another_schema(database: PlatformDatabase, stack: object) -> None:
    # The session stack has migrated every schema; payments' role must not see accounts' tables.
    conn = await asyncpg.connect(database.urls["payments"])
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetch("SELECT * FROM accounts.members")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("CREATE TABLE accounts.intruder (id int)")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("CREATE TABLE public.intruder (id int)")
        # Its own schema it reads: every migration of services/payments, applied once each.
        applied = await conn.fetch("SELECT version, name FROM payments.schema_migrations ORDER BY version")
        on_disk = load_migrations(PAYMENTS_MIGRATIONS)
        assert on_disk and [(r["version"], r["name"]) for r in applied] == [(m.version, m.name) for m in on_disk]
    finally:
        await conn.close()


@pytest.fixture
async def inbox_pool(database: PlatformDatabase) -> AsyncIterator[asyncpg.Pool]:
    schema, dsn = await _fresh_schema(database.admin_url)
    pool = await create_pool(dsn, schema, min_size=1, max_size=12)
    async with pool.acquire() as conn:
        await apply_migrations(conn, schema, RUNTIME_MIGRATIONS, table="runtime_migrations")
        await conn.execute("CREATE TABLE effects (event_id text, n int)")
    try:
        yield pool
    finally:
        await pool.close()


def _event(event_id: str) -> InboundEvent:
    return InboundEvent("stripe", event_id, "thing.happened", None, None, {"id": event_id, "data": {"object": {}}})


async def test_inbox_applies_each_event_once_even_when_delivered_concurrently(inbox_pool: asyncpg.Pool) -> None:
    async def handler(conn: Connection, event: InboundEvent) -> str:
        await conn.execute("INSERT INTO effects VALUES ($1, 1)", event.event_id)
        return "applied"

    results = await asyncio.gather(*(record_and_apply(inbox_pool, handler, _event("evt_1")) for _ in range(10)))
    assert sorted(duplicate for duplicate, _ in results) == [False] + [True] * 9
    assert await inbox_pool.fetchval("SELECT count(*) FROM effects") == 1


async def test_a_failing_effect_is_recorded_rolled_back_and_retried(inbox_pool: asyncpg.Pool) -> None:
    calls = 0

    async def flaky(conn: Connection, event: InboundEvent) -> str:
        nonlocal calls
        calls += 1
        await conn.execute("INSERT INTO effects VALUES ($1, $2)", event.event_id, calls)
        if calls == 1:
            raise RuntimeError("stripe unreachable")
        return "applied"

    duplicate, status = await record_and_apply(inbox_pool, flaky, _event("evt_2"))
    assert (duplicate, status) == (False, FAILED)
    assert await inbox_pool.fetchval("SELECT count(*) FROM effects") == 0  # the effect was rolled back
    row = await inbox_pool.fetchrow("SELECT status, attempts, last_error FROM inbox_events WHERE event_id = 'evt_2'")
    assert row is not None
    assert (row["status"], row["attempts"]) == ("failed", 1) and "unreachable" in row["last_error"]
    assert await replay(inbox_pool, flaky) == (1, 1, 0)
    assert await inbox_pool.fetchval("SELECT n FROM effects WHERE event_id = 'evt_2'") == 2
    assert await replay(inbox_pool, flaky) == (0, 0, 0)


@pytest.mark.parametrize("sampled", [True, False])
async def test_queries_are_traced_only_under_a_recorded_parent(database: PlatformDatabase, sampled: bool) -> None:
    from opentelemetry import context, trace
    from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

    from tests.conftest import SPANS

    parent = SpanContext(
        trace_id=uuid.uuid4().int >> 1,
        span_id=uuid.uuid4().int >> 65,
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT),
    )
    conn = await asyncpg.connect(database.admin_url)
    token = context.attach(trace.set_span_in_context(NonRecordingSpan(parent)))
    try:
        assert await conn.fetchval("SELECT 41 + 1") == 42
    finally:
        context.detach(token)
        await conn.close()
    queries = [
        s
        for s in SPANS.get_finished_spans()
        if s.context.trace_id == parent.trace_id and (s.attributes or {}).get("db.system") == "postgresql"
    ]
    assert len(queries) == (1 if sampled else 0)


async def test_an_audit_record_commits_with_its_action_and_waits_until_chained(inbox_pool: asyncpg.Pool) -> None:
    member = Caller("member-1", "org-1", "org_admin", "token")
    set_current_caller(member)
    set_request_id("req-audit-1")
    try:
        with contextlib.suppress(RuntimeError):
            async with inbox_pool.acquire() as conn, conn.transaction():
                await audit.record(conn, "thing.changed", targets={"thing_id": "t-0"})
                raise RuntimeError("the action failed")  # its record goes with it
        async with inbox_pool.acquire() as conn, conn.transaction():
            await audit.record(conn, "thing.changed", targets={"thing_id": "t-1", "none": None}, after={"n": 1})
    finally:
        set_current_caller(None)
        set_request_id(None)
    assert await inbox_pool.fetchval("SELECT count(*) FROM audit_outbox") == 1
    assert await audit.outbox_age(inbox_pool) > 0

    async def unreachable(records: Sequence[audit.AuditRecord]) -> None:
        raise grpc.aio.AioRpcError(grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata())

    with pytest.raises(grpc.aio.AioRpcError):
        await audit.forward_once(inbox_pool, unreachable)
    assert await inbox_pool.fetchval("SELECT count(*) FROM audit_outbox") == 1  # kept for the next try

    chained: list[audit.AuditRecord] = []

    async def accounts(records: Sequence[audit.AuditRecord]) -> None:
        chained.extend(records)

    assert await audit.forward_all(inbox_pool, accounts) == 1
    [found] = chained
    assert (found.action, found.targets, found.after) == ("thing.changed", {"thing_id": "t-1"}, {"n": 1})
    assert (found.actor_id, found.actor_role, found.organization_id, found.request_id) == (
        "member-1",
        "org_admin",
        "org-1",
        "req-audit-1",
    )
    assert found.source_id and found.occurred_at is not None
    assert await inbox_pool.fetchval("SELECT count(*) FROM audit_outbox") == 0
    assert await audit.outbox_age(inbox_pool) == 0.0
