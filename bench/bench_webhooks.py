"""Signed webhook ingest end to end: gateway (signature, routing) → owner's inbox (dedupe, record, apply).

Starts the stack as separate processes (`python -m stack`) against a Stripe sandbox process
standing in for Stripe, with webhook secrets chosen here; signs N events locally, POSTs them
concurrently to `/webhooks/stripe` with duplicates (some sent at the same time, some later),
and prints events/s and p50/p99 next to a bare Starlette endpoint that only verifies the
signature, measured in the same run. Every answer must be 2xx and exactly one delivery per
event must be the first (`duplicate: false`). Target: ≥ 500 events/s with dedupe included.
Also prints the CPU each process spent per delivery (gateway, services, PostgreSQL).
Run: `.venv/bin/python bench/bench_webhooks.py` (BENCH_EVENTS, BENCH_DUPLICATES, BENCH_CONCURRENCY,
BENCH_GATEWAYS=2 to measure a second gateway process too).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import orjson

from bench.stacks import listening, running_stack, uvicorn_source
from runtime.embedded_pg import free_port
from runtime.webhook_signatures import sign
from sandbox.stripe.testing import SandboxProcess

EVENTS = int(os.environ.get("BENCH_EVENTS", "4000"))
DUPLICATE_SHARE = float(os.environ.get("BENCH_DUPLICATES", "0.25"))
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "32"))
# 2: measure again with a second gateway process taking half the connections (scale-out).
GATEWAYS = int(os.environ.get("BENCH_GATEWAYS", "1"))
SECRETS = ("whsec_bench_platform_0123456789", "whsec_bench_connect_0123456789")
# Types and the owners they reach; each is probed first and left out if its owner has no inbox yet.
CANDIDATE_TYPES = (
    "account.updated",
    "payment_intent.succeeded",
    "charge.succeeded",
    "payout.paid",
    "terminal.reader.action_succeeded",
    "issuing_card.created",
)

BASELINE_APP = """
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from runtime.webhook_signatures import InvalidSignature, verify_stripe_signature

SECRETS = {secrets!r}

async def webhook(request: Request) -> Response:
    body = await request.body()
    try:
        verify_stripe_signature(request.headers.get("stripe-signature", ""), body, SECRETS)
    except InvalidSignature:
        return Response(b'{{"error": "invalid_signature"}}', 400, media_type="application/json")
    return Response(b'{{"received": true, "duplicate": false}}', media_type="application/json")

