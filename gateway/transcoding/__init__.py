"""The HTTP API derived from the protos: routes, JSON ⇄ proto codecs and OpenAPI from descriptors.

A route module serves a service's annotated RPCs with
`routes, operations = served("payments", payments_pb2.DESCRIPTOR.services_by_name["PaymentsService"])`
(the name is the `Clients` attribute holding the stub); docs/developing.md describes the scheme.
"""

from __future__ import annotations

from google.protobuf.descriptor import ServiceDescriptor
from starlette.routing import Route

from gateway.transcoding.routes import Operation, operations, route


def served(service: str, descriptor: ServiceDescriptor) -> tuple[list[Route], list[Operation]]:
    """The routes of a service's RPCs that declare `google.api.http`, and their operations."""
    found = operations(service, descriptor)
    return [route(operation) for operation in found], found
