"""Use cases of the Tap to Pay check and of the device rules platform admins keep current."""

from __future__ import annotations

import asyncpg

from runtime import audit
from runtime.auth import Caller, organization_scope
from services.terminal import repository
from services.terminal.domain import (
    ANDROID,
    EVERY_COUNTRY,
    IOS,
    AndroidDevice,
    DeviceCheck,
    OsFloor,
    Verdict,
    applicable_floor,
    check_android,
    check_iphone,
    validate_android_device,
    validate_check,
    validate_floor,
)
from services.terminal.outside import Accounts


class Devices:
    def __init__(self, pool: asyncpg.Pool, accounts: Accounts) -> None:
        self._pool = pool
        self._accounts = accounts

    async def check(self, caller: Caller, request: DeviceCheck, organization_id: str) -> Verdict:
        """Whether the phone can take Tap to Pay; for iPhones the country defaults to the organisation's."""
        check, version = validate_check(request)
        if not check.country and check.platform == IOS:
            policy = await self._accounts.policy(organization_scope(caller, organization_id))
            check = DeviceCheck(
                check.platform, check.model, check.os_version, policy.country.upper(), check.manufacturer, check.is_beta
            )
        async with self._pool.acquire() as conn:
            if check.platform == IOS:
                floors = await repository.list_os_floors(conn, IOS)
                return check_iphone(check, version, {f.country: f.min_os_version for f in floors})
            device = await repository.find_android_device(conn, check.model)
            android_floors = {f.country: f.min_os_version for f in await repository.list_os_floors(conn, ANDROID)}
        return check_android(check, version, device, applicable_floor(android_floors, ANDROID, check.country) or "0")

    async def android_devices(self) -> tuple[list[AndroidDevice], str]:
        """The certified list and the Android global floor."""
        async with self._pool.acquire() as conn:
            devices = await repository.list_android_devices(conn)
            floors = await repository.list_os_floors(conn, ANDROID)
        floor = next((f.min_os_version for f in floors if f.country == EVERY_COUNTRY), "")
        return devices, floor

    async def upsert_android_device(self, device: AndroidDevice) -> AndroidDevice:
        valid = validate_android_device(device)
        async with self._pool.acquire() as conn, conn.transaction():
            await audit.record(
                conn,
                "tap_to_pay_device.upserted",
                targets={"model_identifier": valid.model_identifier},
                after={"certified": valid.certified, "min_os_version": valid.min_os_version},
            )
            return await repository.upsert_android_device(conn, valid)

    async def applicable_floors(self, caller: Caller, organization_id: str) -> list[OsFloor]:
        """Per platform, the floor that applies in the organisation's country."""
        country = (await self._accounts.policy(organization_scope(caller, organization_id))).country.upper()
        async with self._pool.acquire() as conn:
            floors = await repository.list_os_floors(conn)
        applicable = []
        for platform in (IOS, ANDROID):
            versions = {f.country: f.min_os_version for f in floors if f.platform == platform}
            version = applicable_floor(versions, platform, country)
            if version is not None:
                source = country if country in versions else EVERY_COUNTRY
                applicable.append(OsFloor(platform, source, version))
        return applicable

    async def os_floors(self) -> list[OsFloor]:
        async with self._pool.acquire() as conn:
            return await repository.list_os_floors(conn)

    async def set_os_floor(self, floor: OsFloor) -> OsFloor:
        valid = validate_floor(floor)
        async with self._pool.acquire() as conn, conn.transaction():
            await audit.record(
                conn,
                "tap_to_pay_os_floor.set",
                targets={"platform": valid.platform, "country": valid.country},
                after={"min_os_version": valid.min_os_version},
            )
            return await repository.set_os_floor(conn, valid)
