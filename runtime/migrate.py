"""`python -m runtime.migrate <service>`: applies the service's migrations and exits.

What a service does at start, alone: run before a rollout (deploy/k8s: each pod's init
container) so that a failing migration stops the rollout while the running version serves.
Reads DATABASE_URL (the service's own role) and LOG_LEVEL; exit status 0 when the schema is current.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import sys

import asyncpg

from runtime.config import SERVICES
from runtime.logs import log_level, setup_logging
from runtime.service import migrate
from runtime.settings import Env, SettingsError, exit_on_settings_error


async def run(service: str, database_url: str) -> list[int]:
    module = importlib.import_module(f"services.{service}.main")
    conn = await asyncpg.connect(database_url, server_settings={"search_path": module.SCHEMA})
    try:
        return await migrate(conn, module.SCHEMA, module.MIGRATIONS)
    finally:
        await conn.close()


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in SERVICES:
        print(f"usage: python -m runtime.migrate {{{','.join(SERVICES)}}}", file=sys.stderr)
        return 2
    env = Env()
    try:
        url = env.text("DATABASE_URL")
        setup_logging(f"{argv[0]}-migrate", log_level(env))
    except SettingsError as error:
        exit_on_settings_error(error)
        return 2
    applied = asyncio.run(run(argv[0], url))
    logging.getLogger("runtime.migrate").info("schema current", extra={"applied": applied})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
