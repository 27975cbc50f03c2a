"""No public default secrets: without the token secret or Accounts' keys a process refuses to start
(one line, exit 2), and docker-compose requires them from the environment."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from runtime.embedded_pg import free_port
from stack.compose_env import COMPOSE_SECRETS
from stack.launcher import SERVICE_SECRETS
from tests.fixtures.database import PlatformDatabase
from tests.fixtures.stack import TEST_AUTH_SECRET, TEST_SECRETS_ENV

ROOT = Path(__file__).resolve().parents[3]


async def _run(module: str, env: dict[str, str]) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        module,
        env={"PATH": os.environ.get("PATH", ""), **env},
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        _, stderr = await asyncio.wait_for(process.communicate(), 60)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    return int(process.returncode or 0), stderr.decode()


@pytest.mark.parametrize("missing", sorted(TEST_SECRETS_ENV))
async def test_accounts_refuses_to_start_without_its_keys(database: PlatformDatabase, missing: str) -> None:
    env = {
        "DATABASE_URL": database.urls["accounts"],
        "AUTH_TOKEN_SECRET": TEST_AUTH_SECRET,
        "GRPC_PORT": str(free_port()),
        **{k: v for k, v in TEST_SECRETS_ENV.items() if k != missing},
    }
    code, stderr = await _run("services.accounts", env)
    assert code == 2, stderr
    assert stderr.strip() == f"configuration error: missing required setting {missing}"


async def test_a_service_and_the_gateway_refuse_to_start_without_the_token_secret(database: PlatformDatabase) -> None:
    code, stderr = await _run("services.payments", {"DATABASE_URL": database.urls["payments"]})
    assert (code, stderr.strip()) == (2, "configuration error: missing required setting AUTH_TOKEN_SECRET")
    code, stderr = await _run("gateway", {"GATEWAY_PORT": str(free_port())})
    assert (code, stderr.strip()) == (2, "configuration error: missing required setting AUTH_TOKEN_SECRET")
    code, stderr = await _run("gateway", {"GATEWAY_PORT": str(free_port()), "AUTH_TOKEN_SECRET": "short"})
    assert (code, stderr.strip()) == (2, "configuration error: AUTH_TOKEN_SECRET must be at least 32 characters")


def test_docker_compose_requires_every_secret_from_the_environment() -> None:
    compose = (ROOT / "docker-compose.yml").read_text()
    for name in COMPOSE_SECRETS:
        uses = re.findall(r"\$\{" + name + r"(:?[-?=+]?)[^}]*\}", compose)
        assert uses, f"{name} is not taken from the environment"
        assert set(uses) == {":?"}, f"{name} has a default in docker-compose.yml: {uses}"
    assert set(SERVICE_SECRETS) <= set(COMPOSE_SECRETS)
    # Nothing that looks like a development secret is left in the file.
    assert not re.search(r"(?i)(secret|password|key)[^\n]*:-[^}]*(change-me|development|compose-)", compose)
