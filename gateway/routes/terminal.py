"""Terminal locations, connection tokens, readers and the Tap to Pay device rules."""

from __future__ import annotations

from typing import Any

from collect.common.v1 import common_pb2
from collect.terminal.v1 import terminal_pb2 as pb
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.addresses import ADDRESS_SCHEMA, address_field, address_json
from gateway.http import (
    Fields,
    caller,
    json_body,
    json_response,
    org_query,
    page_params,
    require_role,
    timestamp_json,
)
from gateway.openapi import body_schema, error_responses, json_ok
from runtime.auth import AGENT, ORG_ADMIN, PLATFORM_ADMIN

MEMBERS = (AGENT, ORG_ADMIN, PLATFORM_ADMIN)
ADMINS = (ORG_ADMIN, PLATFORM_ADMIN)
_ORG_ID: dict[str, Any] = {
    "organization_id": {"type": "string", "description": "platform_admin only: the organisation acted on"}
}


def location_json(location: pb.Location) -> dict[str, Any]:
    return {
        "id": location.id,
        "organization_id": location.organization_id,
        "display_name": location.display_name,
        "address": address_json(location.address),
        "stripe_location_id": location.stripe_location_id,
        "is_default": location.is_default,
        "created_at": timestamp_json(location.created_at),
    }


def reader_json(reader: pb.Reader) -> dict[str, Any]:
    return {
        "id": reader.id,
        "organization_id": reader.organization_id,
        "location_id": reader.location_id,
        "label": reader.label,
        "stripe_reader_id": reader.stripe_reader_id,
        "device_type": reader.device_type,
        "serial_number": reader.serial_number,
        "status": reader.status,
        "last_seen_at": timestamp_json(reader.last_seen_at),
        "created_at": timestamp_json(reader.created_at),
    }


def device_json(device: pb.AndroidDevice) -> dict[str, Any]:
    return {
        "model_identifier": device.model_identifier,
        "manufacturer": device.manufacturer or None,
        "marketing_name": device.marketing_name or None,
        "min_os_version": device.min_os_version,
        "certified": device.certified,
        "updated_at": timestamp_json(device.updated_at),
    }


def floor_json(floor: pb.OsFloor) -> dict[str, Any]:
    return {
        "platform": floor.platform,
        "country": floor.country,
        "min_os_version": floor.min_os_version,
        "updated_at": timestamp_json(floor.updated_at),
    }


# --- locations and connection tokens ----------------------------------------------------------------


async def create_location(request: Request) -> Response:
    require_role(caller(request), *ADMINS)
    fields = Fields(await json_body(request))
    display_name = fields.text("display_name", max_len=100)
    organization_id = fields.text("organization_id", required=False, max_len=100)
    address = address_field(fields)
    fields.check()
    answer = await request.app.state.clients.terminal.CreateLocation(
        pb.CreateLocationRequest(
            organization_id=organization_id,
            display_name=display_name,
            address=address,
        )
    )
    return json_response(location_json(answer.location), 201)


async def list_locations(request: Request) -> Response:
    require_role(caller(request), *MEMBERS)
    limit, cursor = page_params(request)
    answer = await request.app.state.clients.terminal.ListLocations(
        pb.ListLocationsRequest(
            organization_id=org_query(request), page=common_pb2.PageRequest(limit=limit, cursor=cursor)
        )
    )
    return json_response(
        {"data": [location_json(x) for x in answer.locations], "next_cursor": answer.next_cursor or None}
    )


async def create_connection_token(request: Request) -> Response:
    require_role(caller(request), *MEMBERS)
    fields = Fields(await json_body(request))
    location_id = fields.text("location_id", required=False, max_len=100)
    organization_id = fields.text("organization_id", required=False, max_len=100)
    fields.check()
    answer = await request.app.state.clients.terminal.CreateConnectionToken(
        pb.CreateConnectionTokenRequest(organization_id=organization_id, location_id=location_id)
    )
    body = {"secret": answer.secret, "location_id": answer.location_id, "stripe_location_id": answer.stripe_location_id}
    return json_response(body, headers={"Cache-Control": "no-store"})


# --- readers --------------------------------------------------------------------------------------


async def register_reader(request: Request) -> Response:
    require_role(caller(request), *ADMINS)
    fields = Fields(await json_body(request))
    registration_code = fields.text("registration_code", max_len=100)
    label = fields.text("label", max_len=100)
    location_id = fields.text("location_id", max_len=100)
    organization_id = fields.text("organization_id", required=False, max_len=100)
    fields.check()
    answer = await request.app.state.clients.terminal.RegisterReader(
        pb.RegisterReaderRequest(
            organization_id=organization_id, registration_code=registration_code, label=label, location_id=location_id
        )
    )
    return json_response(reader_json(answer.reader), 201)


