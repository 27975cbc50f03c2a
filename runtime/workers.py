"""A service's background worker: started in `wire()`, stopped (cancelled, then awaited) with the service."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any

from runtime.metrics import add_sampler

if TYPE_CHECKING:
    from runtime.service import ServiceDeps


async def cancel_and_wait(task: asyncio.Task[Any]) -> None:
    """Cancels `task` and waits until it has stopped (its cancellation is not an error)."""
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def start_worker(
    deps: ServiceDeps,
    work: Coroutine[Any, Any, object],
    name: str,
    sampler: Callable[[], Awaitable[None]],
) -> None:
    """Runs `work` as a task named `name` (and `sampler`, its backlog's metric, before each
    scrape) until the service stops: `deps.cleanups` then stops the sampling and cancels the task."""
    worker = asyncio.get_running_loop().create_task(work, name=name)
    stop_sampling = add_sampler(sampler)

    async def stop() -> None:
        stop_sampling()
        await cancel_and_wait(worker)

    deps.cleanups.append(stop)