app = Starlette(routes=[Route("/webhooks/stripe", webhook, methods=["POST"])])
"""


@dataclass
class Outcome:
    label: str
    requests: int
    seconds: float
    latencies_ms: list[float]
    statuses: dict[int, int]
    first_deliveries: int

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(len(ordered) * p))]

    def line(self) -> str:
        rate = self.requests / self.seconds
        return (
            f"{self.label:<44} {rate:>7.0f} deliveries/s   p50 {self.percentile(0.5):6.2f} ms   "
            f"p99 {self.percentile(0.99):6.2f} ms   mean {statistics.fmean(self.latencies_ms):6.2f} ms"
        )


def event_body(event_type: str, account: str | None) -> bytes:
    event: dict[str, object] = {
        "id": f"evt_bench_{uuid.uuid4().hex}",
        "object": "event",
        "api_version": "2020-08-27",
        "type": event_type,
        "created": int(time.time()),
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "data": {
            "object": {
                "id": f"obj_bench_{uuid.uuid4().hex[:14]}",
                "object": event_type.split(".")[0],
                "amount": 1999,
                "currency": "eur",
                "status": "succeeded",
                "metadata": {"bench": "true"},
            }
        },
    }
    if account:
        event["account"] = account
    return orjson.dumps(event)


def build_deliveries(types: list[str]) -> tuple[list[bytes], int]:
    """Unique events plus duplicates: half right after their original (concurrent), half at random later."""
    originals = [event_body(random.choice(types), random.choice([None, f"acct_bench_{i % 50}"])) for i in range(EVENTS)]
    slots: list[list[bytes]] = [[body] for body in originals]
    for _ in range(int(EVENTS * DUPLICATE_SHARE)):
        index = random.randrange(EVENTS)
        later = index if random.random() < 0.5 else random.randrange(index, EVENTS)
        slots[later].append(originals[index])
    return [body for slot in slots for body in slot], EVENTS


async def _read(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    return int(head[9:12]), await reader.readexactly(length) if length else b""


async def post_all(label: str, url: str | list[str], bodies: list[bytes], concurrency: int = CONCURRENCY) -> Outcome:
    """POSTs every body once over `concurrency` keep-alive connections (spread over the URLs), each
    signed just before it is sent."""
    urls = [url] if isinstance(url, str) else url
    queue = list(reversed(bodies))
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    first = 0

    async def worker(index: int) -> None:
        nonlocal first
        parts = urlsplit(urls[index % len(urls)])
        host, port = parts.hostname or "127.0.0.1", parts.port or 80
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while queue:
                body = queue.pop()
                head = (
                    f"POST {parts.path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
                    f"Stripe-Signature: {sign(body, SECRETS[len(body) % 2], int(time.time()))}\r\n"
                    f"Content-Length: {len(body)}\r\n\r\n"
                )
                started = time.perf_counter()
                writer.write(head.encode() + body)
                status, answer = await _read(reader)
                latencies.append((time.perf_counter() - started) * 1000)
                statuses[status] = statuses.get(status, 0) + 1
                first += b'"duplicate":false' in answer
        finally:
            writer.close()

    began = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    return Outcome(label, len(bodies), time.perf_counter() - began, latencies, statuses, first)


@contextlib.contextmanager
def baseline_server() -> Iterator[str]:
    with uvicorn_source(BASELINE_APP.format(secrets=SECRETS)) as url:
        yield f"{url}/webhooks/stripe"


async def probe(url: str) -> list[str]:
    """The candidate types whose owner records them (2xx) in this build."""
    kept = []
    for event_type in CANDIDATE_TYPES:
        outcome = await post_all("probe", url, [event_body(event_type, None)], concurrency=1)
        if 200 in outcome.statuses:
            kept.append(event_type)
        else:
            print(f"  left out {event_type}: answered {sorted(outcome.statuses)}")
    return kept


def _processes(stack: dict[str, object]) -> dict[str, list[int]]:
    """PIDs of this stack's gateway, services and PostgreSQL (postmaster and backends), by role."""
    ports = {"gateway": str(urlsplit(str(stack["gateway"])).port)}
    services = stack.get("services", {})
    assert isinstance(services, dict)
    ports.update({name: str(address).rsplit(":", 1)[1] for name, address in services.items()})
    found: dict[str, list[int]] = {}
    postmasters: set[int] = set()
    database_ports: set[int] = set()
    commands: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        commands[int(entry.name)] = cmdline
        for role, port in ports.items():
            key = b"GATEWAY_PORT=" if role == "gateway" else b"GRPC_PORT="
            module = "-m gateway " if role == "gateway" else f"-m services.{role} "
            if module in cmdline + " " and key + port.encode() in environ:
                found.setdefault(role, []).append(int(entry.name))
                for variable in environ:
                    if variable.startswith(b"DATABASE_URL="):
                        database_ports.add(urlsplit(variable[13:].decode()).port or 5432)
    for pid, cmdline in commands.items():
        words = cmdline.split()
        postmaster = words and words[0].endswith("/postgres") and "-p" in words
        if postmaster and words[words.index("-p") + 1] in {str(p) for p in database_ports}:
            postmasters.add(pid)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if parent in postmasters or int(entry.name) in postmasters:
                found.setdefault("postgres", []).append(int(entry.name))
    return found


