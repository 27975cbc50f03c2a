"""Benchmark: the Stripe sandbox's memory per stored payment, and for a million, against its budget.

Creates `--payments` PaymentIntents (create+confirm with `pm_card_visa`, a new idempotency key
each, through the sandbox app in-process) with the default `SandboxConfig`, measuring Python's
allocations with tracemalloc. It then takes apart what it measured: the events (kept up to
`event_retention`), the idempotency entries (up to `idempotency_retention`), the request log (up
to `request_log_size`) and the live dicts (up to `live_objects`) are each dropped and weighed;
what is left is what every payment keeps for good (PaymentIntent, charge, payment method and
balance transaction, packed, with the store's and the ledger's indexes). A million payments is
extrapolated from those figures (it is not run: that would take an hour here) and compared with
`MEMORY_BUDGET_MILLION_PAYMENTS`. Asserts nothing.

    .venv/bin/python bench/bench_sandbox_memory.py [--payments 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
import time
import tracemalloc
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.bench_stripe_sandbox import _asgi_call  # noqa: E402
from sandbox.stripe.app import create_app  # noqa: E402
from sandbox.stripe.config import MEMORY_BUDGET_MILLION_PAYMENTS, SandboxConfig  # noqa: E402

BODY = b"amount=1000&currency=eur&confirm=true&payment_method=pm_card_visa"
MILLION = 1_000_000
KIB = 1024
GIB = 2**30


def _traced() -> int:
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


async def measure(payments: int) -> None:
    config = SandboxConfig()
    app = create_app(config)
    state = app.state.sandbox
    async with app.router.lifespan_context(app):
        for i in range(200):  # imports, caches and the codec's dictionaries: not a payment's cost
            await _asgi_call(app, BODY, f"warm-{i}")
        state.reset()
        gc.collect()
        tracemalloc.start()
        started = time.perf_counter()
        for i in range(payments):
            await _asgi_call(app, BODY, f"mem-{i}")
        elapsed = time.perf_counter() - started
        total = _traced()
        events = len(state._event_order)
        idempotent = len(state.idempotency)
        logged = len(state.requests)
        live = state.store.memory_parts()["live"]

        config.event_retention = 0
        state._retain({"id": "evt_none", "created": 0})
        without_events = _traced()
        state.idempotency.clear()
        without_idempotency = _traced()
        state.requests.clear()
        without_log = _traced()
        state.store.compact(limit=0)
        kept = _traced()
        parts = state.store.memory_parts()
        tracemalloc.stop()

    per_event = (total - without_events) / max(1, events)
    per_idempotent = (without_events - without_idempotency) / max(1, idempotent)
    per_logged = (without_idempotency - without_log) / max(1, logged)
    per_live = (without_log - kept) / max(1, live)  # a live dict over its packed form
    per_payment = kept / payments
    defaults = SandboxConfig()
    events_per_payment = events / payments
    million_events = min(defaults.event_retention, round(MILLION * events_per_payment))
    capped = {
        "payments": MILLION * per_payment,
        "events": million_events * per_event,
        "idempotency": min(defaults.idempotency_retention, MILLION) * per_idempotent,
        "request log": min(defaults.request_log_size, MILLION) * per_logged,
        "live dicts": defaults.live_objects * max(0.0, per_live),
    }
    million = sum(capped.values())
    print(
        f"{payments:,} payments in {elapsed:.1f} s (tracemalloc on); {total / 2**20:.1f} MiB traced: "
        f"{events:,} events, {idempotent:,} idempotency entries, {logged:,} request log entries, {live:,} live dicts"
    )
    print(
        f"per stored payment: {per_payment / KIB:.2f} KiB kept for good (PaymentIntent, charge, payment method, "
        f"balance transaction: {parts['packed_bytes'] / parts['packed'] / KIB:.2f} KiB packed per object, "
        f"and the indexes); {total / payments / KIB:.2f} KiB with its events and idempotency entry"
    )
    print(
        f"each: event {per_event / KIB:.2f} KiB ({events_per_payment:.1f} a payment), idempotency entry "
        f"{per_idempotent / KIB:.2f} KiB, request log entry {per_logged / KIB:.2f} KiB, "
        f"live dict {per_live / KIB:.2f} KiB over its packed form"
    )
    print(
        f"a million payments (extrapolated from {payments:,}): {million / GIB:.2f} GiB = "
        + " + ".join(f"{name} {size / GIB:.2f}" for name, size in capped.items())
        + f" (events capped at {defaults.event_retention:,}, idempotency entries at "
        f"{defaults.idempotency_retention:,}, request log at {defaults.request_log_size:,}, live dicts at "
        f"{defaults.live_objects:,})"
    )
    verdict = "within" if million <= MEMORY_BUDGET_MILLION_PAYMENTS else "OVER"
    print(
        f"budget for a million payments: {MEMORY_BUDGET_MILLION_PAYMENTS / GIB:.2f} GiB: {verdict} "
        f"({million / MEMORY_BUDGET_MILLION_PAYMENTS:.0%} of it)",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--payments", type=int, default=20_000)
    args = parser.parse_args()
    asyncio.run(measure(args.payments))


if __name__ == "__main__":
    main()
