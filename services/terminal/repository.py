"""SQL for the terminal schema; $1 parameters only."""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg

from runtime.db import Connection
from services.terminal.domain import Address, AndroidDevice, Location, OsFloor, Reader, ReaderUpdate

_LOCATION_COLUMNS = (
    "id, organization_id, display_name, line1, line2, city, postal_code, country, state, "
    "stripe_location_id, stripe_account_id, is_default, created_at"
)
_READER_COLUMNS = (
    "id, organization_id, location_id, label, stripe_reader_id, stripe_account_id, device_type, "
    "serial_number, status, last_seen_at, status_at, created_at"
)
_DEVICE_COLUMNS = "model_identifier, manufacturer, marketing_name, min_os_version, certified, updated_at"


def _location(row: asyncpg.Record) -> Location:
    return Location(
        id=str(row["id"]),
        organization_id=str(row["organization_id"]),
        display_name=row["display_name"],
        address=Address(
            line1=row["line1"],
            line2=row["line2"],
            city=row["city"],
            postal_code=row["postal_code"],
            country=row["country"],
            state=row["state"],
        ),
        stripe_location_id=row["stripe_location_id"],
        stripe_account_id=row["stripe_account_id"],
        is_default=row["is_default"],
        created_at=row["created_at"],
    )


def _reader(row: asyncpg.Record) -> Reader:
    return Reader(
        id=str(row["id"]),
        organization_id=str(row["organization_id"]),
        location_id=str(row["location_id"]),
        label=row["label"],
        stripe_reader_id=row["stripe_reader_id"],
        stripe_account_id=row["stripe_account_id"],
        device_type=row["device_type"],
        serial_number=row["serial_number"],
        status=row["status"],
        last_seen_at=row["last_seen_at"],
        status_at=row["status_at"],
        created_at=row["created_at"],
    )


def _device(row: asyncpg.Record) -> AndroidDevice:
    return AndroidDevice(
        model_identifier=row["model_identifier"],
        manufacturer=row["manufacturer"],
        marketing_name=row["marketing_name"],
        min_os_version=row["min_os_version"],
        certified=row["certified"],
        updated_at=row["updated_at"],
    )


def _uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except (ValueError, TypeError):
        return None


# --- locations ------------------------------------------------------------------------------------


