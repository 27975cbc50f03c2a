"""CPU seconds per payment create, per process of the stack: a count, not a rate.

The machine is shared, so requests/s move with whatever else runs; the CPU a process spends per
payment does not (much). Starts PostgreSQL and the stack as `bench_payments.py` does, makes
BENCH_WARMUP payments, then BENCH_PAYMENTS more with BENCH_CONCURRENCY in flight, waits until the
sandbox has delivered their webhooks, and prints each process's user+system CPU over that span
divided by the payments made (PostgreSQL: the postmaster and all its backends, exited ones too).
The floor of `bench_payments.py` (bare app, sandbox, PostgreSQL) is counted the same way first:
floor / all is the CPU analogue of that bench's ratio. The figures still move with the machine's
load (about 10-30 % here): compare runs made one after the other, alternating.
With BENCH_PROFILE_DIR=<dir>, py-spy (`pip install py-spy`, not in the lock) samples the gateway,
Payments and the Stripe sandbox (or the processes named in BENCH_PROFILE, comma-separated) during
the measured span into <dir>/<process>.txt (collapsed stacks; BENCH_PYSPY adds py-spy options,
default --nonblocking).
To compare two checkouts, run both at once with BENCH_TOGETHER=<empty dir>:2 and BENCH_SECONDS.
Run: `.venv/bin/python bench/bench_cpu_per_payment.py` (BENCH_PAYMENTS, BENCH_WARMUP, BENCH_CONCURRENCY).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import uvloop

from bench.bench_payments import FLOOR_APP, _organisation, _settle, payments_stack
from bench.loadgen import _read_response
from bench.stacks import uvicorn_source

PAYMENTS = int(os.environ.get("BENCH_PAYMENTS", "2000"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "0"))  # instead of a count: load for this long
TOGETHER = os.environ.get("BENCH_TOGETHER", "")
WARMUP = int(os.environ.get("BENCH_WARMUP", "300"))
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "8"))
PROFILE_DIR = os.environ.get("BENCH_PROFILE_DIR", "")
PROFILED = os.environ.get("BENCH_PROFILE", "gateway,payments,sandbox.stripe").split(",")
TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str]:
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2 :].split()  # fields from the 3rd on (after the command name)


def _cpu(pid: int, children: bool = False) -> float:
    """User+system CPU seconds of `pid` (and of its waited-for exited children)."""
    fields = _stat(pid)
    ticks = int(fields[11]) + int(fields[12])  # utime, stime
    if children:
        ticks += int(fields[13]) + int(fields[14])  # cutime, cstime
    return ticks / TICK


def _name(pid: int) -> str:
    args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    if b"-m" in args:
        return args[args.index(b"-m") + 1].decode().removeprefix("services.")
    return args[0].decode()


def _postgres_cpu(postmaster: int) -> float:
    total = _cpu(postmaster, children=True)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int(_stat(int(entry.name))[1]) == postmaster:
                    total += _cpu(int(entry.name))
            except (OSError, ValueError):
                continue
    return total


def _snapshot(pids: dict[str, int], postmaster: int) -> dict[str, float]:
    figures = {name: _cpu(pid) for name, pid in pids.items()}
    figures["postgres"] = _postgres_cpu(postmaster)
    return figures


async def _create(url: str, headers: dict[str, str], count: int, concurrency: int, seconds: float = 0.0) -> int:
    """`count` payment creates (or as many as `seconds` allow) over `concurrency` keep-alive
    connections, each with a new key; returns how many were made."""
    host_port = url.removeprefix("http://")
    host, port = host_port.split(":")
    body = b'{"amount": 1000, "currency": "eur"}'
    prefix = "\r\n".join(
        [
            "POST /v1/payments HTTP/1.1",
            f"Host: {host_port}",
            f"Content-Length: {len(body)}",
            "Content-Type: application/json",
            *(f"{k}: {v}" for k, v in headers.items()),
        ]
    ).encode()
    left, made = count, 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal left, made
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            while (time.perf_counter() < deadline) if seconds else left > 0:
                left -= 1
                writer.write(prefix + f"\r\nIdempotency-Key: {uuid.uuid4().hex}\r\n\r\n".encode() + body)
                status, answer = await _read_response(reader)
                if status != 201:
                    raise RuntimeError(f"{status}: {answer[:300]!r}")
                made += 1
        finally:
            writer.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return made


def _together(stage: str) -> None:
    """With BENCH_TOGETHER=<dir>:<n>, waits until n runs (e.g. two checkouts side by side) reach
    `stage`: runs measured over the same span share the machine's load, which moves the CPU per
    payment (how many requests each wake-up serves) more than most changes do."""
    if not TOGETHER:
        return
    directory, count = TOGETHER.rsplit(":", 1)
    Path(directory, f"{stage}.{os.getpid()}").touch()
    deadline = time.monotonic() + 900
    while len(list(Path(directory).glob(f"{stage}.*"))) < int(count) and time.monotonic() < deadline:
        time.sleep(0.05)


def _floor(sandbox: str, account: str, dsn: str, sandbox_pid: int, postmaster: int) -> float:
    """CPU seconds per payment of the bare floor app, the sandbox and PostgreSQL together."""
    env = {"FLOOR_SANDBOX": sandbox, "FLOOR_ACCOUNT": account, "FLOOR_DSN": dsn}
    with uvicorn_source(FLOOR_APP, env) as url:
        floor_pid = int(subprocess.check_output(["fuser", f"{url.rsplit(':', 1)[1]}/tcp"], stderr=subprocess.DEVNULL))
        uvloop.run(_create(url, {}, WARMUP, CONCURRENCY))
        _settle(sandbox)
        pids = {"floor": floor_pid, "sandbox": sandbox_pid}
        _together("floor")
        before = _snapshot(pids, postmaster)
        made = uvloop.run(_create(url, {}, PAYMENTS, CONCURRENCY, SECONDS))
        _settle(sandbox)
        after = _snapshot(pids, postmaster)
    return sum(after[name] - before[name] for name in before) / made


def _profilers(pids: dict[str, int]) -> list[subprocess.Popen[bytes]]:
    """py-spy on the processes named in BENCH_PROFILE when BENCH_PROFILE_DIR is set."""
    if not PROFILE_DIR or not shutil.which("py-spy"):
        return []
    Path(PROFILE_DIR).mkdir(parents=True, exist_ok=True)
    options = os.environ.get("BENCH_PYSPY", "--nonblocking").split()
    profilers = [
        subprocess.Popen(
            ["py-spy", "record", *options, "-p", str(pids[name]), "-r", "97", "-f", "raw", "-o", f"{name}.txt"],
            cwd=PROFILE_DIR,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for name in PROFILED
    ]
    time.sleep(1.0)  # attached before the measured span
    return profilers


def main() -> None:
    with payments_stack() as (postgres, stack):
        gateway = str(stack["gateway"])
        sandbox = str(stack["sandboxes"]["stripe"])  # type: ignore[index]
        run_dir = Path(str(stack["run_dir"]))
        pids = {_name(int(p)): int(p) for p in (run_dir / "stack.pids").read_text().split()}
        pids = {n: p for n, p in pids.items() if not n.startswith(("stack.", "sandbox.qonto"))}
        _org_id, _agent_id, account, agent_token, _admin = _organisation(gateway)
        headers = {"Authorization": f"Bearer {agent_token}"}
        floor = _floor(sandbox, account, postgres.url, pids["sandbox.stripe"], postgres.process.pid)
        uvloop.run(_create(gateway, headers, WARMUP, CONCURRENCY))
        _settle(sandbox)
        profilers = _profilers(pids)
        load_before = os.getloadavg()[0]
        _together("stack")
        before = _snapshot(pids, postgres.process.pid)
        started = time.perf_counter()
        made = uvloop.run(_create(gateway, headers, PAYMENTS, CONCURRENCY, SECONDS))
        created = time.perf_counter() - started
        _settle(sandbox)
        after = _snapshot(pids, postgres.process.pid)
        for profiler in profilers:
            profiler.send_signal(signal.SIGINT)  # py-spy writes its file and exits
            profiler.wait(30)
    print(
        f"{made} payment creates, {CONCURRENCY} in flight, in {created:.1f} s ({made / created:.0f}/s); "
        f"load average {load_before:.2f} / {os.getloadavg()[0]:.2f}, {os.cpu_count()} cores"
    )
    total = 0.0
    for name in before:
        per = (after[name] - before[name]) / made * 1000
        total += per
        print(f"  {name:<16} {per:6.2f} ms CPU per payment")
    print(f"  {'all':<16} {total:6.2f} ms CPU per payment")
    print(f"  {'floor':<16} {floor * 1000:6.2f} ms CPU per payment (floor app, sandbox, PostgreSQL)")
    print(f"  floor / all: {floor * 1000 / total:.3f} (the CPU analogue of bench_payments' ratio)")


if __name__ == "__main__":
    main()
