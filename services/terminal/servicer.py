"""TerminalService: proto ⇄ domain translation only."""

from __future__ import annotations

import grpc
from collect.common.v1 import common_pb2
from collect.terminal.v1 import terminal_pb2 as pb
from collect.terminal.v1 import terminal_pb2_grpc

from runtime.auth import AGENT, ORG_ADMIN, PLATFORM_ADMIN, require_caller, scoped_caller
from runtime.proto import to_timestamp
from services.terminal import domain
from services.terminal.devices import Devices
from services.terminal.terminal import Terminal


def location_message(location: domain.Location) -> pb.Location:
    address = location.address
    return pb.Location(
        id=location.id,
        organization_id=location.organization_id,
        display_name=location.display_name,
        address=common_pb2.Address(
            line1=address.line1,
            line2=address.line2,
            city=address.city,
            postal_code=address.postal_code,
            country=address.country,
            state=address.state,
        ),
        stripe_location_id=location.stripe_location_id,
        is_default=location.is_default,
        created_at=to_timestamp(location.created_at),
    )


def reader_message(reader: domain.Reader) -> pb.Reader:
    return pb.Reader(
        id=reader.id,
        organization_id=reader.organization_id,
        location_id=reader.location_id,
        label=reader.label,
        stripe_reader_id=reader.stripe_reader_id,
        device_type=reader.device_type,
        serial_number=reader.serial_number,
        status=reader.status,
        last_seen_at=to_timestamp(reader.last_seen_at),
        created_at=to_timestamp(reader.created_at),
    )


def device_message(device: domain.AndroidDevice) -> pb.AndroidDevice:
    return pb.AndroidDevice(
        model_identifier=device.model_identifier,
        manufacturer=device.manufacturer,
        marketing_name=device.marketing_name,
        min_os_version=device.min_os_version,
        certified=device.certified,
        updated_at=to_timestamp(device.updated_at),
    )


def floor_message(floor: domain.OsFloor) -> pb.OsFloor:
    return pb.OsFloor(
        platform=floor.platform,
        country=floor.country,
        min_os_version=floor.min_os_version,
        updated_at=to_timestamp(floor.updated_at),
    )


class TerminalServicer(terminal_pb2_grpc.TerminalServiceServicer):
    def __init__(self, terminal: Terminal, devices: Devices) -> None:
        self._terminal = terminal
        self._devices = devices

    async def CreateLocation(
        self, request: pb.CreateLocationRequest, context: grpc.aio.ServicerContext
    ) -> pb.CreateLocationResponse:
        _, organization_id = scoped_caller(request.organization_id, min_role=ORG_ADMIN)
        given = request.address
        address = domain.Address(
            line1=given.line1,
            line2=given.line2,
            city=given.city,
            postal_code=given.postal_code,
            country=given.country,
            state=given.state,
        )
        location = await self._terminal.create_location(organization_id, request.display_name, address)
        return pb.CreateLocationResponse(location=location_message(location))

    async def ListLocations(
        self, request: pb.ListLocationsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListLocationsResponse:
        _, organization_id = scoped_caller(request.organization_id, min_role=AGENT)
        found, cursor = await self._terminal.list_locations(organization_id, request.page.limit, request.page.cursor)
        return pb.ListLocationsResponse(locations=[location_message(x) for x in found], next_cursor=cursor)

    async def CreateConnectionToken(
        self, request: pb.CreateConnectionTokenRequest, context: grpc.aio.ServicerContext
    ) -> pb.CreateConnectionTokenResponse:
        _, organization_id = scoped_caller(request.organization_id, min_role=AGENT)
        secret, location = await self._terminal.connection_token(organization_id, request.location_id)
        return pb.CreateConnectionTokenResponse(
            secret=secret, location_id=location.id, stripe_location_id=location.stripe_location_id
        )

    async def RegisterReader(
        self, request: pb.RegisterReaderRequest, context: grpc.aio.ServicerContext
    ) -> pb.RegisterReaderResponse:
        _, organization_id = scoped_caller(request.organization_id, min_role=ORG_ADMIN)
        reader = await self._terminal.register_reader(
            organization_id, request.registration_code, request.label, request.location_id
        )
        return pb.RegisterReaderResponse(reader=reader_message(reader))

    async def ListReaders(
        self, request: pb.ListReadersRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListReadersResponse:
        _, organization_id = scoped_caller(request.organization_id, min_role=AGENT)
        found, cursor = await self._terminal.list_readers(organization_id, request.page.limit, request.page.cursor)
        return pb.ListReadersResponse(readers=[reader_message(x) for x in found], next_cursor=cursor)

    async def DeleteReader(
        self, request: pb.DeleteReaderRequest, context: grpc.aio.ServicerContext
    ) -> pb.DeleteReaderResponse:
        _, organization_id = scoped_caller(request.organization_id, min_role=ORG_ADMIN)
        await self._terminal.delete_reader(organization_id, request.reader_id)
        return pb.DeleteReaderResponse()

    async def CheckTapToPay(
        self, request: pb.CheckTapToPayRequest, context: grpc.aio.ServicerContext
    ) -> pb.CheckTapToPayResponse:
        caller = require_caller(min_role=AGENT)
        check = domain.DeviceCheck(
            platform=request.platform,
            model=request.model,
            os_version=request.os_version,
            country=request.country,
            manufacturer=request.manufacturer,
            is_beta=request.is_beta,
        )
        verdict = await self._devices.check(caller, check, request.organization_id)
        return pb.CheckTapToPayResponse(
            supported=verdict.supported, reason=verdict.reason, alternative=verdict.alternative
        )

    async def ListAndroidDevices(
        self, request: pb.ListAndroidDevicesRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListAndroidDevicesResponse:
        require_caller(min_role=AGENT)
        devices, floor = await self._devices.android_devices()
        return pb.ListAndroidDevicesResponse(devices=[device_message(d) for d in devices], min_os_version=floor)

    async def UpsertAndroidDevice(
        self, request: pb.UpsertAndroidDeviceRequest, context: grpc.aio.ServicerContext
    ) -> pb.UpsertAndroidDeviceResponse:
        require_caller(min_role=PLATFORM_ADMIN)
        given = request.device
        device = await self._devices.upsert_android_device(
            domain.AndroidDevice(
                model_identifier=given.model_identifier,
                manufacturer=given.manufacturer,
                marketing_name=given.marketing_name,
                min_os_version=given.min_os_version,
                certified=given.certified,
            )
        )
        return pb.UpsertAndroidDeviceResponse(device=device_message(device))

    async def ListOsFloors(
        self, request: pb.ListOsFloorsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListOsFloorsResponse:
        require_caller(min_role=AGENT)
        return pb.ListOsFloorsResponse(floors=[floor_message(f) for f in await self._devices.os_floors()])

    async def ListApplicableOsFloors(
        self, request: pb.ListApplicableOsFloorsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListApplicableOsFloorsResponse:
        caller = require_caller(min_role=AGENT)
        floors = await self._devices.applicable_floors(caller, request.organization_id)
        return pb.ListApplicableOsFloorsResponse(floors=[floor_message(f) for f in floors])

    async def SetOsFloor(
        self, request: pb.SetOsFloorRequest, context: grpc.aio.ServicerContext
    ) -> pb.SetOsFloorResponse:
        require_caller(min_role=PLATFORM_ADMIN)
        given = request.floor
        floor = await self._devices.set_os_floor(domain.OsFloor(given.platform, given.country, given.min_os_version))
        return pb.SetOsFloorResponse(floor=floor_message(floor))
