"""Authenticated GET /v1/me through every hop (gateway → gRPC → Accounts → PostgreSQL).

Prints requests/s and p50/p99 next to a bare Starlette endpoint measured in the same run, for
the default configuration (trace ids propagated, spans recorded only when exported) and with
every span recorded. Target on a 2-core machine: ≥ 1,000 req/s and p99 ≤ 20 ms.
Run: `.venv/bin/python bench/bench_me.py` (uses wrk when installed: `apt-get install wrk`).
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.loadgen import measure
from bench.stacks import baseline_server, login, running_stack

CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "8"))
DURATION = float(os.environ.get("BENCH_SECONDS", "8"))


def main() -> None:
    lines = []
    with baseline_server() as baseline:
        bare = measure("bare Starlette GET /v1/me", f"{baseline}/v1/me", concurrency=CONCURRENCY, duration=DURATION)
    lines.append(bare.line())
    for label, env in [
        ("gateway GET /v1/me, default tracing", {}),
        ("gateway GET /v1/me, every span recorded", {"OTEL_TRACES_SAMPLER": "parentbased_always_on"}),
    ]:
        with running_stack(env) as stack:
            gateway = str(stack["gateway"])
            headers = {"Authorization": f"Bearer {login(gateway)}"}
            full = measure(label, f"{gateway}/v1/me", headers=headers, concurrency=CONCURRENCY, duration=DURATION)
        lines.append(f"{full.line()}   {full.rps / bare.rps:.3f} x bare")
    print(f"concurrency {CONCURRENCY}, {DURATION:.0f} s each, {os.cpu_count()} cores")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
