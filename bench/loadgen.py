"""A small keep-alive HTTP/1.1 load generator on raw asyncio streams (cheaper than any client library).

Used by the benchmarks so that the client is not what gets measured.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass
class Result:
    label: str
    requests: int
    seconds: float
    latencies_ms: list[float]
    errors: int

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(len(ordered) * p))] if ordered else float("nan")

    def line(self) -> str:
        return (
            f"{self.label:<34} {self.rps:>9.0f} req/s   p50 {self.percentile(0.50):6.2f} ms   "
            f"p99 {self.percentile(0.99):6.2f} ms   mean {statistics.fmean(self.latencies_ms):6.2f} ms   "
            f"errors {self.errors}"
        )


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    if length:
        await reader.readexactly(length)
    return status


async def run_load(
    label: str,
    url: str,
    *,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    concurrency: int = 16,
    duration: float = 5.0,
    warmup: float = 1.0,
    expect: int = 200,
    per_request: Callable[[], dict[str, str]] | None = None,
) -> Result:
    """Runs `concurrency` keep-alive connections for `duration` seconds after a warm-up.

    `per_request` adds headers that change with every request (e.g. a new Idempotency-Key).
    """
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    prefix = "\r\n".join(lines).encode()
    fixed = prefix + b"\r\n\r\n" + body

    def request() -> bytes:
        if per_request is None:
            return fixed
        extra = "".join(f"\r\n{k}: {v}" for k, v in per_request().items())
        return prefix + extra.encode() + b"\r\n\r\n" + body

    latencies: list[float] = []
    errors = 0
    measuring = False
    stop_at = time.perf_counter() + warmup + duration

    async def worker() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while time.perf_counter() < stop_at:
                payload = request()
                started = time.perf_counter()
                writer.write(payload)
                status = await _read_response(reader)
                if measuring:
                    latencies.append((time.perf_counter() - started) * 1000)
                    if status != expect:
                        errors += 1
        finally:
            writer.close()

    tasks = [asyncio.create_task(worker()) for _ in range(concurrency)]
    await asyncio.sleep(warmup)
    measuring = True
    began = time.perf_counter()
    await asyncio.gather(*tasks)
    return Result(label, len(latencies), time.perf_counter() - began, latencies, errors)


@dataclass
class Summary:
    label: str
    rps: float
    p50_ms: float
    p99_ms: float
    tool: str

    def line(self) -> str:
        return f"{self.label:<44} {self.rps:>8.0f} req/s   p50 {self.p50_ms:6.2f} ms   p99 {self.p99_ms:6.2f} ms   ({self.tool})"


def _ms(value: str) -> float:
    for unit, factor in (("us", 0.001), ("ms", 1.0), ("s", 1000.0)):
        if value.endswith(unit):
            return float(value[: -len(unit)]) * factor
    return float(value)


def measure(
    label: str, url: str, *, headers: dict[str, str] | None = None, concurrency: int = 8, duration: float = 8.0
) -> Summary:
    """GET load with wrk when installed (a C client costs the machine least), else the asyncio client."""
    import shutil
    import subprocess

    if shutil.which("wrk"):
        args = ["wrk", "-t1", f"-c{concurrency}", f"-d{int(duration)}s", "--latency"]
        for key, value in (headers or {}).items():
            args += ["-H", f"{key}: {value}"]
        output = subprocess.run([*args, url], capture_output=True, text=True, check=True).stdout
        rps = p50 = p99 = float("nan")
        for line in output.splitlines():
            parts = line.split()
            if line.startswith("Requests/sec:"):
                rps = float(parts[1])
            elif parts[:1] == ["50%"]:
                p50 = _ms(parts[1])
            elif parts[:1] == ["99%"]:
                p99 = _ms(parts[1])
        if "Non-2xx" in output:
            raise RuntimeError(f"{label}: non-2xx answers\n{output}")
        return Summary(label, rps, p50, p99, "wrk")
    import uvloop

    result = uvloop.run(run_load(label, url, headers=headers, concurrency=concurrency, duration=duration))
    if result.errors:
        raise RuntimeError(f"{label}: {result.errors} unexpected answers")
    return Summary(label, result.rps, result.percentile(0.5), result.percentile(0.99), "asyncio client")