async def list_readers(request: Request) -> Response:
    require_role(caller(request), *MEMBERS)
    limit, cursor = page_params(request)
    answer = await request.app.state.clients.terminal.ListReaders(
        pb.ListReadersRequest(
            organization_id=org_query(request), page=common_pb2.PageRequest(limit=limit, cursor=cursor)
        )
    )
    return json_response({"data": [reader_json(x) for x in answer.readers], "next_cursor": answer.next_cursor or None})


async def delete_reader(request: Request) -> Response:
    require_role(caller(request), *ADMINS)
    await request.app.state.clients.terminal.DeleteReader(
        pb.DeleteReaderRequest(organization_id=org_query(request), reader_id=request.path_params["reader_id"])
    )
    return Response(status_code=204)


# --- Tap to Pay -----------------------------------------------------------------------------------


async def check_tap_to_pay(request: Request) -> Response:
    require_role(caller(request), *MEMBERS)
    fields = Fields(await json_body(request))
    platform = fields.text("platform", max_len=20)
    model = fields.text("model", max_len=100)
    manufacturer = fields.text("manufacturer", required=False, max_len=100)
    os_version = fields.text("os_version", max_len=40)
    country = fields.text("country", required=False, max_len=2)
    is_beta = fields.boolean("is_beta")
    organization_id = fields.text("organization_id", required=False, max_len=100)
    fields.check()
    answer = await request.app.state.clients.terminal.CheckTapToPay(
        pb.CheckTapToPayRequest(
            platform=platform,
            model=model,
            manufacturer=manufacturer,
            os_version=os_version,
            country=country,
            is_beta=is_beta,
            organization_id=organization_id,
        )
    )
    return json_response(
        {"supported": answer.supported, "reason": answer.reason, "alternative": answer.alternative or None}
    )


async def list_android_devices(request: Request) -> Response:
    caller(request)
    answer = await request.app.state.clients.terminal.ListAndroidDevices(pb.ListAndroidDevicesRequest())
    return json_response({"data": [device_json(d) for d in answer.devices], "min_os_version": answer.min_os_version})


async def upsert_android_device(request: Request) -> Response:
    require_role(caller(request), PLATFORM_ADMIN)
    fields = Fields(await json_body(request))
    manufacturer = fields.text("manufacturer", required=False, max_len=100)
    marketing_name = fields.text("marketing_name", required=False, max_len=200)
    min_os_version = fields.text("min_os_version", max_len=20)
    certified = fields.boolean("certified", default=True)
    fields.check()
    answer = await request.app.state.clients.terminal.UpsertAndroidDevice(
        pb.UpsertAndroidDeviceRequest(
            device=pb.AndroidDevice(
                model_identifier=request.path_params["model_identifier"],
                manufacturer=manufacturer,
                marketing_name=marketing_name,
                min_os_version=min_os_version,
                certified=certified,
            )
        )
    )
    return json_response(device_json(answer.device))


async def list_os_floors(request: Request) -> Response:
    caller(request)
    answer = await request.app.state.clients.terminal.ListOsFloors(pb.ListOsFloorsRequest())
    return json_response({"data": [floor_json(f) for f in answer.floors]})


async def set_os_floor(request: Request) -> Response:
    require_role(caller(request), PLATFORM_ADMIN)
    fields = Fields(await json_body(request))
    country = fields.text("country", required=False, max_len=2)
    min_os_version = fields.text("min_os_version", max_len=20)
    fields.check()
    answer = await request.app.state.clients.terminal.SetOsFloor(
        pb.SetOsFloorRequest(
            floor=pb.OsFloor(platform=request.path_params["platform"], country=country, min_os_version=min_os_version)
        )
    )
    return json_response(floor_json(answer.floor))


routes = [
    Route("/v1/terminal/locations", create_location, methods=["POST"]),
    Route("/v1/terminal/locations", list_locations, methods=["GET"]),
    Route("/v1/terminal/connection-token", create_connection_token, methods=["POST"]),
    Route("/v1/terminal/readers", register_reader, methods=["POST"]),
    Route("/v1/terminal/readers", list_readers, methods=["GET"]),
    Route("/v1/terminal/readers/{reader_id}", delete_reader, methods=["DELETE"]),
    Route("/v1/devices/tap-to-pay/check", check_tap_to_pay, methods=["POST"]),
    Route("/v1/devices/tap-to-pay/android", list_android_devices, methods=["GET"]),
    Route("/v1/devices/tap-to-pay/android/{model_identifier}", upsert_android_device, methods=["PUT"]),
    Route("/v1/devices/tap-to-pay/os-floors", list_os_floors, methods=["GET"]),
    Route("/v1/devices/tap-to-pay/os-floors/{platform}", set_os_floor, methods=["PUT"]),
]

_PAGE: list[dict[str, Any]] = [
    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100}},
    {"name": "cursor", "in": "query", "schema": {"type": "string"}},
    {"name": "organization_id", "in": "query", "schema": {"type": "string"}},
]


def _merge(*parts: dict[str, Any]) -> dict[str, Any]:
    return {key: value for part in parts for key, value in part.items()}


