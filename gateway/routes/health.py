"""Liveness, readiness and the OpenAPI document."""

from __future__ import annotations

import asyncio

import grpc
from grpc_health.v1 import health_pb2
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.http import json_response


async def healthz(request: Request) -> Response:
    return json_response({"status": "ok"})


async def readyz(request: Request) -> Response:
    """Ready when every service answers SERVING (each reports NOT_SERVING while its database is down)."""
    clients = request.app.state.clients

    async def check(name: str) -> tuple[str, str]:
        try:
            answer = await clients.health[name].Check(health_pb2.HealthCheckRequest(service=""), timeout=1.0)
        except grpc.aio.AioRpcError as error:
            return name, f"unavailable ({error.code().name.lower()})"
        return name, "ok" if answer.status == health_pb2.HealthCheckResponse.SERVING else "not_serving"

    results = dict(await asyncio.gather(*(check(name) for name in clients.health)))
    ready = all(status == "ok" for status in results.values())
    return json_response({"status": "ready" if ready else "not_ready", "services": results}, 200 if ready else 503)


async def openapi(request: Request) -> Response:
    return json_response(request.app.state.openapi)


routes = [
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
    Route("/openapi.json", openapi, methods=["GET"]),
]

openapi_paths: dict[str, dict[str, object]] = {
    "/healthz": {
        "get": {"summary": "The gateway process is up", "security": [], "responses": {"200": {"description": "up"}}}
    },
    "/readyz": {
        "get": {
            "summary": "Every service answers its gRPC health check and reaches its database",
            "security": [],
            "responses": {"200": {"description": "ready"}, "503": {"description": "not ready"}},
        }
    },
    "/openapi.json": {
        "get": {"summary": "This document", "security": [], "responses": {"200": {"description": "OpenAPI 3"}}}
    },
}
