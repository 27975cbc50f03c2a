"""/docs: the OpenAPI document in Swagger UI, served from files vendored here (swagger-ui-dist 5.35.0,
Apache-2.0: LICENSE.swagger-ui), never from a CDN."""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Route

_HERE = Path(__file__).parent
_FILES = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "init.js": "text/javascript",
}
_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self'; frame-ancestors 'none'",
    "Cache-Control": "public, max-age=3600",
}


async def viewer(request: Request) -> Response:
    return FileResponse(_HERE / "index.html", media_type="text/html", headers=_HEADERS)


async def asset(request: Request) -> Response:
    name = request.path_params["name"]
    if name not in _FILES:
        return Response(status_code=404)
    return FileResponse(_HERE / name, media_type=_FILES[name], headers=_HEADERS)


routes: list[BaseRoute] = [
    Route("/docs", viewer, methods=["GET"]),
    Route("/docs/{name}", asset, methods=["GET"]),
]

openapi_paths = {
    "/docs": {
        "get": {
            "operationId": "apiDocs",
            "tags": ["meta"],
            "summary": "This document in a browser (Swagger UI)",
            "security": [],
            "responses": {"200": {"description": "HTML", "content": {"text/html": {"schema": {"type": "string"}}}}},
        }
    }
}
