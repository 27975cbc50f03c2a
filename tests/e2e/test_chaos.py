"""Chaos: `make run` under a mixed load while each service, the gateway and the Qonto sandbox are SIGKILLed in turn.

The supervisor starts each one again on its port; clients retrying with their Idempotency-Keys all
complete; afterwards exactly one PaymentIntent exists per key, every webhook Stripe delivered was
applied once, every inbox is drained and the organisation's stats equal the payments made.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bench.mixed_load import CHAOS_ENV, MixedLoad, kill_and_wait, stack_status
from bench.stacks import ADMIN, running_stack
from runtime.config import SERVICES
from runtime.embedded_pg import start_embedded_postgres

# Six restarts, each a Python start-up (about 1.2 s of CPU): 110 s measured on 2 busy shared cores.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

VICTIMS = (*SERVICES, "gateway", "qonto-sandbox")


async def _progress(load: MixedLoad, kind: str, more: int) -> None:
    """Until `more` further operations of `kind` completed (the load goes on between faults)."""
    target = load.tally.completed[kind] + more
    for _ in range(600):
        if load.tally.completed[kind] >= target:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"the load made no progress: {dict(load.tally.completed)} {dict(load.tally.seen)}")


async def _chaos(stack: dict[str, object], dsn: str) -> None:
    run_dir = Path(str(stack["run_dir"]))
    gateway = str(stack["gateway"])
    async with MixedLoad([gateway], str(stack["sandboxes"]["stripe"]), *ADMIN) as load:  # type: ignore[index]
        await load.setup()
        # Deliveries refused while a process is down are retried sooner than Stripe's hours.
        await load.configure_sandbox(webhook_retry_base_seconds=0.25)
        stop = asyncio.Event()
        runner = asyncio.create_task(load.run(stop, sellers=4))
        try:
            for victim in VICTIMS:
                await _progress(load, "create", 2)
                await kill_and_wait(run_dir, victim, gateway)
                assert not runner.done(), runner  # an unexpected answer ends the load early
            await _progress(load, "create", 2)
        finally:
            stop.set()
            await asyncio.wait_for(runner, 60)
        await load.settle()
        counts = await load.verify(dsn)
    assert counts["sales"] >= 2 * len(VICTIMS) and counts["events applied"] > 0
    # What clients saw on the way: 503s telling them when to retry, or broken connections (the gateway's crash).
    assert not [seen for seen in load.tally.seen if "no Retry-After" in seen], load.tally.seen
    status = stack_status(run_dir)
    assert {name: status[name]["restarts"] for name in VICTIMS} == dict.fromkeys(VICTIMS, 1)
    assert all(p["status"] == "running" for p in status.values()), status


def test_killing_each_service_in_turn_under_load_loses_nothing(tmp_path: Path) -> None:
    postgres = start_embedded_postgres(tmp_path / "pg")
    try:
        with running_stack({"DATABASE_URL": postgres.url, **CHAOS_ENV}) as stack:
            asyncio.run(_chaos(stack, postgres.url))
    finally:
        postgres.stop()
