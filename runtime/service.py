"""Wiring shared by every service's main(): settings → logs → tracing → pool → migrations → server."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import grpc

from runtime.auth import TokenSigner
from runtime.clients import ServiceTokens, make_channel
from runtime.config import ServiceSettings
from runtime.db import create_pool
from runtime.logs import setup_logging
from runtime.metrics import serve_metrics, setup_metrics, watch_pool
from runtime.migrations import apply_migrations
from runtime.server import RunningServer, serve_until_signalled, start_grpc_server
from runtime.settings import Env, SettingsError, exit_on_settings_error
from runtime.tracing import setup_tracing, shutdown_tracing
from runtime.workers import cancel_and_wait

log = logging.getLogger("runtime.service")
RUNTIME_MIGRATIONS = Path(__file__).parent / "migrations"


@dataclass
class ServiceDeps:
    """What a service's wiring gets: its settings, pool, signer and channels to the others."""

    settings: ServiceSettings
    pool: asyncpg.Pool
    signer: TokenSigner
    tokens: ServiceTokens
    # Service-specific settings are read from here (os.environ in production, a mapping in tests).
    env: Env = field(default_factory=Env)
    _channels: dict[str, grpc.aio.Channel] = field(default_factory=dict)
    cleanups: list[Callable[[], Awaitable[object]]] = field(default_factory=list)
    # Run when the server starts to drain, before in-flight RPCs are awaited (e.g. end watch streams).
    before_stop: list[Callable[[], object]] = field(default_factory=list)
    # What a service's wiring exposes to tests that run it in process (e.g. Payments' Context).
    extras: dict[str, Any] = field(default_factory=dict)

    def channel(self, service: str) -> grpc.aio.Channel:
        if service not in self._channels:
            self._channels[service] = make_channel(
                self.settings.target(service), self.tokens, default_timeout=self.settings.rpc_timeout_seconds
            )
        return self._channels[service]

    async def close(self) -> None:
        for cleanup in reversed(self.cleanups):
            await cleanup()
        for channel in self._channels.values():
            await channel.close(None)
        await self.pool.close()


async def migrate(conn: asyncpg.Connection | Any, schema: str, migrations: Path) -> list[int]:
    """The runtime's migrations (the inbox), then the service's: at start, or alone before a rollout
    (`python -m runtime.migrate <service>`, deploy/k8s's init container)."""
    await apply_migrations(conn, schema, RUNTIME_MIGRATIONS, table="runtime_migrations")
    applied = await apply_migrations(conn, schema, migrations)
    if applied:
        log.info("applied migrations", extra={"schema": schema, "versions": applied})
    return applied


Wire = Callable[[ServiceDeps, grpc.aio.Server], Iterable[str]]
OnStart = Callable[[ServiceDeps], Awaitable[object]]


async def start_service(
    settings: ServiceSettings,
    schema: str,
    migrations: Path,
    wire: Wire,
    on_start: OnStart | None = None,
    env: Env | None = None,
) -> tuple[RunningServer, ServiceDeps]:
    """Connects, migrates and starts the gRPC server (port 0 in tests)."""
    pool = await create_pool(settings.database_url, schema, max_size=settings.db_pool_max)
    async with pool.acquire() as conn:
        await migrate(conn, schema, migrations)
    signer = TokenSigner(settings.auth_token_secret, settings.token_ttl_seconds)
    deps = ServiceDeps(settings, pool, signer, ServiceTokens(signer, settings.service), env or Env())
    unwatch_pool = watch_pool(pool, schema)

    async def stop_watching_pool() -> None:
        unwatch_pool()

    deps.cleanups.append(stop_watching_pool)
    if on_start is not None:
        await on_start(deps)
    running = await start_grpc_server(
        register=lambda server: wire(deps, server),
        signer=signer,
        port=settings.grpc_port,
        host=settings.grpc_host,
    )
    running.before_stop = deps.before_stop
    watchdog = asyncio.create_task(_watch_database(pool, running), name=f"{schema}-db-watchdog")

    deps.cleanups.insert(0, lambda: cancel_and_wait(watchdog))
    return running, deps


async def _watch_database(pool: asyncpg.Pool, running: RunningServer, every: float = 2.0) -> None:
    """The health status follows the database: NOT_SERVING while it cannot be reached."""
    serving = True
    while True:
        await asyncio.sleep(every)
        try:
            async with asyncio.timeout(every):
                await pool.fetchval("SELECT 1")
            healthy = True
        except asyncio.CancelledError:
            raise
        except Exception:  # whatever asyncpg raises, a failed SELECT 1 means not ready
            healthy = False
        if healthy != serving:
            serving = healthy
            log.warning("database %s", "reachable again" if healthy else "unreachable")
            await running.set_serving(healthy)


def run_service(service: str, schema: str, migrations: Path, wire: Wire, on_start: OnStart | None = None) -> None:
    """The body of every `services/<name>/__main__.py`."""
    try:
        settings = ServiceSettings.from_env(service)
    except SettingsError as error:
        exit_on_settings_error(error)
        return
    setup_logging(service, settings.log_level)
    setup_tracing(service)
    if settings.metrics_port:
        setup_metrics(service)  # before the first RPC (the launcher's health checks count too)

    async def main() -> None:
        running, deps = await start_service(settings, schema, migrations, wire, on_start)
        stop_metrics = await serve_metrics(service, settings.metrics_port, settings.grpc_host)
        freeze_startup_objects()
        log.info(f"{service} gRPC listening on {settings.grpc_host}:{running.port}", extra={"port": running.port})
        await serve_until_signalled(running, cleanups=[deps.close, *([stop_metrics] if stop_metrics else [])])
        shutdown_tracing()

    try:
        import uvloop

        uvloop.run(main())
    except ImportError:  # pragma: no cover - uvloop is a dependency
        asyncio.run(main())
    except SettingsError as error:
        exit_on_settings_error(error)


def freeze_startup_objects() -> None:
    """Moves what start-up created (modules, classes, stubs: most of the heap) out of the cyclic
    collector's sight, so that full collections under load walk only what requests left behind."""
    gc.collect()
    gc.freeze()
