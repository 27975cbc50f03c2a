"""HTTP routes made from the RPCs a proto maps with `google.api.http` (and `collect.common.v1.http_route`).

One generic handler per route: the caller (401), its role and organisation (403/404) before the
body is read, then path, query or body and the `Idempotency-Key` header read into the request
message with every field error in one 400, the call, and the answer written as the contract's
JSON (or `{data, next_cursor}` by the response's `json_name`s), with its declared headers.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, cast

from collect.common.v1 import options_pb2
from google.api import annotations_pb2, http_pb2
from google.protobuf.descriptor import Descriptor, MethodDescriptor, ServiceDescriptor
from google.protobuf.message import Message
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.errors import ApiError
from gateway.http import caller, client_address, idempotency_key, json_body, json_response, require_role
from gateway.transcoding.codec import Reading, read_object, writer
from runtime.auth import ROLES
from runtime.contract import message_type

_VERBS = ("get", "put", "post", "delete", "patch")


@dataclass(frozen=True)
class Operation:
    """An RPC as an HTTP operation: what its route does and what the OpenAPI document says."""

    service: str  # the Clients attribute holding the stub ("payments")
    method: MethodDescriptor
    verb: str
    template: str  # google.api.http's path
    body: str  # "", "*" or a field name (google.api.HttpRule.body)
    response_body: str
    route: options_pb2.HttpRoute
    # 0 for the RPC's own mapping, n for its n-th `additional_bindings` (another path, same RPC).
    binding: int = 0

    @property
    def path_fields(self) -> tuple[str, ...]:
        """The request fields the path names (`device.model_identifier`: a field of a field)."""
        return tuple(part[1:-1] for part in self.template.split("/") if part.startswith("{"))

    @property
    def path_params(self) -> tuple[str, ...]:
        """The path's parameter names: each field's own name."""
        return tuple(field.rsplit(".", 1)[-1] for field in self.path_fields)

    @property
    def path(self) -> str:
        """The path as Starlette and OpenAPI write it."""
        return re.sub(r"\{(?:[a-z_]+\.)*([a-z_]+)\}", r"{\1}", self.template)

    @property
    def status(self) -> int:
        return self.route.status or 200

    @property
    def roles(self) -> tuple[str, ...]:
        return ROLES[ROLES.index(self.route.min_role) :] if self.route.min_role else ROLES


def operations(service: str, descriptor: ServiceDescriptor) -> list[Operation]:
    """The service's RPCs that declare an HTTP mapping."""
    found: list[Operation] = []
    for method in descriptor.methods:
        options = method.GetOptions()
        if not options.HasExtension(annotations_pb2.http):
            continue
        rule: http_pb2.HttpRule = options.Extensions[annotations_pb2.http]
        route_options = options.Extensions[options_pb2.http_route]
        for binding, mapping in enumerate((rule, *rule.additional_bindings)):
            verb = mapping.WhichOneof("pattern")
            if verb not in _VERBS:
                raise ValueError(f"{method.full_name}: unsupported HTTP mapping {verb}")
            found.append(
                Operation(
                    service,
                    method,
                    verb,
                    getattr(mapping, verb),
                    mapping.body,
                    mapping.response_body,
                    route_options,
                    binding,
                )
            )
    return found


def route(operation: Operation) -> Route:
    return Route(operation.path, _handler(operation), methods=[operation.verb.upper()], name=operation.method.name)


def reader(operation: Operation) -> Callable[[Request], Awaitable[Message]]:
    """What the generic handler does before the call: the caller, its role and organisation, then
    path, query or body and headers read into the request message (one 400 with every field error).
    A hand-written variant of a route (the daily report's CSV) reads its request with it."""
    method = operation.method
    request_type = _message_class(method.input_type)
    request_descriptor = method.input_type
    path_params = frozenset(operation.path_params)
    # Path parameters that name a field of a field: (its parent field, its name).
    nested_params = [tuple(f.rsplit(".", 1)) for f in operation.path_fields if "." in f]
    top_params = frozenset(f for f in operation.path_fields if "." not in f)
    body_field = operation.body
    key_field = operation.route.idempotency_key
    address_field = operation.route.client_address
    org_param = operation.route.organization_param
    roles, public = operation.roles, operation.route.public

    async def read(request: Request) -> Message:
        if not public:
            found = caller(request)
            # Who may call, and on which organisation, is decided before the body is read.
            org = request.path_params.get(org_param) if org_param else None
            require_role(found, *roles, organization_id=org)
        message = request_type()
        reading = Reading()
        path = request.path_params
        read_object(request_descriptor, path, message, reading, from_text=True, only=top_params)
        for parent, param in nested_params:
            holder = getattr(message, parent)
            read_object(holder.DESCRIPTOR, path, holder, reading, from_text=True, only=frozenset((param,)))
        if body_field:
            data = await json_body(request)
            if body_field == "*":
                read_object(request_descriptor, data, message, reading, skip=path_params)
            else:
                target = request_descriptor.fields_by_name[body_field]
                read_object(message_type(target), data, getattr(message, body_field), reading, skip=path_params)
        else:
            query = request.query_params
            read_object(request_descriptor, query, message, reading, from_text=True, skip=path_params)
        if key_field:
            setattr(message, key_field, idempotency_key(request))
        if address_field:
            setattr(message, address_field, client_address(request))
        if reading.errors:
            raise ApiError(400, "validation_error", "the request is invalid", reading.errors)
        return message

    return read


def _handler(operation: Operation) -> Callable[[Request], Awaitable[Response]]:
    method = operation.method
    read = reader(operation)
    write = writer(method.output_type)
    headers = [
        (f.name, rules_header)
        for f in method.output_type.fields
        if (rules_header := f.GetOptions().Extensions[options_pb2.rules].header)
    ]
    answer_field = operation.response_body
    write_answer = writer(method.output_type.fields_by_name[answer_field].message_type) if answer_field else write
    status, service, rpc = operation.status, operation.service, method.name
    cache_control = operation.route.cache_control
    accepted_when = operation.route.accepted_when

    async def handle(request: Request) -> Response:
        message = await read(request)
        answer = await getattr(getattr(request.app.state.clients, service), rpc)(message)
        if status == 204:
            return Response(status_code=204)
        extra = {header: _header_value(getattr(answer, field)) for field, header in headers if getattr(answer, field)}
        if cache_control:
            extra["Cache-Control"] = cache_control
        data_out = write_answer(getattr(answer, answer_field)) if answer_field else write(answer)
        done = 202 if accepted_when and getattr(answer, accepted_when) else status
        return json_response(data_out, done, extra or None)

    return handle


def read_query(request: Request, message: Message, skip: frozenset[str] = frozenset()) -> None:
    """Fills a request message from the query string by its declared rules (one 400 with every
    field error): for hand-written routes that have no JSON answer (the FEC downloads)."""
    reading = Reading()
    descriptor = cast(Descriptor, message.DESCRIPTOR)
    read_object(descriptor, request.query_params, message, reading, from_text=True, skip=skip)
    if reading.errors:
        raise ApiError(400, "validation_error", "the request is invalid", reading.errors)


def _header_value(value: Any) -> str:
    return "true" if value is True else str(value)


def _message_class(descriptor: Any) -> Any:
    from google.protobuf import message_factory

    return message_factory.GetMessageClass(descriptor)