_NO_CONTENT: dict[str, Any] = {"204": {"description": "removed"}}

openapi_paths: dict[str, dict[str, object]] = {
    "/v1/terminal/locations": {
        "post": {
            "summary": "Create a Terminal location (org_admin)",
            "requestBody": body_schema(
                {"display_name": {"type": "string"}, "address": ADDRESS_SCHEMA, **_ORG_ID}, ["display_name", "address"]
            ),
            "responses": _merge(
                json_ok("location with stripe_location_id", 201), error_responses(400, 401, 403, 404, 409, 503)
            ),
        },
        "get": {
            "summary": "The organisation's locations",
            "parameters": _PAGE,
            "responses": _merge(json_ok("{data, next_cursor}"), error_responses(400, 401, 404)),
        },
    },
    "/v1/terminal/connection-token": {
        "post": {
            "summary": "A fresh Terminal connection token (agent+), scoped to a location (default: the organisation's)",
            "requestBody": body_schema({"location_id": {"type": "string"}, **_ORG_ID}),
            "responses": _merge(
                json_ok("{secret, location_id, stripe_location_id}"), error_responses(400, 401, 403, 404, 409, 503)
            ),
        }
    },
    "/v1/terminal/readers": {
        "post": {
            "summary": "Register a reader at a location (org_admin)",
            "requestBody": body_schema(
                {
                    "registration_code": {"type": "string"},
                    "label": {"type": "string"},
                    "location_id": {"type": "string"},
                    **_ORG_ID,
                },
                ["registration_code", "label", "location_id"],
            ),
            "responses": _merge(json_ok("reader", 201), error_responses(400, 401, 403, 404, 409, 503)),
        },
        "get": {
            "summary": "The organisation's readers, with status and last seen",
            "parameters": _PAGE,
            "responses": _merge(json_ok("{data, next_cursor}"), error_responses(400, 401, 404)),
        },
    },
    "/v1/terminal/readers/{reader_id}": {
        "delete": {
            "summary": "Remove a reader (org_admin)",
            "parameters": [
                {"name": "reader_id", "in": "path", "required": True, "schema": {"type": "string"}},
                {"name": "organization_id", "in": "query", "schema": {"type": "string"}},
            ],
            "responses": _merge(_NO_CONTENT, error_responses(401, 403, 404, 503)),
        }
    },
    "/v1/devices/tap-to-pay/check": {
        "post": {
            "summary": "Whether a phone can take Tap to Pay payments, with a reason and an alternative",
            "description": "A beta OS is refused: flag it with is_beta, or send a version such as '17.2 beta' or "
            "'18.0b1'. The country defaults to the organisation's.",
            "requestBody": body_schema(
                {
                    "platform": {"type": "string", "enum": ["ios", "android"]},
                    "model": {"type": "string", "description": "iPhone14,2 or Android Build.MODEL, e.g. Pixel 8"},
                    "manufacturer": {"type": "string"},
                    "os_version": {"type": "string"},
                    "country": {"type": "string"},
                    "is_beta": {"type": "boolean"},
                    **_ORG_ID,
                },
                ["platform", "model", "os_version"],
            ),
            "responses": _merge(json_ok("{supported, reason, alternative}"), error_responses(400, 401, 403)),
        }
    },
    "/v1/devices/tap-to-pay/android": {
        "get": {
            "summary": "Certified Android devices and the Android global floor",
            "responses": _merge(json_ok("{data, min_os_version}"), error_responses(401)),
        }
    },
    "/v1/devices/tap-to-pay/android/{model_identifier}": {
        "put": {
            "summary": "Upsert a certified Android device (platform_admin)",
            "parameters": [{"name": "model_identifier", "in": "path", "required": True, "schema": {"type": "string"}}],
            "requestBody": body_schema(
                {
                    "manufacturer": {"type": "string"},
                    "marketing_name": {"type": "string"},
                    "min_os_version": {"type": "string"},
                    "certified": {"type": "boolean", "default": True},
                },
                ["min_os_version"],
            ),
            "responses": _merge(json_ok("device"), error_responses(400, 401, 403)),
        }
    },
    "/v1/devices/tap-to-pay/os-floors": {
        "get": {
            "summary": "Minimum OS versions: iOS per country, Android globally (country '*')",
            "responses": _merge(json_ok("{data}"), error_responses(401)),
        }
    },
    "/v1/devices/tap-to-pay/os-floors/{platform}": {
        "put": {
            "summary": "Set a minimum OS version (platform_admin); without country, the platform's global floor",
            "parameters": [
                {
                    "name": "platform",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string", "enum": ["ios", "android"]},
                }
            ],
            "requestBody": body_schema(
                {"country": {"type": "string"}, "min_os_version": {"type": "string"}}, ["min_os_version"]
            ),
            "responses": _merge(json_ok("floor"), error_responses(400, 401, 403)),
        }
    },
}
