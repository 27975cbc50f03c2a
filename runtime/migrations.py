"""Per-service schemas, roles and numbered SQL migrations.

Each service owns one schema and connects as its own role, which owns that schema and has
no rights on the others. Migrations are `NNNN_<what>.sql` files applied once, in order, in
one transaction each, recorded in `<schema>.schema_migrations` with a checksum.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg

from runtime.db import Connection

_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_IDENT = re.compile(r"^[a-z_][a-z0-9_]*$")


class MigrationError(Exception):
    pass


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations(directory: Path) -> list[Migration]:
    found: list[Migration] = []
    for path in sorted(directory.glob("*.sql")):
        match = _FILE.match(path.name)
        if not match:
            raise MigrationError(f"migration file name must be NNNN_name.sql: {path.name}")
        found.append(Migration(int(match[1]), match[2], path.read_text()))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"duplicate migration numbers in {directory}")
    return found


async def apply_migrations(
    conn: Connection, schema: str, directory: Path, *, table: str = "schema_migrations"
) -> list[int]:
    """Applies the pending migrations of `directory` in `schema`; returns the versions applied.

    `table` records them; the runtime's own migrations (the inbox) use another table than the
    service's, so both number from 0001.
    """
    _check_ident(schema)
    _check_ident(table)
    migrations = load_migrations(directory)
    applied_now: list[int] = []
    async with conn.transaction():
        # One migrator at a time per schema (several replicas may start together).
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"migrate:{schema}.{table}")
        await conn.execute(
            f"""CREATE TABLE IF NOT EXISTS {schema}.{table} (
                    version integer PRIMARY KEY,
                    name text NOT NULL,
                    checksum text NOT NULL,
                    applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        rows = await conn.fetch(f"SELECT version, checksum FROM {schema}.{table}")
        done = {r["version"]: r["checksum"] for r in rows}
        for migration in migrations:
            if migration.version in done:
                if done[migration.version] != migration.checksum:
                    raise MigrationError(
                        f"{schema} migration {migration.version:04d}_{migration.name} changed after it was applied"
                    )
                continue
            await conn.execute(f"SET LOCAL search_path TO {schema}")
            await conn.execute(migration.sql)
            await conn.execute(
                f"INSERT INTO {schema}.{table} (version, name, checksum) VALUES ($1, $2, $3)",
                migration.version,
                migration.name,
                migration.checksum,
            )
            applied_now.append(migration.version)
    return applied_now


def role_name(schema: str) -> str:
    return f"collect_{schema}"


async def provision_schema(admin: asyncpg.Connection, schema: str, password: str) -> None:
    """Creates (or updates) the service's role and its schema; the role gets no other rights."""
    _check_ident(schema)
    if not re.fullmatch(r"[A-Za-z0-9_-]{8,128}", password):
        raise MigrationError("role passwords must be 8..128 url-safe characters")
    role = role_name(schema)
    # Serialise: CREATE ROLE / SCHEMA IF NOT EXISTS still race with a concurrent provisioner.
    async with admin.transaction():
        await admin.execute("SELECT pg_advisory_xact_lock(hashtext('collect:provision'))")
        exists = await admin.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role)
        verb = "ALTER" if exists else "CREATE"
        await admin.execute(f"{verb} ROLE {role} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD '{password}'")
        await admin.execute(f"CREATE SCHEMA IF NOT EXISTS {schema} AUTHORIZATION {role}")
        await admin.execute(f"ALTER SCHEMA {schema} OWNER TO {role}")
        await admin.execute(f"REVOKE ALL ON SCHEMA {schema} FROM PUBLIC")
        await admin.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")


def service_dsn(admin_dsn: str, schema: str, password: str) -> str:
    """The admin URL with the service's role and password in place of the admin's."""
    parts = urlsplit(admin_dsn)
    host = parts.hostname or "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{role_name(schema)}:{quote(password, safe='')}@{host}"
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _check_ident(name: str) -> None:
    if not _IDENT.match(name):
        raise MigrationError(f"not a safe SQL identifier: {name!r}")
