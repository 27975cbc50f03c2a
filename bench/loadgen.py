"""A small keep-alive HTTP/1.1 load generator on raw asyncio streams (cheaper than any client library).

Used by the benchmarks so that the client is not what gets measured.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import uvloop


@dataclass
class Result:
    label: str
    requests: int
    seconds: float
    latencies_ms: list[float]
    errors: int
    # Unexpected answers by status and problem code (e.g. "503 service_unavailable").
    unexpected: Counter[str] | None = None

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


_PROBLEM_CODE = re.compile(rb'"code":\s*"([a-z_]+)"')


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    body = await reader.readexactly(length) if length else b""
    return status, body


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
    unexpected: Counter[str] = Counter()
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
                status, answer = await _read_response(reader)
                if measuring:
                    latencies.append((time.perf_counter() - started) * 1000)
                    if status != expect:
                        errors += 1
                        code = _PROBLEM_CODE.search(answer)
                        unexpected[f"{status} {code.group(1).decode() if code else ''}".strip()] += 1
        finally:
            writer.close()

    tasks = [asyncio.create_task(worker()) for _ in range(concurrency)]
    await asyncio.sleep(warmup)
    measuring = True
    began = time.perf_counter()
    await asyncio.gather(*tasks)
    return Result(label, len(latencies), time.perf_counter() - began, latencies, errors, unexpected)


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


# wrk scripts: the method and body from the environment; with a header that is new on every
# request (e.g. an Idempotency-Key) when BENCH_UNIQUE_HEADER is set.
_WRK_BODY = """
wrk.method = os.getenv("BENCH_METHOD")
wrk.body = os.getenv("BENCH_BODY")
"""
_WRK_UNIQUE_HEADER = """
local counter = 0
local prefix = string.format("%x%x", os.time(), math.random(0, 2^30))
request = function()
  counter = counter + 1
  wrk.headers[os.getenv("BENCH_UNIQUE_HEADER")] = prefix .. "-" .. counter
  return wrk.format(os.getenv("BENCH_METHOD"), nil, nil, os.getenv("BENCH_BODY"))
end
"""


def _wrk(url: str, args: list[str], script: str, env: dict[str, str]) -> str:
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as lua:
        lua.write(script)
        lua.flush()
        return subprocess.run(
            ["wrk", *args, "-s", lua.name, url], capture_output=True, text=True, check=True, env={**os.environ, **env}
        ).stdout


def measure(
    label: str,
    url: str,
    *,
    headers: dict[str, str] | None = None,
    concurrency: int = 8,
    duration: float = 8.0,
    method: str = "GET",
    body: bytes = b"",
    unique_header: str | None = None,
    expect: int = 200,
    warmup: float = 0.0,
) -> Summary:
    """Load with wrk when installed (a C client costs the machine least), else the asyncio client.

    `unique_header` names a header given a new value on every request.
    """
    if shutil.which("wrk"):
        args = ["-t1", f"-c{concurrency}", "--latency"]
        for key, value in (headers or {}).items():
            args += ["-H", f"{key}: {value}"]
        script = _WRK_UNIQUE_HEADER if unique_header else _WRK_BODY
        env = {"BENCH_METHOD": method, "BENCH_BODY": body.decode(), "BENCH_UNIQUE_HEADER": unique_header or ""}
        if warmup > 0:
            _wrk(url, [*args, f"-d{max(1, round(warmup))}s"], script, env)
        output = _wrk(url, [*args, f"-d{int(duration)}s"], script, env)
        rps = p50 = p99 = float("nan")
        for line in output.splitlines():
            parts = line.split()
            if line.startswith("Requests/sec:"):
                rps = float(parts[1])
            elif parts[:1] == ["50%"]:
                p50 = _ms(parts[1])
            elif parts[:1] == ["99%"]:
                p99 = _ms(parts[1])
        if "Non-2xx" in output or "Socket errors" in output:
            raise RuntimeError(f"{label}: failed requests\n{output}")
        return Summary(label, rps, p50, p99, "wrk")

    per_request = (lambda: {unique_header: uuid.uuid4().hex}) if unique_header else None
    result = uvloop.run(
        run_load(
            label,
            url,
            method=method,
            headers=headers,
            body=body,
            concurrency=concurrency,
            duration=duration,
            warmup=warmup,
            expect=expect,
            per_request=per_request,
        )
    )
    if result.errors:
        raise RuntimeError(
            f"{label}: {result.errors} unexpected answers in {result.requests}: {dict(result.unexpected or {})}"
        )
    return Summary(label, result.rps, result.percentile(0.5), result.percentile(0.99), "asyncio client")
