"""A service process: starts from its environment, answers health, drains and exits on SIGTERM;
readiness follows the database."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import asyncpg
import grpc
import orjson
from grpc_health.v1 import health_pb2, health_pb2_grpc

from runtime.config import SERVICES
from runtime.embedded_pg import free_port, start_embedded_postgres
from runtime.migrations import provision_schema, service_dsn
from tests.fixtures.database import PlatformDatabase
from tests.fixtures.stack import TEST_AUTH_SECRET, TEST_SECRETS_ENV, start_stack


async def _health(target: str, service: str = "") -> int:
    async with grpc.aio.insecure_channel(target) as channel:
        answer = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=service), timeout=2
        )
        return int(answer.status)


async def test_service_process_serves_health_then_stops_gracefully_on_sigterm(database: PlatformDatabase) -> None:
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "DATABASE_URL": database.urls["accounts"],
        "AUTH_TOKEN_SECRET": TEST_AUTH_SECRET,
        "GRPC_PORT": str(port),
        **TEST_SECRETS_ENV,
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.accounts", env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        assert process.stderr is not None
        lines: list[bytes] = []
        while not lines or b"listening" not in lines[-1]:
            line = await asyncio.wait_for(process.stderr.readline(), 30)
            if not line:
                raise AssertionError(b"".join(lines).decode()[-2000:])
            lines.append(line)
        assert all(orjson.loads(line)["service"] == "accounts" for line in lines)  # one JSON object a line
        assert await _health(f"127.0.0.1:{port}") == health_pb2.HealthCheckResponse.SERVING
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 15) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_readiness_fails_when_the_database_goes_away() -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="collect-readyz-"))
    server = start_embedded_postgres(data_dir / "data", fsync=False)
    try:
        conn = await asyncpg.connect(server.url)
        for schema in SERVICES:
            await provision_schema(conn, schema, "readyz-password")
        await conn.close()
        urls = {s: service_dsn(server.url, s, "readyz-password") for s in SERVICES}
        async with start_stack(PlatformDatabase(server.url, urls), {}) as stack:
            assert (await stack.http.get("/readyz")).status_code == 200
            server.stop()
            for _ in range(50):
                answer = await stack.http.get("/readyz")
                if set(answer.json()["services"].values()) == {"not_serving"}:
                    break
                await asyncio.sleep(0.2)
            assert answer.status_code == 503
            assert set(answer.json()["services"].values()) == {"not_serving"}
            # Unready, but alive: Kubernetes' liveness probe asks for "liveness" and does not restart it.
            assert await _health(stack.target("accounts"), "liveness") == health_pb2.HealthCheckResponse.SERVING
            assert (await stack.http.get("/healthz")).status_code == 200
    finally:
        server.discard()
        shutil.rmtree(data_dir, ignore_errors=True)


async def test_readiness_fails_when_a_service_is_down(database: PlatformDatabase) -> None:
    async with start_stack(database, {}) as stack:
        await stack.servers["terminal"].stop(0)
        answer = await stack.http.get("/readyz")
        assert answer.status_code == 503
        assert answer.json()["services"]["terminal"].startswith(("unavailable", "not_serving"))
        assert answer.json()["services"]["accounts"] == "ok"


async def test_migrations_run_alone_before_a_rollout(database: PlatformDatabase) -> None:
    """`python -m runtime.migrate <service>` (the Kubernetes init container): the schema current, exit 0."""
    env = {"PATH": os.environ.get("PATH", ""), "DATABASE_URL": database.urls["terminal"]}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "runtime.migrate", "terminal", env=env, stderr=subprocess.PIPE
    )
    _, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, stderr.decode()[-2000:]
    lines = [orjson.loads(line) for line in stderr.splitlines()]
    assert [line["msg"] for line in lines][-1] == "schema current"
    conn = await asyncpg.connect(database.urls["terminal"])
    try:
        assert await conn.fetchval("SELECT count(*) FROM terminal.schema_migrations") >= 1
    finally:
        await conn.close()
    unknown = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "runtime.migrate", "nothing", env=env, stderr=subprocess.PIPE
    )
    assert await unknown.wait() == 2
