"""Helpers for benchmarks: the whole stack as separate processes, and a bare Starlette baseline."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from runtime.embedded_pg import free_port

ROOT = Path(__file__).resolve().parents[1]
ADMIN = ("bench-admin@collect.local", "bench-admin-password")

BASELINE_APP = """
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route
import orjson

PAYLOAD = orjson.dumps({"id": "b5ffffbc-c402-42ba-bd34-68c0e73c301e", "email": "admin@collect.local",
                        "role": "platform_admin", "organization": None})

async def me(request):
    return Response(PAYLOAD, media_type="application/json")

app = Starlette(routes=[Route("/v1/me", me)])
"""


@contextlib.contextmanager
def running_stack(extra_env: dict[str, str] | None = None) -> Iterator[dict[str, object]]:
    """`python -m stack` in a temporary run directory; yields .run/stack.json (and `run_dir`)."""
    run_dir = Path(tempfile.mkdtemp(prefix="collect-bench-"))
    env = {
        **os.environ,
        "STACK_RUN_DIR": str(run_dir),
        "GATEWAY_PORT": str(free_port()),
        "PLATFORM_ADMIN_EMAIL": ADMIN[0],
        "PLATFORM_ADMIN_PASSWORD": ADMIN[1],
        "LOG_LEVEL": "WARNING",
        **(extra_env or {}),
    }
    process = subprocess.Popen([sys.executable, "-m", "stack"], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        for line in process.stdout:
            if "is up" in line:
                break
        else:
            raise RuntimeError("the stack did not start")
        yield {**json.loads((run_dir / "stack.json").read_text()), "run_dir": str(run_dir)}
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)
        shutil.rmtree(run_dir, ignore_errors=True)


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@contextlib.contextmanager
def uvicorn_source(source: str, env: dict[str, str] | None = None) -> Iterator[str]:
    """Serves the module `source` (defining `app`) under uvicorn with uvloop and httptools, like
    the gateway, in its own process; yields its base URL once it listens."""
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "bench_app.py").write_text(source)
        environ = {**os.environ, **(env or {}), "PYTHONPATH": os.pathsep.join([tmp, str(ROOT)])}
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "bench_app:app",
                "--port",
                str(port),
                "--loop",
                "uvloop",
                "--http",
                "httptools",
                "--log-level",
                "warning",
                "--no-access-log",
            ],
            cwd=tmp,
            env=environ,
        )
        try:
            for _ in range(200):
                if process.poll() is not None:
                    raise RuntimeError("the benchmark app exited at start")
                if listening(port):
                    break
                time.sleep(0.05)
            yield f"http://127.0.0.1:{port}"
        finally:
            process.terminate()
            process.wait(10)


@contextlib.contextmanager
def baseline_server() -> Iterator[str]:
    """A bare Starlette endpoint answering GET /v1/me with fixed JSON."""
    with uvicorn_source(BASELINE_APP) as url:
        yield url


def login(gateway: str, email: str = ADMIN[0], password: str = ADMIN[1]) -> str:
    request = urllib.request.Request(
        f"{gateway}/v1/auth/token",
        data=json.dumps({"email": email, "password": password}).encode(),
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(request) as answer:
        return str(json.loads(answer.read())["access_token"])
