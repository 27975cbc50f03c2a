"""SQL for the accounts schema (members part); $1 parameters only."""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg

from runtime.db import Connection
from services.accounts.domain import Member

_MEMBER_COLUMNS = "id, organization_id, email, name, role, disabled, created_at"


def _member(row: asyncpg.Record) -> Member:
    return Member(
        id=str(row["id"]),
        organization_id=str(row["organization_id"]) if row["organization_id"] else None,
        email=row["email"],
        name=row["name"],
        role=row["role"],
        disabled=row["disabled"],
        created_at=row["created_at"],
    )


async def member_credentials(conn: Connection, email: str) -> tuple[Member, str] | None:
    row = await conn.fetchrow(f"SELECT {_MEMBER_COLUMNS}, password_hash FROM members WHERE lower(email) = $1", email)
    return (_member(row), row["password_hash"]) if row else None


async def get_member(conn: Connection, member_id: str) -> Member | None:
    row = await conn.fetchrow(f"SELECT {_MEMBER_COLUMNS} FROM members WHERE id = $1", _uuid(member_id))
    return _member(row) if row else None


async def insert_member(
    conn: Connection,
    *,
    organization_id: str | None,
    email: str,
    name: str,
    role: str,
    password_hash: str,
) -> Member | None:
    """Inserts a member; None when the e-mail is taken."""
    row = await conn.fetchrow(
        f"""INSERT INTO members (id, organization_id, email, name, role, password_hash)
            VALUES ($1, $2, $3, $4, $5, $6)
            ON CONFLICT (lower(email)) DO NOTHING
            RETURNING {_MEMBER_COLUMNS}""",
        uuid.uuid4(),
        _uuid(organization_id) if organization_id else None,
        email,
        name,
        role,
        password_hash,
    )
    return _member(row) if row else None


async def set_password_hash(conn: Connection, member_id: str, password_hash: str) -> None:
    await conn.execute(
        "UPDATE members SET password_hash = $2, updated_at = now() WHERE id = $1",
        _uuid(member_id),
        password_hash,
    )


async def list_members(
    conn: Connection, organization_id: str, limit: int, after: tuple[datetime, str] | None
) -> list[Member]:
    if after is None:
        rows = await conn.fetch(
            f"""SELECT {_MEMBER_COLUMNS} FROM members WHERE organization_id = $1
                ORDER BY created_at, id LIMIT $2""",
            _uuid(organization_id),
            limit,
        )
    else:
        rows = await conn.fetch(
            f"""SELECT {_MEMBER_COLUMNS} FROM members WHERE organization_id = $1 AND (created_at, id) > ($2, $3)
                ORDER BY created_at, id LIMIT $4""",
            _uuid(organization_id),
            after[0],
            _uuid(after[1]),
            limit,
        )
    return [_member(r) for r in rows]


def _uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except (ValueError, TypeError):
        return None
