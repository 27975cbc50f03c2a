"""Chaos under load: `python -m stack` with a mixed load (bench/mixed_load.py) while every service and
the gateway are SIGKILLed in turn, `--rounds` times; the supervisor heals each.

Prints the faults injected, the operations completed, the errors clients saw on the way (answers
they retried: 503 with Retry-After, broken connections), the time each process took to be healthy
again and the platform to answer /readyz 200; then checks every invariant (bench/mixed_load.py verify).
Run: `.venv/bin/python bench/bench_chaos.py [--rounds 2] [--sellers 6]`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.mixed_load import CHAOS_ENV, MixedLoad, Recovery, kill_and_wait
from bench.stacks import ADMIN, running_stack
from runtime.config import SERVICES
from runtime.embedded_pg import start_embedded_postgres

VICTIMS = (*SERVICES, "gateway", "qonto-sandbox")


async def chaos(stack: dict[str, object], dsn: str, rounds: int, sellers: int, pause: float) -> None:
    run_dir = Path(str(stack["run_dir"]))
    gateway = str(stack["gateway"])
    recoveries: list[Recovery] = []
    async with MixedLoad([gateway], str(stack["sandboxes"]["stripe"]), *ADMIN) as load:  # type: ignore[index]
        await load.setup()
        await load.configure_sandbox(webhook_retry_base_seconds=0.25)
        stop = asyncio.Event()
        started = time.monotonic()
        runner = asyncio.create_task(load.run(stop, sellers=sellers))
        for _ in range(rounds):
            for victim in VICTIMS:
                await asyncio.sleep(pause)
                recoveries.append(await kill_and_wait(run_dir, victim, gateway))
        await asyncio.sleep(pause)
        stop.set()
        await runner
        seconds = time.monotonic() - started
        await load.settle()
        counts = await load.verify(dsn)
    tally = load.tally
    print(f"faults injected: {len(recoveries)} SIGKILLs ({rounds} x {', '.join(VICTIMS)}) in {seconds:.0f} s of load")
    print(
        "operations completed: "
        + ", ".join(f"{kind} {n}" for kind, n in sorted(tally.completed.items()))
        + f"  ({sum(tally.completed.values()) / seconds:.0f}/s)"
    )
    print(f"errors clients saw (and retried): {tally.errors()}")
    for what, n in tally.seen.most_common():
        print(f"  {n:6d}  {what}")
    print("time to recover (SIGKILL -> healthy again / -> gateway /readyz 200):")
    for victim in VICTIMS:
        mine = [r for r in recoveries if r.name == victim]
        healthy = statistics.fmean(r.healthy_seconds for r in mine)
        ready = statistics.fmean(r.ready_seconds for r in mine)
        print(f"  {victim:<10} {healthy:5.2f} s / {ready:5.2f} s   (max {max(r.ready_seconds for r in mine):.2f} s)")
    print("invariants hold: " + ", ".join(f"{k} {v}" for k, v in counts.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--sellers", type=int, default=6)
    parser.add_argument("--pause", type=float, default=3.0, help="seconds of load between faults")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        postgres = start_embedded_postgres(Path(tmp) / "pg")
        try:
            with running_stack({"DATABASE_URL": postgres.url, **CHAOS_ENV}) as stack:
                asyncio.run(chaos(stack, postgres.url, args.rounds, args.sellers, args.pause))
        finally:
            postgres.stop()


if __name__ == "__main__":
    main()
