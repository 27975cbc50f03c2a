"""Benchmark: PaymentIntent create+confirm against the Stripe sandbox, next to a bare-Starlette baseline.

Both servers run as separate processes (one uvicorn worker each) pinned to CPU 0; clients run in
`--client-processes` processes on the other CPUs, each with asyncio and its share of
`--concurrency` in flight. The first line measures the sandbox app alone (in-process ASGI calls),
the next ones its memory per stored payment and for a million (`bench_sandbox_memory.py`).
Prints throughput and latency percentiles; asserts nothing.

    .venv/bin/python bench/bench_stripe_sandbox.py [--requests 4000] [--concurrency 16] [--client-processes 2]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sandbox.stripe.testing import QuietHTTPXClient, SandboxProcess, free_port  # noqa: E402

BODY = {"amount": "1000", "currency": "eur", "confirm": "true", "payment_method": "pm_card_visa"}


# --- baseline server ------------------------------------------------------------------------------


def serve_baseline(port: int) -> None:
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    payload = b'{"id":"pi_baseline","object":"payment_intent","status":"succeeded","amount":1000}'

    async def endpoint(request: Request) -> Response:
        await request.body()
        return Response(payload, media_type="application/json")

    app = Starlette(routes=[Route("/v1/payment_intents", endpoint, methods=["POST"]), Route("/health", endpoint)])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


class BaselineProcess:
    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> BaselineProcess:
        self.process = subprocess.Popen([sys.executable, __file__, "--serve-baseline", str(self.port)])
        _pin(self.process.pid, SERVER_CPUS)
        for _ in range(300):
            try:
                httpx.get(f"{self.url}/health", timeout=0.5)
                return self
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError("baseline server did not start")

    def __exit__(self, *exc: object) -> None:
        assert self.process is not None
        self.process.terminate()
        self.process.wait(10)


# --- clients --------------------------------------------------------------------------------------


async def _drive(make_call: Callable[[], Awaitable[object]], requests: int, concurrency: int) -> list[float]:
    latencies: list[float] = []
    remaining = requests

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            started = time.perf_counter()
            await make_call()
            latencies.append(time.perf_counter() - started)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies


async def _client_run(mode: str, url: str, requests: int, concurrency: int) -> tuple[float, float, list[float]]:
    headers = {"Authorization": "Bearer sk_test_bench"}
    if mode == "sdk":
        import stripe

        http_client = QuietHTTPXClient()
        client = stripe.StripeClient(
            "sk_test_bench",
            base_addresses={"api": url, "connect": url},
            http_client=http_client,
            max_network_retries=0,
        )
        params = {"amount": 1000, "currency": "eur", "confirm": True, "payment_method": "pm_card_visa"}

        async def call() -> object:
            return await client.v1.payment_intents.create_async(params=params)  # type: ignore[arg-type]

        await _drive(call, 50, concurrency)  # warm-up
        start = time.time()
        latencies = await _drive(call, requests, concurrency)
        end = time.time()
        await http_client.close_async()
        return start, end, latencies
    async with httpx.AsyncClient(base_url=url, headers=headers) as http:

        async def raw_call() -> object:
            response = await http.post("/v1/payment_intents", data=BODY)
            response.raise_for_status()
            return response

        await _drive(raw_call, 50, concurrency)
        start = time.time()
        latencies = await _drive(raw_call, requests, concurrency)
        end = time.time()
        return start, end, latencies


SERVER_CPUS = {0}


def _pin(pid: int, cpus: set[int]) -> None:
    """Keep servers and clients on separate cores so the server's figure is one core's."""
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(pid, cpus)


def _client_cpus() -> set[int]:
    return set(range(os.cpu_count() or 1)) - SERVER_CPUS or {0}


def _client_process(args: tuple[str, str, int, int]) -> tuple[float, float, list[float]]:
    _pin(0, _client_cpus())
    return asyncio.run(_client_run(*args))


def measure(label: str, mode: str, url: str, requests: int, concurrency: int, processes: int) -> None:
    per_process = max(1, requests // processes)
    per_concurrency = max(1, concurrency // processes)
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        results = pool.map(_client_process, [(mode, url, per_process, per_concurrency)] * processes)
    start = min(r[0] for r in results)
    end = max(r[1] for r in results)
    latencies = sorted(lat for r in results for lat in r[2])
    total = len(latencies)
    p50 = statistics.median(latencies) * 1000
    p99 = latencies[min(total - 1, int(total * 0.99))] * 1000
    print(f"{label:<48} {total / (end - start):>9.0f} req/s   p50 {p50:6.2f} ms   p99 {p99:6.2f} ms   (n={total})")


def server_side(url: str) -> None:
    entries = httpx.get(f"{url}/_sandbox/requests", params={"limit": 5000}).json()["data"]
    durations = sorted(e["duration_ms"] for e in entries if e["path"] == "/v1/payment_intents")
    if durations:
        p50 = statistics.median(durations)
        p99 = durations[min(len(durations) - 1, int(len(durations) * 0.99))]
        print(f"{'sandbox in-handler time (request log)':<48} {'':>9}         p50 {p50:6.2f} ms   p99 {p99:6.2f} ms")


# --- in-process: the ASGI apps alone, no sockets and no client CPU ---------------------------------


async def _asgi_call(app: object, body: bytes, key: str) -> None:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/payment_intents",
        "raw_path": b"/v1/payment_intents",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"bench"),
            (b"authorization", b"Bearer sk_test_bench"),
            (b"content-type", b"application/x-www-form-urlencoded"),
            (b"idempotency-key", key.encode()),
        ],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }
    delivered = False

    async def receive() -> dict[str, object]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    async def send(message: dict[str, object]) -> None:
        if message["type"] == "http.response.start":
            assert message["status"] == 200, message

    await app(scope, receive, send)  # type: ignore[operator]
    await asyncio.sleep(0)  # back to the loop between requests, as a server is (the sandbox packs objects then)


async def _in_process(requests: int) -> None:
    from sandbox.stripe.app import create_app
    from sandbox.stripe.config import SandboxConfig

    app = create_app(SandboxConfig())
    body = b"amount=1000&currency=eur&confirm=true&payment_method=pm_card_visa"
    async with app.router.lifespan_context(app):
        for i in range(200):
            await _asgi_call(app, body, f"warm-{i}")
        latencies = []
        start = time.perf_counter()
        for i in range(requests):
            t = time.perf_counter()
            await _asgi_call(app, body, f"key-{i}")
            latencies.append(time.perf_counter() - t)
        elapsed = time.perf_counter() - start
    latencies.sort()
    p50 = statistics.median(latencies) * 1000
    p99 = latencies[int(len(latencies) * 0.99)] * 1000
    label = "sandbox app in-process (ASGI call, no network)"
    print(
        f"{label:<48} {requests / elapsed:>9.0f} req/s   p50 {p50:6.2f} ms   p99 {p99:6.2f} ms   (n={requests})",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--client-processes", type=int, default=2)
    parser.add_argument("--memory-payments", type=int, default=20_000, help="0: skip the memory figures")
    parser.add_argument("--serve-baseline", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_baseline:
        serve_baseline(args.serve_baseline)
        return
    n, c, p = args.requests, args.concurrency, args.client_processes
    print(f"cpus={os.cpu_count()} load={os.getloadavg()[0]:.2f} requests={n}", flush=True)
    _pin(0, SERVER_CPUS)
    asyncio.run(_in_process(n))
    if args.memory_payments:
        from bench.bench_sandbox_memory import measure as measure_memory

        asyncio.run(measure_memory(args.memory_payments))
    _pin(0, set(range(os.cpu_count() or 1)))
    print(f"over HTTP: concurrency={c} client processes={p} (servers: one uvicorn worker each)", flush=True)
    with BaselineProcess() as baseline:
        measure("baseline: bare Starlette fixed JSON (httpx)", "raw", baseline.url, n, c, p)
    with SandboxProcess(log_level="warning") as sandbox:
        assert sandbox.process is not None
        _pin(sandbox.process.pid, SERVER_CPUS)
        measure("sandbox: PI create+confirm (httpx form POST)", "raw", sandbox.url, n, c, p)
        measure("sandbox: PI create+confirm (official SDK)", "sdk", sandbox.url, n, c, p)
        server_side(sandbox.url)


if __name__ == "__main__":
    main()
