"""`python -m gateway` honours `LOG_LEVEL` as the services do: its access lines are info, so a
WARNING gateway writes none and an INFO one writes one per request."""

from __future__ import annotations

import asyncio
import signal
import sys
import uuid
from typing import Any

import httpx
import orjson
import pytest

from runtime.embedded_pg import free_port
from tests.fixtures.polling import eventually
from tests.fixtures.stack import TEST_AUTH_SECRET

# Nothing listens there: the gateway serves /healthz without the services.
NOWHERE = "127.0.0.1:9"


def _environment(port: int, level: str) -> dict[str, str]:
    return {
        "PATH": "/usr/bin:/bin",
        "AUTH_TOKEN_SECRET": TEST_AUTH_SECRET,
        **{f"{name}_ADDR": NOWHERE for name in ("ACCOUNTS", "PAYMENTS", "TERMINAL", "BANKING")},
        "GATEWAY_PORT": str(port),
        "LOG_LEVEL": level,
    }


async def _lines_of_one_request(level: str, request_id: str) -> list[dict[str, Any]]:
    """Starts the gateway, sends it one request, stops it (gracefully: the request's line is
    written before it exits) and returns every JSON line it wrote."""
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        env=_environment(port, level),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:

            async def listening() -> bool:
                try:
                    return (await http.get("/healthz")).status_code == 200
                except httpx.TransportError:
                    return False

            await eventually(listening, "the gateway listening", attempts=600)
            answer = await http.get("/healthz", headers={"X-Request-Id": request_id})
            assert answer.status_code == 200
    finally:
        if process.returncode is None:
            process.terminate()
        _, stderr = await asyncio.wait_for(process.communicate(), timeout=30)
    # uvicorn shuts down gracefully on SIGTERM, then raises the signal again for its parent.
    assert process.returncode in (0, -signal.SIGTERM), stderr.decode()
    return [orjson.loads(line) for line in stderr.splitlines() if line.startswith(b"{")]


@pytest.mark.parametrize(("level", "expected"), [("WARNING", 0), ("INFO", 1), ("debug", 1)])
async def test_the_gateway_logs_from_the_level_it_is_given(level: str, expected: int) -> None:
    request_id = f"level-{uuid.uuid4().hex}"
    lines = await _lines_of_one_request(level, request_id)
    access = [line for line in lines if line["logger"] == "gateway.access" and line.get("request_id") == request_id]
    assert len(access) == expected, lines
    assert all(line["level"] == "info" and line["route"] == "/healthz" for line in access)
    if level == "WARNING":
        # Nothing under the level, from any logger (the gateway's start-up and watch lines are info).
        assert [line for line in lines if line["level"] in ("debug", "info")] == []
    else:
        assert any(line["logger"] == "gateway" and line["msg"].startswith("gateway listening") for line in lines)
