"""Soak: the mixed load of bench/mixed_load.py (sales with keys, captures, refunds, offline batches,
Stripe's webhooks) on `python -m stack` for `--seconds` (10 minutes by default), no faults.

Prints the unexpected answers (goal 0: any answer but the expected success, any broken connection),
the operations completed, and every process's memory (RSS) after a warm-up and at the end (goal
flat); then checks every invariant (bench/mixed_load.py verify).
Run: `.venv/bin/python bench/bench_soak.py [--seconds 600] [--sellers 6]`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.mixed_load import CHAOS_ENV, MixedLoad, UnexpectedAnswer, process_rss_kib, stack_status
from bench.stacks import ADMIN, running_stack
from runtime.embedded_pg import start_embedded_postgres


def memory(run_dir: Path) -> dict[str, int]:
    return {name: process_rss_kib(int(p["pid"])) for name, p in stack_status(run_dir).items()}


async def soak(stack: dict[str, object], dsn: str, seconds: float, sellers: int) -> None:
    run_dir = Path(str(stack["run_dir"]))
    gateways = [str(g) for g in stack.get("gateways") or [stack["gateway"]]]  # type: ignore[attr-defined]
    async with MixedLoad(gateways, str(stack["sandboxes"]["stripe"]), *ADMIN) as load:  # type: ignore[index]
        await load.setup()
        stop = asyncio.Event()
        runner = asyncio.create_task(load.run(stop, sellers=sellers))
        warmup = min(30.0, seconds / 10)
        await asyncio.sleep(warmup)
        before, started, done_before = memory(run_dir), time.monotonic(), sum(load.tally.completed.values())
        failure: BaseException | None = None
        await asyncio.wait([runner], timeout=seconds - warmup)  # ends early only if the load failed
        after = memory(run_dir)
        stop.set()
        try:
            await runner
        except UnexpectedAnswer as error:
            failure = error
        elapsed = time.monotonic() - started
        done = sum(load.tally.completed.values()) - done_before
        await load.settle()
        counts = await load.verify(dsn) if failure is None else {}
    restarts = {name: p["restarts"] for name, p in stack_status(run_dir).items() if p["restarts"]}
    print(f"soak: {seconds:.0f} s of mixed load, {sellers} sellers, {os.cpu_count()} cores shared")
    print(f"unexpected answers: {load.tally.errors() + (failure is not None)}   (goal 0)")
    for what, n in load.tally.seen.most_common():
        print(f"  {n:6d}  {what}")
    if failure is not None:
        print(f"  load stopped by: {failure}")
    print(
        f"operations completed: {done} in {elapsed:.0f} s after a {warmup:.0f} s warm-up ({done / elapsed:.0f}/s): "
        + ", ".join(f"{kind} {n}" for kind, n in sorted(load.tally.completed.items()))
    )
    print(f"restarts: {restarts or 'none'}")
    print("memory (RSS) after the warm-up -> at the end:")
    for name in before:
        grew = after.get(name, 0) - before[name]
        print(
            f"  {name:<16} {before[name] / 1024:7.1f} MiB -> {after.get(name, 0) / 1024:7.1f} MiB  ({grew / 1024:+.1f})"
        )
    if counts:
        print("invariants hold: " + ", ".join(f"{k} {v}" for k, v in counts.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=600)
    parser.add_argument("--sellers", type=int, default=6)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        postgres = start_embedded_postgres(Path(tmp) / "pg")
        try:
            env = {"DATABASE_URL": postgres.url, **CHAOS_ENV, "REPLICAS": os.environ.get("REPLICAS", "1")}
            with running_stack(env) as stack:
                asyncio.run(soak(stack, postgres.url, args.seconds, args.sellers))
        finally:
            postgres.stop()


if __name__ == "__main__":
    main()