async def insert_location(
    conn: Connection,
    *,
    organization_id: str,
    display_name: str,
    address: Address,
    stripe_location_id: str,
    stripe_account_id: str | None,
) -> Location:
    """Inserts a location; the organisation's first one becomes its default."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('terminal.locations:' || $1::text))", organization_id)
    row = await conn.fetchrow(
        f"""INSERT INTO locations (id, organization_id, display_name, line1, line2, city, postal_code, country, state,
                                   stripe_location_id, stripe_account_id, is_default)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11,
                    NOT EXISTS (SELECT 1 FROM locations WHERE organization_id = $2 AND is_default))
            ON CONFLICT (stripe_location_id) DO NOTHING
            RETURNING {_LOCATION_COLUMNS}""",
        uuid.uuid4(),
        _uuid(organization_id),
        display_name,
        address.line1,
        address.line2,
        address.city,
        address.postal_code,
        address.country,
        address.state,
        stripe_location_id,
        stripe_account_id,
    )
    if row is None:  # a concurrent twin of the same creation stored it first
        row = await conn.fetchrow(
            f"SELECT {_LOCATION_COLUMNS} FROM locations WHERE stripe_location_id = $1", stripe_location_id
        )
    assert row is not None
    return _location(row)


async def get_location(conn: Connection, organization_id: str, location_id: str) -> Location | None:
    row = await conn.fetchrow(
        f"SELECT {_LOCATION_COLUMNS} FROM locations WHERE id = $1 AND organization_id = $2",
        _uuid(location_id),
        _uuid(organization_id),
    )
    return _location(row) if row else None


async def default_location(conn: Connection, organization_id: str) -> Location | None:
    row = await conn.fetchrow(
        f"SELECT {_LOCATION_COLUMNS} FROM locations WHERE organization_id = $1 AND is_default",
        _uuid(organization_id),
    )
    return _location(row) if row else None


async def list_locations(
    conn: Connection, organization_id: str, limit: int, after: tuple[datetime, str] | None
) -> list[Location]:
    rows = await conn.fetch(
        f"""SELECT {_LOCATION_COLUMNS} FROM locations
             WHERE organization_id = $1 AND ($2::timestamptz IS NULL OR (created_at, id) > ($2, $3))
             ORDER BY created_at, id LIMIT $4""",
        _uuid(organization_id),
        after[0] if after else None,
        _uuid(after[1]) if after else None,
        limit,
    )
    return [_location(r) for r in rows]


# --- creations at Stripe ---------------------------------------------------------------------------


async def record_stripe_creation(conn: Connection, organization_id: str, kind: str, request_digest: str) -> str:
    """The id of the creation of `kind` this request asks for: the recorded one when it is a retry."""
    row = await conn.fetchrow(
        """INSERT INTO stripe_creations (id, organization_id, kind, request_digest) VALUES ($1, $2, $3, $4)
           ON CONFLICT (organization_id, kind, request_digest) DO UPDATE SET kind = EXCLUDED.kind
           RETURNING id""",
        uuid.uuid4(),
        _uuid(organization_id),
        kind,
        request_digest,
    )
    assert row is not None
    return str(row["id"])


async def forget_stripe_creation(conn: Connection, creation_id: str) -> None:
    await conn.execute("DELETE FROM stripe_creations WHERE id = $1", _uuid(creation_id))


# --- readers --------------------------------------------------------------------------------------


async def insert_reader(
    conn: Connection,
    *,
    organization_id: str,
    location_id: str,
    label: str,
    stripe_reader_id: str,
    stripe_account_id: str | None,
    device_type: str,
    serial_number: str,
    status: str,
    last_seen_at: datetime | None,
) -> Reader:
    row = await conn.fetchrow(
        f"""INSERT INTO readers (id, organization_id, location_id, label, stripe_reader_id, stripe_account_id,
                                 device_type, serial_number, status, last_seen_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
            ON CONFLICT (stripe_reader_id) DO NOTHING
            RETURNING {_READER_COLUMNS}""",
        uuid.uuid4(),
        _uuid(organization_id),
        _uuid(location_id),
        label,
        stripe_reader_id,
        stripe_account_id,
        device_type,
        serial_number,
        status,
        last_seen_at,
    )
    if row is None:  # a concurrent twin of the same creation stored it first
        row = await conn.fetchrow(
            f"SELECT {_READER_COLUMNS} FROM readers WHERE stripe_reader_id = $1", stripe_reader_id
        )
    assert row is not None
    return _reader(row)


async def get_reader(conn: Connection, organization_id: str, reader_id: str) -> Reader | None:
    row = await conn.fetchrow(
        f"SELECT {_READER_COLUMNS} FROM readers WHERE id = $1 AND organization_id = $2",
        _uuid(reader_id),
        _uuid(organization_id),
    )
    return _reader(row) if row else None


async def list_readers(
    conn: Connection, organization_id: str, limit: int, after: tuple[datetime, str] | None
) -> list[Reader]:
    rows = await conn.fetch(
        f"""SELECT {_READER_COLUMNS} FROM readers
             WHERE organization_id = $1 AND ($2::timestamptz IS NULL OR (created_at, id) > ($2, $3))
             ORDER BY created_at, id LIMIT $4""",
        _uuid(organization_id),
        after[0] if after else None,
        _uuid(after[1]) if after else None,
        limit,
    )
    return [_reader(r) for r in rows]


async def delete_reader(conn: Connection, reader_id: str) -> None:
    await conn.execute("DELETE FROM readers WHERE id = $1", _uuid(reader_id))


async def apply_reader_update(
    conn: Connection, update: ReaderUpdate, stripe_account_id: str | None, happened_at: datetime
) -> bool:
    """Applies what an event says about a reader unless a newer event already did; True when applied.

    The account must match where the reader lives, so one account's events never touch another's reader.
    """
    status = await conn.execute(
        """UPDATE readers
              SET status = $2,
                  last_seen_at = GREATEST(last_seen_at, $3::timestamptz),
                  label = COALESCE($4, label),
                  status_at = $5
            WHERE stripe_reader_id = $1
              AND stripe_account_id IS NOT DISTINCT FROM $6
              AND (status_at IS NULL OR status_at <= $5)""",
        update.stripe_reader_id,
        update.status,
        update.last_seen_at,
        update.label,
        happened_at,
        stripe_account_id,
    )
    return status.endswith(" 1")


# --- device rules ---------------------------------------------------------------------------------


async def list_android_devices(conn: Connection) -> list[AndroidDevice]:
    rows = await conn.fetch(f"SELECT {_DEVICE_COLUMNS} FROM android_devices ORDER BY manufacturer, model_identifier")
    return [_device(r) for r in rows]


async def find_android_device(conn: Connection, model_identifier: str) -> AndroidDevice | None:
    row = await conn.fetchrow(
        f"SELECT {_DEVICE_COLUMNS} FROM android_devices WHERE lower(model_identifier) = lower($1)", model_identifier
    )
    return _device(row) if row else None


async def upsert_android_device(conn: Connection, device: AndroidDevice) -> AndroidDevice:
    row = await conn.fetchrow(
        f"""INSERT INTO android_devices (model_identifier, manufacturer, marketing_name, min_os_version, certified)
            VALUES ($1, $2, $3, $4, $5)
            ON CONFLICT (lower(model_identifier)) DO UPDATE
               SET manufacturer = EXCLUDED.manufacturer, marketing_name = EXCLUDED.marketing_name,
                   min_os_version = EXCLUDED.min_os_version, certified = EXCLUDED.certified, updated_at = now()
            RETURNING {_DEVICE_COLUMNS}""",
        device.model_identifier,
        device.manufacturer,
        device.marketing_name,
        device.min_os_version,
        device.certified,
    )
    assert row is not None
    return _device(row)


async def list_os_floors(conn: Connection, platform: str | None = None) -> list[OsFloor]:
    rows = await conn.fetch(
        """SELECT platform, country, min_os_version, updated_at FROM os_floors
            WHERE $1::text IS NULL OR platform = $1 ORDER BY platform, country""",
        platform,
    )
    return [OsFloor(r["platform"], r["country"], r["min_os_version"], r["updated_at"]) for r in rows]


async def set_os_floor(conn: Connection, floor: OsFloor) -> OsFloor:
    row = await conn.fetchrow(
        """INSERT INTO os_floors (platform, country, min_os_version) VALUES ($1, $2, $3)
           ON CONFLICT (platform, country) DO UPDATE SET min_os_version = EXCLUDED.min_os_version, updated_at = now()
           RETURNING platform, country, min_os_version, updated_at""",
        floor.platform,
        floor.country,
        floor.min_os_version,
    )
    assert row is not None
    return OsFloor(row["platform"], row["country"], row["min_os_version"], row["updated_at"])