def _cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def second_gateway(gateway_pid: int) -> Iterator[str]:
    """One more gateway process with the first one's settings (the gateway is stateless)."""
    environ = dict(
        item.split(b"=", 1) for item in Path(f"/proc/{gateway_pid}/environ").read_bytes().split(b"\0") if b"=" in item
    )
    port = free_port()
    env = {k.decode(): v.decode() for k, v in environ.items()} | {"GATEWAY_PORT": str(port)}
    process = subprocess.Popen([sys.executable, "-m", "gateway"], cwd=Path(__file__).resolve().parents[1], env=env)
    try:
        for _ in range(200):
            if listening(port):
                break
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/webhooks/stripe"
    finally:
        process.terminate()
        process.wait(10)


def _measure(
    label: str, urls: list[str], types: list[str], processes: dict[str, list[int]]
) -> tuple[Outcome, dict[str, float], int]:
    deliveries, unique = build_deliveries(types)
    before = {role: _cpu_seconds(pids) for role, pids in processes.items()}
    outcome = asyncio.run(post_all(label, urls, deliveries))
    cpu = {role: (_cpu_seconds(pids) - before[role]) * 1000 / len(deliveries) for role, pids in processes.items()}
    return outcome, cpu, unique


def _report(outcome: Outcome, cpu: dict[str, float], unique: int, bare: Outcome) -> None:
    print(f"{outcome.line()}   {outcome.requests / outcome.seconds / (bare.requests / bare.seconds):.3f} x bare")
    events_per_s = unique / outcome.seconds
    print(
        f"    {events_per_s:.0f} unique events/s ({unique} events in {outcome.requests} deliveries, "
        f"{outcome.seconds:.2f} s); answers {outcome.statuses}; first deliveries {outcome.first_deliveries}"
    )
    print(
        "    CPU per delivery: "
        + ", ".join(f"{role} {ms:.2f} ms" for role, ms in sorted(cpu.items()))
        + f"; total {sum(cpu.values()):.2f} ms"
    )
    if set(outcome.statuses) != {200} or outcome.first_deliveries != unique:
        raise RuntimeError(f"wrong answers: {outcome.statuses}, {outcome.first_deliveries} first of {unique} events")


def main() -> None:
    print(
        f"{EVENTS} events, {DUPLICATE_SHARE:.0%} more deliveries as duplicates, concurrency {CONCURRENCY}, "
        f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}"
    )
    environment = {"STRIPE_API_KEY": "sk_test_bench", "STRIPE_WEBHOOK_SECRETS": ",".join(SECRETS)}
    with (
        SandboxProcess() as stripe_sandbox,
        running_stack({**environment, "STRIPE_API_BASE": stripe_sandbox.url}) as stack,
    ):
        gateway_url = f"{stack['gateway']}/webhooks/stripe"
        types = asyncio.run(probe(gateway_url))
        asyncio.run(post_all("warm-up", gateway_url, build_deliveries(types)[0][:300]))
        processes = _processes(stack)
        runs = [_measure("gateway → owner inbox (signed, deduped)", [gateway_url], types, processes)]
        if GATEWAYS > 1:
            with second_gateway(processes["gateway"][0]) as other_url:
                asyncio.run(post_all("warm-up", other_url, build_deliveries(types)[0][:300]))
                with_two = {**processes, "gateway": processes["gateway"] + _processes_on(other_url)}
                runs.append(_measure("same, two gateway processes", [gateway_url, other_url], types, with_two))
    with baseline_server() as baseline_url:
        deliveries, _ = build_deliveries(types)
        asyncio.run(post_all("warm-up", baseline_url, deliveries[:300]))
        bare = asyncio.run(post_all("bare Starlette, signature check only", baseline_url, deliveries))
    print(f"types: {', '.join(types)}")
    print(bare.line())
    for run in runs:
        _report(*run, bare)
    print(f"load average now {os.getloadavg()[0]:.1f}   (target: >= 500 unique events/s)")


def _processes_on(url: str) -> list[int]:
    port = f"GATEWAY_PORT={urlsplit(url).port}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if b"-m\0gateway" in (entry / "cmdline").read_bytes() and port in (
                    entry / "environ"
                ).read_bytes().split(b"\0"):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


if __name__ == "__main__":
    main()
