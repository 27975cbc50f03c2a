"""`python -m stack.provision`: one role and schema per service on DATABASE_URL (a superuser URL).

Used by docker-compose; `make run` does the same itself. ROLE_PASSWORD is the password of every
service role (compose), or ROLE_PASSWORD_<SERVICE> one each.
"""

from __future__ import annotations

import asyncio

import asyncpg

from runtime.config import SERVICES
from runtime.migrations import provision_schema
from runtime.settings import Env, SettingsError, exit_on_settings_error


async def provision_all(url: str, passwords: dict[str, str]) -> None:
    """Waits for the server, then creates or updates every service's role and schema."""
    for attempt in range(30):
        try:
            conn = await asyncpg.connect(url)
            break
        except OSError:
            await asyncio.sleep(1 + attempt * 0.1)
    else:
        raise SystemExit("PostgreSQL did not answer")
    try:
        for schema in SERVICES:
            await provision_schema(conn, schema, passwords[schema])
    finally:
        await conn.close()


def main() -> None:
    env = Env()
    try:
        url = env.text("DATABASE_URL")
        shared = env.optional("ROLE_PASSWORD")
        passwords = {s: env.optional(f"ROLE_PASSWORD_{s.upper()}") or shared or "" for s in SERVICES}
        if not all(passwords.values()):
            raise SettingsError("missing required setting ROLE_PASSWORD (or ROLE_PASSWORD_<SERVICE>)")
    except SettingsError as error:
        exit_on_settings_error(error)
        return
    asyncio.run(provision_all(url, passwords))
    print(f"schemas and roles ready: {', '.join(SERVICES)}")


if __name__ == "__main__":
    main()
